// Rendezvous (highest random weight) hashing: which node of a region owns a
// digest (docs/gossip.md). Pure.
#pragma once

#include <string>
#include <vector>

#include "util/digest.h"

namespace peers {

// The index in `nodes` (node names) of the owner of `digest`, or -1 when
// `nodes` is empty. Ties (astronomically rare) break by the smaller name.
int RendezvousOwner(const util::Digest& digest, const std::vector<std::string>& nodes);

}  // namespace peers
