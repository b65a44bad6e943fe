#include "src/telemetry/request_metrics.h"

namespace telemetry {

namespace {
constexpr const char* kCachedKinds[] = {"manifest", "blob"};
constexpr const char* kCacheResults[] = {"hit", "miss", "stale", "coalesced", "peer", "error"};
constexpr const char* kOtherKinds[] = {"base", "push", "tags", "api", "peer", "gossip"};
constexpr const char* kSources[] = {"cache", "peer", "upstream"};
}  // namespace

RequestMetrics::RequestMetrics() {
  for (const char* kind : kCachedKinds) {
    for (const char* result : kCacheResults) {
      // A blob is never served stale: its bytes cannot change.
      if (std::string_view(kind) == "blob" && std::string_view(result) == "stale") continue;
      requests_[{kind, result}] = 0;
    }
    duration_.emplace(kind, util::Histogram(util::Histogram::LatencyBounds()));
  }
  for (const char* kind : kOtherKinds) {
    requests_[{kind, "ok"}] = 0;
    requests_[{kind, "error"}] = 0;
  }
  for (const char* source : kSources) bytes_[source] = 0;
}

std::string_view RequestMetrics::ResultOf(const http::RequestRecord& r) {
  if (r.ending != http::RequestRecord::Ending::kEnded || r.status == 0 || r.status >= 400)
    return "error";
  return r.outcome.result.empty() ? std::string_view("ok") : r.outcome.result;
}

void RequestMetrics::Record(const http::RequestRecord& r) {
  std::string kind(r.method.empty() ? std::string_view("other") : r.outcome.kind);
  ++requests_[{kind, std::string(ResultOf(r))}];
  auto it = duration_.find(kind);
  if (it == duration_.end())
    it = duration_.emplace(kind, util::Histogram(util::Histogram::LatencyBounds())).first;
  it->second.Observe(double(r.duration_us) / 1e6);
  if (!r.outcome.source.empty()) bytes_[std::string(r.outcome.source)] += r.body_bytes;
}

void RequestMetrics::Describe(util::Exposition* out) const {
  using T = util::Exposition::Type;
  out->Family(
      "georeg_requests_total", T::kCounter,
      "Requests answered, by kind (manifest, blob, push, tags, base, api, peer, ...) and result "
      "(hit, miss, stale, coalesced, peer, ok, error).");
  for (const auto& [key, n] : requests_)
    out->Sample({{"kind", key.first}, {"result", key.second}}, double(n));
  out->Family("georeg_request_duration_seconds", T::kHistogram,
              "Time from a request's head to the end of its response (for a blob, the whole body), "
              "by kind.");
  for (const auto& [kind, h] : duration_) out->Sample({{"kind", kind}}, h);
  out->Family(
      "georeg_response_bytes_total", T::kCounter,
      "Response body bytes sent to clients, by where they came from (cache, peer, upstream).");
  for (const auto& [source, n] : bytes_) out->Sample({{"source", source}}, double(n));
}

}  // namespace telemetry
