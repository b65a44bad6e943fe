// Durable copies of the own registry's pushes (src/registry/holdings.h)
// across a fleet in one process (fleet_rig.h): a manifest PUT is answered
// 201 only once `copies` nodes hold every blob; a holder that breaks off
// is replaced by the next candidate; too few live members: 503.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <string>

#include "tests/unit/src/registry/fleet_rig.h"
#include "tests/unit/src/registry/images.h"

using fleetrig::World;
using images::Image;
using util::DigestOf;

TEST_CASE("durable copies: 201 only once another region's node holds every blob") {
  World w({{"n1", "eu"}, {"n2", "eu"}, {"n3", "us"}}, /*copies=*/2);
  Image img;
  w.PushBlobs("n1", img);
  CHECK_FALSE(w.HoldsImage("n3", img));
  auto put = w.PutManifest("n1", img, "1.0");
  CHECK(put->status == 201);
  // At the 201, before anything else runs: n3 (another region first) holds it all.
  CHECK(w["n1"].fleet->holds_asked == std::vector<std::string>{"n3"});
  CHECK(w.HoldsImage("n3", img));
  CHECK_FALSE(w.HoldsImage("n2", img));
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
  w.PushBlobs("n1", img);
  w["n3"].fail_holds = true;
  auto put = w.PutManifest("n1", img, "1.0");
  CHECK(put->status == 201);
  CHECK(w["n1"].fleet->holds_asked == std::vector<std::string>{"n3", "n2"});
  CHECK(w.HoldsImage("n2", img));
  REQUIRE(w.Settle());
  CHECK(w.Close() == 0);
}

TEST_CASE("durable copies: too few live members answers 503, and the tag is not recorded") {
  World w({{"n1", "eu"}, {"n2", "eu"}, {"n3", "us"}}, /*copies=*/3);
  Image img;
  w.PushBlobs("n1", img);
  w["n3"].live = false;
  auto put = w.PutManifest("n1", img, "1.0");
  CHECK(put->status == 503);
  CHECK(put->body.find("UNAVAILABLE") != std::string::npos);
  CHECK(w.HoldsImage("n2", img));  // the one that could, holds it
  CHECK(w["n1"].fleet->FindTag({fleetrig::kReg, "team/app", "1.0"}) == nullptr);
  REQUIRE(w.Settle());
  CHECK(w.Close() == 0);
}

TEST_CASE("holding an image: done only once the manifests it fetched are on disk") {
  // Seen as an image status at a node that fetched the manifest first and
  // then did not find it in its store: the write was still queued.
  World w({{"n1", "eu"}, {"n2", "us"}}, /*copies=*/1);
  Image img;
  w.PushBlobs("n1", img);
  w["n2"].live = false;  // not told of the tag (it would fetch the manifest then)
  REQUIRE(w.PutManifest("n1", img, "1.0")->status == 201);
  w["n2"].live = true;
  // n2's writer is busy until the gate opens.
  std::atomic<bool> gate{false};
  w["n2"].bridge->Run(
      [&gate] {
        while (!gate) ::usleep(1000);
        return util::Status::Ok();
      },
      [](util::Status) {});
  bool done = false;
  util::Status got = util::Status::Internal("not called");
  w["n2"].holdings->Sync(
      img.repo, DigestOf(img.manifest), {"n1"}, [](const util::Digest&) { return false; },
      [&](util::Status st) {
        done = true;
        got = st;
      });
  CHECK_FALSE(w.RunUntil([&] { return done; }, 200));  // fetched, not yet written
  CHECK(w["n1"].fleet->sent.empty());
  CHECK(w["n2"].fleet->failures.empty());
  CHECK(w["n2"].fleet->sent.size() == 1);
  gate = true;
  REQUIRE(w.RunUntil([&] { return done; }));
  CHECK(got.ok());
  CHECK(w["n2"].HasManifest(DigestOf(img.manifest)));
  REQUIRE(w.Settle());
  CHECK(w.Close() == 0);
}
