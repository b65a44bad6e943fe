// Hybrid logical clock for ordering tag updates across nodes (docs/gossip.md).
//
// Pure: the physical time is passed in. Not thread-safe; one per node.
#pragma once

#include <cstdint>
#include <tuple>

namespace peers {

// An honest clock's logical counter counts events within one millisecond of
// physical time it ran ahead of; Now() carries into the wall time before it
// gets anywhere near this, so a remote timestamp above it was made up (it
// would wrap later timestamps and make them order older).
constexpr uint32_t kMaxHlcLogical = 1u << 20;

struct HlcTimestamp {
  uint64_t wall_ms = 0;
  uint32_t logical = 0;
  bool operator<(const HlcTimestamp& o) const {
    return std::tie(wall_ms, logical) < std::tie(o.wall_ms, o.logical);
  }
  bool operator==(const HlcTimestamp& o) const {
    return wall_ms == o.wall_ms && logical == o.logical;
  }
};

class HybridLogicalClock {
 public:
  // Timestamps from peers more than `max_skew_ms` ahead of our physical clock are refused.
  explicit HybridLogicalClock(uint64_t max_skew_ms) : max_skew_ms_(max_skew_ms) {}

  // A timestamp for a local event at physical time `physical_ms`; strictly
  // greater than every timestamp issued or observed before.
  HlcTimestamp Now(uint64_t physical_ms);

  // Merges a peer's timestamp. Returns false (and changes nothing) when it
  // is further ahead of `physical_ms` than the skew bound, or its logical
  // counter is above kMaxHlcLogical: neither could have been produced honestly.
  bool Observe(const HlcTimestamp& remote, uint64_t physical_ms);

  const HlcTimestamp& last() const { return last_; }

 private:
  uint64_t max_skew_ms_;
  HlcTimestamp last_;
};

}  // namespace peers
