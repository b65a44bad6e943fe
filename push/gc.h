// Garbage collection of the own registry's blobs (docs/replication.md,
// "Garbage collection"): which own blobs no manifest held here references
// and are older than the grace period (an upload's blobs arrive before the
// manifest that names them; the grace period is how long they may wait).
// Pure.
#pragma once

#include <cstdint>
#include <vector>

#include "util/digest.h"

namespace push {

struct OwnBlob {
  util::Digest digest;
  uint64_t created_ms = 0;  // wall clock
};

// `references`: every digest any own manifest references (blobs and child
// manifests). Returns the blobs to remove, in the order given.
std::vector<util::Digest> Collectable(const std::vector<OwnBlob>& blobs,
                                      const std::vector<util::Digest>& references, uint64_t now_ms,
                                      uint64_t grace_ms);

}  // namespace push
