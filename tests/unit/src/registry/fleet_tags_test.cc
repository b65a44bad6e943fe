// The own registry's tags across a fleet in one process (fleet_rig.h): a
// tag pushed in two regions at once converges on one winner everywhere,
// a node's fleet state comes back after a restart, and a DELETE by digest
// stays deleted on every node until the content is pushed again.
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

TEST_CASE(
    "fleet-wide deletes: a deleted blob or manifest is 404 on every node, its copies "
    "dropped, until a push brings it back") {
  // Issue 22: a blob DELETE answered 202 and the next GET at the same node
  // answered 200, from a node holding a durable copy.
  World w({{"n1", "eu"}, {"n2", "eu"}, {"n3", "us"}}, /*copies=*/2,
          [](const std::string&, config::Config* c) { c->registry.blob_delete = true; });
  images::Image img;
  w.PushBlobs("n1", img);
  REQUIRE(w.PutManifest("n1", img, "1.0")->status == 201);
  REQUIRE(w.HoldsImage("n3", img));  // the durable copy
  REQUIRE(w.Settle());
  std::string layer = "/v2/team/app/blobs/" + DigestOf(img.layer).ToString();
  std::string by_digest = "/v2/team/app/manifests/" + DigestOf(img.manifest).ToString();
  auto status = [&](const std::string& node, const std::string& method, const std::string& t) {
    return w.Send(node, method, t, std::nullopt, {})->status;
  };

  CHECK(w.Send("n1", "DELETE", layer)->status == 202);
  CHECK(status("n1", "GET", layer) == 404);  // not from n3's copy
  CHECK(status("n1", "HEAD", layer) == 404);
  // A DELETE at a node that holds no copy deletes what the fleet holds.
  std::string config = "/v2/team/app/blobs/" + DigestOf(img.config).ToString();
  REQUIRE_FALSE(w["n2"].keeper->Has(DigestOf(img.config)));
  CHECK(w.Send("n2", "DELETE", config)->status == 202);
  CHECK(w.Send("n2", "DELETE", config)->status == 404);  // deleted already
  CHECK(
      w.Send("n2", "DELETE", "/v2/team/app/blobs/" + DigestOf("never pushed").ToString())->status ==
      404);
  w.Gossip();
  REQUIRE(w.Settle());
  for (const char* n : {"n1", "n2", "n3"}) {
    CHECK(status(n, "GET", layer) == 404);
    CHECK(status(n, "GET", config) == 404);
    CHECK_FALSE(w[n].keeper->Has(DigestOf(img.layer)));
    CHECK_FALSE(w[n].keeper->Has(DigestOf(img.config)));
  }

  CHECK(w.Send("n2", "DELETE", by_digest)->status == 202);
  CHECK(status("n2", "GET", by_digest) == 404);
  w.Gossip();
  REQUIRE(w.Settle());
  for (const char* n : {"n1", "n2", "n3"}) {
    CHECK(status(n, "GET", by_digest) == 404);
    CHECK(status(n, "GET", "/v2/team/app/manifests/1.0") == 404);  // its tag went too
    CHECK_FALSE(w[n].HasManifest(DigestOf(img.manifest)));
  }

  // Pushed again (at another node): back everywhere.
  w.PushBlobs("n3", img);
  REQUIRE(w.PutManifest("n3", img, "1.0")->status == 201);
  w.Gossip();
  REQUIRE(w.Settle());
  for (const char* n : {"n1", "n2", "n3"}) {
    CHECK(status(n, "GET", layer) == 200);
    CHECK(status(n, "GET", config) == 200);
    CHECK(status(n, "GET", by_digest) == 200);
    CHECK(status(n, "GET", "/v2/team/app/manifests/1.0") == 200);
  }
  CHECK(w.Close() == 0);
}
