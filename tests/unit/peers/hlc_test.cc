// The hybrid logical clock (peers/hlc.h).
#include "peers/hlc.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "util/sha256.h"

using peers::HlcTimestamp;
using peers::HybridLogicalClock;
using util::DigestOf;

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
