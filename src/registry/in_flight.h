// InFlightBytes: the memory the daemon holds for requests in flight, against
// one limit (`server.max_bytes_in_flight`).
//
// Counted: blob chunks a fill holds in memory (not yet in the cache, or,
// passing through, not yet sent to every client; a chunk is counted until
// its last holder, a socket write included, lets go) and manifest bodies
// being fetched. While the count is over the limit, new misses (a fill or a
// manifest fetch that would start) are answered 503 and counted; what runs
// goes on, each fill holding at most a few chunks, so the total stays near
// the limit whatever clients and upstreams do.
//
// Shared (shared_ptr) by the Service and every chunk it counts, so a chunk
// released after the Service is gone still has its counter. Loop thread only.
#pragma once

#include <cstdint>

namespace registry {

class InFlightBytes {
 public:
  explicit InFlightBytes(uint64_t limit) : limit_(limit) {}
  void Add(uint64_t n) { held_ += n; }
  void Sub(uint64_t n) { held_ -= n < held_ ? n : held_; }
  // A new miss may start. Counts the refusal when not.
  bool Admit() {
    if (held_ <= limit_) return true;
    ++refused_;
    return false;
  }
  uint64_t held() const { return held_; }
  uint64_t limit() const { return limit_; }
  uint64_t refused() const { return refused_; }

 private:
  uint64_t limit_;
  uint64_t held_ = 0;
  uint64_t refused_ = 0;
};

}  // namespace registry
