// Logging: one line per event on stderr.
//
// Formats: text, "TIME LEVEL message"; on the journal (stderr is the stream
// named by $JOURNAL_STREAM) "<N>LEVEL message" with the syslog priority N
// and no time (journald stamps lines itself); json, one object per line
// {"time","level","msg", fields...}. An error or warning whose text is the
// same as one logged in the last 10 s is held back and counted; the next
// time it is logged, the line says how many were held back.
//
// Thread-safe (a line is never split across write(2) calls, and batches go
// in pieces of at most PIPE_BUF). Never log credentials, tokens
// or signed URLs.
#pragma once

#include <cstdarg>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace util {

enum class LogLevel { kDebug = 0, kInfo, kWarn, kError };

enum class LogFormat { kText, kJson };

void SetLogLevel(LogLevel level);
bool ParseLogLevel(const char* name, LogLevel* level);
bool ParseLogFormat(const char* name, LogFormat* format);
// Also looks at $JOURNAL_STREAM (text on the journal gets priorities).
void SetLogFormat(LogFormat format);
bool LogEnabled(LogLevel level);
void Log(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
// A message with named fields: "message k=v k=v" as text, extra keys in json.
// Values are written as given (text: quoted when they hold a space or a quote).
using LogField = std::pair<const char*, std::string>;
void LogWithFields(LogLevel level, const std::string& message, const std::vector<LogField>& fields);
// For a caller that batches lines (the access log): appends the line
// LogWithFields would write, newline included, without the hold-back of
// repeated warnings; and one write(2) of whole lines to stderr.
using LogFieldView = std::pair<const char*, std::string_view>;
void AppendLogLine(std::string* out, LogLevel level, std::string_view message,
                   std::span<const LogFieldView> fields);
void WriteLogLines(std::string_view lines);
// How much of `lines` WriteLogLines puts in one write(2): whole lines, at
// most `max` bytes (PIPE_BUF, what a pipe writes atomically), or the first
// line alone when it is longer.
size_t LogWriteSize(std::string_view lines, size_t max);
// The journal's stream test, exposed for tests: `journal_stream` is
// $JOURNAL_STREAM ("DEV:INODE"), compared with stderr's device and inode.
bool IsJournalStream(const char* journal_stream, unsigned long long dev, unsigned long long ino);

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
