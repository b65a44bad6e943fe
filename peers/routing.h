// Which peers a cache miss asks, in which order (docs/gossip.md, "Where a
// miss goes"). Pure.
//
// For a request from a client (not forwarded):
//   1. the owner of the digest in our region: rendezvous hashing over the
//      live members of our region and ourselves (skipped when we are the
//      owner). The owner is asked with hop "owner": it may go on to other
//      regions and the upstream, so a region fetches a blob from outside once;
//   2. other live members of our region whose summary says they may have it;
//   3. live members of other regions whose summary says they may have it,
//      nearest (recent minimum RTT) first, at most `max_remote`.
// For a request forwarded to us as the owner: steps 2 and 3.
// A request forwarded with hop "peer" is never forwarded again (no loops):
// it is answered from the cache or not at all. Quarantined members are
// skipped. The upstream comes after every step (the caller adds it).
#pragma once

#include <string>
#include <vector>

#include "util/digest.h"

namespace peers {

enum class Hop { kClient, kOwner, kPeer };
const char* HopName(Hop h);
bool ParseHop(const std::string& text, Hop* out);

struct RouteCandidate {
  std::string name, region, url;
  bool live = false;
  double rtt_ms = -1;     // recent minimum RTT; <0: not measured yet (sorted last)
  bool may_have = false;  // its digest summary (or no summary, for manifests) says it may hold the digest
  bool quarantined = false;
};

struct PeerStep {
  std::string name, url;
  Hop hop = Hop::kPeer;  // what we tell the peer: kOwner lets it fetch further
};

std::vector<PeerStep> PlanRoute(const std::string& self_name, const std::string& self_region,
                                const std::vector<RouteCandidate>& members, const util::Digest& digest,
                                Hop incoming, size_t max_remote);

}  // namespace peers
