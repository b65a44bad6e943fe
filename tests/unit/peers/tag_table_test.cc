// The fleet's tag table (peers/tag_table.h): last writer wins, any order
// converges, anti-entropy by buckets.
#include "peers/tag_table.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "peers/hlc.h"
#include "util/sha256.h"

using peers::HlcTimestamp;
using peers::HybridLogicalClock;
using util::DigestOf;

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
