// UpstreamSet: the configured upstream registries, and choosing one for a request.
//
// Owns one upstream::Session per [[upstream]], with its TLS contexts and
// credentials (the password is read from `password_file` at start). Docker Hub's aliases
// (docker.io, index.docker.io, registry-1.docker.io) name one upstream, and a
// single-component Docker Hub repository ("alpine") means "library/alpine".
// Loop thread only.
#pragma once

#include <uv.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "src/upstream/session.h"

#include <nlohmann/json.hpp>

namespace registry {

struct Upstream {
  config::Upstream config;
  std::unique_ptr<upstream::Session> session;  // auth, redirects, connections
  bool is_docker_hub = false;
  // What fills and manifests ask: the session (a test's stand-in in unit tests).
  upstream::Requester* requester = nullptr;
};

// "index.docker.io" and "registry-1.docker.io" -> "docker.io"; others unchanged.
std::string CanonicalRegistry(const std::string& name);

class UpstreamSet {
 public:
  // Errors: InvalidArgument when an upstream's CA file cannot be used.
  static util::Result<std::unique_ptr<UpstreamSet>> Create(
      io::Env env, const std::vector<config::Upstream>& upstreams);
  // The upstream named by `ns` (Docker Hub aliases allowed), or the default
  // when `ns` is empty; nullptr when `ns` names no configured upstream, or
  // is empty and no upstream is the default (the own registry answers then).
  Upstream* Select(const std::optional<std::string>& ns);
  // The repository as the upstream knows it ("alpine" -> "library/alpine" on Docker Hub).
  static std::string UpstreamName(const Upstream& up, const std::string& name);
  void Shutdown();
  // The upstreams' families for /metrics: requests by registry and status
  // code, failures, duration, up, and Docker Hub's remaining pulls.
  void Describe(util::Exposition* out) const;
  // For `georeg status`: each upstream's address, health and counters.
  nlohmann::json StatusJson() const;

 private:
  UpstreamSet() = default;
  std::vector<std::unique_ptr<Upstream>> upstreams_;  // [0] is the default
};

}  // namespace registry
