#include <catch2/catch.hpp>

#include <algorithm>
#include <random>

#include "peers/hlc.h"
#include "peers/rendezvous.h"
#include "peers/tag_table.h"
#include "util/sha256.h"

using peers::HlcTimestamp;
using peers::HybridLogicalClock;

namespace {
util::Digest DigestOf(const std::string& s) { return util::Digest::FromRaw(util::Sha256::Of(s).data()); }
}  // namespace

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
  peers::TagVersion same_time_a{DigestOf("c"), {200, 0}, "a"}, same_time_z{DigestOf("d"), {200, 0}, "z"};
  CHECK_FALSE(t.Apply({k, same_time_a}));  // "a" < "n1"
  CHECK(t.Apply({k, same_time_z}));
  CHECK(t.Find(k)->digest == DigestOf("d"));
  CHECK_FALSE(t.Apply({k, same_time_z}));  // idempotent
}

TEST_CASE("tag table: any order of the same updates gives the same table and summaries") {
  std::vector<peers::TagUpdate> updates;
  for (int i = 0; i < 300; ++i) {
    peers::TagKey k{"r", "repo" + std::to_string(i % 40), "t" + std::to_string(i % 3)};
    updates.push_back({k, {DigestOf(std::to_string(i)), {uint64_t(1000 + i % 17), uint32_t(i % 5)},
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
    peers::TagUpdate u{{"r", "repo" + std::to_string(i), "latest"}, {DigestOf(std::to_string(i)), {10, 0}, "n1"}};
    a.Apply(u);
    b.Apply(u);
  }
  // b missed three updates (a partition), a missed one of b's.
  for (int i : {3, 77, 150}) a.Apply({{"r", "repo" + std::to_string(i), "latest"}, {DigestOf("new"), {20, 0}, "n2"}});
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
