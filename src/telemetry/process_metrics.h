// The usual process_* metrics of Prometheus clients, read from /proc/self
// when scraped: CPU seconds, resident and virtual memory, open and maximum
// file descriptors, start time. Linux only; a file that cannot be read
// leaves its metrics out (never a made-up 0).
#pragma once

#include <cstdint>
#include <string_view>

#include "util/metrics.h"

namespace telemetry {

struct ProcStat {
  uint64_t utime_ticks = 0, stime_ticks = 0, start_ticks = 0;  // clock ticks; start: since boot
  uint64_t vsize_bytes = 0, rss_pages = 0;
};

// Parses the one line of /proc/<pid>/stat (the command, field 2, may hold
// spaces and parentheses: fields are counted after its last ')'). Pure.
bool ParseProcStat(std::string_view line, ProcStat* out);
// "btime N" of /proc/stat: boot time in seconds since the epoch. Pure.
bool ParseBootTime(std::string_view proc_stat, uint64_t* out);

void DescribeProcess(util::Exposition* out);

}  // namespace telemetry
