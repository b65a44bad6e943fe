#include <catch2/catch.hpp>

#include <algorithm>
#include <random>

#include "peers/bloom.h"
#include "peers/gossip_node.h"
#include "peers/hlc.h"
#include "peers/message_codec.h"
#include "peers/peer_auth.h"
#include "peers/region_locations.h"
#include "peers/rendezvous.h"
#include "peers/routing.h"
#include "peers/summary_book.h"
#include "peers/tag_table.h"
#include "tests/unit/test_signers.h"
#include "util/sha256.h"

using util::DigestOf;

using peers::HlcTimestamp;
using peers::HybridLogicalClock;
using testing_keys::KeyFor;

namespace {}  // namespace

TEST_CASE("HLC: strictly increasing, even when the physical clock stalls or goes back") {
  HybridLogicalClock c(1000);
  HlcTimestamp a = c.Now(5000);
  HlcTimestamp b = c.Now(5000);
  HlcTimestamp d = c.Now(4000);  // the wall clock jumped back
  HlcTimestamp e = c.Now(6000);
  CHECK(a < b);
  CHECK(b < d);
  CHECK(d < e);
  CHECK(d.wall_ms == 5000);
  CHECK(e == HlcTimestamp{6000, 0});
}

TEST_CASE("HLC: observing a peer moves past it; a clock too far ahead is refused") {
  HybridLogicalClock c(1000);
  c.Now(5000);
  CHECK(c.Observe({5500, 7}, 5000));
  HlcTimestamp next = c.Now(5000);
  CHECK(HlcTimestamp{5500, 7} < next);
  HlcTimestamp before = c.last();
  CHECK_FALSE(c.Observe({7001, 0}, 6000));  // 1001 ms ahead with a 1000 ms bound
  CHECK(c.last() == before);
  CHECK(c.Observe({7000, 0}, 6000));
}

TEST_CASE("tag table: newer wins, never rolls back, origin breaks ties") {
  peers::TagTable t;
  peers::TagKey k{"docker.io", "library/alpine", "3.19"};
  peers::TagVersion v1{DigestOf("a"), {100, 0}, "n1"}, v2{DigestOf("b"), {200, 0}, "n1"};
  CHECK(t.Apply({k, v1}));
  CHECK(t.Apply({k, v2}));
  CHECK_FALSE(t.Apply({k, v1}));  // older: refused
  CHECK(t.Find(k)->digest == DigestOf("b"));
  peers::TagVersion same_time_a{DigestOf("c"), {200, 0}, "a"},
      same_time_z{DigestOf("d"), {200, 0}, "z"};
  CHECK_FALSE(t.Apply({k, same_time_a}));  // "a" < "n1"
  CHECK(t.Apply({k, same_time_z}));
  CHECK(t.Find(k)->digest == DigestOf("d"));
  CHECK_FALSE(t.Apply({k, same_time_z}));  // idempotent
}

TEST_CASE("tag table: any order of the same updates gives the same table and summaries") {
  std::vector<peers::TagUpdate> updates;
  for (int i = 0; i < 300; ++i) {
    peers::TagKey k{"r", "repo" + std::to_string(i % 40), "t" + std::to_string(i % 3)};
    updates.push_back({k,
                       {DigestOf(std::to_string(i)),
                        {uint64_t(1000 + i % 17), uint32_t(i % 5)},
                        "node" + std::to_string(i % 7)}});
  }
  peers::TagTable a, b;
  for (const auto& u : updates) a.Apply(u);
  std::mt19937 rng(42);
  std::shuffle(updates.begin(), updates.end(), rng);
  for (const auto& u : updates) b.Apply(u);
  CHECK(a.size() == b.size());
  CHECK(a.Summaries(64) == b.Summaries(64));
}

TEST_CASE("tag table: anti-entropy exchanges only differing buckets and converges") {
  peers::TagTable a, b;
  for (int i = 0; i < 200; ++i) {
    peers::TagUpdate u{{"r", "repo" + std::to_string(i), "latest"},
                       {DigestOf(std::to_string(i)), {10, 0}, "n1"}};
    a.Apply(u);
    b.Apply(u);
  }
  // b missed three updates (a partition), a missed one of b's.
  for (int i : {3, 77, 150})
    a.Apply({{"r", "repo" + std::to_string(i), "latest"}, {DigestOf("new"), {20, 0}, "n2"}});
  b.Apply({{"r", "only-b", "x"}, {DigestOf("b"), {30, 0}, "n3"}});
  const uint32_t kBuckets = 64;
  auto diff = peers::TagTable::DifferingBuckets(a.Summaries(kBuckets), b.Summaries(kBuckets));
  CHECK(!diff.empty());
  CHECK(diff.size() <= 4);
  for (const auto& u : a.EntriesIn(diff, kBuckets)) b.Apply(u);
  for (const auto& u : b.EntriesIn(diff, kBuckets)) a.Apply(u);
  CHECK(a.Summaries(kBuckets) == b.Summaries(kBuckets));
  CHECK(a.size() == 201);
  CHECK(b.Find({"r", "repo77", "latest"})->digest == DigestOf("new"));
}

TEST_CASE("rendezvous: stable owners, even spread, little movement when membership changes") {
  std::vector<std::string> nodes = {"a", "b", "c", "d", "e"};
  CHECK(peers::RendezvousOwner(DigestOf("x"), {}) == -1);
  std::vector<int> count(nodes.size(), 0);
  int moved = 0;
  std::vector<std::string> six = nodes;
  six.push_back("f");
  for (int i = 0; i < 10000; ++i) {
    util::Digest d = DigestOf(std::to_string(i));
    int owner = peers::RendezvousOwner(d, nodes);
    REQUIRE(owner >= 0);
    CHECK(peers::RendezvousOwner(d, nodes) == owner);  // deterministic
    ++count[owner];
    int owner6 = peers::RendezvousOwner(d, six);
    if (six[owner6] != nodes[owner]) {
      ++moved;
      CHECK(six[owner6] == "f");  // only to the new node
    }
  }
  for (int c : count) CHECK((c > 1700 && c < 2300));  // 20% +- 3%
  CHECK((moved > 1300 && moved < 2000));              // about 1/6 move to the new node
}

// ---- peer authentication ----

namespace {
// What the server does with a request at hand: the head, then the body.
template <typename FindFn>
util::Status Verify(peers::PeerAuth& auth, const std::string& method, const std::string& target,
                    const std::string& body, FindFn find, uint64_t now_ms, std::string* node,
                    peers::VerifiedHead* head = nullptr) {
  peers::VerifiedHead h;
  util::Status st = auth.VerifyHead(method, target, find, now_ms, &h);
  if (st.ok() && !peers::PeerAuth::BodyMatches(body, h.body_sha))
    return util::Status::PermissionDenied("body");
  *node = h.node;
  if (head) *head = h;
  return st;
}
}  // namespace

TEST_CASE(
    "peer auth: signed requests verify once; anything changed, stale or replayed is refused") {
  peers::PeerAuth signer("0123456789abcdef-cluster-key", 30000),
      checker("0123456789abcdef-cluster-key", 30000);
  uint64_t now = 1'790'000'000'000;
  auto n1 = KeyFor("n1");
  auto headers = signer.Sign("n1", *n1, "POST", "/_georeg/v1/msg", "{\"x\":1}", now);
  auto find_in = [](const std::vector<peers::PeerHeader>& hs) {
    return [hs](std::string_view name) -> const std::string* {
      for (const auto& h : hs) {
        std::string lower = h.name;
        for (auto& c : lower) c = static_cast<char>(std::tolower(c));
        if (lower == name) return &h.value;
      }
      return nullptr;
    };
  };
  std::string node;
  peers::VerifiedHead head;
  CHECK(Verify(checker, "POST", "/_georeg/v1/msg", "{\"x\":1}", find_in(headers), now + 5, &node,
               &head)
            .ok());
  CHECK(node == "n1");
  // The node signature signs the same text, under n1's own key only.
  CHECK(n1->Verify(n1->public_key(), head.signed_text, head.node_signature));
  CHECK_FALSE(n1->Verify(KeyFor("n2")->public_key(), head.signed_text, head.node_signature));
  CHECK(head.signed_text.find("/_georeg/v1/msg") != std::string::npos);
  // The same request again is a replay.
  CHECK(Verify(checker, "POST", "/_georeg/v1/msg", "{\"x\":1}", find_in(headers), now + 6, &node)
            .code() == util::Code::kPermissionDenied);
  auto fresh = [&](uint64_t t) {
    return signer.Sign("n1", *n1, "GET", "/_georeg/v1/blobs/x?hop=owner", "", t);
  };
  peers::PeerAuth other_key("another-key-of-16-bytes", 30000);
  CHECK(!Verify(other_key, "GET", "/_georeg/v1/blobs/x?hop=owner", "", find_in(fresh(now)), now,
                &node)
             .ok());
  CHECK(!Verify(checker, "GET", "/_georeg/v1/blobs/x?hop=peer", "", find_in(fresh(now + 1)), now,
                &node)
             .ok());
  CHECK(!Verify(checker, "GET", "/_georeg/v1/blobs/x?hop=owner", "body", find_in(fresh(now + 2)),
                now, &node)
             .ok());
  CHECK(!Verify(checker, "GET", "/_georeg/v1/blobs/x?hop=owner", "", find_in(fresh(now - 31000)),
                now, &node)
             .ok());
  CHECK(!Verify(checker, "GET", "/_georeg/v1/blobs/x?hop=owner", "", find_in(fresh(now + 31000)),
                now, &node)
             .ok());
  CHECK(!Verify(checker, "GET", "/_georeg/v1/blobs/x?hop=owner", "", find_in({}), now, &node).ok());
  // Another node name with the same signature does not pass.
  auto h = fresh(now + 3);
  h[0].value = "n2";  // X-Georeg-Node
  CHECK(!Verify(checker, "GET", "/_georeg/v1/blobs/x?hop=owner", "", find_in(h), now, &node).ok());
  CHECK(Verify(checker, "GET", "/_georeg/v1/blobs/x?hop=owner", "", find_in(fresh(now + 4)), now,
               &node)
            .ok());
}

// ---- digest summaries ----

TEST_CASE("bloom: no false negatives, false positives near the target, wire round trip") {
  peers::DigestBloom f(5000, 0.01);
  for (int i = 0; i < 5000; ++i) f.Add(DigestOf("in" + std::to_string(i)));
  for (int i = 0; i < 5000; ++i) REQUIRE(f.MayContain(DigestOf("in" + std::to_string(i))));
  int fp = 0;
  for (int i = 0; i < 20000; ++i) fp += f.MayContain(DigestOf("out" + std::to_string(i)));
  CHECK(fp < 20000 * 0.02);  // 1% target
  CHECK(f.bit_count() <= 5000 * 10 + 64);
  auto back = peers::DigestBloom::Decode(f.Encode());
  REQUIRE(back.ok());
  CHECK(back->MayContain(DigestOf("in42")));
  CHECK(back->Encode() == f.Encode());
  CHECK(!peers::DigestBloom::Decode("GRBF").ok());
  std::string truncated = f.Encode();
  truncated.pop_back();
  CHECK(!peers::DigestBloom::Decode(truncated).ok());
  CHECK_FALSE(peers::DigestBloom().MayContain(DigestOf("x")));
}

// ---- message codec ----

TEST_CASE("codec: messages round-trip; malformed ones are refused without throwing") {
  peers::Message m;
  m.type = peers::MessageType::kSyncReply;
  m.from = "n1";
  m.seq = 42;
  m.target = "n2";
  m.summary_version = 7;
  m.members.push_back(
      {"n1", "eu", "http://10.0.0.1:5000", peers::MemberState::kSuspect, 9, "k1", "s1"});
  m.tags.push_back(
      {{"docker.io", "library/alpine", "3.19"}, {DigestOf("a"), {1790000000000, 3}, "n1", "s2"}});
  m.tag_summaries = {0, 0xfedcba9876543210ull};
  m.revocations.push_back({"n3", "k3", "n1", "s3"});
  auto back = peers::DecodeMessage(peers::EncodeMessage(m));
  REQUIRE(back.ok());
  CHECK(back->type == m.type);
  CHECK(back->from == "n1");
  CHECK(back->seq == 42);
  CHECK(back->target == "n2");
  CHECK(back->summary_version == 7);
  REQUIRE(back->members.size() == 1);
  CHECK(back->members[0].state == peers::MemberState::kSuspect);
  CHECK(back->members[0].incarnation == 9);
  CHECK(back->members[0].public_key == "k1");
  CHECK(back->members[0].signature == "s1");
  CHECK(back->tags[0].version.signature == "s2");
  REQUIRE(back->revocations.size() == 1);
  CHECK(back->revocations[0].Key() == m.revocations[0].Key());
  CHECK(back->revocations[0].by == "n1");
  CHECK(back->revocations[0].signature == "s3");
  REQUIRE(back->tags.size() == 1);
  CHECK(back->tags[0].key == m.tags[0].key);
  CHECK(back->tags[0].version.digest == DigestOf("a"));
  CHECK(back->tags[0].version.hlc == m.tags[0].version.hlc);
  CHECK(back->tag_summaries == m.tag_summaries);
  for (const char* bad : {"", "[]", "{}", "{\"type\":\"ping\"}", "not json",
                          "{\"type\":\"nope\",\"from\":\"a\",\"seq\":1,\"target\":\"\",\"sv\":0,"
                          "\"members\":[],\"tags\":[],\"summaries\":[]}",
                          "{\"type\":\"ping\",\"from\":\"a\",\"seq\":-1,\"target\":\"\",\"sv\":0,"
                          "\"members\":[],\"tags\":[],\"summaries\":[]}",
                          "{\"type\":\"ping\",\"from\":\"a\",\"seq\":1,\"target\":\"\",\"sv\":0,"
                          "\"members\":[{}],\"tags\":[],\"summaries\":[]}",
                          "{\"type\":\"ping\",\"from\":\"a\",\"seq\":1,\"target\":\"\",\"sv\":0,"
                          "\"members\":[],\"tags\":[],\"summaries\":[\"xyz\"]}"}) {
    CHECK_FALSE(peers::DecodeMessage(bad).ok());
  }
}

// ---- membership ----

namespace {

// A tiny in-process fleet: every message is delivered at the next step unless its receiver is down.
struct MiniFleet {
  std::vector<std::unique_ptr<peers::GossipNode>> nodes;
  std::vector<bool> up;
  // What each node's Receive returned, in order.
  std::vector<std::vector<peers::TagUpdate>> learned, withdrawn;
  uint64_t now = 0;
  explicit MiniFleet(int n) : learned(n), withdrawn(n) {
    for (int i = 0; i < n; ++i) {
      nodes.emplace_back();
      up.push_back(true);
      Restart(i, KeyFor("n" + std::to_string(i)), 1);
    }
  }
  // A (re)started node n<i> with `key`.
  void Restart(int i, std::shared_ptr<const peers::Signer> key, uint64_t incarnation) {
    std::string name = "n" + std::to_string(i);
    nodes[i] = std::make_unique<peers::GossipNode>(
        peers::MemberRecord{name, i < 2 ? "eu" : "us", "u://" + name, peers::MemberState::kAlive,
                            incarnation},
        std::vector<std::string>{"u://n0"}, peers::GossipOptions(), i + 1, std::move(key));
  }
  uint64_t Physical() const { return 1'790'000'000'000 + now; }
  void Run(uint64_t ms) {
    for (uint64_t end = now + ms; now < end; now += 10) {
      std::vector<peers::Envelope> all;
      for (size_t i = 0; i < nodes.size(); ++i) {
        if (!up[i]) continue;
        nodes[i]->Tick(now);
        for (auto& e : nodes[i]->TakeOutbox()) all.push_back(std::move(e));
      }
      for (auto& e : all) {
        size_t to = std::stoul(e.to_url.substr(5));
        if (!up[to]) continue;
        peers::GossipNode::Learned l = nodes[to]->Receive(e.message, now, Physical());
        learned[to].insert(learned[to].end(), l.tags.begin(), l.tags.end());
        withdrawn[to].insert(withdrawn[to].end(), l.withdrawn.begin(), l.withdrawn.end());
      }
    }
  }
  peers::MemberState StateOf(int viewer, int member) {
    return nodes[viewer]->Find("n" + std::to_string(member))->record.state;
  }
};

}  // namespace

TEST_CASE("membership: join through a seed, crash -> suspect -> dead, refutation, graceful leave") {
  CHECK(peers::MemberRecord{"a", "", "u", peers::MemberState::kSuspect, 3}.Supersedes(
      {"a", "", "u", peers::MemberState::kAlive, 3}));
  CHECK(peers::MemberRecord{"a", "", "u", peers::MemberState::kAlive, 4}.Supersedes(
      {"a", "", "u", peers::MemberState::kDead, 3}));
  CHECK_FALSE(peers::MemberRecord{"a", "", "u", peers::MemberState::kAlive, 3}.Supersedes(
      {"a", "", "u", peers::MemberState::kSuspect, 3}));

  MiniFleet f(5);
  f.Run(5000);
  for (auto& n : f.nodes) CHECK(n->live_count() == 4);
  const peers::Member* m = f.nodes[0]->Find("n1");
  REQUIRE(m);
  CHECK(m->record.region == "eu");
  CHECK(m->rtt_ms >= 0);  // probed directly at least once

  // n4 crashes: everyone declares it dead within the detection bound.
  f.up[4] = false;
  uint64_t bound = peers::DeadDetectionBoundMs(peers::GossipOptions(), 5);
  f.Run(bound);
  for (int i = 0; i < 4; ++i) CHECK(f.StateOf(i, 4) == peers::MemberState::kDead);
  // It comes back with the same incarnation: it hears it is dead and refutes.
  f.up[4] = true;
  f.Run(12000);
  for (int i = 0; i < 4; ++i) CHECK(f.StateOf(i, 4) == peers::MemberState::kAlive);
  CHECK(f.nodes[4]->self().incarnation > 1);
  CHECK(f.nodes[4]->stats().refutations >= 1);

  // Graceful leave: left everywhere, never probed again.
  f.nodes[3]->Leave();
  f.Run(3000);
  for (int i = 0; i < 3; ++i) CHECK(f.StateOf(i, 3) == peers::MemberState::kLeft);
  for (int i = 0; i < 3; ++i) CHECK(f.nodes[i]->live_count() == 3);
}

TEST_CASE("tags: recorded, pushed, never rolled back; future updates refused and counted") {
  MiniFleet f(4);
  f.Run(3000);
  peers::TagKey key{"docker.io", "library/app", "latest"};
  f.nodes[0]->RecordTag(key, DigestOf("v1"), 1'790'000'000'000 + f.now);
  f.Run(1000);
  for (auto& n : f.nodes) CHECK(n->tags().Find(key)->digest == DigestOf("v1"));
  // Each node is told once, by the Receive that changed its table.
  const std::vector<peers::TagUpdate>& seen = f.learned[3];
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].version.origin == "n0");
  // A newer change elsewhere wins; re-recording the same digest is not a change.
  f.nodes[2]->RecordTag(key, DigestOf("v2"), 1'790'000'000'000 + f.now);
  uint64_t applied = f.nodes[2]->stats().tags_applied;
  f.nodes[2]->RecordTag(key, DigestOf("v2"), 1'790'000'000'000 + f.now);
  CHECK(f.nodes[2]->stats().tags_applied == applied);
  f.Run(1000);
  for (auto& n : f.nodes) CHECK(n->tags().Find(key)->digest == DigestOf("v2"));
  // An old version arriving late changes nothing.
  peers::Message late;
  late.type = peers::MessageType::kPush;
  late.from = "n1";
  late.tags.push_back(seen[0]);
  CHECK(f.nodes[3]->Receive(late, f.now, 1'790'000'000'000 + f.now).empty());
  CHECK(f.nodes[3]->tags().Find(key)->digest == DigestOf("v2"));
  // Beyond the skew bound (signed by its origin, so only the time is wrong): refused and counted.
  late.tags[0].version = {DigestOf("v3"), {1'790'000'000'000 + f.now + 61000, 0}, "n1", ""};
  late.tags[0].version.signature = KeyFor("n1")->Sign(late.tags[0].SignedForm());
  CHECK(f.nodes[3]->Receive(late, f.now, 1'790'000'000'000 + f.now).empty());
  CHECK(f.nodes[3]->tags().Find(key)->digest == DigestOf("v2"));
  CHECK(f.nodes[3]->stats().tags_refused_future == 1);
}

TEST_CASE(
    "hostile members: an HLC that could not be honest is refused; later real changes still apply") {
  HybridLogicalClock c(1000);
  // The wrap attack: logical = 2^32-1 would make the next timestamp order older.
  CHECK_FALSE(c.Observe({5000, UINT32_MAX}, 5000));
  CHECK_FALSE(c.Observe({5000, peers::kMaxHlcLogical + 1}, 5000));
  CHECK(c.Observe({5000, peers::kMaxHlcLogical}, 5000));
  peers::HlcTimestamp next = c.Now(5000);  // carries into the wall time, never wraps
  CHECK(peers::HlcTimestamp{5000, peers::kMaxHlcLogical} < next);
  CHECK(next.logical <= peers::kMaxHlcLogical);

  MiniFleet f(3);
  f.Run(3000);
  peers::TagKey key{"docker.io", "library/app", "latest"};
  peers::Message evil;
  evil.type = peers::MessageType::kPush;
  evil.from = "n1";
  evil.tags.push_back({key, {DigestOf("evil"), {1'790'000'000'000 + f.now, UINT32_MAX}, "n1", ""}});
  evil.tags[0].version.signature =
      KeyFor("n1")->Sign(evil.tags[0].SignedForm());  // n1 lies about its own clock
  CHECK(f.nodes[2]->Receive(evil, f.now, 1'790'000'000'000 + f.now).empty());
  CHECK(f.nodes[2]->tags().Find(key) == nullptr);
  CHECK(f.nodes[2]->stats().tags_refused_invalid == 1);
  f.nodes[0]->RecordTag(key, DigestOf("real"), 1'790'000'000'000 + f.now);
  f.Run(1000);
  for (auto& n : f.nodes) CHECK(n->tags().Find(key)->digest == DigestOf("real"));
}

TEST_CASE(
    "hostile members: a forged left record cannot evict a node; the member table is bounded") {
  MiniFleet f(3);
  f.Run(3000);
  // "n2 left" at incarnation 2^64-1: beyond any honest incarnation, refused.
  peers::Message forged;
  forged.type = peers::MessageType::kPush;
  forged.from = "n1";
  forged.members.push_back({"n2", "us", "u://n2", peers::MemberState::kLeft, UINT64_MAX});
  f.nodes[0]->Receive(forged, f.now, 1'790'000'000'000 + f.now);
  f.nodes[2]->Receive(forged, f.now, 1'790'000'000'000 + f.now);
  CHECK(f.StateOf(0, 2) == peers::MemberState::kAlive);
  CHECK(f.nodes[0]->stats().members_refused == 1);
  CHECK(f.nodes[2]->self().state == peers::MemberState::kAlive);
  // Declared dead at its current incarnation (anyone may: that is failure
  // detection; the record is n2's own, signed by n2): the node itself refutes.
  uint64_t inc = f.nodes[2]->self().incarnation;
  forged.members[0] = f.nodes[2]->self();
  forged.members[0].state = peers::MemberState::kDead;
  f.nodes[0]->Receive(forged, f.now, 1'790'000'000'000 + f.now);
  CHECK(f.StateOf(0, 2) == peers::MemberState::kDead);
  f.Run(12000);
  CHECK(f.StateOf(0, 2) == peers::MemberState::kAlive);
  CHECK(f.nodes[2]->self().incarnation > inc);

  // 20,000 fake members in one message: at most max_members are kept.
  peers::GossipOptions o;
  o.max_members = 100;
  // (Signed, each by its own key: the stand-in signer, so 20,000 keys cost nothing.)
  peers::GossipNode small({"self", "eu", "u://self", peers::MemberState::kAlive, 1}, {}, o, 7,
                          std::make_shared<testing_keys::FakeSigner>("self"));
  peers::Message flood;
  flood.type = peers::MessageType::kPush;
  flood.from = "x";
  for (int i = 0; i < 20000; ++i) {
    std::string name = "fake" + std::to_string(i);
    testing_keys::FakeSigner key(name);
    peers::MemberRecord r{name, "eu", "u://fake", peers::MemberState::kAlive, 1, key.public_key(),
                          ""};
    r.signature = key.Sign(r.SignedForm());
    flood.members.push_back(r);
  }
  small.Receive(flood, 0, 1'790'000'000'000);
  CHECK(small.members().size() == 100);
  CHECK(small.stats().members_refused == 19900);
}

TEST_CASE("node keys: Ed25519 signatures verify only for their key and message") {
  auto a = KeyFor("a"), b = KeyFor("b");
  CHECK(a->public_key().size() == 64);
  CHECK(a->public_key() != b->public_key());
  CHECK(KeyFor("a")->public_key() == a->public_key());  // one seed, one key
  std::string sig = a->Sign("hello");
  CHECK(sig.size() == 128);
  CHECK(a->Verify(a->public_key(), "hello", sig));
  CHECK(b->Verify(a->public_key(), "hello", sig));  // anyone can check
  CHECK_FALSE(a->Verify(b->public_key(), "hello", sig));
  CHECK_FALSE(a->Verify(a->public_key(), "hellO", sig));
  std::string flipped = sig;
  flipped[10] = flipped[10] == '0' ? '1' : '0';
  CHECK_FALSE(a->Verify(a->public_key(), "hello", flipped));
  for (const std::string& bad : {std::string(), std::string("zz"), sig.substr(2), sig + "00"})
    CHECK_FALSE(a->Verify(a->public_key(), "hello", bad));
  CHECK_FALSE(a->Verify("", "hello", sig));
  std::string upper = a->public_key();
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  CHECK_FALSE(a->Verify(upper, "hello", sig));
  CHECK(peers::Ed25519Signer::ParseSeed(std::string(64, 'a')).ok());
  CHECK_FALSE(peers::Ed25519Signer::ParseSeed(std::string(63, 'a')).ok());
  CHECK_FALSE(peers::Ed25519Signer::ParseSeed(std::string(64, 'g')).ok());
}

TEST_CASE("hostile members: a member speaks only for itself") {
  MiniFleet f(3);
  f.Run(3000);
  peers::TagKey key{"docker.io", "library/app", "latest"};
  auto n1 = KeyFor("n1");  // what the attacker holds: its own key (and the cluster key)
  auto push = [&](peers::Message m) {
    m.type = peers::MessageType::kPush;
    m.from = "n1";
    f.nodes[2]->Receive(m, f.now, f.Physical());
  };
  // A tag update in n0's name, signed with n1's key: refused.
  peers::Message m;
  m.tags.push_back({key, {DigestOf("evil"), {f.Physical(), 0}, "n0", ""}});
  m.tags[0].version.signature = n1->Sign(m.tags[0].SignedForm());
  push(m);
  CHECK(f.nodes[2]->tags().Find(key) == nullptr);
  CHECK(f.nodes[2]->stats().tags_refused_signature == 1);
  // n0's real update, relayed with its digest changed: refused.
  peers::TagUpdate real = f.nodes[0]->RecordTag(key, DigestOf("real"), f.Physical());
  m.tags = {real};
  m.tags[0].version.digest = DigestOf("evil");
  push(m);
  CHECK(f.nodes[2]->tags().Find(key) == nullptr);
  CHECK(f.nodes[2]->stats().tags_refused_signature == 2);
  // Relayed unchanged: applied (whoever carries it).
  m.tags = {real};
  push(m);
  REQUIRE(f.nodes[2]->tags().Find(key));
  CHECK(f.nodes[2]->tags().Find(key)->digest == DigestOf("real"));
  // n1 moving a tag in its own name is allowed: that is what revocation is for.
  peers::TagKey own{"docker.io", "library/other", "latest"};
  m.tags = {{own, {DigestOf("n1's"), {f.Physical(), 0}, "n1", ""}}};
  m.tags[0].version.signature = n1->Sign(m.tags[0].SignedForm());
  push(m);
  CHECK(f.nodes[2]->tags().Find(own));

  // n0's record re-pointed at n1's address, at a higher incarnation, signed
  // by n1 with n0's key claimed or with n1's own: both refused.
  peers::MemberRecord r0 = f.nodes[0]->self();
  peers::MemberRecord moved = r0;
  moved.url = "u://n1";
  moved.incarnation += 5;
  moved.signature = n1->Sign(moved.SignedForm());
  peers::MemberRecord rekeyed = moved;
  rekeyed.public_key = n1->public_key();
  rekeyed.signature = n1->Sign(rekeyed.SignedForm());
  // And "n0 left", with the signature of n0's alive record.
  peers::MemberRecord left = r0;
  left.state = peers::MemberState::kLeft;
  uint64_t refused = f.nodes[2]->stats().records_refused_signature;
  m = {};
  m.members = {moved, rekeyed, left};
  push(m);
  CHECK(f.nodes[2]->stats().records_refused_signature == refused + 3);
  CHECK(f.nodes[2]->Find("n0")->record.url == "u://n0");
  CHECK(f.nodes[2]->Find("n0")->record.state == peers::MemberState::kAlive);
  CHECK(*f.nodes[2]->KeyOf("n0") == KeyFor("n0")->public_key());
  // The same forgeries about n2 itself do not make it refute.
  peers::MemberRecord self2 = f.nodes[2]->self();
  self2.state = peers::MemberState::kLeft;
  self2.incarnation += 1;
  m.members = {self2};
  push(m);
  CHECK(f.nodes[2]->stats().refutations == 0);
  // A member record for a new name that is not signed by the key it carries: refused.
  peers::MemberRecord ghost{
      "ghost", "eu", "u://ghost", peers::MemberState::kAlive, 1, KeyFor("ghost")->public_key(), ""};
  ghost.signature = n1->Sign(ghost.SignedForm());
  m.members = {ghost};
  push(m);
  CHECK(f.nodes[2]->Find("ghost") == nullptr);
}

TEST_CASE(
    "revocation: peers remove drops a node and its tags fleet-wide; it may rejoin with a new key") {
  MiniFleet f(4);
  f.Run(4000);
  for (auto& n : f.nodes) REQUIRE(n->live_count() == 3);
  peers::TagKey key{"docker.io", "library/app", "latest"}, other{"docker.io", "library/app", "v1"};
  f.nodes[3]->RecordTag(key, DigestOf("from n3"), f.Physical());
  f.nodes[1]->RecordTag(other, DigestOf("from n1"), f.Physical());
  f.Run(1000);
  for (auto& n : f.nodes) REQUIRE(n->tags().Find(key));
  const std::vector<peers::TagUpdate>& withdrawn = f.withdrawn[2];

  CHECK(f.nodes[0]->Revoke("n0").code() == util::Code::kInvalidArgument);
  CHECK(f.nodes[0]->Revoke("nobody").code() == util::Code::kNotFound);
  std::string old_key = *f.nodes[0]->KeyOf("n3");
  std::vector<peers::TagUpdate> withdrawn_by_revoker;
  REQUIRE(f.nodes[0]->Revoke("n3", &withdrawn_by_revoker).ok());
  REQUIRE(withdrawn_by_revoker.size() == 1);  // the revoker is told as it revokes
  CHECK(withdrawn_by_revoker[0].key == key);
  f.Run(3000);
  for (int i = 0; i < 3; ++i) {
    CHECK(f.nodes[i]->Find("n3") == nullptr);
    CHECK(f.nodes[i]->live_count() == 2);
    CHECK(f.nodes[i]->tags().Find(key) == nullptr);  // what n3 said is withdrawn
    CHECK(f.nodes[i]->tags().Find(other));           // what others said stays
    CHECK(f.nodes[i]->revocations().size() == 1);
  }
  REQUIRE(withdrawn.size() == 1);
  CHECK(withdrawn[0].key == key);
  CHECK(f.nodes[3]->revoked());  // it heard, and stopped

  // The old key restarted (a new incarnation): refused everywhere.
  f.Restart(3, KeyFor("n3"), 100);
  f.Run(3000);
  for (int i = 0; i < 3; ++i) CHECK(f.nodes[i]->Find("n3") == nullptr);
  CHECK(f.nodes[0]->stats().records_refused_signature > 0);  // n0: the seed it joins through
  // A new key under the same name joins.
  f.Restart(3, KeyFor("n3 rebuilt"), 200);
  f.Run(4000);
  for (int i = 0; i < 3; ++i) {
    REQUIRE(f.nodes[i]->Find("n3"));
    CHECK(*f.nodes[i]->KeyOf("n3") != old_key);
    CHECK(f.nodes[i]->live_count() == 3);
  }
  // A revocation signed by someone else's key is refused.
  peers::Revocation fake{"n0", *f.nodes[1]->KeyOf("n0"), "n2", ""};
  fake.signature = KeyFor("n1")->Sign(fake.SignedForm());
  peers::Message m;
  m.type = peers::MessageType::kPush;
  m.from = "n1";
  m.revocations = {fake};
  f.nodes[1]->Receive(m, f.now, f.Physical());
  CHECK(f.nodes[1]->Find("n0"));
  CHECK(f.nodes[1]->stats().revocations_refused == 1);
}

// ---- routing a miss ----

namespace {

std::vector<peers::RouteCandidate> RoutingMembers() {
  return {
      {"eu-2", "eu", "http://eu-2", true, 2, false, false},
      {"us-1", "us", "http://us-1", true, 80, true, false},
      {"us-2", "us", "http://us-2", true, 75, false, false},
      {"ap-1", "ap", "http://ap-1", true, 150, true, false},
      {"ap-2", "ap", "http://ap-2", true, -1, true, false},
      {"sa-1", "sa", "http://sa-1", false, 20, true, false},  // dead
      {"af-1", "af", "http://af-1", true, 10, true, true},    // quarantined
  };
}

std::string StepNames(const peers::RoutePlan& plan) {
  std::string s;
  for (const auto& st : plan.steps)
    s += st.name +
         (st.hop == peers::Hop::kPeer ? "" : std::string("(") + peers::HopName(st.hop) + ")") + " ";
  return s;
}

// A digest whose region owner (over eu-1 and eu-2) and first two fleet
// owners (over the live members and eu-1) are the ones asked for ("": any).
util::Digest DigestOwnedBy(const std::string& region_owner, const std::string& f1,
                           const std::string& f2 = "") {
  std::vector<std::string> fleet = {"eu-1", "eu-2", "us-1", "us-2", "ap-1", "ap-2", "af-1"};
  for (int i = 0; i < 100000; ++i) {
    util::Digest d = DigestOf("d" + std::to_string(i));
    if (peers::RendezvousOwner(d, {"eu-1", "eu-2"}) != (region_owner == "eu-1" ? 0 : 1)) continue;
    std::vector<int> top = peers::RendezvousRanking(d, fleet, 2);
    if ((f1.empty() || fleet[top[0]] == f1) && (f2.empty() || fleet[top[1]] == f2)) return d;
  }
  FAIL("no such digest");
  return {};
}

}  // namespace

TEST_CASE(
    "rendezvous: a ranking starts with the owner; removing the owner promotes the runner-up") {
  std::vector<std::string> nodes = {"a", "b", "c", "d", "e"};
  for (int i = 0; i < 50; ++i) {
    util::Digest d = DigestOf("r" + std::to_string(i));
    std::vector<int> top = peers::RendezvousRanking(d, nodes, 3);
    REQUIRE(top.size() == 3);
    CHECK(top[0] == peers::RendezvousOwner(d, nodes));
    std::vector<std::string> rest;
    for (size_t j = 0; j < nodes.size(); ++j)
      if (static_cast<int>(j) != top[0]) rest.push_back(nodes[j]);
    CHECK(rest[peers::RendezvousOwner(d, rest)] == nodes[top[1]]);
  }
  CHECK(peers::RendezvousRanking(DigestOf("x"), {"a"}, 2).size() == 1);
  CHECK(peers::RendezvousOwner(DigestOf("x"), {}) == -1);
}

TEST_CASE("routing, region scope: region owner first, then siblings, then other regions by RTT") {
  using peers::Hop;
  using peers::Scope;
  auto members = RoutingMembers();
  util::Digest theirs = DigestOwnedBy("eu-2", ""), ours = DigestOwnedBy("eu-1", "");
  auto plan = peers::PlanRoute("eu-1", "eu", members, theirs, Hop::kClient, 3, Scope::kRegion);
  CHECK(StepNames(plan) == "eu-2(owner) us-1 ap-1 ap-2 ");
  CHECK(plan.role == Hop::kClient);
  CHECK(plan.upstream);
  plan = peers::PlanRoute("eu-1", "eu", members, ours, Hop::kClient, 3, Scope::kRegion);
  CHECK(StepNames(plan) == "us-1 ap-1 ap-2 ");
  CHECK(plan.role == Hop::kOwner);  // we own it in our region
  CHECK(StepNames(peers::PlanRoute("eu-1", "eu", members, ours, Hop::kClient, 1, Scope::kRegion)) ==
        "us-1 ");
  // As the owner, we never forward to an owner again.
  CHECK(StepNames(peers::PlanRoute("eu-1", "eu", members, theirs, Hop::kOwner, 3,
                                   Scope::kRegion)) == "us-1 ap-1 ap-2 ");
  plan = peers::PlanRoute("eu-1", "eu", members, theirs, Hop::kPeer, 3, Scope::kRegion);
  CHECK(plan.steps.empty());
  CHECK_FALSE(plan.upstream);
  // A sibling that has it comes before other regions.
  members[0].may_have = true;
  CHECK(StepNames(peers::PlanRoute("eu-1", "eu", members, ours, Hop::kClient, 3, Scope::kRegion)) ==
        "eu-2 us-1 ap-1 ap-2 ");
}

TEST_CASE(
    "routing, fleet scope: the fleet owner and its runner-up before other regions and the "
    "upstream") {
  using peers::Hop;
  using peers::Scope;
  auto members = RoutingMembers();
  // A client request: the region owner, then (if it fails) the fleet owners.
  util::Digest d = DigestOwnedBy("eu-2", "us-2", "ap-1");
  auto plan = peers::PlanRoute("eu-1", "eu", members, d, Hop::kClient, 3, Scope::kFleet);
  CHECK(StepNames(plan) == "eu-2(owner) us-2(fleet) ap-1(fleet) us-1 ap-2 ");
  CHECK(plan.role == Hop::kClient);
  // Asked as the region owner: straight to the fleet owners.
  plan = peers::PlanRoute("eu-1", "eu", members, d, Hop::kOwner, 3, Scope::kFleet);
  CHECK(StepNames(plan) == "us-2(fleet) ap-1(fleet) us-1 ap-2 ");
  CHECK(plan.role == Hop::kOwner);
  // A remote member that may have it and is nearer than the fleet owner goes first.
  d = DigestOwnedBy("eu-2", "ap-1", "us-2");
  CHECK(StepNames(peers::PlanRoute("eu-1", "eu", members, d, Hop::kOwner, 3, Scope::kFleet)) ==
        "us-1 ap-1(fleet) us-2(fleet) ap-2 ");
  // We are the fleet owner: no owner is asked, whatever the hop; the
  // upstream comes after the holders by summary.
  d = DigestOwnedBy("eu-1", "eu-1");
  for (Hop hop : {Hop::kClient, Hop::kOwner, Hop::kFleet}) {
    plan = peers::PlanRoute("eu-1", "eu", members, d, hop, 3, Scope::kFleet);
    CHECK(StepNames(plan) == "us-1 ap-1 ap-2 ");
    CHECK(plan.role == Hop::kFleet);
    CHECK(plan.upstream);
  }
  // The region owner is also the fleet owner: asked once, as the region owner
  // (it promotes itself).
  d = DigestOwnedBy("eu-2", "eu-2", "us-1");
  CHECK(StepNames(peers::PlanRoute("eu-1", "eu", members, d, Hop::kClient, 3, Scope::kFleet)) ==
        "eu-2(owner) us-1(fleet) ap-1 ap-2 ");
  // A quarantined fleet owner is skipped; its runner-up is still asked.
  d = DigestOwnedBy("eu-2", "af-1", "us-2");
  CHECK(StepNames(peers::PlanRoute("eu-1", "eu", members, d, Hop::kOwner, 3, Scope::kFleet)) ==
        "us-2(fleet) us-1 ap-1 ap-2 ");
  // Hops parse back.
  for (Hop h : {Hop::kClient, Hop::kOwner, Hop::kFleet, Hop::kPeer}) {
    Hop back = Hop::kClient;
    CHECK(peers::ParseHop(peers::HopName(h), &back));
    CHECK(back == h);
  }
  Hop unused;
  CHECK_FALSE(peers::ParseHop("leader", &unused));
}

TEST_CASE("membership: RTT is smoothed for display and a recent minimum for routing") {
  peers::Member m;
  CHECK(m.rtt_ms < 0);
  CHECK(m.min_rtt_ms() < 0);
  m.AddRttSample(240);  // a cold connection: handshake included
  CHECK(m.rtt_ms == 240);
  for (int i = 0; i < 3; ++i) m.AddRttSample(80);
  CHECK(m.min_rtt_ms() == 80);
  CHECK(m.rtt_ms > 150);  // the smoothed value still remembers the slow start
  for (int i = 0; i < 8; ++i) m.AddRttSample(95);
  CHECK(m.min_rtt_ms() == 95);  // old samples leave the window
}

TEST_CASE("summary book: only region-mates, only newer versions, at most once per interval") {
  std::unordered_map<std::string, peers::Member> members;
  auto add = [&](const std::string& name, const std::string& region, peers::MemberState state,
                 uint64_t version) {
    peers::Member m;
    m.record.name = name;
    m.record.region = region;
    m.record.state = state;
    m.summary_version = version;
    members[name] = m;
  };
  add("eu-2", "eu", peers::MemberState::kAlive, 3);
  add("us-1", "us", peers::MemberState::kAlive,
      5);  // another region: located through fleet owners instead
  add("eu-3", "eu", peers::MemberState::kDead, 7);   // dead: not asked
  add("eu-4", "eu", peers::MemberState::kAlive, 0);  // announced no summary yet
  peers::SummaryBook book(5000);
  CHECK(book.Due("eu", members, 1000) == std::vector<std::string>{"eu-2"});
  CHECK(book.Due("eu", members, 1100).empty());  // being fetched
  CHECK(book.Fetched("eu-2", 3));
  CHECK(book.version("eu-2") == 3);
  CHECK(book.Due("eu", members, 1200).empty());  // up to date
  members["eu-2"].summary_version = 4;
  CHECK(book.Due("eu", members, 2000).empty());  // newer, but fetched less than 5 s ago
  CHECK(book.Due("eu", members, 6000) == std::vector<std::string>{"eu-2"});
  book.FetchFailed("eu-2");
  CHECK(book.Due("eu", members, 7000).empty());  // retried after the interval, not in a loop
  CHECK(book.Due("eu", members, 11000) == std::vector<std::string>{"eu-2"});
  CHECK_FALSE(book.Fetched("eu-2", 2));  // an older answer changes nothing
  CHECK(book.version("eu-2") == 3);
  book.Forget("eu-2");
  CHECK(book.version("eu-2") == 0);
  CHECK(book.version("us-1") == 0);
}

TEST_CASE("region locations: the well-known cloud region names, exactly as spelled") {
  auto je = peers::KnownRegionLocation("japaneast");
  REQUIRE(je);
  CHECK(je->latitude == Approx(35.7));
  CHECK(je->longitude == Approx(139.8));
  CHECK(peers::KnownRegionLocation("us-east-1")->longitude == Approx(-77.4));   // AWS
  CHECK(peers::KnownRegionLocation("europe-west4")->latitude == Approx(53.4));  // GCP
  CHECK(peers::KnownRegionLocation("af-south-1"));  // the first name in the table
  CHECK(peers::KnownRegionLocation("westus3"));     // the last
  CHECK_FALSE(peers::KnownRegionLocation("JapanEast"));
  CHECK_FALSE(peers::KnownRegionLocation("lab-basement"));
  CHECK_FALSE(peers::KnownRegionLocation(""));
}
