// Rendezvous hashing (peers/rendezvous.h): who owns a digest.
#include "peers/rendezvous.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "util/sha256.h"

using util::DigestOf;

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
