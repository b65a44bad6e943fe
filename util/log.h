// Logging: one line per event on stderr, "TIME LEVEL message".
//
// Thread-safe (each line is one write(2)). journald adds its own timestamps,
// but the tests read stderr directly, so lines carry UTC time in ms.
// Never log credentials or tokens.
#pragma once

#include <cstdarg>

namespace util {

enum class LogLevel { kDebug = 0, kInfo, kWarn, kError };

void SetLogLevel(LogLevel level);
bool ParseLogLevel(const char* name, LogLevel* level);
void Log(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace util

#define LOG_DEBUG(...) ::util::Log(::util::LogLevel::kDebug, __VA_ARGS__)
#define LOG_INFO(...) ::util::Log(::util::LogLevel::kInfo, __VA_ARGS__)
#define LOG_WARN(...) ::util::Log(::util::LogLevel::kWarn, __VA_ARGS__)
#define LOG_ERROR(...) ::util::Log(::util::LogLevel::kError, __VA_ARGS__)

namespace util {

// LogThrottle: one line per interval for an event that can repeat without
// bound (refused connections, limits reached), with the count of what
// happened since the last line. Pure: time passed in. Not thread-safe.
class LogThrottle {
 public:
  explicit LogThrottle(unsigned long long interval_ms = 60000) : interval_ms_(interval_ms) {}
  // Counts one event at `now_ms`. True when a line is due; then *count is the
  // number of events the line stands for (this one included).
  bool Note(unsigned long long now_ms, unsigned long long* count) {
    ++pending_;
    ++total_;
    if (logged_ && now_ms < last_ms_ + interval_ms_) return false;
    logged_ = true;
    last_ms_ = now_ms;
    *count = pending_;
    pending_ = 0;
    return true;
  }
  unsigned long long total() const { return total_; }

 private:
  unsigned long long interval_ms_;
  unsigned long long last_ms_ = 0;
  unsigned long long pending_ = 0;
  unsigned long long total_ = 0;
  bool logged_ = false;
};

}  // namespace util
