#include <catch2/catch.hpp>

#include "src/oci/reference.h"
#include "util/digest.h"

TEST_CASE("repository names follow the distribution grammar") {
  for (const char* good : {"a", "library/alpine", "team/app", "a.b", "a_b", "a__b", "a-b", "a---b",
                           "a/b/c/d", "0123", "x9/y_z.w-v"}) {
    INFO(good);
    CHECK(oci::ValidRepositoryName(good));
  }
  for (const char* bad : {"", "A", "Library/alpine", "a//b", "/a", "a/", "a..b", "a___b", "-a",
                          "a-", "a_", ".a", "a b", "a%2fb", "a._b", "a:b", "../etc"}) {
    INFO(bad);
    CHECK_FALSE(oci::ValidRepositoryName(bad));
  }
  CHECK(oci::ValidRepositoryName(std::string(255, 'a')));
  CHECK_FALSE(oci::ValidRepositoryName(std::string(256, 'a')));
}

TEST_CASE("tags follow the distribution grammar") {
  for (const char* good : {"latest", "3.19", "_x", "A-b.C_d", "v1.0.0-rc1"})
    CHECK(oci::ValidTag(good));
  for (const char* bad : {"", ".x", "-x", "a/b", "a:b", "a b", "é"})
    CHECK_FALSE(oci::ValidTag(bad));
  CHECK(oci::ValidTag(std::string(128, 'a')));
  CHECK_FALSE(oci::ValidTag(std::string(129, 'a')));
}

TEST_CASE("digests: sha256 with 64 lowercase hex only") {
  std::string hex(64, 'a');
  auto d = util::Digest::Parse("sha256:" + hex);
  REQUIRE(d.ok());
  CHECK(d->ToString() == "sha256:" + hex);
  CHECK(d->bytes[0] == 0xaa);
  CHECK_FALSE(util::Digest::Parse("sha256:" + std::string(64, 'A')).ok());
  CHECK_FALSE(util::Digest::Parse("sha256:" + std::string(63, 'a')).ok());
  CHECK_FALSE(util::Digest::Parse("sha256:" + std::string(65, 'a')).ok());
  CHECK_FALSE(util::Digest::Parse("sha256:" + std::string(63, 'a') + "g").ok());
  CHECK_FALSE(util::Digest::Parse("sha512:" + std::string(128, 'a')).ok());
  CHECK_FALSE(util::Digest::Parse(hex).ok());
  CHECK_FALSE(util::Digest::Parse("SHA256:" + hex).ok());
  CHECK_FALSE(util::Digest::Parse(":" + hex).ok());
}
