// Region-mates' summaries (peers/summary_book.h).
#include "peers/summary_book.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <set>
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

  // Watching only the members that changed: a name stays watched while it
  // may still become due, and leaves once there is nothing to fetch.
  peers::SummaryBook watched(5000);
  std::set<std::string> watch = {"eu-2", "us-1", "eu-3", "eu-4", "gone"};
  CHECK(watched.DueAmong("eu", members, &watch, 1000) == std::vector<std::string>{"eu-2"});
  CHECK(watch == std::set<std::string>{"eu-2"});  // being fetched
  CHECK(watched.DueAmong("eu", members, &watch, 1100).empty());
  CHECK(watched.Fetched("eu-2", 4));
  CHECK(watched.DueAmong("eu", members, &watch, 1200).empty());
  CHECK(watch.empty());  // up to date: no longer looked at
  members["eu-2"].summary_version = 5;
  watch.insert("eu-2");                                          // it announced a newer one
  CHECK(watched.DueAmong("eu", members, &watch, 2000).empty());  // too soon: still watched
  CHECK(watch == std::set<std::string>{"eu-2"});
  CHECK(watched.DueAmong("eu", members, &watch, 6000) == std::vector<std::string>{"eu-2"});
}
