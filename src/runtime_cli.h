// `georeg containerd configure` and `georeg podman configure`: point the
// host's container runtime at the local georeg (docs/containerd.md).
//
// Both write their files atomically (a temporary file in the same
// directory, fsync, rename), print one line per file saying what changed,
// are idempotent (a second run changes nothing and says so), and never
// restart or signal the runtime: containerd reads hosts.toml at each pull,
// podman reads registries.conf.d at each command. Errors are one line on
// stderr and exit status 1.
#pragma once

#include <string>
#include <vector>

namespace runtime_cli {

struct Options {
  std::string config;                   // georeg's config: listen address, upstreams, own registry
  std::string endpoint;                 // the daemon's URL; default http://<server.listen>
  std::string dir;                      // certs.d, or registries.conf.d
  std::vector<std::string> registries;  // default: every upstream, and the own registry
  std::string capabilities = "pull,resolve";
};

int ContainerdConfigure(const Options& o);
int PodmanConfigure(const Options& o);

}  // namespace runtime_cli
