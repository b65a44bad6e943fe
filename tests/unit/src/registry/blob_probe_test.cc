// A HEAD of a blob this node lacks (src/registry/blob_probe.h): sources
// asked in turn until one has it.
#include "src/registry/blob_probe.h"

#include <catch2/catch.hpp>

#include "tests/unit/registry_fakes.h"
#include "tests/unit/src/registry/fill_rig.h"
#include "util/sha256.h"

using fillrig::Client;
using fillrig::DigestOf;
using fillrig::From;
using fillrig::Path;
using fillrig::Rig;
using fillrig::Source;
using fillrig::Stored;

TEST_CASE(
    "HEAD probe: sources are asked with HEAD until one has the blob; its size and digest answer "
    "every waiter") {
  Rig r;
  util::Digest d = DigestOf("probed");
  {
    auto s404 = std::make_shared<Source>(), s500 = std::make_shared<Source>(),
         other = std::make_shared<Source>(), ok = std::make_shared<Source>();
    bool done = false;
    auto probe =
        std::make_shared<registry::BlobProbe>(d, [&](registry::BlobProbe*) { done = true; });
    auto a = Client::Make(r.deferred.get(), Path(d), {}, "HEAD"),
         b = Client::Make(r.deferred.get(), Path(d), {}, "HEAD");
    probe->Join(a->ex);
    probe->Join(b->ex);
    probe->Start({From(s404, "peer a", "a"), From(s500, "peer b", "b"), From(other, "peer c", "c"),
                  From(ok, "upstream test")});
    CHECK(s404->method == "HEAD");
    s404->Head(404, 0);
    REQUIRE(s500->cb.on_head);
    s500->Head(500, 0);
    REQUIRE(other->cb.on_head);
    other->Head(200, 5, {{"docker-content-digest", DigestOf("else").ToString()}});
    REQUIRE(ok->cb.on_head);
    CHECK(ok->method == "HEAD");
    CHECK(a->status == 0);
    ok->Head(200, 123456, {{"docker-content-digest", d.ToString()}});
    ok->Done();
    REQUIRE(r.RunUntil([&] { return a->ended && b->ended; }));
    CHECK(done);
    for (auto& c : {a, b}) {
      CHECK(c->status == 200);
      CHECK(c->length == 123456);
      CHECK(c->body.empty());
      REQUIRE(c->Header("docker-content-digest"));
      CHECK(*c->Header("docker-content-digest") == d.ToString());
    }
    CHECK_FALSE(Stored(r, d));
  }
  {
    auto s1 = std::make_shared<Source>(), s2 = std::make_shared<Source>();
    auto probe = std::make_shared<registry::BlobProbe>(d, [](registry::BlobProbe*) {});
    auto c = Client::Make(r.deferred.get(), Path(d), {}, "HEAD");
    probe->Join(c->ex);
    probe->Start({From(s1, "peer a", "a"), From(s2, "upstream test")});
    s1->Head(404, 0);
    s2->Head(404, 0);
    REQUIRE(r.RunUntil([&] { return c->ended; }));
    CHECK(c->status == 404);  // every source said so: the blob is unknown
  }
  {
    // Issue 22: a peer that is dead (refused) or shutting down (503) does
    // not hold the blob for us: with no upstream failing, 404, never 503.
    auto dead = std::make_shared<Source>(), closing = std::make_shared<Source>();
    auto probe = std::make_shared<registry::BlobProbe>(d, [](registry::BlobProbe*) {});
    auto c = Client::Make(r.deferred.get(), Path(d), {}, "HEAD");
    probe->Join(c->ex);
    probe->Start({From(dead, "peer a", "a"), From(closing, "peer b", "b")});
    dead->Done(util::Status::Unavailable("connection refused"));
    REQUIRE(closing->cb.on_head);
    closing->Head(503, 0);
    REQUIRE(r.RunUntil([&] { return c->ended; }));
    CHECK(c->status == 404);
  }
  {
    auto peer = std::make_shared<Source>(), up = std::make_shared<Source>();
    auto probe = std::make_shared<registry::BlobProbe>(d, [](registry::BlobProbe*) {});
    auto c = Client::Make(r.deferred.get(), Path(d), {}, "HEAD");
    probe->Join(c->ex);
    probe->Start({From(peer, "peer a", "a"), From(up, "upstream test")});
    peer->Head(404, 0);
    REQUIRE(up->cb.on_complete);
    up->Done(util::Status::Unavailable("connection refused"));
    REQUIRE(r.RunUntil([&] { return c->ended; }));
    CHECK(c->status == 503);  // the upstream failed: retry
  }
  CHECK(r.Close() == 0);
}
