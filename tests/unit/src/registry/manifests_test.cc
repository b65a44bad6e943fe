// Manifests of mirrored upstreams (src/registry/manifests.h) against a
// fake upstream: one GET for concurrent clients, revalidation, stale
// serving within bounds, wrong bytes refused, cancellation, an index's
// children.
#include "src/registry/manifests.h"

#include <catch2/catch.hpp>

#include "src/oci/media_types.h"
#include "src/oci/router.h"

#include "tests/unit/registry_fakes.h"
#include "tests/unit/src/registry/fill_rig.h"
#include "util/sha256.h"

using fillrig::Client;
using fillrig::DigestOf;
using fillrig::kMiB;
using fillrig::Rig;
using fillrig::Source;

namespace {

const char* kOciManifest = "application/vnd.oci.image.manifest.v1+json";

std::string ManifestBody(const std::string& salt) {
  return std::string("{\"schemaVersion\":2,\"mediaType\":\"") + kOciManifest +
         "\",\"config\":{\"digest\":\"sha256:" + std::string(64, 'a') +
         "\",\"size\":1},\"layers\":[],\"annotations\":{\"salt\":\"" + salt + "\"}}";
}

struct Resolver {
  Rig& r;
  fakes::Requester upstream_;
  registry::Upstream up;
  registry::ManifestResolver m;
  explicit Resolver(Rig& rig, uint64_t max_bytes = 4 * kMiB)
      : r(rig), m(rig.env(), rig.store.get(), rig.bridge.get(), max_bytes) {
    up.config.registry = "r.test";
    up.config.tag_ttl_ms = 60'000;
    up.config.max_stale_ms = 3'600'000;
    up.config.response_timeout_ms = 100;
    up.requester = &upstream_;
  }
  std::shared_ptr<Client> Get(const std::string& reference, const char* method = "GET") {
    auto c = Client::Make(r.deferred.get(), "/v2/app/manifests/" + reference,
                          {{"accept", kOciManifest}}, method);
    oci::Route route = oci::RouteRequest(method, c->ex->request().target);
    REQUIRE(route.kind == oci::RouteKind::kManifest);
    m.Handle(&up, "app", route, c->ex);
    return c;
  }
  std::vector<std::shared_ptr<Source>>& calls() { return upstream_.calls; }
};

std::vector<http::Header> ManifestHeaders(const std::string& body) {
  return {{"content-type", kOciManifest}, {"docker-content-digest", DigestOf(body).ToString()}};
}

}  // namespace

TEST_CASE(
    "manifests: one upstream GET for concurrent clients, verified and stored with its tag; fresh "
    "tags from the cache") {
  Rig r;
  Resolver res(r);
  std::string body = ManifestBody("v1");
  auto a = res.Get("latest"), b = res.Get("latest");
  REQUIRE(res.calls().size() == 1);
  CHECK(res.calls()[0]->method == "GET");
  CHECK(res.calls()[0]->path == "/v2/app/manifests/latest");
  res.calls()[0]->Answer(200, body, ManifestHeaders(body));
  REQUIRE(r.RunUntil([&] { return a->ended && b->ended; }));
  for (auto& c : {a, b}) {
    CHECK(c->status == 200);
    CHECK(c->body == body);
    REQUIRE(c->Header("docker-content-digest"));
    CHECK(*c->Header("docker-content-digest") == DigestOf(body).ToString());
  }
  // Within tag_ttl: from the cache, no upstream request.
  r.clock.Advance(30'000);
  auto c = res.Get("latest");
  CHECK(c->ended);
  CHECK(c->body == body);
  CHECK(res.calls().size() == 1);
  // By digest: always from the cache.
  auto byd = res.Get(DigestOf(body).ToString());
  CHECK(byd->ended);
  CHECK(res.calls().size() == 1);
  res.m.Shutdown();
  CHECK(r.Close() == 0);
}

TEST_CASE(
    "manifests: an old tag is revalidated with HEAD; unchanged costs no GET; moved fetches the new "
    "one by digest") {
  Rig r;
  Resolver res(r);
  std::string v1 = ManifestBody("v1"), v2 = ManifestBody("v2");
  auto first = res.Get("latest");
  res.calls()[0]->Answer(200, v1, ManifestHeaders(v1));
  REQUIRE(r.RunUntil([&] { return first->ended; }));
  r.clock.Advance(61'000);
  auto same = res.Get("latest");
  REQUIRE(res.calls().size() == 2);
  CHECK(res.calls()[1]->method == "HEAD");
  res.calls()[1]->Answer(200, "", ManifestHeaders(v1));
  REQUIRE(r.RunUntil([&] { return same->ended; }));
  CHECK(same->body == v1);
  CHECK(res.calls().size() == 2);
  r.clock.Advance(61'000);
  auto moved = res.Get("latest");
  REQUIRE(res.calls().size() == 3);
  CHECK(res.calls()[2]->method == "HEAD");
  res.calls()[2]->Answer(200, "", ManifestHeaders(v2));
  REQUIRE(res.calls().size() == 4);
  CHECK(res.calls()[3]->method == "GET");
  CHECK(res.calls()[3]->path == "/v2/app/manifests/" + DigestOf(v2).ToString());
  res.calls()[3]->Answer(200, v2, ManifestHeaders(v2));
  REQUIRE(r.RunUntil([&] { return moved->ended; }));
  CHECK(moved->body == v2);
  res.m.Shutdown();
  CHECK(r.Close() == 0);
}

TEST_CASE(
    "manifests: a cached tag is served stale when the upstream is down or slow, never past "
    "max_stale") {
  Rig r;
  Resolver res(r);
  std::string v1 = ManifestBody("v1");
  auto first = res.Get("latest");
  res.calls()[0]->Answer(200, v1, ManifestHeaders(v1));
  REQUIRE(r.RunUntil([&] { return first->ended; }));
  // Down: 503 to the HEAD.
  r.clock.Advance(120'000);
  auto down = res.Get("latest");
  res.calls().back()->Answer(503, "");
  REQUIRE(r.RunUntil([&] { return down->ended; }));
  CHECK(down->status == 200);
  CHECK(down->body == v1);
  REQUIRE(down->Header("x-georeg-stale"));
  CHECK(*down->Header("x-georeg-stale") == "age=120s");
  // Slow: no answer within response_timeout (100 ms; a loop timer): served
  // stale, and the request is cancelled.
  auto slow = res.Get("latest");
  auto slow_call = res.calls().back();
  REQUIRE(r.RunUntil([&] { return slow->ended; }));
  CHECK(slow->status == 200);
  CHECK(slow->Header("x-georeg-stale"));
  CHECK(slow_call->cancelled);
  // Past max_stale: 503, never the stale bytes.
  r.clock.Advance(3'600'000);
  auto old = res.Get("latest");
  res.calls().back()->Answer(503, "");
  REQUIRE(r.RunUntil([&] { return old->ended; }));
  CHECK(old->status == 503);
  CHECK(old->body.find("UNAVAILABLE") != std::string::npos);
  // A tag never seen, upstream down: a fast 503 (never 429).
  auto never = res.Get("other");
  res.calls().back()->Answer(429, "");
  REQUIRE(r.RunUntil([&] { return never->ended; }));
  CHECK(never->status == 503);
  res.m.Shutdown();
  CHECK(r.Close() == 0);
}

TEST_CASE(
    "manifests: wrong bytes, a lying digest header and oversized manifests are refused and not "
    "stored") {
  Rig r;
  Resolver res(r, 1024);
  std::string v1 = ManifestBody("v1");
  // By digest, other bytes: refused.
  auto byd = res.Get(DigestOf(v1).ToString());
  res.calls().back()->Answer(200, ManifestBody("evil"), {{"content-type", kOciManifest}});
  REQUIRE(r.RunUntil([&] { return byd->ended; }));
  CHECK(byd->status == 502);
  // By tag, a Docker-Content-Digest that is not the bytes': refused.
  auto lying = res.Get("latest");
  res.calls().back()->Answer(
      200, v1,
      {{"content-type", kOciManifest}, {"docker-content-digest", DigestOf("x").ToString()}});
  REQUIRE(r.RunUntil([&] { return lying->ended; }));
  CHECK(lying->status == 502);
  // Announced larger than max_manifest_bytes: refused at the head.
  auto big = res.Get("big");
  auto call = res.calls().back();
  call->Head(200, 2ull << 30, {{"content-type", kOciManifest}});
  call->Done(util::Status::InvalidArgument("body larger than the bound"));  // as the client ends it
  REQUIRE(r.RunUntil([&] { return big->ended; }));
  CHECK(big->status == 502);
  CHECK(big->body.find("larger than 1024") != std::string::npos);
  CHECK(res.m.stats().bad_from_upstream ==
        2);  // the wrong bytes and the lying header; size is not a hash
  CHECK(res.m.stats().bad_from_peer == 0);
  r.Settle();
  auto txn = r.store->BeginRead();
  cache::Manifest m;
  CHECK(r.store->GetManifest(*txn, DigestOf(v1), &m).IsNotFound());
  *txn = cache::ReadTxn();
  res.m.Shutdown();
  CHECK(r.Close() == 0);
}

TEST_CASE("manifests: when every waiting client has left, the upstream request is cancelled") {
  Rig r;
  Resolver res(r);
  auto a = res.Get("latest"), b = res.Get("latest");
  auto call = res.calls().back();
  a->Leave();
  r.Settle();
  CHECK_FALSE(call->cancelled);  // b still waits
  b->Leave();
  REQUIRE(r.RunUntil([&] { return call->cancelled; }));
  // The next client starts a new conversation.
  auto c = res.Get("latest");
  CHECK(res.calls().size() == 2);
  std::string v1 = ManifestBody("v1");
  res.calls().back()->Answer(200, v1, ManifestHeaders(v1));
  REQUIRE(r.RunUntil([&] { return c->ended; }));
  CHECK(c->body == v1);
  res.m.Shutdown();
  CHECK(r.Close() == 0);
}

// ---- scrubbing ----

TEST_CASE("manifests: an index's children, bounded; nothing from other manifests or bad bodies") {
  std::string a = DigestOf("a").ToString(), b = DigestOf("b").ToString();
  std::string index = R"({"schemaVersion":2,"manifests":[{"digest":")" + a +
                      R"("},{"digest":"nope"},{"size":3},)" + R"({"digest":")" + b + R"("}]})";
  auto kids = oci::IndexChildren("application/vnd.oci.image.index.v1+json", index, 16);
  REQUIRE(kids.size() == 2);
  CHECK(kids[0].ToString() == a);
  CHECK(kids[1].ToString() == b);
  CHECK(oci::IndexChildren("application/vnd.docker.distribution.manifest.list.v2+json", index, 1)
            .size() == 1);
  CHECK(oci::IndexChildren("application/vnd.oci.image.manifest.v1+json", index, 16).empty());
  CHECK(oci::IndexChildren("application/vnd.oci.image.index.v1+json", "{not json", 16).empty());
  CHECK(oci::IndexChildren("application/vnd.oci.image.index.v1+json", R"({"manifests":{}})", 16)
            .empty());
}
