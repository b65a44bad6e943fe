#include "src/registry/upstream_set.h"

#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>

#include "util/log.h"

namespace registry {

std::string CanonicalRegistry(const std::string& name) {
  if (name == "index.docker.io" || name == "registry-1.docker.io") return "docker.io";
  return name;
}

util::Result<std::unique_ptr<UpstreamSet>> UpstreamSet::Create(
    io::Env env, const std::vector<config::Upstream>& upstreams) {
  std::unique_ptr<UpstreamSet> set(new UpstreamSet());
  for (const config::Upstream& u : upstreams) {
    upstream::SessionOptions opts;
    opts.name = CanonicalRegistry(u.registry);
    opts.endpoint.scheme = u.scheme;
    opts.endpoint.host = u.host;
    opts.endpoint.port = u.port;
    opts.endpoint.connect_timeout_ms = u.connect_timeout_ms;
    opts.endpoint.response_timeout_ms = u.response_timeout_ms;
    opts.endpoint.deadline_ms = u.request_deadline_ms;
    opts.allow_private_addresses = u.allow_private_addresses;
    std::vector<std::string> own_cas, other_cas;
    if (!u.ca_file.empty()) {
      own_cas = {u.ca_file};
      other_cas = {upstream::kSystemCaBundle, u.ca_file};
    }
    if (u.scheme == "https") {
      auto tls = upstream::TlsContext::Create(own_cas, u.insecure_skip_verify);
      if (!tls.ok())
        return util::Status::InvalidArgument("upstream " + u.registry + ": " +
                                             tls.status().message());
      opts.endpoint.tls = *tls;
      if (u.insecure_skip_verify)
        LOG_WARN("upstream %s: insecure_skip_verify is on: its TLS certificates are NOT checked",
                 u.registry.c_str());
    }
    // Token realms and redirect targets: the system CAs (and ca_file), always verified.
    auto other = upstream::TlsContext::Create(other_cas, false);
    if (!other.ok())
      return util::Status::InvalidArgument("upstream " + u.registry + ": " +
                                           other.status().message());
    opts.other_hosts_tls = *other;
    if (!u.username.empty()) {
      opts.username = u.username;
      if (!u.password_file.empty()) {
        std::ifstream in(u.password_file);
        if (!in)
          return util::Status::InvalidArgument("upstream " + u.registry +
                                               ": cannot read password_file");
        std::getline(in, opts.password);  // the first line; a trailing newline is not part of it
        while (!opts.password.empty() &&
               (opts.password.back() == '\r' || opts.password.back() == ' '))
          opts.password.pop_back();
      }
    }
    auto up = std::make_unique<Upstream>();
    up->config = u;
    up->config.registry = opts.name;
    up->is_docker_hub = up->config.registry == "docker.io";
    up->session = std::make_unique<upstream::Session>(env, std::move(opts));
    up->requester = up->session.get();
    set->upstreams_.push_back(std::move(up));
  }
  return set;
}

Upstream* UpstreamSet::Select(const std::optional<std::string>& ns) {
  if (!ns)
    return !upstreams_.empty() && upstreams_[0]->config.is_default ? upstreams_[0].get() : nullptr;
  std::string want = CanonicalRegistry(*ns);
  for (auto& u : upstreams_)
    if (u->config.registry == want) return u.get();
  return nullptr;
}

std::string UpstreamSet::UpstreamName(const Upstream& up, const std::string& name) {
  if (up.is_docker_hub && name.find('/') == std::string::npos) return "library/" + name;
  return name;
}

void UpstreamSet::Shutdown() {
  for (auto& u : upstreams_) u->session->Shutdown();
}

}  // namespace registry

namespace registry {

namespace {
// "100;w=21600" (Docker Hub's ratelimit-remaining) -> 100.
std::optional<double> LeadingNumber(const std::string& v) {
  size_t i = 0;
  while (i < v.size() && v[i] >= '0' && v[i] <= '9') ++i;
  if (i == 0) return std::nullopt;
  return std::strtod(v.substr(0, i).c_str(), nullptr);
}
}  // namespace

void UpstreamSet::Describe(util::Exposition* out) const {
  using T = util::Exposition::Type;
  out->Family("georeg_upstream_requests_total", T::kCounter,
              "Responses from upstream registries (their token, redirect and storage hosts "
              "included), by status code.");
  for (const auto& u : upstreams_) {
    std::map<int, uint64_t> codes = u->session->stats().responses;
    codes.try_emplace(200, 0);
    for (const auto& [code, n] : codes)
      out->Sample({{"registry", u->config.registry}, {"code", std::to_string(code)}}, double(n));
  }
  out->Family("georeg_upstream_failures_total", T::kCounter,
              "Upstream requests that ended without a final response (connection, TLS, deadline, "
              "auth, redirect).");
  for (const auto& u : upstreams_)
    out->Sample({{"registry", u->config.registry}}, double(u->session->stats().failures));
  out->Family("georeg_upstream_request_duration_seconds", T::kHistogram,
              "Time from an upstream request's start to its final response head (or its failure).");
  for (const auto& u : upstreams_)
    out->Sample({{"registry", u->config.registry}}, u->session->stats().duration);
  out->Family("georeg_upstream_up", T::kGauge,
              "1 when the upstream's last request got a final answer below 500 (and before any "
              "request), else 0.");
  for (const auto& u : upstreams_)
    out->Sample({{"registry", u->config.registry}}, u->session->stats().up ? 1 : 0);
  out->Family("georeg_upstream_ratelimit_remaining", T::kGauge,
              "Pulls left in the upstream's rate-limit window (Docker Hub's ratelimit-remaining), "
              "once it sent one.");
  for (const auto& u : upstreams_) {
    const auto& rl = u->session->ratelimit_remaining();
    if (!rl) continue;
    if (auto v = LeadingNumber(*rl)) out->Sample({{"registry", u->config.registry}}, *v);
  }
}

nlohmann::json UpstreamSet::StatusJson() const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& u : upstreams_) {
    const upstream::SessionStats& st = u->session->stats();
    uint64_t responses = 0;
    for (const auto& [code, n] : st.responses) responses += n;
    const auto& rl = u->session->ratelimit_remaining();
    out.push_back({{"registry", u->config.registry},
                   {"url", u->config.url},
                   {"default", u->config.is_default},
                   {"up", st.up},
                   {"responses", responses},
                   {"failures", st.failures},
                   {"ratelimit_remaining", rl ? nlohmann::json(*rl) : nlohmann::json(nullptr)}});
  }
  return out;
}

}  // namespace registry
