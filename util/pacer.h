// Pacer: keeps background transfers (a replication's pre-fetch) under a
// byte rate on average. A transfer starts only when the bytes of earlier
// ones have been paid for at `rate` bytes per second; its own bytes are
// charged when it ends (its size is not always known at its start), so a
// single transfer is never slowed, the ones after it wait. Pure: time is
// passed in, in ms. Rate 0 means no cap.
#pragma once

#include <algorithm>
#include <cstdint>

namespace util {

class Pacer {
 public:
  explicit Pacer(uint64_t bytes_per_second = 0) : rate_(bytes_per_second) {}
  bool Ready(uint64_t now_ms) const { return rate_ == 0 || now_ms >= paid_until_ms_; }
  // How long until Ready (0 when it is).
  uint64_t WaitMs(uint64_t now_ms) const { return Ready(now_ms) ? 0 : paid_until_ms_ - now_ms; }
  void Charge(uint64_t bytes, uint64_t now_ms) {
    if (rate_ == 0) return;
    // Idle time earns no credit beyond the present: a burst after a quiet
    // hour is still paced.
    paid_until_ms_ = std::max(paid_until_ms_, now_ms) + bytes * 1000 / rate_;
  }
  uint64_t rate() const { return rate_; }

 private:
  uint64_t rate_;
  uint64_t paid_until_ms_ = 0;
};

}  // namespace util
