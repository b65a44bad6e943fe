// Hybrid logical clock for ordering tag updates across nodes (docs/gossip.md).
//
// Pure: the physical time is passed in. Not thread-safe; one per node.
#pragma once

#include <cstdint>
#include <tuple>

namespace peers {

struct HlcTimestamp {
  uint64_t wall_ms = 0;
  uint32_t logical = 0;
  bool operator<(const HlcTimestamp& o) const { return std::tie(wall_ms, logical) < std::tie(o.wall_ms, o.logical); }
  bool operator==(const HlcTimestamp& o) const { return wall_ms == o.wall_ms && logical == o.logical; }
};

class HybridLogicalClock {
 public:
  // Timestamps from peers more than `max_skew_ms` ahead of our physical clock are refused.
  explicit HybridLogicalClock(uint64_t max_skew_ms) : max_skew_ms_(max_skew_ms) {}

  // A timestamp for a local event at physical time `physical_ms`; strictly
  // greater than every timestamp issued or observed before.
  HlcTimestamp Now(uint64_t physical_ms);

  // Merges a peer's timestamp. Returns false (and changes nothing) when it
  // is further ahead of `physical_ms` than the skew bound.
  bool Observe(const HlcTimestamp& remote, uint64_t physical_ms);

  const HlcTimestamp& last() const { return last_; }

 private:
  uint64_t max_skew_ms_;
  HlcTimestamp last_;
};

}  // namespace peers
