// push::FailureLimiter: failed logins per address.
#include <catch2/catch.hpp>

#include <string>

#include "push/failure_limiter.h"

TEST_CASE("failure limiter: N failures a minute per address, bounded") {
  push::FailureLimiter lim(3, 2);
  for (int i = 0; i < 3; ++i) {
    CHECK(lim.Allowed("10.0.0.1", 1000));
    lim.Failed("10.0.0.1", 1000 + i);
  }
  CHECK_FALSE(lim.Allowed("10.0.0.1", 2000));
  CHECK(lim.Allowed("10.0.0.2", 2000));   // another address is not held back
  CHECK(lim.Allowed("10.0.0.1", 61000));  // a new minute
  lim.Failed("10.0.0.2", 3000);
  lim.Failed("10.0.0.3", 4000);  // over max_addresses: the oldest window goes
  CHECK(lim.tracked() == 2);
  CHECK(lim.Allowed("10.0.0.1", 5000));
}
