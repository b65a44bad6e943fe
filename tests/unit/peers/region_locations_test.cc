// Cloud region names and where they are (peers/region_locations.h).
#include "peers/region_locations.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "util/sha256.h"

using util::DigestOf;

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
