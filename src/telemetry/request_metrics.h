// RequestMetrics: what the HTTP server's finished requests add up to, for
// /metrics: requests by kind and result, their duration by kind, and the
// response bytes by where they came from.
//
// Fed one RequestRecord per request (ServerOptions::on_done); every label
// value comes from the short lists of http::Outcome, never from the
// request itself. The result of a request is "error" when it was answered
// 4xx/5xx or cut off, else the handler's result ("hit", "miss", "stale",
// "coalesced", "peer"), else "ok". Known kind/result pairs are written from
// the start at 0, so a rate() over them never begins with a gap.
// Pure: no I/O. Loop thread only.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "src/http/server.h"
#include "util/metrics.h"

namespace telemetry {

class RequestMetrics {
 public:
  RequestMetrics();
  void Record(const http::RequestRecord& r);
  // Writes georeg_requests_total, georeg_request_duration_seconds and
  // georeg_response_bytes_total.
  void Describe(util::Exposition* out) const;

  static std::string_view ResultOf(const http::RequestRecord& r);

 private:
  std::map<std::pair<std::string, std::string>, uint64_t> requests_;  // (kind, result)
  std::map<std::string, util::Histogram> duration_;                   // by kind
  std::map<std::string, uint64_t> bytes_;                             // by source
};

}  // namespace telemetry
