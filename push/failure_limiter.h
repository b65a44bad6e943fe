// FailureLimiter: at most N failed authentications per client address per
// minute; past that the address is refused without checking (429), so a
// password guesser gets N guesses a minute and never costs a bcrypt check
// beyond them.
//
// Pure (time passed in), bounded: at most `max_addresses` are tracked; when
// full, the entry whose window is oldest goes. Loop thread only.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

namespace push {

class FailureLimiter {
 public:
  FailureLimiter(uint64_t per_minute, size_t max_addresses = 10000)
      : per_minute_(per_minute), max_addresses_(max_addresses) {}
  // False while `addr` has used its failures of the current minute.
  bool Allowed(const std::string& addr, uint64_t now_ms) const;
  void Failed(const std::string& addr, uint64_t now_ms);
  size_t tracked() const { return entries_.size(); }

 private:
  struct Entry {
    uint64_t window_start_ms = 0;
    uint64_t failures = 0;
  };
  uint64_t per_minute_;
  size_t max_addresses_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace push
