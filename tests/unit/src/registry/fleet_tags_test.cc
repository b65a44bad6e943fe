// The own registry's tags across a fleet in one process (fleet_rig.h): a
// tag pushed in two regions at once converges on one winner everywhere,
// and a node's fleet state comes back after a restart.
#include <catch2/catch.hpp>

#include <string>

#include "tests/unit/src/registry/fleet_rig.h"
#include "tests/unit/src/registry/images.h"

using fleetrig::kCreds;
using fleetrig::World;
using images::Blob;
using images::ImageManifest;
using util::DigestOf;

namespace {

std::string PushImage(World& w, const std::string& node, char seed) {
  std::string config = std::string("{\"seed\":\"") + seed + "\"}", layer = Blob(100000, seed);
  for (const std::string* b : {&config, &layer})
    REQUIRE(
        w.Send(node, "POST", "/v2/team/app/blobs/uploads/?digest=" + DigestOf(*b).ToString(), *b)
            ->status == 201);
  return ImageManifest(config, layer);
}

std::string DigestAt(World& w, const std::string& node, const std::string& tag) {
  auto c = w.Send(node, "GET", "/v2/team/app/manifests/" + tag, std::nullopt, {});
  const std::string* d = c->Header("docker-content-digest");
  return c->status == 200 && d ? *d : "status " + std::to_string(c->status);
}

}  // namespace

TEST_CASE("fleet tags: one tag pushed in two regions at once converges on one winner") {
  World w({{"n1", "eu"}, {"n2", "eu"}, {"n3", "us"}}, /*copies=*/1);
  std::string a = PushImage(w, "n1", 'a'), b = PushImage(w, "n3", 'b');
  auto pa = w.Start("n1", "PUT", "/v2/team/app/manifests/race", a,
                    {kCreds[0], {"content-type", images::kManifestType}});
  auto pb = w.Start("n3", "PUT", "/v2/team/app/manifests/race", b,
                    {kCreds[0], {"content-type", images::kManifestType}});
  REQUIRE(w.RunUntil([&] { return pa->done() && pb->done(); }));
  CHECK(pa->status == 201);
  CHECK(pb->status == 201);
  REQUIRE(w.Settle());
  std::string winner = DigestAt(w, "n1", "race");
  CHECK((winner == DigestOf(a).ToString() || winner == DigestOf(b).ToString()));
  for (const char* n : {"n1", "n2", "n3"}) {
    CHECK(DigestAt(w, n, "race") == winner);
    const peers::TagVersion* v = w[n].fleet->FindTag({fleetrig::kReg, "team/app", "race"});
    REQUIRE(v);
    CHECK(v->digest.ToString() == winner);
  }
  CHECK(w.Close() == 0);
}

TEST_CASE("fleet tags: a restart puts the kept versions back into the fleet's table") {
  World w({{"n1", "eu"}, {"n2", "us"}}, /*copies=*/1);
  std::string m = PushImage(w, "n1", 'r');
  REQUIRE(w.Send("n1", "PUT", "/v2/team/app/manifests/1.0", m,
                 {kCreds[0], {"content-type", images::kManifestType}})
              ->status == 201);
  REQUIRE(w.Settle());
  // The node restarts: its table is empty until the fleet state is restored.
  fleetrig::Node& n2 = w["n2"];
  n2.fleet->table = peers::TagTable();
  CHECK(n2.fleet->FindTag({fleetrig::kReg, "team/app", "1.0"}) == nullptr);
  REQUIRE(n2.tags->Restore().ok());
  const peers::TagVersion* v = n2.fleet->FindTag({fleetrig::kReg, "team/app", "1.0"});
  REQUIRE(v);
  CHECK(v->digest == DigestOf(m));
  CHECK(v->origin == "n1");
  CHECK(DigestAt(w, "n2", "1.0") == DigestOf(m).ToString());
  CHECK(w.Close() == 0);
}
