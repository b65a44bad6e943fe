// The replications of the own registry (src/registry/replicator.h) across
// a fleet in one process (fleet_rig.h), a second at a time: a replication
// created in another region goes Creating, Succeeded and Syncing, then
// Ready once its node pre-fetched what the policy wants; a region whose
// nodes died is Unavailable; one that cannot hold the replica is Failed
// with the reason; a drained region's nodes are not fetched from; image
// status tells per region what its live nodes hold.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "tests/unit/src/registry/fleet_rig.h"
#include "tests/unit/src/registry/images.h"

using fleetrig::World;
using images::Image;
using nlohmann::json;
using util::DigestOf;

namespace {

const std::string kApi = "/_georeg/v1/registries/fleet.test/";

json Body(const std::shared_ptr<fakes::Client>& c) {
  return json::parse(c->body, nullptr, /*allow_exceptions=*/false);
}

// "<provisioningState>/<displayStatus>" of `region`'s replication as `node`
// sees it; "" when it has none.
std::string State(World& w, const std::string& node, const std::string& region) {
  auto c = w.Manage(node, "GET", kApi + "replications/" + region);
  if (c->status != 200) return "";
  json j = Body(c);
  return j.value("provisioningState", "?") + "/" + j["status"].value("displayStatus", "?");
}

std::string Message(World& w, const std::string& node, const std::string& region) {
  return Body(w.Manage(node, "GET", kApi + "replications/" + region))["status"].value("message",
                                                                                      "");
}

// An image pushed to `node` and tagged 1.0; then ticks until the
// registry's first replication, made where it was first pushed, is Ready.
void PushImage(World& w, const std::string& node, const Image& img) {
  w.PushBlobs(node, img);
  REQUIRE(w.PutManifest(node, img, "1.0")->status == 201);
  REQUIRE(w.TickUntil([&] { return State(w, node, w[node].region) == "Succeeded/Ready"; }));
}

Image Another(const std::string& repo, char seed) {
  Image img;
  img.repo = repo;
  img.layer = images::Blob(300000, seed);
  img.manifest = images::ImageManifest(img.config, img.layer);
  return img;
}

}  // namespace

TEST_CASE("replication: created in another region: Creating, Succeeded and Syncing, then Ready") {
  // Policy full: a replica holds every blob, so b has them to fetch (the
  // manifest came with the tag's gossip).
  World w({{"a", "eu"}, {"b", "us"}}, /*copies=*/1,
          [](const std::string&, config::Config* c) { c->registry.full_policy = true; });
  Image img;
  PushImage(w, "a", img);
  CHECK(Body(w.Manage("a", "GET", kApi + "replications")).size() == 1);

  CHECK(w.Manage("a", "PUT", kApi + "replications/mars")->status == 400);  // no node there
  auto created = w.Manage("a", "PUT", kApi + "replications/us");
  REQUIRE(created->status == 201);
  CHECK(Body(created)["provisioningState"] == "Creating");
  CHECK(w.Manage("a", "PUT", kApi + "replications/us")->status == 200);  // idempotent
  CHECK_FALSE(w["b"].Own(DigestOf(img.layer)));

  // Every status `a` shows for us's replication, in order, once each.
  std::vector<std::string> seen{"Creating/Syncing"};
  bool ready = w.TickUntil([&] {
    std::string s = State(w, "a", "us");
    if (s != seen.back()) seen.push_back(s);
    return s == "Succeeded/Ready";
  });
  CHECK(ready);
  CHECK(seen ==
        std::vector<std::string>{"Creating/Syncing", "Succeeded/Syncing", "Succeeded/Ready"});
  CHECK(w.HoldsImage("b", img));
  // Every node sees the same: b too.
  CHECK(State(w, "b", "us") == "Succeeded/Ready");

  // A second push: Syncing again until b has that layer too.
  Image two = Another("team/app", 't');
  w.PushBlobs("a", two);
  REQUIRE(w.PutManifest("a", two, "2.0")->status == 201);
  w.Gossip();
  CHECK(State(w, "a", "us") == "Succeeded/Syncing");
  CHECK(w.TickUntil([&] { return State(w, "a", "us") == "Succeeded/Ready"; }));
  CHECK(w.HoldsImage("b", two));
  CHECK(w.Close() == 0);
}

TEST_CASE("replication: a region whose nodes all died is Unavailable, Ready when one is back") {
  World w({{"a", "eu"}, {"b", "us"}}, /*copies=*/1);
  Image img;
  PushImage(w, "a", img);
  REQUIRE(w.Manage("a", "PUT", kApi + "replications/us")->status == 201);
  REQUIRE(w.TickUntil([&] { return State(w, "a", "us") == "Succeeded/Ready"; }));
  w["b"].live = false;
  w.Tick();
  CHECK(State(w, "a", "us") == "Succeeded/Unavailable");
  CHECK(Message(w, "a", "us").find("no node of region us is alive") != std::string::npos);
  CHECK(State(w, "a", "eu") == "Succeeded/Ready");
  w["b"].live = true;
  CHECK(w.TickUntil([&] { return State(w, "a", "us") == "Succeeded/Ready"; }));
  CHECK(w.Close() == 0);
}

TEST_CASE("replication: a region that cannot hold the replica is Failed, and says why") {
  // Policy full, and b's registry is smaller than the image's layer.
  World w({{"a", "eu"}, {"b", "us"}}, /*copies=*/1, [](const std::string& node, config::Config* c) {
    c->registry.full_policy = true;
    if (node == "b") c->registry.max_size = 100'000;
  });
  Image img;
  PushImage(w, "a", img);
  REQUIRE(w.Manage("a", "PUT", kApi + "replications/us")->status == 201);
  CHECK(w.TickUntil([&] { return State(w, "a", "us") == "Failed/Syncing"; }));
  CHECK(Message(w, "a", "us").find("max_size") != std::string::npos);
  CHECK_FALSE(w["b"].Own(DigestOf(img.layer)));
  CHECK(State(w, "a", "eu") == "Succeeded/Ready");
  CHECK(w.Close() == 0);
}

TEST_CASE("replication: routing disabled: no other region pre-fetches from the drained one") {
  // copies 2: the push is held in us (b) as well, and the tag names b as a
  // holder, so asia's node would ask b first.
  World w({{"a", "eu"}, {"b", "us"}, {"c", "asia"}}, /*copies=*/2);
  Image img;
  PushImage(w, "a", img);
  REQUIRE(w.HoldsImage("b", img));
  REQUIRE(w.Manage("a", "PUT", kApi + "replications/us")->status == 201);
  REQUIRE(w.TickUntil([&] { return State(w, "a", "us") == "Succeeded/Ready"; }));

  auto drained = w.Manage("a", "PATCH", kApi + "replications/us", R"({"routing":"disabled"})");
  REQUIRE(drained->status == 200);
  CHECK(Body(drained)["regionEndpointEnabled"] == false);
  CHECK(w.Manage("a", "PATCH", kApi + "replications/us", R"({"routing":"off"})")->status == 400);
  w.Tick();
  REQUIRE(w.Manage("a", "PUT", kApi + "replications/asia")->status == 201);
  CHECK(w.TickUntil([&] { return State(w, "a", "asia") == "Succeeded/Ready"; }));
  CHECK(w["c"].HasManifest(DigestOf(img.manifest)));
  const std::vector<std::string>& sent = w["c"].fleet->sent;
  CHECK_FALSE(sent.empty());
  for (const std::string& s : sent) CHECK(s.rfind("a ", 0) == 0);
  // The drained region still serves itself, and is still a replica.
  CHECK(State(w, "a", "us") == "Succeeded/Ready");
  CHECK(w.Close() == 0);
}

TEST_CASE("replication: the last replication cannot be deleted; a deleted one is gone everywhere") {
  World w({{"a", "eu"}, {"b", "us"}}, /*copies=*/1);
  Image img;
  PushImage(w, "a", img);
  CHECK(w.Manage("a", "DELETE", kApi + "replications/eu")->status == 409);
  REQUIRE(w.Manage("a", "PUT", kApi + "replications/us")->status == 201);
  REQUIRE(w.TickUntil([&] { return State(w, "b", "us") == "Succeeded/Ready"; }));
  CHECK(w.Manage("b", "DELETE", kApi + "replications/us")->status == 204);
  w.Tick();
  CHECK(w.Manage("a", "GET", kApi + "replications/us")->status == 404);
  CHECK(Body(w.Manage("a", "GET", kApi + "replications")).size() == 1);
  CHECK(w.Manage("a", "GET", "/_georeg/v1/registries/other/replications")->status == 404);
  CHECK(w.Close() == 0);
}

TEST_CASE("image status: per region, what its live nodes hold of an image") {
  World w({{"a", "eu"}, {"b", "us"}, {"c", "asia"}}, /*copies=*/2);
  Image img;
  PushImage(w, "a", img);
  REQUIRE(w.HoldsImage("b", img));

  auto regions = [&](const std::string& node, const Image& image, const std::string& tag) {
    auto c = w.Manage(node, "GET", kApi + "image-status?image=" + image.repo + ":" + tag);
    REQUIRE(c->status == 200);
    json j = Body(c);
    CHECK(j["digest"] == DigestOf(image.manifest).ToString());
    CHECK(j["policy"] == "manifests");
    std::map<std::string, json> out;
    for (const json& r : j["regions"]) out[r["region"]] = r;
    return out;
  };
  auto at_a = regions("a", img, "1.0");
  REQUIRE(at_a.size() == 3);
  CHECK(at_a["eu"]["replicated"] == true);
  CHECK(at_a["eu"]["present"] == true);
  CHECK(at_a["us"]["replicated"] == false);
  CHECK(at_a["us"]["blobs"]["present"] == 2);  // the durable copy
  CHECK(at_a["us"]["present"] == true);
  // c fetched the manifest when the tag's gossip came, not the blobs.
  CHECK(at_a["asia"]["manifests"]["present"] == 1);
  CHECK(at_a["asia"]["blobs"]["present"] == 0);
  CHECK(at_a["asia"]["live_nodes"] == 1);

  // A node that knows the tag but not its manifest (its pre-fetch did not
  // run) fetches the manifests first, then answers.
  w["c"].live = false;
  Image two = Another("team/two", 't');
  w.PushBlobs("a", two);
  REQUIRE(w.PutManifest("a", two, "1.0")->status == 201);
  w["c"].live = true;
  const peers::TagVersion* v = w["a"].fleet->FindTag({fleetrig::kReg, "team/two", "1.0"});
  REQUIRE(v);
  w["c"].fleet->table.Apply({{fleetrig::kReg, "team/two", "1.0"}, *v});
  CHECK_FALSE(w["c"].HasManifest(DigestOf(two.manifest)));
  auto at_c = regions("c", two, "1.0");
  CHECK(w["c"].HasManifest(DigestOf(two.manifest)));
  CHECK(at_c["asia"]["manifests"]["present"] == 1);
  CHECK(at_c["asia"]["blobs"]["present"] == 0);
  CHECK(at_c["eu"]["present"] == true);

  // A dead region's node is not asked: nothing is present there.
  w["b"].live = false;
  auto without_b = regions("a", img, "1.0");
  CHECK(without_b["us"]["live_nodes"] == 0);
  CHECK(without_b["us"]["present"] == false);

  CHECK(w.Manage("a", "GET", kApi + "image-status?image=team/app:9.9")->status == 404);
  CHECK(w.Manage("a", "GET", kApi + "image-status?image=team/app")->status == 400);
  CHECK(w.Manage("a", "PUT", kApi + "image-status?image=team/app:1.0")->status == 405);
  CHECK(w.Close() == 0);
}
