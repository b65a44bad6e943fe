#include "src/registry/upstream_set.h"

namespace registry {

std::string CanonicalRegistry(const std::string& name) {
  if (name == "index.docker.io" || name == "registry-1.docker.io") return "docker.io";
  return name;
}

UpstreamSet::UpstreamSet(uv_loop_t* loop, const std::vector<config::Upstream>& upstreams) {
  for (const config::Upstream& u : upstreams) {
    upstream::Endpoint ep;
    ep.scheme = u.scheme;
    ep.host = u.host;
    ep.port = u.port;
    ep.connect_timeout_ms = u.connect_timeout_ms;
    ep.response_timeout_ms = u.response_timeout_ms;
    auto up = std::make_unique<Upstream>();
    up->config = u;
    up->config.registry = CanonicalRegistry(u.registry);
    up->is_docker_hub = up->config.registry == "docker.io";
    up->client = std::make_unique<upstream::Client>(loop, ep);
    upstreams_.push_back(std::move(up));
  }
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
