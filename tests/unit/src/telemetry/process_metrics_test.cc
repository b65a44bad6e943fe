// /proc parsing for the process metrics (src/telemetry/process_metrics.h).
#include "src/telemetry/process_metrics.h"

#include <catch2/catch.hpp>

#include <string>

TEST_CASE("/proc parsing: a command with spaces and parentheses, and the boot time") {
  std::string stat =
      "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 3 0 12345 "
      "987654321 2048 "
      "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
  telemetry::ProcStat ps;
  REQUIRE(telemetry::ParseProcStat(stat, &ps));
  CHECK(ps.utime_ticks == 250);
  CHECK(ps.stime_ticks == 50);
  CHECK(ps.start_ticks == 12345);
  CHECK(ps.vsize_bytes == 987654321);
  CHECK(ps.rss_pages == 2048);
  CHECK_FALSE(telemetry::ParseProcStat("4242 (short) S 1 2 3", &ps));
  uint64_t btime = 0;
  REQUIRE(telemetry::ParseBootTime("cpu  1 2 3\nintr 5\nbtime 1796270000\nprocesses 9\n", &btime));
  CHECK(btime == 1796270000);
  CHECK_FALSE(telemetry::ParseBootTime("cpu 1\n", &btime));
}
