// Which peers a cache miss asks, in which order (docs/gossip.md, "Where a
// miss goes"). Pure.
//
// Two owners per digest, both by rendezvous hashing over live members:
//   - the region owner (over our region and us): every node of a region
//     sends its misses there, so a region fills a blob once;
//   - the fleet owner (over the whole fleet and us), under the fleet scope:
//     every region owner asks it before the upstream, so the fleet fetches a
//     blob from the upstream once, and every blob the fleet fetched is where
//     the next miss looks first, with no summary to wait for.
// A node's role for a digest is the hop it was asked with, raised to
// kOwner when it is its region's owner and to kFleet when it is the fleet's.
// Steps by role:
//   kClient: region owner (hop owner); then, if it fails, as kOwner below;
//   kOwner:  siblings whose summary says they may have it; under the fleet
//            scope, remote members that may have it and are nearer than
//            the fleet owner, then the fleet owner and its runner-up (hop
//            fleet); the other remote members that may have it, nearest
//            first, at most `max_remote`;
//   kFleet:  siblings and remote members that may have it (hop peer);
//   kPeer:   nothing: answered from the cache or not at all.
// Members that are not routable are skipped like quarantined ones.
// Hops only rise along a chain (client < owner < fleet < peer), so a
// request is forwarded at most three times. Quarantined members are
// skipped. The upstream comes after every step except for kPeer (the
// caller adds it).
#pragma once

#include <string>
#include <vector>

#include "util/digest.h"

namespace peers {

// Ordered: a fill started at role R is joined only by requests of hop <= R
// (registry::Service), so waits only ever go up the order and never form a
// cycle, even while two nodes disagree about who owns a digest.
enum class Hop { kClient = 0, kOwner = 1, kFleet = 2, kPeer = 3 };
const char* HopName(Hop h);
bool ParseHop(const std::string& text, Hop* out);

// Where the one upstream fetch of a blob happens: once per fleet (the fleet
// owner fetches) or once per region (each region owner fetches).
enum class Scope { kFleet, kRegion };

struct RouteCandidate {
  std::string name, region, url;
  bool live = false;
  double rtt_ms = -1;  // recent minimum RTT; <0: not measured yet (sorted last)
  bool may_have =
      false;  // its digest summary (or no summary, for manifests) says it may hold the digest
  bool quarantined = false;
  // False for a member of another region whose replication has routing
  // disabled (drained): never asked, though it still counts for ownership,
  // so every node keeps agreeing on owners.
  bool routable = true;
};

struct PeerStep {
  std::string name, url;
  Hop hop = Hop::kPeer;  // what we tell the peer
  std::string region;
};

struct RoutePlan {
  Hop role = Hop::kClient;  // this node's part for the digest (the level of a fill it starts)
  std::vector<PeerStep> steps;
  bool upstream = true;  // the caller may go on to the upstream
};

RoutePlan PlanRoute(const std::string& self_name, const std::string& self_region,
                    const std::vector<RouteCandidate>& members, const util::Digest& digest,
                    Hop incoming, size_t max_remote, Scope scope);

}  // namespace peers
