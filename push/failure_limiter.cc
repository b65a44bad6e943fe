#include "push/failure_limiter.h"

namespace push {

constexpr uint64_t kWindowMs = 60000;

bool FailureLimiter::Allowed(const std::string& addr, uint64_t now_ms) const {
  auto it = entries_.find(addr);
  if (it == entries_.end() || now_ms - it->second.window_start_ms >= kWindowMs) return true;
  return it->second.failures < per_minute_;
}

void FailureLimiter::Failed(const std::string& addr, uint64_t now_ms) {
  auto it = entries_.find(addr);
  if (it == entries_.end()) {
    if (entries_.size() >= max_addresses_) {
      // Expired windows go first; otherwise the oldest window.
      auto oldest = entries_.begin();
      for (auto e = entries_.begin(); e != entries_.end(); ++e)
        if (e->second.window_start_ms < oldest->second.window_start_ms) oldest = e;
      entries_.erase(oldest);
    }
    it = entries_.emplace(addr, Entry{now_ms, 0}).first;
  }
  if (now_ms - it->second.window_start_ms >= kWindowMs) it->second = Entry{now_ms, 0};
  ++it->second.failures;
}

}  // namespace push
