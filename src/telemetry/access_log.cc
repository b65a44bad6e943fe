#include "src/telemetry/access_log.h"

#include <charconv>
#include <cstdio>
#include <span>

#include "src/telemetry/request_metrics.h"

namespace telemetry {

namespace {
constexpr size_t kMaxPath = 256;
constexpr size_t kMaxNs = 64;

// Printable ASCII but space, kept; anything else becomes '?'.
void AppendClean(std::string* out, std::string_view s, size_t max) {
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    unsigned char c = s[i];
    *out += (c > 0x20 && c < 0x7f) ? char(c) : '?';
  }
  if (s.size() > max) *out += "...";
}
}  // namespace

std::string LoggedTarget(std::string_view target) {
  size_t q = target.find('?');
  std::string out;
  AppendClean(&out, target.substr(0, q), kMaxPath);
  if (q == std::string_view::npos) return out;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view param = query.substr(0, amp);
    if (param.rfind("ns=", 0) == 0) {
      out += "?ns=";
      AppendClean(&out, param.substr(3), kMaxNs);
      break;
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

void AccessLog::Add(const http::RequestRecord& r) {
  // The cluster's own chatter (several messages a second per peer) only at debug.
  util::LogLevel level =
      r.outcome.kind == "gossip" ? util::LogLevel::kDebug : util::LogLevel::kInfo;
  if (!util::LogEnabled(level)) return;
  // Formatted in place, once per request: numbers by to_chars, no strings
  // but the cleaned path.
  char status[16], bytes[24], ms[32];
  *std::to_chars(status, status + sizeof status - 1, r.status).ptr = 0;
  *std::to_chars(bytes, bytes + sizeof bytes - 1, r.body_bytes).ptr = 0;
  std::snprintf(ms, sizeof ms, "%llu.%03llu", (unsigned long long)(r.duration_us / 1000),
                (unsigned long long)(r.duration_us % 1000));
  std::string path = r.method.empty() ? std::string("-") : LoggedTarget(r.target);
  std::string_view ending = r.ending == http::RequestRecord::Ending::kEnded   ? ""
                            : r.ending == http::RequestRecord::Ending::kReset ? "reset"
                                                                              : "aborted";
  util::LogFieldView fields[] = {
      {"method", r.method.empty() ? std::string_view("-") : r.method.substr(0, 16)},
      {"path", path},
      {"status", status},
      {"bytes", bytes},
      {"kind", r.method.empty() ? std::string_view("other") : r.outcome.kind},
      {"result", RequestMetrics::ResultOf(r)},
      {"source", r.outcome.source.empty() ? std::string_view("-") : r.outcome.source},
      {"ms", ms},
      {"remote", r.remote.empty() ? std::string_view("-") : r.remote},
      {"end", ending},
  };
  util::AppendLogLine(&pending_, level, "access", std::span(fields, ending.empty() ? 9 : 10));
  if (pending_.size() >= kFlushBytes) Flush();
}

void AccessLog::Flush() {
  if (pending_.empty()) return;
  util::WriteLogLines(pending_);
  pending_.clear();
}

}  // namespace telemetry
