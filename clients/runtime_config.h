// Container runtime set-up: the files that point containerd and podman
// (CRI-O, buildah: the same registries.conf) at the local georeg.
//
// containerd: one hosts.toml per registry (certs.d/<registry>/hosts.toml).
// Ours is the first [host] (tried first); host entries already in the file
// stay after it in their order, with their comments; the `server` line
// (where containerd goes when every host failed) is kept, or written as the
// registry's own address. containerd sends ?ns=<registry> to a host, which is
// how georeg knows the upstream.
//
// podman: one registries.conf.d drop-in with a [[registry]] per registry
// whose mirror is georeg under a path naming the registry
// ("127.0.0.1:5000/quay.io"): podman sends no ns=, the path says it.
//
// Pure: text in, text out; the CLI (src/runtime_cli.h) reads and writes files.
#pragma once

#include <string>
#include <vector>

#include "util/status.h"

namespace clients {

struct Mirror {
  std::string url;  // "http://127.0.0.1:5000"
  std::vector<std::string> capabilities = {"pull", "resolve"};
};

// Where containerd goes for `registry` without a mirror: Docker Hub's real
// host for docker.io, else https://<registry>.
std::string DefaultServer(const std::string& registry);

// The hosts.toml for `registry` with `mirror` first, from `existing` (the
// file's text, empty if none). Errors: InvalidArgument when `existing` is
// not TOML, or a capability is not pull, resolve or push.
util::Result<std::string> HostsToml(const std::string& registry, const Mirror& mirror,
                                    const std::string& existing);

struct PodmanRegistry {
  std::string name;
  bool insecure = false;  // the registry itself is plain http (its fallback location needs it too)
};
// The registries.conf.d drop-in: for each registry, georeg at
// `mirror_hostport` ("127.0.0.1:5000") under the registry's name, insecure
// (plain http on loopback). `own` registries (the fleet's own registry)
// are located at georeg itself, so pushes go there too.
std::string RegistriesConf(const std::vector<PodmanRegistry>& registries,
                           const std::vector<std::string>& own, const std::string& mirror_hostport);

}  // namespace clients
