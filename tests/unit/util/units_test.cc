// Sizes, durations and addresses as the config spells them (util/units.h).
#include "util/units.h"

#include <catch2/catch.hpp>

TEST_CASE("sizes, durations and addresses") {
  CHECK(*util::ParseSize("512MiB") == 512ull << 20);
  CHECK(*util::ParseSize("20GiB") == 20ull << 30);
  CHECK(*util::ParseSize("1.5GiB") == 3ull << 29);
  CHECK(*util::ParseSize("4096") == 4096);
  CHECK(*util::ParseSize("1GB") == 1000000000ull);
  CHECK_FALSE(util::ParseSize("20 parsecs").ok());
  CHECK_FALSE(util::ParseSize("-1GiB").ok());
  CHECK_FALSE(util::ParseSize("GiB").ok());
  CHECK(*util::ParseDurationMs("90s") == 90000);
  CHECK(*util::ParseDurationMs("5m") == 300000);
  CHECK(*util::ParseDurationMs("7d") == 7ull * 86400000);
  CHECK(*util::ParseDurationMs("250ms") == 250);
  CHECK_FALSE(util::ParseDurationMs("90").ok());
  CHECK_FALSE(util::ParseDurationMs("1w").ok());
  auto hp = util::ParseHostPort("127.0.0.1:5000");
  REQUIRE(hp.ok());
  CHECK(hp->host == "127.0.0.1");
  CHECK(hp->port == 5000);
  hp = util::ParseHostPort("[::1]:80");
  REQUIRE(hp.ok());
  CHECK(hp->host == "::1");
  CHECK(hp->ToString() == "[::1]:80");
  for (const char* bad :
       {"127.0.0.1", ":80", "host:", "host:99999", "host:8x", "::1:80", "[::1]80"}) {
    INFO(bad);
    CHECK_FALSE(util::ParseHostPort(bad).ok());
  }
  CHECK(util::FormatSize(20ull << 30) == "20GiB");
}
