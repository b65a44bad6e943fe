// The clock every piece of logic is handed (src/io/clock.h).
#include "src/io/clock.h"

#include <catch2/catch.hpp>

TEST_CASE("fake clock moves only when told") {
  io::FakeClock c(100, 5000);
  CHECK(c.NowMs() == 100);
  c.Advance(50);
  CHECK(c.NowMs() == 150);
  CHECK(c.WallMs() == 5050);
}
