// Region-mates' summaries (peers/summary_book.h).
#include "peers/summary_book.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "peers/bloom.h"
#include "util/sha256.h"

using util::DigestOf;

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
