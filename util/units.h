// Parsers for the value forms every config key and flag uses:
//   sizes      "512MiB", "20GiB", "1.5GiB", "4096" (bytes), also KB/MB/GB (powers of 1000)
//   durations  "250ms", "90s", "5m", "2h", "7d"
//   addresses  "HOST:PORT", "[v6]:PORT"
// Pure functions; errors are InvalidArgument with a message naming the problem.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "util/status.h"

namespace util {

Result<uint64_t> ParseSize(std::string_view text);
Result<uint64_t> ParseDurationMs(std::string_view text);

struct HostPort {
  std::string host;  // without brackets
  uint16_t port = 0;
  std::string ToString() const;  // brackets added back for IPv6
};
// REQUIRES nothing; Errors: InvalidArgument. Port 0 is allowed (bind to any).
Result<HostPort> ParseHostPort(std::string_view text);

std::string FormatSize(uint64_t bytes);  // "20GiB", "1536KiB", "7B"

}  // namespace util
