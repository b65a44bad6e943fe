// util::Pacer: a byte-rate cap for the replicator's pre-fetches.
#include <catch2/catch.hpp>

#include "util/pacer.h"

TEST_CASE("pacer: later transfers wait for earlier bytes at the rate") {
  util::Pacer p(1 << 20);  // 1 MiB/s
  CHECK(p.Ready(0));
  p.Charge(2 << 20, 1000);  // 2 MiB done at t=1s: paid for at t=3s
  CHECK_FALSE(p.Ready(2999));
  CHECK(p.WaitMs(2000) == 1000);
  CHECK(p.Ready(3000));
  p.Charge(1 << 20, 10000);  // idle time earns no credit
  CHECK_FALSE(p.Ready(10999));
  CHECK(p.Ready(11000));
  util::Pacer off(0);
  off.Charge(1ull << 40, 0);
  CHECK(off.Ready(0));
}
