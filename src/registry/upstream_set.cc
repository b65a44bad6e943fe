#include "src/registry/upstream_set.h"

#include "util/log.h"

namespace registry {

std::string CanonicalRegistry(const std::string& name) {
  if (name == "index.docker.io" || name == "registry-1.docker.io") return "docker.io";
  return name;
}

util::Result<std::unique_ptr<UpstreamSet>> UpstreamSet::Create(uv_loop_t* loop,
                                                               const std::vector<config::Upstream>& upstreams) {
  std::unique_ptr<UpstreamSet> set(new UpstreamSet());
  for (const config::Upstream& u : upstreams) {
    upstream::Endpoint ep;
    ep.scheme = u.scheme;
    ep.host = u.host;
    ep.port = u.port;
    ep.connect_timeout_ms = u.connect_timeout_ms;
    ep.response_timeout_ms = u.response_timeout_ms;
    if (u.scheme == "https") {
      auto tls = upstream::TlsContext::Create(u.ca_file, u.insecure_skip_verify);
      if (!tls.ok()) return util::Status::InvalidArgument("upstream " + u.registry + ": " + tls.status().message());
      ep.tls = *tls;
      if (u.insecure_skip_verify)
        LOG_WARN("upstream %s: insecure_skip_verify is on: its TLS certificates are NOT checked", u.registry.c_str());
    }
    auto up = std::make_unique<Upstream>();
    up->config = u;
    up->config.registry = CanonicalRegistry(u.registry);
    up->is_docker_hub = up->config.registry == "docker.io";
    up->client = std::make_unique<upstream::Client>(loop, ep);
    set->upstreams_.push_back(std::move(up));
  }
  return set;
}

Upstream* UpstreamSet::Select(const std::optional<std::string>& ns) {
  if (!ns) return upstreams_[0].get();
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
  for (auto& u : upstreams_) u->client->Shutdown();
}

}  // namespace registry
