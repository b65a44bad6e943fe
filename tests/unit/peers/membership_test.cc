// A member as the table keeps it (peers/membership.h): its RTT.
#include "peers/membership.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "util/sha256.h"

using util::DigestOf;

TEST_CASE("membership: RTT is smoothed for display and a recent minimum for routing") {
  peers::Member m;
  CHECK(m.rtt_ms < 0);
  CHECK(m.min_rtt_ms() < 0);
  m.AddRttSample(240);  // a cold connection: handshake included
  CHECK(m.rtt_ms == 240);
  for (int i = 0; i < 3; ++i) m.AddRttSample(80);
  CHECK(m.min_rtt_ms() == 80);
  CHECK(m.rtt_ms > 150);  // the smoothed value still remembers the slow start
  for (int i = 0; i < 8; ++i) m.AddRttSample(95);
  CHECK(m.min_rtt_ms() == 95);  // old samples leave the window
}
