// Rendezvous (highest random weight) hashing: which node of a region, or of
// the fleet, owns a digest (docs/gossip.md). Pure.
#pragma once

#include <string>
#include <vector>

#include "util/digest.h"

namespace peers {

// The index in `nodes` (node names) of the owner of `digest`, or -1 when
// `nodes` is empty. Ties (astronomically rare) break by the smaller name.
int RendezvousOwner(const util::Digest& digest, const std::vector<std::string>& nodes);

// The indices in `nodes` of the first `k` nodes in `digest`'s ranking (the
// owner first, then the node that owns it when the owner is gone, ...);
// fewer when `nodes` has fewer.
std::vector<int> RendezvousRanking(const util::Digest& digest,
                                   const std::vector<std::string>& nodes, size_t k);

}  // namespace peers
