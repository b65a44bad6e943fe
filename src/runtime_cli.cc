#include "src/runtime_cli.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "clients/runtime_config.h"
#include "config/config.h"
#include "src/node_api.h"

namespace runtime_cli {

namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "georeg: %s\n", message.c_str());
  return 1;
}

struct Target {
  std::string endpoint;  // "http://127.0.0.1:5000"
  std::string hostport;  // "127.0.0.1:5000"
  std::vector<std::string> upstreams, own;
  std::vector<std::string> plain_http;  // upstreams reached over http
};

util::Result<Target> Resolve(const Options& o) {
  config::Config cfg = config::Defaults();
  if (!o.config.empty()) {
    auto parsed = config::LoadFile(o.config);
    if (!parsed.ok()) return parsed.status();
    cfg = std::move(*parsed);
  }
  Target t;
  // Where the daemon is, as every CLI command finds it (a wildcard listener on loopback).
  auto url = node_api::EndpointOf(o.endpoint, o.config);
  if (!url.ok() || url->scheme != "http" || (url->path != "/" && !url->path.empty()))
    return util::Status::InvalidArgument("--endpoint '" + o.endpoint +
                                         "' must be http://HOST:PORT");
  t.hostport = util::HostPort{url->host, url->port}.ToString();
  t.endpoint = "http://" + t.hostport;
  for (const auto& u : cfg.upstreams) {
    t.upstreams.push_back(u.registry);
    if (u.scheme == "http") t.plain_http.push_back(u.registry);
  }
  if (cfg.registry.enabled()) t.own.push_back(cfg.registry.name);
  if (!o.registries.empty()) {
    std::vector<std::string> ups, own;
    for (const auto& r : o.registries) {
      if (r.empty() || r.find_first_of("/ \"\\") != std::string::npos)
        return util::Status::InvalidArgument("--registry '" + r + "' is not a registry host name");
      (cfg.registry.enabled() && r == cfg.registry.name ? own : ups).push_back(r);
    }
    t.upstreams = ups;
    t.own = own;
  }
  return t;
}

bool ReadFile(const std::string& path, std::string* out, bool* exists) {
  std::ifstream in(path, std::ios::binary);
  *exists = bool(in);
  if (!in) return errno == ENOENT;
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

util::Status MakeDirs(const std::string& dir) {
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i < dir.size() && dir[i] != '/') continue;
    std::string part = dir.substr(0, i);
    if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST)
      return util::Status::IoError("cannot create " + part + ": " + std::strerror(errno));
  }
  return util::Status::Ok();
}

// Writes `text` to `path` so that a reader sees the old file or the new one, never a part.
util::Status WriteAtomically(const std::string& path, const std::string& text) {
  std::string dir = path.substr(0, path.rfind('/'));
  std::string tmp = path + ".georeg-XXXXXX";
  std::vector<char> name(tmp.begin(), tmp.end());
  name.push_back('\0');
  int fd = ::mkstemp(name.data());
  if (fd < 0) return util::Status::IoError("cannot write in " + dir + ": " + std::strerror(errno));
  bool ok = ::fchmod(fd, 0644) == 0 &&
            ::write(fd, text.data(), text.size()) == ssize_t(text.size()) && ::fsync(fd) == 0;
  int err = errno;
  ok = ::close(fd) == 0 && ok;
  if (ok && ::rename(name.data(), path.c_str()) != 0) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    ::unlink(name.data());
    return util::Status::IoError("cannot write " + path + ": " + std::strerror(err));
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return util::Status::Ok();
}

// Writes `path` unless it already holds `text`; prints what happened. 0 or 1.
int Update(const std::string& label, const std::string& path, const std::string& text, bool existed,
           const std::string& old, const std::string& what) {
  if (existed && old == text) {
    std::printf("%s: %s is up to date\n", label.c_str(), path.c_str());
    return 0;
  }
  util::Status st = WriteAtomically(path, text);
  if (!st.ok()) return Fail(st.message());
  std::printf("%s: %s %s (%s)\n", label.c_str(), existed ? "updated" : "wrote", path.c_str(),
              what.c_str());
  return 0;
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s + ",") {
    if (c == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else if (c != ' ') {
      cur += c;
    }
  }
  return out;
}

}  // namespace

int ContainerdConfigure(const Options& o) {
  auto t = Resolve(o);
  if (!t.ok()) return Fail(t.status().message());
  std::string dir = o.dir.empty() ? "/etc/containerd/certs.d" : o.dir;
  clients::Mirror mirror{t->endpoint, Split(o.capabilities)};
  std::vector<std::string> all = t->upstreams;
  all.insert(all.end(), t->own.begin(), t->own.end());
  if (all.empty()) return Fail("no registry to configure");
  int rc = 0;
  for (const std::string& registry : all) {
    clients::Mirror m = mirror;
    bool own = std::find(t->own.begin(), t->own.end(), registry) != t->own.end();
    if (own &&
        std::find(m.capabilities.begin(), m.capabilities.end(), "push") == m.capabilities.end())
      m.capabilities.push_back("push");  // the own registry is pushed to through georeg too
    std::string sub = dir + "/" + registry, path = sub + "/hosts.toml", old;
    bool existed = false;
    if (!ReadFile(path, &old, &existed)) {
      rc |= Fail("cannot read " + path + ": " + std::strerror(errno));
      continue;
    }
    auto text = clients::HostsToml(registry, m, old);
    if (!text.ok()) {
      rc |= Fail(path + ": " + text.status().message());
      continue;
    }
    if (util::Status st = MakeDirs(sub); !st.ok()) {
      rc |= Fail(st.message());
      continue;
    }
    rc |= Update(registry, path, *text, existed, old, "georeg at " + t->endpoint + " first");
  }
  if (rc == 0)
    std::printf(
        "containerd reads these at each pull; nothing was restarted. Its CRI plugin needs\n"
        "config_path = \"%s\" under [plugins.\"io.containerd.grpc.v1.cri\".registry]; ctr needs "
        "--hosts-dir %s.\n",
        dir.c_str(), dir.c_str());
  return rc;
}

int PodmanConfigure(const Options& o) {
  auto t = Resolve(o);
  if (!t.ok()) return Fail(t.status().message());
  std::string dir = o.dir.empty() ? "/etc/containers/registries.conf.d" : o.dir;
  if (t->upstreams.empty() && t->own.empty()) return Fail("no registry to configure");
  std::string path = dir + "/50-georeg.conf", old;
  bool existed = false;
  if (!ReadFile(path, &old, &existed))
    return Fail("cannot read " + path + ": " + std::strerror(errno));
  if (util::Status st = MakeDirs(dir); !st.ok()) return Fail(st.message());
  std::vector<clients::PodmanRegistry> regs;
  for (const auto& r : t->upstreams)
    regs.push_back(
        {r, std::find(t->plain_http.begin(), t->plain_http.end(), r) != t->plain_http.end()});
  std::string text = clients::RegistriesConf(regs, t->own, t->hostport);
  int rc = Update("podman", path, text, existed, old, "mirrors at " + t->hostport + "/<registry>");
  if (rc == 0)
    std::printf(
        "podman, buildah and CRI-O read it at their next command; nothing was restarted.\n");
  return rc;
}

}  // namespace runtime_cli
