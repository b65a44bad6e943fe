// One fill of a blob (src/registry/blob_fill.h) without sockets: clients
// share one source, never see a byte that was not verified, resume across
// sources, pass through without room, and leave the cache consistent when
// the disk fills; eviction during a fill; bytes in flight.
// Bytes and time in, events out; every test ends with uv_loop_close() == 0.
#include "src/registry/blob_fill.h"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <random>

#include "src/registry/blob_stream.h"

#include "tests/unit/registry_fakes.h"
#include "tests/unit/src/registry/fill_rig.h"
#include "util/sha256.h"

using fillrig::Client;
using fillrig::DigestOf;
using fillrig::Fill;
using fillrig::FillWhole;
using fillrig::From;
using fillrig::kMiB;
using fillrig::Path;
using fillrig::RandomBytes;
using fillrig::Rig;
using fillrig::ServeFromCache;
using fillrig::Source;
using fillrig::Stored;

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
    "fill: peers that fail (refused, shutting down, no length) leave a blob unknown: 404, never "
    "503, unless the upstream failed") {
  // Issue 22: a member killed with SIGKILL made its peers answer 503 for a
  // blob nobody had until it was declared dead; a client must retry a 503.
  Rig r;
  {
    util::Digest d = DigestOf("nobody has it");
    Fill f(r, d);
    auto refused = std::make_shared<Source>(), closing = std::make_shared<Source>(),
         nolength = std::make_shared<Source>();
    auto c = Client::Make(r.deferred.get(), Path(d));
    f.fill->Join(c->ex);
    f.fill->Start({From(refused, "peer a", "a"), From(closing, "peer b", "b"),
                   From(nolength, "peer c", "c")});
    refused->Done(util::Status::Unavailable("connection refused"));
    REQUIRE(closing->cb.on_head);
    closing->Head(503, 0);
    REQUIRE(nolength->cb.on_head);
    nolength->Head(200, std::nullopt);
    REQUIRE(r.RunUntil([&] { return c->ended && f.done; }));
    CHECK(c->status == 404);
    CHECK(c->body.find("BLOB_UNKNOWN") != std::string::npos);
  }
  {
    util::Digest d = DigestOf("the upstream is down");
    Fill f(r, d);
    auto peer = std::make_shared<Source>(), up = std::make_shared<Source>();
    auto c = Client::Make(r.deferred.get(), Path(d));
    f.fill->Join(c->ex);
    f.fill->Start({From(peer, "peer a", "a"), From(up, "upstream test")});
    peer->Done(util::Status::Unavailable("connection refused"));
    REQUIRE(up->cb.on_complete);
    up->Done(util::Status::Unavailable("connection refused"));
    REQUIRE(r.RunUntil([&] { return c->ended && f.done; }));
    CHECK(c->status == 503);  // the upstream is the authority: retry
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
