// Where a miss goes (peers/routing.h): region and fleet scope.
#include "peers/routing.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "peers/rendezvous.h"
#include "util/sha256.h"

using util::DigestOf;

namespace {

std::vector<peers::RouteCandidate> RoutingMembers() {
  return {
      {"eu-2", "eu", "http://eu-2", true, 2, false, false},
      {"us-1", "us", "http://us-1", true, 80, true, false},
      {"us-2", "us", "http://us-2", true, 75, false, false},
      {"ap-1", "ap", "http://ap-1", true, 150, true, false},
      {"ap-2", "ap", "http://ap-2", true, -1, true, false},
      {"sa-1", "sa", "http://sa-1", false, 20, true, false},  // dead
      {"af-1", "af", "http://af-1", true, 10, true, true},    // quarantined
  };
}

std::string StepNames(const peers::RoutePlan& plan) {
  std::string s;
  for (const auto& st : plan.steps)
    s += st.name +
         (st.hop == peers::Hop::kPeer ? "" : std::string("(") + peers::HopName(st.hop) + ")") + " ";
  return s;
}

// A digest whose region owner (over eu-1 and eu-2) and first two fleet
// owners (over the live members and eu-1) are the ones asked for ("": any).
util::Digest DigestOwnedBy(const std::string& region_owner, const std::string& f1,
                           const std::string& f2 = "") {
  std::vector<std::string> fleet = {"eu-1", "eu-2", "us-1", "us-2", "ap-1", "ap-2", "af-1"};
  for (int i = 0; i < 100000; ++i) {
    util::Digest d = DigestOf("d" + std::to_string(i));
    if (peers::RendezvousOwner(d, {"eu-1", "eu-2"}) != (region_owner == "eu-1" ? 0 : 1)) continue;
    std::vector<int> top = peers::RendezvousRanking(d, fleet, 2);
    if ((f1.empty() || fleet[top[0]] == f1) && (f2.empty() || fleet[top[1]] == f2)) return d;
  }
  FAIL("no such digest");
  return {};
}

}  // namespace

TEST_CASE("routing, region scope: region owner first, then siblings, then other regions by RTT") {
  using peers::Hop;
  using peers::Scope;
  auto members = RoutingMembers();
  util::Digest theirs = DigestOwnedBy("eu-2", ""), ours = DigestOwnedBy("eu-1", "");
  auto plan = peers::PlanRoute("eu-1", "eu", members, theirs, Hop::kClient, 3, Scope::kRegion);
  CHECK(StepNames(plan) == "eu-2(owner) us-1 ap-1 ap-2 ");
  CHECK(plan.role == Hop::kClient);
  CHECK(plan.upstream);
  plan = peers::PlanRoute("eu-1", "eu", members, ours, Hop::kClient, 3, Scope::kRegion);
  CHECK(StepNames(plan) == "us-1 ap-1 ap-2 ");
  CHECK(plan.role == Hop::kOwner);  // we own it in our region
  CHECK(StepNames(peers::PlanRoute("eu-1", "eu", members, ours, Hop::kClient, 1, Scope::kRegion)) ==
        "us-1 ");
  // As the owner, we never forward to an owner again.
  CHECK(StepNames(peers::PlanRoute("eu-1", "eu", members, theirs, Hop::kOwner, 3,
                                   Scope::kRegion)) == "us-1 ap-1 ap-2 ");
  plan = peers::PlanRoute("eu-1", "eu", members, theirs, Hop::kPeer, 3, Scope::kRegion);
  CHECK(plan.steps.empty());
  CHECK_FALSE(plan.upstream);
  // A sibling that has it comes before other regions.
  members[0].may_have = true;
  CHECK(StepNames(peers::PlanRoute("eu-1", "eu", members, ours, Hop::kClient, 3, Scope::kRegion)) ==
        "eu-2 us-1 ap-1 ap-2 ");
}

TEST_CASE(
    "routing, fleet scope: the fleet owner and its runner-up before other regions and the "
    "upstream") {
  using peers::Hop;
  using peers::Scope;
  auto members = RoutingMembers();
  // A client request: the region owner, then (if it fails) the fleet owners.
  util::Digest d = DigestOwnedBy("eu-2", "us-2", "ap-1");
  auto plan = peers::PlanRoute("eu-1", "eu", members, d, Hop::kClient, 3, Scope::kFleet);
  CHECK(StepNames(plan) == "eu-2(owner) us-2(fleet) ap-1(fleet) us-1 ap-2 ");
  CHECK(plan.role == Hop::kClient);
  // Asked as the region owner: straight to the fleet owners.
  plan = peers::PlanRoute("eu-1", "eu", members, d, Hop::kOwner, 3, Scope::kFleet);
  CHECK(StepNames(plan) == "us-2(fleet) ap-1(fleet) us-1 ap-2 ");
  CHECK(plan.role == Hop::kOwner);
  // A remote member that may have it and is nearer than the fleet owner goes first.
  d = DigestOwnedBy("eu-2", "ap-1", "us-2");
  CHECK(StepNames(peers::PlanRoute("eu-1", "eu", members, d, Hop::kOwner, 3, Scope::kFleet)) ==
        "us-1 ap-1(fleet) us-2(fleet) ap-2 ");
  // We are the fleet owner: no owner is asked, whatever the hop; the
  // upstream comes after the holders by summary.
  d = DigestOwnedBy("eu-1", "eu-1");
  for (Hop hop : {Hop::kClient, Hop::kOwner, Hop::kFleet}) {
    plan = peers::PlanRoute("eu-1", "eu", members, d, hop, 3, Scope::kFleet);
    CHECK(StepNames(plan) == "us-1 ap-1 ap-2 ");
    CHECK(plan.role == Hop::kFleet);
    CHECK(plan.upstream);
  }
  // The region owner is also the fleet owner: asked once, as the region owner
  // (it promotes itself).
  d = DigestOwnedBy("eu-2", "eu-2", "us-1");
  CHECK(StepNames(peers::PlanRoute("eu-1", "eu", members, d, Hop::kClient, 3, Scope::kFleet)) ==
        "eu-2(owner) us-1(fleet) ap-1 ap-2 ");
  // A quarantined fleet owner is skipped; its runner-up is still asked.
  d = DigestOwnedBy("eu-2", "af-1", "us-2");
  CHECK(StepNames(peers::PlanRoute("eu-1", "eu", members, d, Hop::kOwner, 3, Scope::kFleet)) ==
        "us-2(fleet) us-1 ap-1 ap-2 ");
  // Hops parse back.
  for (Hop h : {Hop::kClient, Hop::kOwner, Hop::kFleet, Hop::kPeer}) {
    Hop back = Hop::kClient;
    CHECK(peers::ParseHop(peers::HopName(h), &back));
    CHECK(back == h);
  }
  Hop unused;
  CHECK_FALSE(peers::ParseHop("leader", &unused));
}

TEST_CASE("routing: a drained region (routing disabled) is in no plan, in either scope") {
  using peers::Hop;
  using peers::Scope;
  auto members = RoutingMembers();
  for (auto& m : members)
    if (m.region == "us") m.routable = false;
  for (int i = 0; i < 200; ++i) {
    util::Digest d = DigestOf("drained" + std::to_string(i));
    for (Scope scope : {Scope::kRegion, Scope::kFleet})
      for (Hop hop : {Hop::kClient, Hop::kOwner, Hop::kFleet}) {
        std::string names = StepNames(peers::PlanRoute("eu-1", "eu", members, d, hop, 8, scope));
        INFO(names);
        CHECK(names.find("us-") == std::string::npos);
      }
  }
  // Before the drain, the same plans ask us-1 (the control).
  std::string before = StepNames(peers::PlanRoute(
      "eu-1", "eu", RoutingMembers(), DigestOwnedBy("eu-2", ""), Hop::kClient, 8, Scope::kRegion));
  CHECK(before.find("us-1") != std::string::npos);
}
