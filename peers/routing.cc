#include "peers/routing.h"

#include <algorithm>

#include "peers/rendezvous.h"

namespace peers {

const char* HopName(Hop h) {
  switch (h) {
    case Hop::kClient:
      return "client";
    case Hop::kOwner:
      return "owner";
    case Hop::kFleet:
      return "fleet";
    case Hop::kPeer:
      return "peer";
  }
  return "?";
}

bool ParseHop(const std::string& text, Hop* out) {
  for (Hop h : {Hop::kClient, Hop::kOwner, Hop::kFleet, Hop::kPeer}) {
    if (text == HopName(h)) {
      *out = h;
      return true;
    }
  }
  return false;
}

namespace {

// Ownership ignores quarantine: every node must agree on it.
std::vector<std::string> Owners(const std::string& self_name,
                                const std::vector<RouteCandidate>& members,
                                const std::string* region, const util::Digest& digest, size_t k) {
  std::vector<std::string> nodes = {self_name};
  for (const auto& m : members)
    if (m.live && m.name != self_name && (!region || m.region == *region)) nodes.push_back(m.name);
  std::vector<std::string> out;
  for (int i : RendezvousRanking(digest, nodes, k)) out.push_back(nodes[i]);
  return out;
}

}  // namespace

RoutePlan PlanRoute(const std::string& self_name, const std::string& self_region,
                    const std::vector<RouteCandidate>& members, const util::Digest& digest,
                    Hop incoming, size_t max_remote, Scope scope) {
  RoutePlan plan;
  plan.role = incoming;
  if (incoming == Hop::kPeer) {
    plan.upstream = false;
    return plan;
  }
  std::vector<std::string> fleet_owners;
  if (scope == Scope::kFleet) fleet_owners = Owners(self_name, members, nullptr, digest, 2);
  std::string region_owner = Owners(self_name, members, &self_region, digest, 1).front();
  if (!fleet_owners.empty() && fleet_owners[0] == self_name) {
    plan.role = Hop::kFleet;
  } else if (plan.role == Hop::kClient && region_owner == self_name) {
    plan.role = Hop::kOwner;
  }

  auto usable = [&](const RouteCandidate& m) {
    return m.live && !m.quarantined && m.routable && m.name != self_name;
  };
  auto find = [&](const std::string& name) -> const RouteCandidate* {
    for (const auto& m : members)
      if (m.name == name && usable(m)) return &m;
    return nullptr;
  };
  auto listed = [&](const std::string& name) {
    return std::any_of(plan.steps.begin(), plan.steps.end(),
                       [&](const PeerStep& s) { return s.name == name; });
  };
  auto add = [&](const RouteCandidate& m, Hop hop) {
    if (!listed(m.name)) plan.steps.push_back({m.name, m.url, hop, m.region});
  };
  auto nearer = [](const RouteCandidate* a, const RouteCandidate* b) {
    bool ka = a->rtt_ms >= 0, kb = b->rtt_ms >= 0;
    if (ka != kb) return ka;
    if (a->rtt_ms != b->rtt_ms) return a->rtt_ms < b->rtt_ms;
    return a->name < b->name;
  };

  if (plan.role == Hop::kClient) {
    if (const RouteCandidate* o = find(region_owner)) add(*o, Hop::kOwner);
  }
  std::vector<const RouteCandidate*> siblings, remote;
  for (const auto& m : members) {
    if (!usable(m) || !m.may_have) continue;
    (m.region == self_region ? siblings : remote).push_back(&m);
  }
  std::sort(siblings.begin(), siblings.end(), nearer);
  std::sort(remote.begin(), remote.end(), nearer);
  for (const auto* m : siblings) add(*m, Hop::kPeer);
  size_t remote_asked = 0;
  auto add_remote = [&](const RouteCandidate* m) {
    if (remote_asked < max_remote && !listed(m->name)) {
      add(*m, Hop::kPeer);
      ++remote_asked;
    }
  };
  if (plan.role != Hop::kFleet && !fleet_owners.empty()) {
    const RouteCandidate* f1 = find(fleet_owners[0]);
    // Remote holders nearer than the fleet owner save a longer trip; the
    // fleet owner is the one that surely has it (or is filling it).
    for (const auto* m : remote)
      if (f1 && f1->name != m->name && !nearer(f1, m)) add_remote(m);
    if (f1) add(*f1, Hop::kFleet);
    // The runner-up takes the digest over when the owner dies or leaves.
    if (fleet_owners.size() > 1 && fleet_owners[1] != self_name)
      if (const RouteCandidate* f2 = find(fleet_owners[1])) add(*f2, Hop::kFleet);
  }
  for (const auto* m : remote) add_remote(m);
  return plan;
}

}  // namespace peers
