// Durable copies of the own registry's pushes (src/registry/holdings.h)
// across a fleet in one process (fleet_rig.h): a manifest PUT is answered
// 201 only once `copies` nodes hold every blob; a holder that breaks off
// is replaced by the next candidate; too few live members: 503.
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

struct Image {
  std::string config = "{\"architecture\":\"amd64\"}", layer = Blob(600000, 'h');
  std::string manifest = ImageManifest(config, layer);
};

void PushBlobs(World& w, const std::string& node, const Image& img) {
  for (const std::string* b : {&img.config, &img.layer})
    REQUIRE(
        w.Send(node, "POST", "/v2/team/app/blobs/uploads/?digest=" + DigestOf(*b).ToString(), *b)
            ->status == 201);
}

std::shared_ptr<fakes::Client> PutManifest(World& w, const std::string& node,
                                           const std::string& tag, const std::string& body) {
  return w.Send(node, "PUT", "/v2/team/app/manifests/" + tag, body,
                {kCreds[0], {"content-type", images::kManifestType}});
}

bool HoldsImage(World& w, const std::string& node, const Image& img) {
  fleetrig::Node& n = w[node];
  return n.Own(DigestOf(img.config)) && n.Own(DigestOf(img.layer)) &&
         n.HasManifest(DigestOf(img.manifest));
}

}  // namespace

TEST_CASE("durable copies: 201 only once another region's node holds every blob") {
  World w({{"n1", "eu"}, {"n2", "eu"}, {"n3", "us"}}, /*copies=*/2);
  Image img;
  PushBlobs(w, "n1", img);
  CHECK_FALSE(HoldsImage(w, "n3", img));
  auto put = PutManifest(w, "n1", "1.0", img.manifest);
  CHECK(put->status == 201);
  // At the 201, before anything else runs: n3 (another region first) holds it all.
  CHECK(w["n1"].fleet->holds_asked == std::vector<std::string>{"n3"});
  CHECK(HoldsImage(w, "n3", img));
  CHECK_FALSE(HoldsImage(w, "n2", img));
  // The tag names its holders: a pull at n2 finds it.
  REQUIRE(w.Settle());
  auto pull = w.Send("n2", "GET", "/v2/team/app/manifests/1.0", std::nullopt, {});
  CHECK(pull->status == 200);
  CHECK(pull->body == img.manifest);
  auto layer =
      w.Send("n2", "GET", "/v2/team/app/blobs/" + DigestOf(img.layer).ToString(), std::nullopt, {});
  CHECK(layer->status == 200);
  CHECK(layer->body == img.layer);
  CHECK(w.Close() == 0);
}

TEST_CASE("durable copies: a holder breaking off mid-hold is replaced by the next candidate") {
  World w({{"n1", "eu"}, {"n2", "eu"}, {"n3", "us"}}, /*copies=*/2);
  Image img;
  PushBlobs(w, "n1", img);
  w["n3"].fail_holds = true;
  auto put = PutManifest(w, "n1", "1.0", img.manifest);
  CHECK(put->status == 201);
  CHECK(w["n1"].fleet->holds_asked == std::vector<std::string>{"n3", "n2"});
  CHECK(HoldsImage(w, "n2", img));
  REQUIRE(w.Settle());
  CHECK(w.Close() == 0);
}

TEST_CASE("durable copies: too few live members answers 503, and the tag is not recorded") {
  World w({{"n1", "eu"}, {"n2", "eu"}, {"n3", "us"}}, /*copies=*/3);
  Image img;
  PushBlobs(w, "n1", img);
  w["n3"].live = false;
  auto put = PutManifest(w, "n1", "1.0", img.manifest);
  CHECK(put->status == 503);
  CHECK(put->body.find("UNAVAILABLE") != std::string::npos);
  CHECK(HoldsImage(w, "n2", img));  // the one that could, holds it
  CHECK(w["n1"].fleet->FindTag({fleetrig::kReg, "team/app", "1.0"}) == nullptr);
  REQUIRE(w.Settle());
  CHECK(w.Close() == 0);
}
