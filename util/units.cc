#include "util/units.h"

#include <cmath>
#include <cstdlib>

namespace util {
namespace {

// Splits "12.5GiB" into 12.5 and "GiB". Refuses signs, exponents and empty numbers.
bool SplitNumber(std::string_view text, double* number, std::string_view* unit) {
  size_t i = 0;
  bool digits = false, dot = false;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c >= '0' && c <= '9') {
      digits = true;
    } else if (c == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
  }
  if (!digits) return false;
  std::string num(text.substr(0, i));
  *number = std::strtod(num.c_str(), nullptr);
  *unit = text.substr(i);
  while (!unit->empty() && unit->front() == ' ') unit->remove_prefix(1);
  return true;
}

}  // namespace

Result<uint64_t> ParseSize(std::string_view text) {
  double n;
  std::string_view unit;
  if (!SplitNumber(text, &n, &unit))
    return Status::InvalidArgument("size '" + std::string(text) + "' must be like \"512MiB\"");
  struct U {
    const char* name;
    double mult;
  };
  static const U kUnits[] = {{"", 1},          {"B", 1},
                             {"KiB", 1024.0},  {"MiB", 1 << 20},
                             {"GiB", 1 << 30}, {"TiB", 1099511627776.0},
                             {"KB", 1e3},      {"MB", 1e6},
                             {"GB", 1e9},      {"TB", 1e12},
                             {"K", 1024.0},    {"M", 1 << 20},
                             {"G", 1 << 30},   {"T", 1099511627776.0}};
  for (const U& u : kUnits) {
    if (unit == u.name) {
      double v = n * u.mult;
      if (v >= 1.8e19) return Status::InvalidArgument("size '" + std::string(text) + "' too large");
      return static_cast<uint64_t>(std::llround(v));
    }
  }
  return Status::InvalidArgument("size '" + std::string(text) +
                                 "' has an unknown unit (use B, KiB, MiB, GiB, TiB)");
}

Result<uint64_t> ParseDurationMs(std::string_view text) {
  double n;
  std::string_view unit;
  if (!SplitNumber(text, &n, &unit))
    return Status::InvalidArgument("duration '" + std::string(text) + "' must be like \"90s\"");
  double mult;
  if (unit == "ms")
    mult = 1;
  else if (unit == "s")
    mult = 1e3;
  else if (unit == "m")
    mult = 60e3;
  else if (unit == "h")
    mult = 3600e3;
  else if (unit == "d")
    mult = 86400e3;
  else
    return Status::InvalidArgument("duration '" + std::string(text) +
                                   "' needs a unit: ms, s, m, h or d");
  return static_cast<uint64_t>(std::llround(n * mult));
}

Result<HostPort> ParseHostPort(std::string_view text) {
  HostPort hp;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return Status::InvalidArgument("address '" + std::string(text) + "' must be [V6]:PORT");
    hp.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon)
      return Status::InvalidArgument("address '" + std::string(text) + "' must be HOST:PORT");
    hp.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
  }
  if (hp.host.empty())
    return Status::InvalidArgument("address '" + std::string(text) + "' has no host");
  if (port.empty() || port.size() > 5)
    return Status::InvalidArgument("address '" + std::string(text) + "' has a bad port");
  unsigned long p = 0;
  for (char c : port) {
    if (c < '0' || c > '9')
      return Status::InvalidArgument("address '" + std::string(text) + "' has a bad port");
    p = p * 10 + (c - '0');
  }
  if (p > 65535) return Status::InvalidArgument("address '" + std::string(text) + "' port > 65535");
  hp.port = static_cast<uint16_t>(p);
  return hp;
}

std::string HostPort::ToString() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

std::string FormatSize(uint64_t bytes) {
  static const char* kNames[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int i = 0;
  while (i < 4 && bytes >= 1024 && bytes % 1024 == 0) {
    bytes /= 1024;
    ++i;
  }
  return std::to_string(bytes) + kNames[i];
}

}  // namespace util
