// push::Collectable: which own blobs the garbage collection takes.
#include <catch2/catch.hpp>

#include <string>

#include "push/gc.h"

namespace {
const std::string kD1 = "sha256:" + std::string(64, '1');
const std::string kD2 = "sha256:" + std::string(64, '2');
const std::string kD3 = "sha256:" + std::string(64, '3');
}  // namespace

TEST_CASE("gc: own blobs no manifest references go once older than the grace period") {
  auto d = [](const std::string& s) { return *util::Digest::Parse(s); };
  std::vector<push::OwnBlob> blobs = {{d(kD1), 1000}, {d(kD2), 1000}, {d(kD3), 9000}};
  // kD2 is referenced; kD3 is too young; kD1 goes.
  auto out = push::Collectable(blobs, {d(kD2)}, 10'000, 5'000);
  REQUIRE(out.size() == 1);
  CHECK(out[0] == d(kD1));
  CHECK(push::Collectable(blobs, {}, 10'000, 1'000).size() == 3);
  // A clock that went back keeps everything.
  CHECK(push::Collectable(blobs, {}, 500, 0).empty());
}
