#include "peers/hlc.h"

#include <algorithm>

namespace peers {

HlcTimestamp HybridLogicalClock::Now(uint64_t physical_ms) {
  if (physical_ms > last_.wall_ms) {
    last_ = {physical_ms, 0};
  } else if (last_.logical >= kMaxHlcLogical) {
    last_ = {last_.wall_ms + 1, 0};  // carry: the counter never wraps
  } else {
    ++last_.logical;  // same millisecond, or the physical clock went back
  }
  return last_;
}

bool HybridLogicalClock::Observe(const HlcTimestamp& remote, uint64_t physical_ms) {
  if (remote.wall_ms > physical_ms + max_skew_ms_ || remote.logical > kMaxHlcLogical) return false;
  uint64_t wall = std::max({last_.wall_ms, remote.wall_ms, physical_ms});
  uint32_t logical = 0;
  if (wall == last_.wall_ms && wall == remote.wall_ms) {
    logical = std::max(last_.logical, remote.logical) + 1;
  } else if (wall == last_.wall_ms) {
    logical = last_.logical + 1;
  } else if (wall == remote.wall_ms) {
    logical = remote.logical + 1;
  }
  if (logical > kMaxHlcLogical) {
    wall += 1;  // carry, as Now() does
    logical = 0;
  }
  last_ = {wall, logical};
  return true;
}

}  // namespace peers
