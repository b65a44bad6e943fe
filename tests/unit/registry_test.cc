// The registry's orchestration without sockets (tests/unit/registry_fakes.h):
// fills from fake sources into a real cache with fake clients, manifest
// resolution against a fake upstream, eviction during a fill, scrubbing.
// Bytes and time in, events out; every test ends with uv_loop_close() == 0.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <random>

#include "src/oci/media_types.h"
#include "src/oci/router.h"
#include "src/registry/blob_fill.h"
#include "src/registry/blob_probe.h"
#include "src/registry/blob_stream.h"
#include "src/registry/manifests.h"
#include "src/registry/scrubber.h"
#include "tests/unit/registry_fakes.h"
#include "util/sha256.h"

using util::DigestOf;

using fakes::Client;
using fakes::Rig;
using fakes::Source;
using registry::BlobFill;
using registry::FillSource;

namespace {

constexpr uint64_t kMiB = 1 << 20;

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

FillSource From(const std::shared_ptr<Source>& s, const std::string& label,
                const std::string& peer = "") {
  return {label, peer, [s](const registry::SourceRequest& r, upstream::Callbacks cb) {
            s->method = r.method;
            s->offset = r.offset;
            s->cb = std::move(cb);
            return std::shared_ptr<upstream::InFlight>(s);
          }};
}

std::string Path(const util::Digest& d) { return "/v2/team/app/blobs/" + d.ToString(); }

// One fill under test, as the Service makes them.
struct Fill {
  std::shared_ptr<BlobFill> fill;
  bool done = false;
  int done_calls = 0;                                       // on_done must come once
  std::vector<std::pair<std::string, bool>> peer_failures;  // (peer, corrupt)
  int resumed = 0;
  std::vector<bool> mismatches;  // verification failures: from a peer?
  Rig& rig;
  util::Digest digest;
  Fill(Rig& r, const util::Digest& d, bool may_store = true,
       std::shared_ptr<registry::InFlightBytes> budget = nullptr)
      : rig(r), digest(d) {
    BlobFill::Env env{&r.clock,
                      r.store.get(),
                      r.bridge.get(),
                      r.keeper.get(),
                      std::move(budget),
                      [this](const util::Digest&, BlobFill*) {
                        done = true;
                        ++done_calls;
                      },
                      [this](const std::string& peer, const std::string&, bool corrupt) {
                        peer_failures.push_back({peer, corrupt});
                      },
                      [this] { ++resumed; },
                      [this](bool from_peer) { mismatches.push_back(from_peer); }};
    fill = std::make_shared<BlobFill>(std::move(env), d, may_store);
  }
  // One client, one source, started: how most tests begin. Returns the client.
  std::shared_ptr<Client> StartOne(const std::shared_ptr<Source>& s,
                                   const std::string& label = "upstream test",
                                   const std::string& peer = "") {
    auto c = Client::Make(rig.deferred.get(), Path(digest));
    fill->Join(c->ex);
    fill->Start({From(s, label, peer)});
    return c;
  }
};

bool Stored(Rig& r, const util::Digest& d) {
  auto txn = r.store->BeginRead();
  cache::BlobInfo info;
  return txn.ok() && r.store->GetBlob(*txn, d, &info).ok();
}

// Serves a cached blob to `c`, as the Service does on a hit.
void ServeFromCache(Rig& r, const util::Digest& d, const std::shared_ptr<Client>& c) {
  auto txn = r.store->BeginRead();
  cache::BlobInfo info;
  REQUIRE(r.store->GetBlob(*txn, d, &info).ok());
  *txn = cache::ReadTxn();
  registry::BlobStream::ServeCached(r.store.get(), r.keeper.get(), d, info, c->ex,
                                    r.clock.WallMs());
}

// Fills `blob` completely from one source, with one client, and waits until it is cached.
void FillWhole(Rig& r, const std::string& blob) {
  util::Digest d = DigestOf(blob);
  Fill f(r, d);
  auto src = std::make_shared<Source>();
  auto c = f.StartOne(src);
  src->Answer(200, blob);
  bool ok = r.RunUntil([&] { return f.done && c->done(); });
  INFO("writer pending " << r.bridge->pending() << ", client status " << c->status << ", "
                         << c->body.size() << " bytes, ended " << c->ended << ", fill done "
                         << f.done);
  REQUIRE(ok);
  REQUIRE(c->body == blob);
}

}  // namespace

TEST_CASE(
    "fill: clients share one source; none sees its last byte before the digest matched; then it is "
    "cached") {
  Rig r;
  std::string blob = RandomBytes(2 * kMiB + kMiB / 2, 1);
  util::Digest d = DigestOf(blob);
  {
    Fill f(r, d);
    auto src = std::make_shared<Source>();
    auto a = f.StartOne(src);
    REQUIRE(src->cb.on_head);  // asked at once
    CHECK(a->status == 0);     // nothing is sent before the source's head
    src->Head(200, blob.size());
    CHECK(a->status == 200);
    CHECK(a->length == blob.size());
    src->Body(std::string_view(blob).substr(0, 3 * kMiB / 2));
    REQUIRE(r.RunUntil([&] { return a->body.size() == 3 * kMiB / 2; }));
    // A second client joins mid-fill, for a range.
    auto b = Client::Make(r.deferred.get(), Path(d), {{"range", "bytes=1048576-"}});
    f.fill->Join(b->ex);
    CHECK(b->status == 206);
    REQUIRE(b->Header("content-range"));
    CHECK(*b->Header("content-range") ==
          "bytes 1048576-" + std::to_string(blob.size() - 1) + "/" + std::to_string(blob.size()));
    src->Body(std::string_view(blob).substr(3 * kMiB / 2));
    REQUIRE(r.RunUntil([&] {
      return a->body.size() == blob.size() - 1 && b->body.size() == blob.size() - kMiB - 1;
    }));
    r.Settle();
    CHECK_FALSE(a->done());  // the last byte waits for the digest
    CHECK_FALSE(b->done());
    src->Done();
    REQUIRE(r.RunUntil([&] { return a->ended && b->ended && f.done; }));
    CHECK(a->body == blob);
    CHECK(b->body == blob.substr(kMiB));
    CHECK(r.keeper->Has(d));
    CHECK(Stored(r, d));
  }
  // The next client is served from the cache, without a source; its read
  // checks every chunk, once: later reads check only pages that left memory.
  CHECK(r.keeper->CheckFor(d, 0) == cache::ChunkCheck::kFull);
  auto c = Client::Make(r.deferred.get(), Path(d));
  ServeFromCache(r, d, c);
  REQUIRE(r.RunUntil([&] { return c->ended; }));
  CHECK(c->body == blob);
  for (uint32_t i = 0; i < 3; ++i)
    CHECK(r.keeper->CheckFor(d, i) == cache::ChunkCheck::kUnlessResident);
  CHECK(r.keeper->CheckFor(d, 3) == cache::ChunkCheck::kFull);  // no such chunk: never marked
  CHECK(r.Close() == 0);
}

TEST_CASE(
    "fill: bytes that hash wrong reset every client, nothing is kept, and the lying peer is "
    "reported") {
  Rig r;
  std::string blob = RandomBytes(3 * kMiB, 2);
  util::Digest d = DigestOf(blob);
  std::string wrong = blob;
  wrong[kMiB + 7] ^= 1;
  Fill f(r, d);
  auto src = std::make_shared<Source>();
  auto a = Client::Make(r.deferred.get(), Path(d)), b = Client::Make(r.deferred.get(), Path(d));
  f.fill->Join(a->ex);
  f.fill->Join(b->ex);
  f.fill->Start({From(src, "peer eu-2", "eu-2")});
  src->Answer(200, wrong);
  REQUIRE(r.RunUntil([&] { return a->done() && b->done() && f.done; }));
  CHECK(a->reset);
  CHECK(b->reset);
  CHECK(a->body.size() < blob.size());  // never a clean end
  REQUIRE(f.peer_failures.size() == 1);
  CHECK(f.peer_failures[0] == std::make_pair(std::string("eu-2"), true));
  CHECK(f.mismatches == std::vector<bool>{true});
  r.Settle();
  CHECK_FALSE(r.keeper->Has(d));
  CHECK_FALSE(Stored(r, d));
  auto txn = r.store->BeginRead();
  std::span<const uint8_t> chunk;
  CHECK(r.store->GetChunk(*txn, d, 0, &chunk).IsNotFound());  // the chunks it wrote were deleted
  *txn = cache::ReadTxn();
  CHECK(r.keeper->index().committed_bytes() == r.keeper->index().stored_bytes());
  CHECK(r.Close() == 0);
}

TEST_CASE(
    "fill: a source that fails before its head costs only itself; with none left, an OCI error") {
  Rig r;
  std::string blob = RandomBytes(kMiB / 2, 3);
  util::Digest d = DigestOf(blob);
  {
    Fill f(r, d);
    auto s404 = std::make_shared<Source>(), sdown = std::make_shared<Source>(),
         sok = std::make_shared<Source>();
    auto c = Client::Make(r.deferred.get(), Path(d));
    f.fill->Join(c->ex);
    f.fill->Start(
        {From(s404, "peer a", "a"), From(sdown, "peer b", "b"), From(sok, "upstream test")});
    s404->Head(404, 0);
    CHECK(s404->cancelled);
    REQUIRE(sdown->cb.on_complete);  // the next one was asked
    sdown->Done(util::Status::Unavailable("connection refused"));
    REQUIRE(sok->cb.on_head);
    CHECK(c->status == 0);  // the client saw none of that
    sok->Answer(200, blob);
    REQUIRE(r.RunUntil([&] { return c->ended && f.done; }));
    CHECK(c->body == blob);
    CHECK(f.peer_failures.empty());  // a 404 or an unreachable peer is not a lie
  }
  struct Case {
    int status;
    std::optional<uint64_t> length;
    int want;
    const char* code;
  };
  for (Case k : {Case{404, 0, 404, "BLOB_UNKNOWN"}, Case{500, 0, 503, "UNAVAILABLE"},
                 Case{200, std::nullopt, 502, "UNKNOWN"}}) {
    util::Digest other = DigestOf("other" + std::to_string(k.status));
    Fill f(r, other);
    auto s = std::make_shared<Source>();
    auto c = f.StartOne(s);
    s->Head(k.status, k.length);
    CHECK(c->status == k.want);
    CHECK(c->ended);
    CHECK(c->body.find(k.code) != std::string::npos);
    CHECK(f.done);
  }
  CHECK(r.Close() == 0);
}

TEST_CASE(
    "fill: the disk fills under a chunk while the publish is queued: passed through, nothing kept, "
    "done once") {
  // Every chunk write and the publish are queued in the turn the body ends,
  // before the writer answered any: a chunk finds the map full, the
  // publish (one small record) still fits.
  Rig r(1ull << 30, /*map_size=*/6 * kMiB);
  std::string blob = RandomBytes(12 * kMiB, 7);
  util::Digest d = DigestOf(blob);
  Fill f(r, d);
  auto src = std::make_shared<Source>();
  auto c = f.StartOne(src);
  src->Answer(200, blob);
  REQUIRE(r.RunUntil([&] { return f.done && c->ended; }));
  CHECK(c->body == blob);
  r.Settle();
  CHECK(f.done_calls == 1);
  CHECK_FALSE(r.keeper->Has(d));
  CHECK_FALSE(Stored(r, d));
  CHECK(r.keeper->index().cached_count() == 0);
  CHECK(r.Close() == 0);
}

TEST_CASE("fill: a body cut short or longer than announced resets the clients") {
  Rig r;
  std::string blob = RandomBytes(kMiB + 5, 4);
  util::Digest d = DigestOf(blob);
  for (bool longer : {false, true}) {
    Fill f(r, d);
    auto s = std::make_shared<Source>();
    auto c = f.StartOne(s, "peer x", "x");
    s->Head(200, blob.size());
    if (longer) {
      s->Body(blob + "extra");
      CHECK(s->cancelled);
    } else {
      s->Body(std::string_view(blob).substr(0, kMiB));
      s->Done();  // a clean end after too few bytes
    }
    REQUIRE(r.RunUntil([&] { return c->done() && f.done; }));
    CHECK(c->reset);
    REQUIRE(f.peer_failures.size() == 1);
    CHECK(f.peer_failures[0].second == longer);  // more bytes than announced is a lie; a cut is not
    r.Settle();
    CHECK_FALSE(Stored(r, d));
  }
  CHECK(r.Close() == 0);
}

TEST_CASE(
    "fill: a source cut mid-body is resumed by the next with a Range; the clients never notice") {
  Rig r;
  const uint64_t cut = 3 * kMiB / 2 + 5;
  for (bool partial :
       {true, false}) {  // the next source answers 206, or ignores the Range and sends it all
    INFO("206: " << partial);
    std::string blob = RandomBytes(3 * kMiB + 11, partial ? 7 : 70);
    util::Digest d = DigestOf(blob);
    std::string total = "/" + std::to_string(blob.size());
    Fill f(r, d);
    auto peer = std::make_shared<Source>(), up = std::make_shared<Source>();
    auto a = Client::Make(r.deferred.get(), Path(d));
    auto b = Client::Make(r.deferred.get(), Path(d), {{"range", "bytes=100-"}});
    f.fill->Join(a->ex);
    f.fill->Join(b->ex);
    f.fill->Start({From(peer, "peer eu-2", "eu-2"), From(up, "upstream test")});
    CHECK(peer->offset == 0);
    peer->Head(200, blob.size());
    peer->Body(std::string_view(blob).substr(0, cut));
    CHECK_FALSE(up->cb.on_head);  // not asked yet
    peer->Done(util::Status::Unavailable("connection reset by peer"));
    REQUIRE(up->cb.on_head);
    CHECK(up->method == "GET");
    CHECK(up->offset == cut);
    if (partial) {
      up->Head(206, blob.size() - cut,
               {{"content-range",
                 "bytes " + std::to_string(cut) + "-" + std::to_string(blob.size() - 1) + total}});
      up->Body(std::string_view(blob).substr(cut));
    } else {
      up->Head(200, blob.size());
      up->Body(std::string_view(blob).substr(0, 1000));  // the skipped part arrives in pieces
      up->Body(std::string_view(blob).substr(1000));
    }
    up->Done();
    REQUIRE(r.RunUntil([&] { return a->ended && b->ended && f.done; }));
    CHECK_FALSE(a->reset);
    CHECK(a->status == 200);
    CHECK(a->body == blob);
    CHECK(b->body == blob.substr(100));
    CHECK(f.resumed == 1);
    REQUIRE(f.peer_failures.size() == 1);
    CHECK(f.peer_failures[0] == std::make_pair(std::string("eu-2"), false));  // a cut is not a lie
    r.Settle();
    CHECK(Stored(r, d));
  }
  CHECK(r.Close() == 0);
}

TEST_CASE(
    "fill: a resuming source with the wrong range is skipped; with none left the clients are "
    "reset") {
  Rig r;
  std::string blob = RandomBytes(2 * kMiB + 3, 8);
  util::Digest d = DigestOf(blob);
  Fill f(r, d);
  auto first = std::make_shared<Source>(), liar = std::make_shared<Source>(),
       other = std::make_shared<Source>(), down = std::make_shared<Source>();
  auto c = Client::Make(r.deferred.get(), Path(d));
  f.fill->Join(c->ex);
  f.fill->Start({From(first, "peer a", "a"), From(liar, "peer b", "b"), From(other, "peer c", "c"),
                 From(down, "upstream test")});
  first->Head(200, blob.size());
  first->Body(std::string_view(blob).substr(0, kMiB));
  first->Done(util::Status::Unavailable("cut"));
  REQUIRE(liar->cb.on_head);
  liar->Head(206, blob.size() - 10,
             {{"content-range",
               "bytes 10-" + std::to_string(blob.size() - 1) + "/" + std::to_string(blob.size())}});
  CHECK(liar->cancelled);
  REQUIRE(other->cb.on_head);
  CHECK(other->offset == kMiB);
  other->Head(200, blob.size() + 1);  // another blob
  CHECK(other->cancelled);
  REQUIRE(down->cb.on_complete);
  down->Done(util::Status::Unavailable("connection refused"));
  REQUIRE(r.RunUntil([&] { return c->done() && f.done; }));
  CHECK(c->reset);
  CHECK(c->body.size() == kMiB);
  CHECK(f.resumed == 0);
  r.Settle();
  CHECK_FALSE(Stored(r, d));
  CHECK(r.Close() == 0);
}

TEST_CASE(
    "fill: joined bytes that hash wrong reset the clients, and no source is blamed on a guess") {
  Rig r;
  std::string blob = RandomBytes(2 * kMiB, 9);
  util::Digest d = DigestOf(blob);
  std::string wrong = blob;
  wrong[kMiB + kMiB / 2] ^= 1;
  Fill f(r, d);
  auto a = std::make_shared<Source>(), b = std::make_shared<Source>();
  auto c = Client::Make(r.deferred.get(), Path(d));
  f.fill->Join(c->ex);
  f.fill->Start({From(a, "peer a", "a"), From(b, "peer b", "b")});
  a->Head(200, blob.size());
  a->Body(std::string_view(blob).substr(0, kMiB));
  a->Done(util::Status::Unavailable("cut"));
  b->Head(206, kMiB,
          {{"content-range", "bytes " + std::to_string(kMiB) + "-" + std::to_string(2 * kMiB - 1) +
                                 "/" + std::to_string(2 * kMiB)}});
  b->Body(std::string_view(wrong).substr(kMiB));
  b->Done();
  REQUIRE(r.RunUntil([&] { return c->done() && f.done; }));
  CHECK(c->reset);
  CHECK(c->body.size() < blob.size());
  REQUIRE(f.peer_failures.size() == 1);  // only a's cut, not a quarantine
  CHECK(f.peer_failures[0] == std::make_pair(std::string("a"), false));
  CHECK(r.Close() == 0);
}

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
  CHECK(r.Close() == 0);
}

TEST_CASE(
    "fill: without room it passes through; a slow client pauses the source; the last to leave "
    "cancels it") {
  Rig r(4 * kMiB);  // a 12 MiB blob cannot be stored
  std::string blob = RandomBytes(12 * kMiB, 5);
  util::Digest d = DigestOf(blob);
  Fill f(r, d);
  auto s = std::make_shared<Source>();
  auto slow = f.StartOne(s);
  slow->holding = true;
  s->Head(200, blob.size());
  CHECK_FALSE(f.fill->joinable());  // not storing: new clients get fills of their own
  for (uint64_t off = 0; off < 10 * kMiB; off += kMiB)
    s->Body(std::string_view(blob).substr(off, kMiB));
  r.Settle();
  CHECK(s->paused);  // more than 8 chunks wait for the client
  CHECK(s->pauses == 1);
  slow->Release();
  REQUIRE(r.RunUntil([&] { return !s->paused; }));  // it read them: the source goes on
  CHECK(slow->body == blob.substr(0, slow->body.size()));
  // The only client leaves a fill that stores nothing: the source is cancelled.
  slow->Leave();
  REQUIRE(r.RunUntil([&] { return s->cancelled && f.done; }));
  r.Settle();
  CHECK_FALSE(Stored(r, d));
  CHECK(r.keeper->index().committed_bytes() == r.keeper->index().stored_bytes());
  CHECK(r.Close() == 0);
}

TEST_CASE(
    "eviction during a fill: the least recently used blob makes room; one being served never "
    "does") {
  Rig r(5 * kMiB);
  std::string x = RandomBytes(2 * kMiB, 6), y = RandomBytes(2 * kMiB, 7),
              z = RandomBytes(2 * kMiB, 8);
  FillWhole(r, x);
  r.clock.Advance(1000);
  FillWhole(r, y);
  r.Settle();
  CHECK(r.keeper->Has(DigestOf(x)));
  CHECK(r.keeper->Has(DigestOf(y)));
  // y is being read by a client that is slow: pinned.
  auto reader = Client::Make(r.deferred.get(), Path(DigestOf(y)));
  reader->holding = true;
  ServeFromCache(r, DigestOf(y), reader);
  // z needs room: x (oldest, unpinned) goes, y stays.
  r.clock.Advance(1000);
  FillWhole(r, z);
  r.Settle();
  CHECK_FALSE(r.keeper->Has(DigestOf(x)));
  CHECK_FALSE(Stored(r, DigestOf(x)));
  CHECK(r.keeper->Has(DigestOf(y)));
  CHECK(r.keeper->Has(DigestOf(z)));
  CHECK(r.keeper->evictions() == 1);
  // Another 2 MiB: z is the only unpinned blob, so it goes; y, being read, still stays.
  std::string w = RandomBytes(2 * kMiB, 9);
  FillWhole(r, w);
  r.Settle();
  CHECK(r.keeper->Has(DigestOf(y)));
  CHECK_FALSE(r.keeper->Has(DigestOf(z)));
  CHECK(r.keeper->evictions() == 2);
  // A blob larger than what can be freed passes through: y is still pinned.
  std::string big = RandomBytes(4 * kMiB, 10);
  FillWhole(r, big);
  r.Settle();
  CHECK_FALSE(r.keeper->Has(DigestOf(big)));
  CHECK(r.keeper->Has(DigestOf(y)));
  reader->Release();
  REQUIRE(r.RunUntil([&] { return reader->ended; }));
  CHECK(reader->body == y);
  CHECK(r.Close() == 0);
}

TEST_CASE("fill: shutdown answers clients waiting for a head 503 and resets streaming ones") {
  Rig r;
  std::string blob = RandomBytes(2 * kMiB, 11);
  util::Digest d = DigestOf(blob);
  Fill waiting(r, d);
  auto s1 = std::make_shared<Source>();
  auto c1 = waiting.StartOne(s1);
  waiting.fill->Cancel();
  CHECK(c1->status == 503);
  CHECK(s1->cancelled);
  Fill streaming(r, d);
  auto s2 = std::make_shared<Source>();
  auto c2 = streaming.StartOne(s2);
  s2->Head(200, blob.size());
  s2->Body(std::string_view(blob).substr(0, kMiB));
  streaming.fill->Cancel();
  CHECK(c2->reset);
  CHECK(s2->cancelled);
  REQUIRE(r.RunUntil([&] { return waiting.done && streaming.done; }));
  r.Settle();
  CHECK_FALSE(Stored(r, d));
  CHECK(r.Close() == 0);
}

TEST_CASE(
    "bytes in flight: chunks are counted while anything holds them; over the limit, new misses are "
    "refused") {
  Rig r(4 * kMiB);  // too small to store: the fill passes through, holding chunks for its client
  auto budget = std::make_shared<registry::InFlightBytes>(4 * kMiB);
  std::string blob = RandomBytes(12 * kMiB, 14);
  util::Digest d = DigestOf(blob);
  {
    Fill f(r, d, true, budget);
    auto s = std::make_shared<Source>();
    auto slow = f.StartOne(s);
    slow->holding = true;
    s->Head(200, blob.size());
    for (uint64_t off = 0; off < 6 * kMiB; off += kMiB)
      s->Body(std::string_view(blob).substr(off, kMiB));
    r.Settle();
    CHECK(budget->held() == 6 * kMiB);
    CHECK_FALSE(budget->Admit());  // a new miss now: 503
    CHECK(budget->refused() == 1);
    slow->Release();
    REQUIRE(r.RunUntil([&] { return budget->held() <= kMiB; }));  // sent: let go
    CHECK(budget->Admit());
    s->Body(std::string_view(blob).substr(6 * kMiB));
    s->Done();
    REQUIRE(r.RunUntil([&] { return slow->ended && f.done; }));
    CHECK(slow->body == blob);
  }
  r.Settle();
  CHECK(budget->held() == 0);  // every chunk released
  CHECK(r.Close() == 0);
}

// ---- manifests ----

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

TEST_CASE("scrubber: a chunk corrupted on disk is found, counted, and its blob leaves the cache") {
  Rig r;
  std::string good = RandomBytes(kMiB, 12), bad = RandomBytes(kMiB, 13);
  FillWhole(r, good);
  FillWhole(r, bad);
  r.Settle();
  // Flip one byte of `bad` in the data file, under LMDB's feet (bit rot).
  std::string path = r.dir + "/data.mdb";
  int fd = ::open(path.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  std::string needle = bad.substr(4096, 64);
  off_t at = -1;
  std::vector<char> buf(1 << 20);
  for (off_t off = 0; at < 0; off += static_cast<off_t>(buf.size() - needle.size())) {
    ssize_t n = ::pread(fd, buf.data(), buf.size(), off);
    if (n <= 0) break;
    std::string_view view(buf.data(), static_cast<size_t>(n));
    if (size_t p = view.find(needle); p != std::string_view::npos) at = off + static_cast<off_t>(p);
  }
  REQUIRE(at >= 0);
  char c;
  REQUIRE(::pread(fd, &c, 1, at) == 1);
  c ^= 0x40;
  REQUIRE(::pwrite(fd, &c, 1, at) == 1);
  ::close(fd);
  registry::Scrubber scrubber(&r.loop, r.store.get(), r.keeper.get(), 64 * kMiB);
  scrubber.Start();  // a batch every second (a loop timer)
  REQUIRE(r.RunUntil(
      [&] { return r.keeper->corruptions() == 1 && scrubber.bytes_checked() >= 2 * kMiB; }));
  CHECK_FALSE(r.keeper->Has(DigestOf(bad)));
  CHECK(r.keeper->Has(DigestOf(good)));
  scrubber.Stop();
  r.Settle();
  CHECK_FALSE(Stored(r, DigestOf(bad)));
  CHECK(r.Close() == 0);
}
