#include "src/telemetry/access_log.h"

#include <cstdio>

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

std::vector<util::LogField> AccessFields(const http::RequestRecord& r) {
  char ms[32];
  std::snprintf(ms, sizeof ms, "%.3f", double(r.duration_us) / 1000.0);
  std::string_view ending = r.ending == http::RequestRecord::Ending::kEnded   ? ""
                            : r.ending == http::RequestRecord::Ending::kReset ? "reset"
                                                                              : "aborted";
  std::vector<util::LogField> f = {
      {"method", r.method.empty() ? std::string("-") : std::string(r.method.substr(0, 16))},
      {"path", r.method.empty() ? std::string("-") : LoggedTarget(r.target)},
      {"status", std::to_string(r.status)},
      {"bytes", std::to_string(r.body_bytes)},
      {"kind", std::string(r.method.empty() ? std::string_view("other") : r.outcome.kind)},
      {"result", std::string(RequestMetrics::ResultOf(r))},
      {"source", r.outcome.source.empty() ? std::string("-") : std::string(r.outcome.source)},
      {"ms", ms},
      {"remote", r.remote.empty() ? std::string("-") : std::string(r.remote)},
  };
  if (!ending.empty()) f.push_back({"end", std::string(ending)});
  return f;
}

void LogAccess(const http::RequestRecord& r) {
  // The cluster's own chatter (several messages a second per peer) only at debug.
  util::LogLevel level = r.outcome.kind == "gossip" ? util::LogLevel::kDebug : util::LogLevel::kInfo;
  if (!util::LogEnabled(level)) return;
  util::LogWithFields(level, "access", AccessFields(r));
}

}  // namespace telemetry
