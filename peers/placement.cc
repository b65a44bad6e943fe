#include "peers/placement.h"

#include <algorithm>
#include <utility>

#include "peers/rendezvous.h"
#include "util/sha256.h"

namespace peers {

namespace {

PeerStep StepOf(const RouteCandidate& c, Hop hop) { return {c.name, c.url, hop, c.region}; }

// Measured RTTs first, nearest first.
bool Nearer(double a, double b) {
  if ((a < 0) != (b < 0)) return a >= 0;
  return a < b;
}

}  // namespace

std::vector<PeerStep> ReplicaCandidates(const std::string& self_region,
                                        const std::vector<RouteCandidate>& members,
                                        const std::set<std::string>& replicated_regions) {
  struct Ranked {
    int rank;
    const RouteCandidate* c;
  };
  std::vector<Ranked> ranked;
  for (const RouteCandidate& c : members) {
    if (!c.live || c.quarantined || !c.routable) continue;
    int rank = c.region == self_region ? 2 : replicated_regions.count(c.region) ? 0 : 1;
    ranked.push_back({rank, &c});
  }
  std::sort(ranked.begin(), ranked.end(), [](const Ranked& a, const Ranked& b) {
    if (a.rank != b.rank) return a.rank < b.rank;
    if (a.c->rtt_ms != b.c->rtt_ms) return Nearer(a.c->rtt_ms, b.c->rtt_ms);
    return a.c->name < b.c->name;
  });
  std::vector<PeerStep> out;
  for (const Ranked& r : ranked) out.push_back(StepOf(*r.c, Hop::kPeer));
  return out;
}

util::Digest TagPoint(const TagKey& key) {
  return util::DigestOf("georeg tag\n" + key.registry + "\n" + key.repository + "\n" + key.tag);
}

std::vector<std::string> TagKeepers(const util::Digest& point,
                                    const std::vector<std::string>& region_nodes,
                                    const std::string& self, size_t k) {
  std::vector<std::string> out;
  for (int i : RendezvousRanking(point, region_nodes, k + 1)) {
    if (region_nodes[i] != self && out.size() < k) out.push_back(region_nodes[i]);
  }
  return out;
}

void PreferHolders(const std::string& self, const std::string& self_region,
                   const std::vector<RouteCandidate>& holders, RoutePlan* plan) {
  if (plan->role == Hop::kPeer) return;
  std::vector<const RouteCandidate*> chosen;
  for (const RouteCandidate& h : holders) {
    if (h.name == self || h.quarantined || !h.routable) continue;
    if (std::any_of(chosen.begin(), chosen.end(),
                    [&](const RouteCandidate* c) { return c->name == h.name; }))
      continue;
    chosen.push_back(&h);
  }
  if (chosen.empty()) return;
  std::stable_sort(chosen.begin(), chosen.end(),
                   [&](const RouteCandidate* a, const RouteCandidate* b) {
                     bool ra = a->region != self_region, rb = b->region != self_region;
                     if (ra != rb) return !ra;
                     return Nearer(a->rtt_ms, b->rtt_ms);
                   });
  auto is_holder = [&](const PeerStep& s) {
    return std::any_of(chosen.begin(), chosen.end(),
                       [&](const RouteCandidate* c) { return c->name == s.name; });
  };
  std::vector<PeerStep>& steps = plan->steps;
  bool keep_owner_first =
      !steps.empty() && steps.front().hop == Hop::kOwner && !is_holder(steps.front());
  std::erase_if(steps, is_holder);
  std::vector<PeerStep> preferred;
  for (const RouteCandidate* c : chosen) preferred.push_back(StepOf(*c, Hop::kPeer));
  steps.insert(steps.begin() + (keep_owner_first ? 1 : 0), preferred.begin(), preferred.end());
}

}  // namespace peers
