// The own registry's OCI API (src/registry/own_registry.h) on a loop with
// no sockets: a real cache (LMDB in a temporary directory, the writer
// thread, the keeper), fake clients, and no cluster (one node). Every rig
// ends with uv_loop_close() == 0.
#include <catch2/catch.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "src/oci/router.h"
#include "src/registry/registry_parts.h"
#include "tests/unit/registry_fakes.h"
#include "tests/unit/src/registry/images.h"
#include "util/sha256.h"

namespace {

using fakes::Client;
using images::Blob;
using images::ImageManifest;
using images::kIndexType;
using images::kManifestType;
using util::DigestOf;

constexpr const char* kReg = "fleet.test";
using fakes::kCreds;

// The own registry and the parts it is given, on one node without a cluster.
struct OwnRig {
  fakes::Rig rig;
  config::Config cfg;
  std::unique_ptr<registry::RegistryParts> parts;  // the daemon's wiring, no fleet
  registry::OwnRegistry* own = nullptr;

  explicit OwnRig(void (*tune)(config::Config*) = nullptr) {
    cfg = config::Defaults();
    cfg.registry.name = kReg;
    cfg.registry.max_size = 64 << 20;
    cfg.registry.max_uploads = 4;
    cfg.registry.gc_grace_ms = 3'600'000;
    if (tune) tune(&cfg);
    std::string file = rig.dir + "/htpasswd";
    fakes::WriteHtpasswd(file);
    parts = std::make_unique<registry::RegistryParts>(
        rig.env(), cfg, rig.store.get(), rig.bridge.get(), rig.keeper.get(),
        std::make_shared<registry::InFlightBytes>(64 << 20), nullptr);
    REQUIRE(parts->auth.Load(file).ok());
    own = &parts->own;
    own->Start();
  }
  ~OwnRig() {
    if (parts) Close();
  }

  // Sends a request through the router, as a client would, and turns the
  // loop until it is answered.
  std::shared_ptr<Client> Send(const std::string& method, const std::string& target,
                               std::optional<std::string> body = std::nullopt,
                               std::vector<http::Header> headers = kCreds) {
    auto c = Client::Make(rig.deferred.get(), target, std::move(headers), method, std::move(body));
    oci::Route route = oci::RouteRequest(method, target);
    REQUIRE(route.kind != oci::RouteKind::kError);
    own->Handle(route, c->ex, peers::Hop::kClient);
    REQUIRE(rig.RunUntil([&] { return c->done(); }));
    return c;
  }
  // A response header, "" when absent.
  static std::string Hdr(const Client& c, std::string_view name) {
    const std::string* h = c.Header(name);
    return h ? *h : "";
  }
  std::string Location(const Client& c) { return Hdr(c, "location"); }
  bool Own(const util::Digest& d) {
    const cache::BlobIndex::Entry* e = rig.keeper->index().Find(d);
    return e && e->own;
  }
  int Close() {
    parts->Stop();
    parts.reset();
    return rig.Close();
  }
};

}  // namespace

TEST_CASE("uploads: monolithic POST ?digest= stores the blob as own content") {
  OwnRig r;
  std::string blob = Blob(3 << 20, 'a');
  util::Digest d = DigestOf(blob);
  auto c = r.Send("POST", "/v2/team/app/blobs/uploads/?digest=" + d.ToString(), blob);
  CHECK(c->status == 201);
  CHECK(r.Location(*c) == "/v2/team/app/blobs/" + d.ToString());
  CHECK(OwnRig::Hdr(*c, "docker-content-digest") == d.ToString());
  REQUIRE(r.rig.Settle());
  CHECK(r.Own(d));
  auto get = r.Send("GET", "/v2/team/app/blobs/" + d.ToString(), std::nullopt, {});
  CHECK(get->status == 200);
  CHECK(get->body == blob);
  CHECK(r.own->stats().blobs_pushed == 1);
  CHECK(r.Close() == 0);
}

TEST_CASE("uploads: chunked, and resumed after a lost PATCH") {
  OwnRig r;
  std::string blob = Blob(2500000, 'k');
  util::Digest d = DigestOf(blob);
  auto start = r.Send("POST", "/v2/team/app/blobs/uploads/", "");
  REQUIRE(start->status == 202);
  std::string loc = r.Location(*start);
  REQUIRE(loc.rfind("/v2/team/app/blobs/uploads/", 0) == 0);
  CHECK(OwnRig::Hdr(*start, "range") == "0-0");
  auto first = r.Send("PATCH", loc, blob.substr(0, 1000000));
  CHECK(first->status == 202);
  CHECK(OwnRig::Hdr(*first, "range") == "0-999999");
  // The client lost the answer to its second PATCH and sends it again from
  // its own idea of the offset: a chunk that does not start where the
  // upload is gets 416 with the real offset, and nothing changes.
  auto second = r.Send("PATCH", loc, blob.substr(1000000, 1000000),
                       {kCreds[0], {"content-range", "1000000-1999999"}});
  CHECK(second->status == 202);
  auto replay = r.Send("PATCH", loc, blob.substr(1000000, 1000000),
                       {kCreds[0], {"content-range", "1000000-1999999"}});
  CHECK(replay->status == 416);
  CHECK(OwnRig::Hdr(*replay, "range") == "0-1999999");
  auto status = r.Send("GET", loc);
  CHECK(status->status == 204);
  CHECK(OwnRig::Hdr(*status, "range") == "0-1999999");
  auto last = r.Send("PUT", loc + "?digest=" + d.ToString(), blob.substr(2000000));
  CHECK(last->status == 201);
  REQUIRE(r.rig.Settle());
  CHECK(r.Own(d));
  auto get = r.Send("GET", "/v2/team/app/blobs/" + d.ToString(), std::nullopt, {});
  CHECK(get->body == blob);
  CHECK(r.Close() == 0);
}

TEST_CASE("uploads: a wrong digest stores nothing; a cancelled upload is gone") {
  OwnRig r;
  std::string blob = Blob(1 << 20, 'w');
  util::Digest claimed = DigestOf("something else");
  auto bad = r.Send("POST", "/v2/team/app/blobs/uploads/?digest=" + claimed.ToString(), blob);
  CHECK(bad->status == 400);
  CHECK(bad->body.find("DIGEST_INVALID") != std::string::npos);
  REQUIRE(r.rig.Settle());
  CHECK_FALSE(r.rig.keeper->Has(claimed));
  CHECK_FALSE(r.rig.keeper->Has(DigestOf(blob)));
  CHECK(r.own->stats().digest_mismatches == 1);
  CHECK(r.own->uploads().open() == 0);

  auto start = r.Send("POST", "/v2/team/app/blobs/uploads/", "");
  std::string loc = r.Location(*start);
  CHECK(r.Send("PATCH", loc, blob)->status == 202);
  CHECK(r.Send("DELETE", loc)->status == 204);
  CHECK(r.Send("GET", loc)->status == 404);
  CHECK(r.Send("PUT", loc + "?digest=" + DigestOf(blob).ToString(), "")->status == 404);
  REQUIRE(r.rig.Settle());
  CHECK_FALSE(r.rig.keeper->Has(DigestOf(blob)));
  CHECK(r.Close() == 0);
}

TEST_CASE("uploads: bounded by max_uploads and by [registry] max_size") {
  OwnRig r([](config::Config* c) {
    c->registry.max_uploads = 2;
    c->registry.max_size = 1 << 20;
  });
  std::vector<std::string> open;
  for (int i = 0; i < 2; ++i) {
    auto s = r.Send("POST", "/v2/team/app/blobs/uploads/", "");
    REQUIRE(s->status == 202);
    open.push_back(r.Location(*s));
  }
  auto third = r.Send("POST", "/v2/team/app/blobs/uploads/", "");
  CHECK(third->status == 429);
  CHECK(third->body.find("TOOMANYREQUESTS") != std::string::npos);
  // Over the registry's budget: refused while the bytes arrive, nothing kept.
  std::string big = Blob((1 << 20) + 4096, 'b');
  auto over = r.Send("PATCH", open[0], big);
  CHECK(over->status == 403);
  CHECK(over->body.find("DENIED") != std::string::npos);
  REQUIRE(r.rig.Settle());
  CHECK(r.rig.keeper->own_bytes() == 0);
  CHECK(r.Close() == 0);
}

TEST_CASE("uploads: writes need the push credentials") {
  OwnRig r;
  auto anon = r.Send("POST", "/v2/team/app/blobs/uploads/", "", {});
  CHECK(anon->status == 401);
  CHECK(anon->Header("www-authenticate") != nullptr);
  auto wrong = r.Send("POST", "/v2/team/app/blobs/uploads/", "",
                      {{"authorization", "Basic YWxpY2U6d3Jvbmc="}});  // alice:wrong
  CHECK(wrong->status == 401);
  CHECK(r.own->uploads().open() == 0);
  CHECK(r.Close() == 0);
}

namespace {

// Pushes `blob` whole; true on 201.
bool PushBlob(OwnRig& r, const std::string& blob) {
  return r.Send("POST", "/v2/team/app/blobs/uploads/?digest=" + DigestOf(blob).ToString(), blob)
             ->status == 201;
}

std::shared_ptr<Client> PutManifest(OwnRig& r, const std::string& ref, const std::string& body,
                                    const char* type = kManifestType) {
  return r.Send("PUT", "/v2/team/app/manifests/" + ref, body, {kCreds[0], {"content-type", type}});
}

// Every own manifest in the store names only blobs the store holds.
bool NoManifestWithoutItsBlobs(OwnRig& r) {
  auto manifests = r.rig.store->ListOwnManifests();
  REQUIRE(manifests.ok());
  auto txn = r.rig.store->BeginRead();
  REQUIRE(txn.ok());
  for (const cache::OwnManifest& m : *manifests) {
    for (const util::Digest& ref : m.references) {
      cache::BlobInfo info;
      cache::Manifest child;
      if (!r.rig.store->GetBlob(*txn, ref, &info).ok() &&
          !r.rig.store->GetManifest(*txn, ref, &child).ok())
        return false;
    }
  }
  return true;
}

}  // namespace

TEST_CASE("manifest PUT: 201 once its blobs are here; pulled by tag and digest; listed") {
  OwnRig r;
  std::string config = "{\"architecture\":\"amd64\"}", layer = Blob(1 << 20, 'l');
  std::string manifest = ImageManifest(config, layer);
  util::Digest md = DigestOf(manifest);
  // Its blobs are not pushed yet: refused, nothing stored.
  auto early = PutManifest(r, "1.0", manifest);
  CHECK(early->status == 400);
  CHECK(early->body.find("MANIFEST_BLOB_UNKNOWN") != std::string::npos);
  REQUIRE(PushBlob(r, config));
  REQUIRE(PushBlob(r, layer));
  auto put = PutManifest(r, "1.0", manifest);
  CHECK(put->status == 201);
  CHECK(OwnRig::Hdr(*put, "docker-content-digest") == md.ToString());
  CHECK(OwnRig::Hdr(*put, "location") == "/v2/team/app/manifests/" + md.ToString());
  // A digest in the path must be the body's.
  CHECK(PutManifest(r, DigestOf("other").ToString(), manifest)->status == 400);
  REQUIRE(r.rig.Settle());
  auto by_tag = r.Send("GET", "/v2/team/app/manifests/1.0", std::nullopt, {});
  CHECK(by_tag->status == 200);
  CHECK(by_tag->body == manifest);
  CHECK(r.Send("GET", "/v2/team/app/manifests/" + md.ToString(), std::nullopt, {})->body ==
        manifest);
  auto list = r.Send("GET", "/v2/team/app/tags/list", std::nullopt, {});
  CHECK(list->status == 200);
  CHECK(list->body.find("\"1.0\"") != std::string::npos);
  CHECK(r.own->stats().manifests_pushed == 1);
  CHECK(r.Close() == 0);
}

TEST_CASE("manifest PUT: an index with children; a child unknown is refused") {
  OwnRig r;
  std::string c1 = "{\"os\":\"linux\"}", l1 = Blob(4096, '1');
  std::string c2 = "{\"os\":\"windows\"}", l2 = Blob(4096, '2');
  for (const std::string* b : {&c1, &l1, &c2, &l2}) REQUIRE(PushBlob(r, *b));
  std::string m1 = ImageManifest(c1, l1), m2 = ImageManifest(c2, l2);
  std::string index = images::Index({m1, m2});
  REQUIRE(PutManifest(r, DigestOf(m1).ToString(), m1)->status == 201);
  auto missing_child = PutManifest(r, "multi", index, kIndexType);
  CHECK(missing_child->status == 400);
  CHECK(missing_child->body.find(DigestOf(m2).ToString()) != std::string::npos);
  REQUIRE(PutManifest(r, DigestOf(m2).ToString(), m2)->status == 201);
  CHECK(PutManifest(r, "multi", index, kIndexType)->status == 201);
  REQUIRE(r.rig.Settle());
  CHECK(r.Send("GET", "/v2/team/app/manifests/multi", std::nullopt, {})->body == index);
  CHECK(NoManifestWithoutItsBlobs(r));
  CHECK(r.Close() == 0);
}

// A cached blob stored the way a fill stores one: chunk, publish, listed.
void CacheBlob(OwnRig& r, const std::string& bytes) {
  util::Digest d = DigestOf(bytes);
  cache::BlobInfo info;
  info.size = bytes.size();
  info.chunk_size = static_cast<uint32_t>(bytes.size());
  auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  REQUIRE(r.rig.store->PutChunk(d, 0, {p, bytes.size()}).ok());
  REQUIRE(r.rig.store->PublishBlob(d, info).ok());
  REQUIRE(r.rig.keeper->Reserve(bytes.size()));
  r.rig.keeper->Published(d, bytes.size(), r.rig.clock.WallMs());
}

TEST_CASE("manifest PUT adopting a cached blob that is deleted meanwhile: refused, not left own") {
  OwnRig r;
  std::string config = "{\"architecture\":\"s390x\"}", layer = Blob(200000, 'c');
  REQUIRE(PushBlob(r, config));
  REQUIRE(r.rig.Settle());
  CacheBlob(r, layer);  // pulled through the mirror earlier: cached, not own
  REQUIRE(r.rig.keeper->Has(DigestOf(layer)));
  REQUIRE_FALSE(r.Own(DigestOf(layer)));
  // A delete of the cached blob is queued on the writer before the PUT's
  // own job (the index still lists it, as it does while an eviction's
  // delete is queued).
  cache::Store* store = r.rig.store.get();
  util::Digest d = DigestOf(layer);
  r.rig.bridge->Run([store, d] { return store->DeleteBlob(d); }, [](util::Status) {});
  auto put = PutManifest(r, "adopt", ImageManifest(config, layer));
  CHECK(put->status == 400);
  CHECK(put->body.find("MANIFEST_BLOB_UNKNOWN") != std::string::npos);
  REQUIRE(r.rig.Settle());
  // The index no longer counts it as own content, nor lists it at all.
  CHECK_FALSE(r.rig.keeper->Has(d));
  CHECK(r.rig.keeper->own_bytes() == config.size());
  CHECK(NoManifestWithoutItsBlobs(r));
  CHECK(r.Close() == 0);
}

TEST_CASE("manifest PUT adopting a cached blob: the store and the index both make it own") {
  OwnRig r;
  std::string config = "{\"architecture\":\"ppc64le\"}", layer = Blob(150000, 'p');
  REQUIRE(PushBlob(r, config));
  REQUIRE(r.rig.Settle());
  CacheBlob(r, layer);
  CHECK(PutManifest(r, "adopt", ImageManifest(config, layer))->status == 201);
  REQUIRE(r.rig.Settle());
  CHECK(r.Own(DigestOf(layer)));
  {
    auto txn = r.rig.store->BeginRead();
    REQUIRE(txn.ok());
    cache::BlobInfo info;
    REQUIRE(r.rig.store->GetBlob(*txn, DigestOf(layer), &info).ok());
    CHECK(info.own);
  }
  CHECK(r.Close() == 0);
}

TEST_CASE("GC racing a manifest PUT that names an old blob: the PUT wins or fails cleanly") {
  auto tune = [](config::Config* c) { c->registry.gc_grace_ms = 1000; };
  std::string config = "{\"architecture\":\"arm64\"}", layer = Blob(300000, 'g');
  std::string manifest = ImageManifest(config, layer);

  SECTION("the collection runs first: the PUT fails cleanly, nothing names a deleted blob") {
    OwnRig r(tune);
    REQUIRE(PushBlob(r, config));
    REQUIRE(PushBlob(r, layer));
    REQUIRE(r.rig.Settle());
    r.rig.clock.SetWall(r.rig.clock.WallMs() + 5000);  // both older than gc_grace, unreferenced
    // The collection's job is queued before the PUT's own writer job, and
    // before the PUT has even read its body: the index still lists the blobs.
    r.own->CollectGarbage();
    auto put = PutManifest(r, "race", manifest);
    CHECK(put->status == 400);
    CHECK(put->body.find("MANIFEST_BLOB_UNKNOWN") != std::string::npos);
    REQUIRE(r.rig.Settle());
    CHECK_FALSE(r.rig.keeper->Has(DigestOf(layer)));
    CHECK(r.Send("GET", "/v2/team/app/manifests/race", std::nullopt, {})->status == 404);
    CHECK(NoManifestWithoutItsBlobs(r));
    CHECK(r.Close() == 0);
  }
  SECTION("the PUT is stored first: the collection keeps what it names") {
    OwnRig r(tune);
    REQUIRE(PushBlob(r, config));
    REQUIRE(PushBlob(r, layer));
    REQUIRE(r.rig.Settle());
    r.rig.clock.SetWall(r.rig.clock.WallMs() + 5000);
    auto c = Client::Make(r.rig.deferred.get(), "/v2/team/app/manifests/race",
                          {kCreds[0], {"content-type", kManifestType}}, "PUT", manifest);
    r.own->Handle(oci::RouteRequest("PUT", "/v2/team/app/manifests/race"), c->ex,
                  peers::Hop::kClient);
    // The PUT's writer job is queued as soon as its body is read; the
    // collection is asked for right then, before the PUT is answered.
    REQUIRE(r.rig.RunUntil([&] { return r.rig.bridge->pending() > 0 || c->done(); }));
    r.own->CollectGarbage();
    REQUIRE(r.rig.RunUntil([&] { return c->done(); }));
    CHECK(c->status == 201);
    REQUIRE(r.rig.Settle());
    CHECK(r.rig.keeper->Has(DigestOf(layer)));
    CHECK(r.rig.keeper->Has(DigestOf(config)));
    CHECK(r.Send("GET", "/v2/team/app/manifests/race", std::nullopt, {})->body == manifest);
    CHECK(NoManifestWithoutItsBlobs(r));
    // An unreferenced blob is still collected.
    std::string stray = Blob(1000, 's');
    REQUIRE(PushBlob(r, stray));
    REQUIRE(r.rig.Settle());
    r.rig.clock.SetWall(r.rig.clock.WallMs() + 5000);
    r.own->CollectGarbage();
    REQUIRE(r.rig.Settle());
    CHECK_FALSE(r.rig.keeper->Has(DigestOf(stray)));
    CHECK(r.rig.keeper->Has(DigestOf(layer)));
    CHECK(r.Close() == 0);
  }
}
