#include "util/log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <span>
#include <string_view>
#include <unordered_map>

#include "util/status.h"

namespace util {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<int> g_format{static_cast<int>(LogFormat::kText)};
std::atomic<bool> g_journal{false};
const char* kLevelNames[] = {"debug", "info", "warn", "error"};
}  // namespace

const char* CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "ok";
    case Code::kNotFound:
      return "not found";
    case Code::kInvalidArgument:
      return "invalid argument";
    case Code::kCorruption:
      return "corruption";
    case Code::kIoError:
      return "i/o error";
    case Code::kUnavailable:
      return "unavailable";
    case Code::kTimeout:
      return "timeout";
    case Code::kNoSpace:
      return "no space";
    case Code::kAborted:
      return "aborted";
    case Code::kInternal:
      return "internal error";
    case Code::kPermissionDenied:
      return "permission denied";
    case Code::kResourceExhausted:
      return "resource exhausted";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string out = CodeName(code_);
  if (!message_.empty()) out += ": " + message_;
  return out;
}

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }

bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

bool ParseLogLevel(const char* name, LogLevel* level) {
  for (int i = 0; i < 4; ++i) {
    if (std::strcmp(name, kLevelNames[i]) == 0) {
      *level = static_cast<LogLevel>(i);
      return true;
    }
  }
  return false;
}

bool ParseLogFormat(const char* name, LogFormat* format) {
  if (std::strcmp(name, "text") == 0) {
    *format = LogFormat::kText;
  } else if (std::strcmp(name, "json") == 0) {
    *format = LogFormat::kJson;
  } else {
    return false;
  }
  return true;
}

bool IsJournalStream(const char* journal_stream, unsigned long long dev, unsigned long long ino) {
  if (!journal_stream) return false;
  unsigned long long d = 0, i = 0;
  char tail = 0;
  if (std::sscanf(journal_stream, "%llu:%llu%c", &d, &i, &tail) != 2) return false;
  return d == dev && i == ino;
}

void SetLogFormat(LogFormat format) {
  g_format.store(static_cast<int>(format));
  struct stat st;
  g_journal.store(::fstat(STDERR_FILENO, &st) == 0 &&
                  IsJournalStream(std::getenv("JOURNAL_STREAM"), st.st_dev, st.st_ino));
}

namespace {

// Identical warnings and errors within kRepeatMs: the first is written, the
// rest are counted and reported with the next one written.
constexpr uint64_t kRepeatMs = 10'000;
constexpr size_t kMaxRemembered = 1024;
struct Repeat {
  uint64_t last_ms = 0;
  unsigned long long held = 0;
};
std::mutex g_repeat_mu;
std::unordered_map<size_t, Repeat> g_repeats;

uint64_t MonotonicMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// False when the line is held back; else *held is how many were since the last one written.
bool Admit(LogLevel level, std::string_view msg, unsigned long long* held) {
  *held = 0;
  if (level < LogLevel::kWarn) return true;
  size_t key = std::hash<std::string_view>()(msg) ^ static_cast<size_t>(level);
  uint64_t now = MonotonicMs();
  std::lock_guard<std::mutex> lock(g_repeat_mu);
  if (g_repeats.size() >= kMaxRemembered) {
    std::erase_if(g_repeats,
                  [now](const auto& kv) { return now - kv.second.last_ms >= kRepeatMs; });
    if (g_repeats.size() >= kMaxRemembered)
      g_repeats.clear();  // a flood of distinct lines: forget, never grow
  }
  auto [it, fresh] = g_repeats.try_emplace(key);
  if (!fresh && now - it->second.last_ms < kRepeatMs) {
    ++it->second.held;
    return false;
  }
  *held = fresh ? 0 : it->second.held;
  it->second = {now, 0};
  return true;
}

void AppendJsonString(std::string* out, std::string_view s) {
  *out += '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      *out += '\\';
      *out += char(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      *out += buf;
    } else {
      *out += char(c);
    }
  }
  *out += '"';
}

void AppendTextValue(std::string* out, std::string_view v) {
  bool quote = v.empty() || v.find_first_of(" \"") != std::string_view::npos;
  if (!quote) {
    *out += v;
    return;
  }
  *out += '"';
  for (char c : v) {
    if (c == '"' || c == '\\') *out += '\\';
    *out += c;
  }
  *out += '"';
}

// "YYYY-MM-DDTHH:MM:SS.mmmZ": the calendar part is computed again only when
// the second changes (one call per access line otherwise costs a gmtime_r
// and a snprintf). Per thread: no lock.
void AppendStamp(std::string* out) {
  thread_local time_t cached_sec = -1;
  thread_local char cached[80];
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (ts.tv_sec != cached_sec) {
    tm utc;
    gmtime_r(&ts.tv_sec, &utc);
    std::snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d.", utc.tm_year + 1900,
                  utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
    cached_sec = ts.tv_sec;
  }
  *out += cached;
  long ms = ts.tv_nsec / 1000000;
  char tail[5] = {char('0' + ms / 100), char('0' + ms / 10 % 10), char('0' + ms % 10), 'Z', 0};
  *out += tail;
}

void AppendLine(std::string* out, LogLevel level, std::string_view msg,
                std::span<const LogFieldView> fields, unsigned long long held) {
  static const char* kPriority[] = {"<7>", "<6>", "<4>", "<3>"};
  static const char* kPadded[] = {"debug ", "info  ", "warn  ", "error "};
  const char* name = kLevelNames[static_cast<int>(level)];
  if (g_format.load(std::memory_order_relaxed) == static_cast<int>(LogFormat::kJson)) {
    *out += "{\"time\":\"";
    AppendStamp(out);
    *out += "\",\"level\":\"";
    *out += name;
    *out += "\",\"msg\":";
    AppendJsonString(out, msg);
    for (const auto& [k, v] : fields) {
      *out += ',';
      AppendJsonString(out, k);
      *out += ':';
      AppendJsonString(out, v);
    }
    if (held) *out += ",\"held_back\":" + std::to_string(held);
    *out += '}';
  } else {
    if (g_journal.load(std::memory_order_relaxed)) {
      *out += kPriority[static_cast<int>(level)];
    } else {
      AppendStamp(out);
      *out += ' ';
    }
    *out += kPadded[static_cast<int>(level)];
    *out += msg;
    for (const auto& [k, v] : fields) {
      *out += ' ';
      *out += k;
      *out += '=';
      AppendTextValue(out, v);
    }
    if (held) *out += " (" + std::to_string(held) + " identical line(s) held back)";
  }
  *out += '\n';
}

void Emit(LogLevel level, std::string_view msg, std::span<const LogFieldView> fields) {
  unsigned long long held = 0;
  if (!Admit(level, msg, &held)) return;
  std::string line;
  line.reserve(msg.size() + 96);
  AppendLine(&line, level, msg, fields, held);
  WriteLogLines(line);
}

}  // namespace

void AppendLogLine(std::string* out, LogLevel level, std::string_view message,
                   std::span<const LogFieldView> fields) {
  AppendLine(out, level, message, fields, 0);
}

size_t LogWriteSize(std::string_view lines, size_t max) {
  if (lines.size() <= max) return lines.size();
  size_t cut = lines.rfind('\n', max - 1);
  if (cut != std::string_view::npos) return cut + 1;
  size_t end = lines.find('\n');  // one line longer than max: alone
  return end == std::string_view::npos ? lines.size() : end + 1;
}

void WriteLogLines(std::string_view lines) {
  // PIPE_BUF at a time, whole lines: a pipe (stderr under a supervisor)
  // takes such a write in one piece, so a line another thread writes
  // meanwhile lands between these lines, never inside one.
  while (!lines.empty()) {
    std::string_view piece = lines.substr(0, LogWriteSize(lines, PIPE_BUF));
    lines.remove_prefix(piece.size());
    while (!piece.empty()) {
      ssize_t n = ::write(STDERR_FILENO, piece.data(), piece.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // stderr failed: the rest is dropped (logging reports nothing)
      piece.remove_prefix(static_cast<size_t>(n));
    }
  }
}

void Log(LogLevel level, const char* fmt, ...) {
  if (!LogEnabled(level)) return;
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  int m = std::vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  size_t len = m < 0 ? 0 : std::min<size_t>(m, sizeof(msg) - 1);
  Emit(level, std::string_view(msg, len), {});
}

void LogWithFields(LogLevel level, const std::string& message,
                   const std::vector<LogField>& fields) {
  if (!LogEnabled(level)) return;
  std::vector<LogFieldView> views(fields.begin(), fields.end());
  Emit(level, message, views);
}

}  // namespace util
