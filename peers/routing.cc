#include "peers/routing.h"

#include <algorithm>

#include "peers/rendezvous.h"

namespace peers {

const char* HopName(Hop h) {
  switch (h) {
    case Hop::kClient: return "client";
    case Hop::kOwner: return "owner";
    case Hop::kPeer: return "peer";
  }
  return "?";
}

bool ParseHop(const std::string& text, Hop* out) {
  for (Hop h : {Hop::kClient, Hop::kOwner, Hop::kPeer}) {
    if (text == HopName(h)) {
      *out = h;
      return true;
    }
  }
  return false;
}

std::vector<PeerStep> PlanRoute(const std::string& self_name, const std::string& self_region,
                                const std::vector<RouteCandidate>& members, const util::Digest& digest,
                                Hop incoming, size_t max_remote) {
  std::vector<PeerStep> steps;
  if (incoming == Hop::kPeer) return steps;
  std::string owner;
  if (incoming == Hop::kClient) {
    // Ownership ignores quarantine: every node of the region must agree on it.
    std::vector<std::string> region_nodes = {self_name};
    for (const auto& m : members) {
      if (m.live && m.region == self_region) region_nodes.push_back(m.name);
    }
    std::sort(region_nodes.begin(), region_nodes.end());
    int i = RendezvousOwner(digest, region_nodes);
    if (i >= 0 && region_nodes[i] != self_name) owner = region_nodes[i];
  }
  const RouteCandidate* owner_member = nullptr;
  std::vector<const RouteCandidate*> siblings, remote;
  for (const auto& m : members) {
    if (!m.live || m.quarantined || m.name == self_name) continue;
    if (m.name == owner) {
      owner_member = &m;
    } else if (m.may_have) {
      (m.region == self_region ? siblings : remote).push_back(&m);
    }
  }
  auto nearer = [](const RouteCandidate* a, const RouteCandidate* b) {
    bool ka = a->rtt_ms >= 0, kb = b->rtt_ms >= 0;
    if (ka != kb) return ka;
    if (a->rtt_ms != b->rtt_ms) return a->rtt_ms < b->rtt_ms;
    return a->name < b->name;
  };
  std::sort(siblings.begin(), siblings.end(), nearer);
  std::sort(remote.begin(), remote.end(), nearer);
  if (owner_member) steps.push_back({owner_member->name, owner_member->url, Hop::kOwner});
  for (const auto* m : siblings) steps.push_back({m->name, m->url, Hop::kPeer});
  for (size_t i = 0; i < remote.size() && i < max_remote; ++i) steps.push_back({remote[i]->name, remote[i]->url, Hop::kPeer});
  return steps;
}

}  // namespace peers
