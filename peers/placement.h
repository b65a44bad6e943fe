// Where the fleet's own content is placed, beside where a miss goes
// (peers/routing.h). Pure: members come in as RouteCandidates, decisions
// come out as names and PeerSteps; no clock, no sockets.
//
// - Durable copies of a pushed image (ReplicaCandidates): members asked to
//   hold a copy before a manifest PUT is acknowledged.
// - Tag keepers (TagKeepers): the nodes of a region that a pushing node
//   tells of a tag before acknowledging, and that a node which has not
//   heard of the tag asks (read your writes in every region).
// - Known holders (PreferHolders): nodes known to have a digest placed in
//   a miss's plan right after the region owner.
#pragma once

#include <cstddef>
#include <set>
#include <string>
#include <vector>

#include "peers/routing.h"
#include "peers/tag_table.h"
#include "util/digest.h"

namespace peers {

// Members that may hold a durable copy, in the order they are asked: live,
// not quarantined, routable; other replicated regions first, then other
// regions, then `self_region`; nearest first within each (unmeasured
// last), then by name. Hop peer.
std::vector<PeerStep> ReplicaCandidates(const std::string& self_region,
                                        const std::vector<RouteCandidate>& members,
                                        const std::set<std::string>& replicated_regions);

// The point a tag's keepers are chosen by (rendezvous hashing).
util::Digest TagPoint(const TagKey& key);

// Of `region_nodes` (names; `self` may be among them), the keepers of the
// tag at `point`: the first `k` of the rendezvous ranking over all of them,
// `self` left out (so at most `k`, fewer when the region is small).
std::vector<std::string> TagKeepers(const util::Digest& point,
                                    const std::vector<std::string>& region_nodes,
                                    const std::string& self, size_t k);

// Puts `holders` (members known to hold the digest, whatever their state:
// a node back from a partition is often alive before we have heard so)
// into `plan` right after its region owner (first, when the plan has none
// or the owner is a holder), hop peer, skipping quarantined and unroutable
// ones and `self`: same region first, then measured RTT, unmeasured last;
// a holder the plan already had moves rather than repeats. A plan for a
// peer's request (role kPeer) is left alone.
void PreferHolders(const std::string& self, const std::string& self_region,
                   const std::vector<RouteCandidate>& holders, RoutePlan* plan);

}  // namespace peers
