// Where the own registry's content is placed: durable-copy candidates, tag
// keepers and known holders in a plan (peers/placement.h).
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include "peers/placement.h"
#include "peers/rendezvous.h"

namespace {

peers::RouteCandidate Member(std::string name, std::string region, double rtt, bool live = true) {
  peers::RouteCandidate c;
  c.name = name;
  c.region = region;
  c.url = "http://" + name;
  c.live = live;
  c.rtt_ms = rtt;
  return c;
}

std::vector<std::string> Names(const std::vector<peers::PeerStep>& steps) {
  std::vector<std::string> out;
  for (const auto& s : steps) out.push_back(s.name);
  return out;
}

}  // namespace

TEST_CASE("replica candidates: replicated regions, other regions, ours; nearest first") {
  std::vector<peers::RouteCandidate> m = {
      Member("home-far", "eastus", 9),     Member("home-near", "eastus", 1),
      Member("eu", "westeurope", 40),      Member("jp-slow", "japaneast", 150),
      Member("jp-fast", "japaneast", 120), Member("unmeasured", "japaneast", -1),
      Member("au", "australiaeast", 200),
  };
  auto steps = peers::ReplicaCandidates("eastus", m, {"japaneast"});
  CHECK(Names(steps) == std::vector<std::string>{"jp-fast", "jp-slow", "unmeasured", "eu", "au",
                                                 "home-near", "home-far"});
  for (const auto& s : steps) {
    CHECK(s.hop == peers::Hop::kPeer);
    CHECK(s.url == "http://" + s.name);
  }
}

TEST_CASE("replica candidates: never a suspect, quarantined or drained member") {
  std::vector<peers::RouteCandidate> m = {
      Member("ok", "westeurope", 5), Member("suspect", "westeurope", 1, /*live=*/false),
      Member("bad", "westeurope", 1), Member("drained", "japaneast", 1)};
  m[2].quarantined = true;
  m[3].routable = false;
  CHECK(Names(peers::ReplicaCandidates("eastus", m, {})) == std::vector<std::string>{"ok"});
  CHECK(peers::ReplicaCandidates("eastus", {}, {}).empty());
}

TEST_CASE("tag keepers: the rendezvous ranking over the region, us left out") {
  std::vector<std::string> region = {"a", "b", "c", "d", "e"};
  for (int i = 0; i < 50; ++i) {
    peers::TagKey key{"fleet.example", "team/app", "v" + std::to_string(i)};
    util::Digest point = peers::TagPoint(key);
    auto ranking = peers::RendezvousRanking(point, region, region.size());
    const std::string& first = region[ranking[0]];
    const std::string& second = region[ranking[1]];
    const std::string& third = region[ranking[2]];
    // An outsider sees the top two; the top node itself sees the next two.
    CHECK(peers::TagKeepers(point, region, "zz", 2) == std::vector<std::string>{first, second});
    CHECK(peers::TagKeepers(point, region, first, 2) == std::vector<std::string>{second, third});
    // Every node agrees (self aside) whatever order it lists the region in.
    std::vector<std::string> reversed(region.rbegin(), region.rend());
    CHECK(peers::TagKeepers(point, reversed, "zz", 2) == std::vector<std::string>{first, second});
  }
  CHECK(peers::TagKeepers(peers::TagPoint({"r", "x", "t"}), {"self"}, "self", 2).empty());
  CHECK(peers::TagKeepers(peers::TagPoint({"r", "x", "t"}), {"self", "b"}, "self", 2) ==
        std::vector<std::string>{"b"});
  CHECK(peers::TagPoint({"r", "x", "t"}) != peers::TagPoint({"r", "x", "u"}));
}

TEST_CASE("known holders: right after the region owner, same region then nearest") {
  peers::RoutePlan plan;
  plan.role = peers::Hop::kClient;
  plan.steps = {{"owner", "http://owner", peers::Hop::kOwner, "eastus"},
                {"sib", "http://sib", peers::Hop::kPeer, "eastus"},
                {"far-holder", "http://far-holder", peers::Hop::kPeer, "japaneast"}};
  std::vector<peers::RouteCandidate> holders = {Member("far-holder", "japaneast", 150),
                                                Member("eu-holder", "westeurope", 40),
                                                Member("unmeasured", "westeurope", -1),
                                                Member("home-holder", "eastus", 3, /*live=*/false),
                                                Member("self", "eastus", 0),
                                                Member("eu-holder", "westeurope", 40)};
  peers::PreferHolders("self", "eastus", holders, &plan);
  CHECK(Names(plan.steps) == std::vector<std::string>{"owner", "home-holder", "eu-holder",
                                                      "far-holder", "unmeasured", "sib"});
  CHECK(plan.steps[1].hop == peers::Hop::kPeer);  // asked as a peer: answered from its cache
}

TEST_CASE("known holders: the owner among them goes first as a holder; peers' plans untouched") {
  peers::RoutePlan plan;
  plan.steps = {{"owner", "http://owner", peers::Hop::kOwner, "eastus"}};
  std::vector<peers::RouteCandidate> holders = {Member("x", "eastus", 5),
                                                Member("owner", "eastus", 1)};
  peers::PreferHolders("self", "eastus", holders, &plan);
  CHECK(Names(plan.steps) == std::vector<std::string>{"owner", "x"});
  CHECK(plan.steps[0].hop == peers::Hop::kPeer);

  std::vector<peers::RouteCandidate> skipped = {Member("q", "eastus", 1), Member("d", "eu", 1)};
  skipped[0].quarantined = true;
  skipped[1].routable = false;
  peers::RoutePlan none;
  peers::PreferHolders("self", "eastus", skipped, &none);
  CHECK(none.steps.empty());

  peers::RoutePlan peer;
  peer.role = peers::Hop::kPeer;
  peers::PreferHolders("self", "eastus", holders, &peer);
  CHECK(peer.steps.empty());
}
