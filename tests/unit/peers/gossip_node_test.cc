// A gossip node (peers/gossip_node.h): membership, tags, hostile members,
// revocation.
#include "peers/gossip_node.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "peers/hlc.h"
#include "peers/message_codec.h"
#include "peers/tag_table.h"
#include "tests/unit/test_signers.h"
#include "util/sha256.h"

using peers::HlcTimestamp;
using peers::HybridLogicalClock;
using testing_keys::KeyFor;
using util::DigestOf;

namespace {

// A tiny in-process fleet: every message is delivered at the next step unless its receiver is down.
struct MiniFleet {
  std::vector<std::unique_ptr<peers::GossipNode>> nodes;
  std::vector<bool> up;
  std::vector<uint64_t> start_at;  // a node neither ticks nor hears before its start
  std::vector<std::vector<std::string>> seeds;
  uint64_t rng_base;
  // What each node's Receive returned, in order.
  std::vector<std::vector<peers::TagUpdate>> learned, withdrawn;
  uint64_t now = 0;
  // Anti-entropy traffic delivered: sync and sync-reply messages, and the
  // member records they carried.
  uint64_t syncs = 0, sync_records = 0;
  // `n` nodes seeded with `seed_urls`, node i starting at `starts[i]` (all
  // at 0 by default); `rng_base` varies the nodes' random choices.
  explicit MiniFleet(int n, std::vector<std::string> seed_urls = {"u://n0"},
                     std::vector<uint64_t> starts = {}, uint64_t rng_base = 1)
      : start_at(std::move(starts)),
        seeds(n, seed_urls),
        rng_base(rng_base),
        learned(n),
        withdrawn(n) {
    start_at.resize(n, 0);
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
        seeds[i], peers::GossipOptions(), rng_base + i, std::move(key));
  }
  bool Running(size_t i) const { return up[i] && now >= start_at[i]; }
  uint64_t Physical() const { return 1'790'000'000'000 + now; }
  void Run(uint64_t ms) {
    for (uint64_t end = now + ms; now < end; now += 10) {
      std::vector<peers::Envelope> all;
      for (size_t i = 0; i < nodes.size(); ++i) {
        if (!Running(i)) continue;
        nodes[i]->Tick(now);
        for (auto& e : nodes[i]->TakeOutbox()) all.push_back(std::move(e));
      }
      for (auto& e : all) {
        size_t to = std::stoul(e.to_url.substr(5));
        if (!Running(to)) continue;
        if (e.message.type == peers::MessageType::kSync ||
            e.message.type == peers::MessageType::kSyncReply) {
          ++syncs;
          sync_records += e.message.members.size();
        }
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

TEST_CASE("membership: a fleet started at once through three seeds is one cluster, every run") {
  // Issue 22: 48 daemons started together with seeds n0, n1, n2 formed two
  // clusters that never merged. A seed others reach first knows live
  // members at once and, before, never asked another seed. Here the nodes
  // start within 0.3 s of each other, in 30 orders.
  const int n = 24;
  const peers::GossipOptions opt;
  const uint64_t bound = 2 * 3 * opt.sync_interval_ms + peers::TagConvergenceBoundMs(opt, n, 10);
  int converged = 0;
  for (uint64_t run = 0; run < 30; ++run) {
    std::mt19937_64 rng(run);
    std::vector<uint64_t> starts(n);
    for (auto& s : starts) s = rng() % 300;
    MiniFleet f(n, {"u://n0", "u://n1", "u://n2"}, starts, 1 + run * n);
    f.Run(bound);
    bool one = true;
    for (auto& node : f.nodes) one = one && node->live_count() == static_cast<size_t>(n - 1);
    converged += one;
  }
  CHECK(converged == 30);
}

TEST_CASE("membership: two clusters formed apart merge once a node has a seed in the other") {
  // n0..n9 know seed n0, n10..n19 seed n10: two clusters. n15 restarts with
  // both seeds; whichever it joins through, it reaches the other in turn.
  for (uint64_t run = 0; run < 10; ++run) {
    const int n = 20;
    MiniFleet f(n, {}, {}, 1 + run * n);
    for (int i = 0; i < n; ++i) f.seeds[i] = {i < 10 ? "u://n0" : "u://n10"};
    for (int i = 0; i < n; ++i) f.Restart(i, KeyFor("n" + std::to_string(i)), 1);
    f.Run(8000);
    for (int i = 0; i < n; ++i) REQUIRE(f.nodes[i]->live_count() == 9);
    f.seeds[15] = {"u://n10", "u://n0"};
    f.Restart(15, KeyFor("n15"), 2);
    const peers::GossipOptions opt;
    f.Run(2 * 2 * opt.sync_interval_ms + peers::TagConvergenceBoundMs(opt, n, 10));
    for (int i = 0; i < n; ++i) CHECK(f.nodes[i]->live_count() == static_cast<size_t>(n - 1));
  }
}

TEST_CASE("anti-entropy: a converged fleet's syncs carry no member records but the sender's") {
  // Issue 22: every sync carried the whole membership, so idle gossip per
  // node grew with the fleet. Now only records of differing buckets travel.
  MiniFleet f(12);
  f.Run(8000);
  for (auto& n : f.nodes) REQUIRE(n->live_count() == 11);
  f.syncs = f.sync_records = 0;
  f.Run(20000);
  CHECK(f.syncs >= 12 * 2);          // every node synced (and was answered)
  CHECK(f.sync_records == f.syncs);  // each carried its sender's record only
  // A node restarted with an empty view gets everyone through one exchange.
  f.Restart(5, KeyFor("n5"), 2);
  f.Run(3000);
  CHECK(f.nodes[5]->live_count() == 11);
  // An earlier release's sync (no bucket summaries) is answered with the
  // whole membership, as it expects.
  peers::Message old;
  old.type = peers::MessageType::kSync;
  old.from = "n1";
  old.members = {f.nodes[1]->self()};
  f.nodes[0]->Receive(old, f.now, f.Physical());
  size_t records = 0;
  for (auto& e : f.nodes[0]->TakeOutbox())
    if (e.message.type == peers::MessageType::kSyncReply) records = e.message.members.size();
  CHECK(records == 12);
}

TEST_CASE("membership: changed members are reported once each, not every member every tick") {
  MiniFleet f(4);
  f.Run(3000);
  auto first = f.nodes[0]->TakeChangedMembers();
  std::sort(first.begin(), first.end());
  CHECK(first == std::vector<std::string>{"n1", "n2", "n3"});  // they appeared
  f.Run(2000);
  CHECK(f.nodes[0]->TakeChangedMembers().empty());  // a quiet fleet: nothing to look at
  f.up[3] = false;
  f.Run(peers::DeadDetectionBoundMs(peers::GossipOptions(), 4));
  auto later = f.nodes[0]->TakeChangedMembers();
  CHECK(std::count(later.begin(), later.end(), "n3") == 1);  // suspect, then dead: once
  CHECK(f.StateOf(0, 3) == peers::MemberState::kDead);
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
