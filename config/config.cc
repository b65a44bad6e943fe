#include "config/config.h"

#include "util/url.h"

#include "util/log.h"

#include <unistd.h>

#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

// Header-only, without exceptions: Debian's shared library is built with them.
#define TOML_HEADER_ONLY 1
#define TOML_EXCEPTIONS 0
// toml++ 3.3's parser states its invariants as TOML_ASSERT_ASSUME: assert()
// in debug builds, __builtin_assume() with NDEBUG. Hostile input breaks some
// of them ("[(" as a table header, arrays nested past its depth limit:
// found by fuzz_config), so both forms are undefined behaviour there. With
// the macro neutralized the parser goes on to its own error path, which
// reports a clean parse error (tests/fuzz/regressions/config).
#include <toml++/impl/preprocessor.h>
#undef TOML_ASSERT_ASSUME
#define TOML_ASSERT_ASSUME(expr) static_assert(true)
#include <toml++/toml.h>

namespace config {
namespace {

using util::Result;
using util::Status;

Status KeyError(const std::string& key, const std::string& problem) {
  return Status::InvalidArgument(key + ": " + problem);
}

// Reads one typed value; absent keys leave *out unchanged.
Status GetString(const toml::table& t, const std::string& prefix, const char* key,
                 std::string* out) {
  const toml::node* n = t.get(key);
  if (!n) return Status::Ok();
  if (!n->is_string()) return KeyError(prefix + key, "must be a string");
  *out = n->as_string()->get();
  return Status::Ok();
}

Status GetBool(const toml::table& t, const std::string& prefix, const char* key, bool* out) {
  const toml::node* n = t.get(key);
  if (!n) return Status::Ok();
  if (!n->is_boolean()) return KeyError(prefix + key, "must be true or false");
  *out = n->as_boolean()->get();
  return Status::Ok();
}

// A positive integer.
Status GetCount(const toml::table& t, const std::string& prefix, const char* key, uint64_t* out) {
  const toml::node* n = t.get(key);
  if (!n) return Status::Ok();
  if (!n->is_integer() || n->as_integer()->get() < 1)
    return KeyError(prefix + key, "must be a positive integer");
  *out = static_cast<uint64_t>(n->as_integer()->get());
  return Status::Ok();
}

// Sizes may be written as strings ("20GiB") or plain integers (bytes).
Status GetSize(const toml::table& t, const std::string& prefix, const char* key, uint64_t* out) {
  const toml::node* n = t.get(key);
  if (!n) return Status::Ok();
  if (n->is_integer() && n->as_integer()->get() >= 0) {
    *out = static_cast<uint64_t>(n->as_integer()->get());
    return Status::Ok();
  }
  if (!n->is_string()) return KeyError(prefix + key, "must be a size like \"512MiB\"");
  auto r = util::ParseSize(n->as_string()->get());
  if (!r.ok()) return KeyError(prefix + key, r.status().message());
  *out = *r;
  return Status::Ok();
}

Status GetDuration(const toml::table& t, const std::string& prefix, const char* key,
                   uint64_t* out) {
  const toml::node* n = t.get(key);
  if (!n) return Status::Ok();
  if (!n->is_string()) return KeyError(prefix + key, "must be a duration like \"90s\"");
  auto r = util::ParseDurationMs(n->as_string()->get());
  if (!r.ok()) return KeyError(prefix + key, r.status().message());
  *out = *r;
  return Status::Ok();
}

Status CheckKeys(const toml::table& t, const std::string& prefix,
                 const std::set<std::string>& allowed) {
  for (const auto& [k, v] : t) {
    if (!allowed.count(std::string(k.str())))
      return KeyError(prefix + std::string(k.str()), "unknown key");
  }
  return Status::Ok();
}

#define RETURN_IF_ERROR(expr) \
  do {                        \
    Status _s = (expr);       \
    if (!_s.ok()) return _s;  \
  } while (0)

Status ParseServer(const toml::table& t, Server* s) {
  const std::string p = "server.";
  RETURN_IF_ERROR(
      CheckKeys(t, p,
                {"listen", "header_timeout", "idle_timeout", "response_head_timeout",
                 "shutdown_grace", "max_request_line", "max_header_bytes", "max_headers",
                 "max_connections", "max_input_bytes", "max_queued_response_bytes",
                 "max_manifest_bytes", "max_fills", "max_bytes_in_flight", "sendfile"}));
  RETURN_IF_ERROR(GetString(t, p, "listen", &s->listen));
  RETURN_IF_ERROR(GetDuration(t, p, "header_timeout", &s->header_timeout_ms));
  RETURN_IF_ERROR(GetDuration(t, p, "idle_timeout", &s->idle_timeout_ms));
  RETURN_IF_ERROR(GetDuration(t, p, "response_head_timeout", &s->response_head_timeout_ms));
  RETURN_IF_ERROR(GetDuration(t, p, "shutdown_grace", &s->shutdown_grace_ms));
  RETURN_IF_ERROR(GetSize(t, p, "max_request_line", &s->max_request_line));
  RETURN_IF_ERROR(GetSize(t, p, "max_header_bytes", &s->max_header_bytes));
  if (const toml::node* n = t.get("max_headers")) {
    if (!n->is_integer() || n->as_integer()->get() < 1)
      return KeyError(p + "max_headers", "must be a positive integer");
    s->max_headers = n->as_integer()->get();
  }
  RETURN_IF_ERROR(GetCount(t, p, "max_connections", &s->max_connections));
  RETURN_IF_ERROR(GetCount(t, p, "max_fills", &s->max_fills));
  RETURN_IF_ERROR(GetSize(t, p, "max_bytes_in_flight", &s->max_bytes_in_flight));
  if (s->max_bytes_in_flight < (64ull << 20))
    return KeyError(p + "max_bytes_in_flight", "must be at least 64MiB");
  RETURN_IF_ERROR(GetSize(t, p, "max_input_bytes", &s->max_input_bytes));
  RETURN_IF_ERROR(GetSize(t, p, "max_queued_response_bytes", &s->max_queued_response_bytes));
  RETURN_IF_ERROR(GetSize(t, p, "max_manifest_bytes", &s->max_manifest_bytes));
  if (s->max_input_bytes < 1024) return KeyError(p + "max_input_bytes", "must be at least 1KiB");
  if (s->max_manifest_bytes < 1024)
    return KeyError(p + "max_manifest_bytes", "must be at least 1KiB");
  RETURN_IF_ERROR(GetString(t, p, "sendfile", &s->sendfile));
  if (s->sendfile != "auto" && s->sendfile != "on" && s->sendfile != "off")
    return KeyError(p + "sendfile", "must be \"auto\", \"on\" or \"off\"");
  return Status::Ok();
}

Status GetDouble(const toml::table& t, const std::string& prefix, const char* key, double lo,
                 double hi, double* out, bool* present) {
  const toml::node* n = t.get(key);
  if (!n) return Status::Ok();
  if (!n->is_number()) return KeyError(prefix + key, "must be a number");
  double v =
      n->is_integer() ? static_cast<double>(n->as_integer()->get()) : n->as_floating_point()->get();
  if (!(v >= lo && v <= hi))
    return KeyError(prefix + key,
                    "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  *out = v;
  *present = true;
  return Status::Ok();
}

Status ParseNode(const toml::table& t, Node* node) {
  const std::string p = "node.";
  RETURN_IF_ERROR(CheckKeys(t, p, {"name", "region", "latitude", "longitude"}));
  RETURN_IF_ERROR(GetString(t, p, "name", &node->name));
  RETURN_IF_ERROR(GetString(t, p, "region", &node->region));
  bool has_lat = false, has_lon = false;
  RETURN_IF_ERROR(GetDouble(t, p, "latitude", -90, 90, &node->latitude, &has_lat));
  RETURN_IF_ERROR(GetDouble(t, p, "longitude", -180, 180, &node->longitude, &has_lon));
  if (has_lat != has_lon)
    return KeyError(p + (has_lat ? "longitude" : "latitude"), "must be given with the other");
  node->has_location = has_lat;
  return Status::Ok();
}

Status ParseCluster(const toml::table& t, Cluster* c) {
  const std::string p = "cluster.";
  RETURN_IF_ERROR(
      CheckKeys(t, p,
                {"key_file", "node_key_file", "seeds", "advertise", "probe_interval",
                 "probe_timeout", "suspect_timeout", "gossip_interval", "gossip_fanout",
                 "sync_interval", "max_clock_skew", "peer_timeout", "quarantine",
                 "max_message_bytes", "max_summary_bytes", "max_members", "peer_networks"}));
  RETURN_IF_ERROR(GetString(t, p, "key_file", &c->key_file));
  RETURN_IF_ERROR(GetString(t, p, "node_key_file", &c->node_key_file));
  RETURN_IF_ERROR(GetString(t, p, "advertise", &c->advertise));
  if (const toml::node* n = t.get("seeds")) {
    if (!n->is_array()) return KeyError(p + "seeds", "must be an array of URLs");
    for (const toml::node& item : *n->as_array()) {
      if (!item.is_string()) return KeyError(p + "seeds", "must be an array of URLs");
      c->seeds.push_back(std::string(item.as_string()->get()));
    }
  }
  RETURN_IF_ERROR(GetDuration(t, p, "probe_interval", &c->probe_interval_ms));
  RETURN_IF_ERROR(GetDuration(t, p, "probe_timeout", &c->probe_timeout_ms));
  RETURN_IF_ERROR(GetDuration(t, p, "suspect_timeout", &c->suspect_timeout_ms));
  RETURN_IF_ERROR(GetDuration(t, p, "gossip_interval", &c->gossip_interval_ms));
  RETURN_IF_ERROR(GetDuration(t, p, "sync_interval", &c->sync_interval_ms));
  RETURN_IF_ERROR(GetDuration(t, p, "max_clock_skew", &c->max_clock_skew_ms));
  RETURN_IF_ERROR(GetDuration(t, p, "peer_timeout", &c->peer_timeout_ms));
  RETURN_IF_ERROR(GetDuration(t, p, "quarantine", &c->quarantine_ms));
  RETURN_IF_ERROR(GetSize(t, p, "max_message_bytes", &c->max_message_bytes));
  RETURN_IF_ERROR(GetSize(t, p, "max_summary_bytes", &c->max_summary_bytes));
  RETURN_IF_ERROR(GetCount(t, p, "max_members", &c->max_members));
  if (const toml::node* n = t.get("peer_networks")) {
    if (!n->is_array())
      return KeyError(p + "peer_networks", "must be an array of CIDRs like \"10.0.0.0/8\"");
    for (const toml::node& item : *n->as_array()) {
      if (!item.is_string())
        return KeyError(p + "peer_networks", "must be an array of CIDRs like \"10.0.0.0/8\"");
      auto net = util::ParseCidr(std::string(item.as_string()->get()));
      if (!net.ok()) return KeyError(p + "peer_networks", net.status().message());
      c->peer_networks.push_back(*net);
    }
  }
  if (const toml::node* n = t.get("gossip_fanout")) {
    if (!n->is_integer() || n->as_integer()->get() < 1 || n->as_integer()->get() > 32)
      return KeyError(p + "gossip_fanout", "must be an integer from 1 to 32");
    c->gossip_fanout = n->as_integer()->get();
  }
  return Status::Ok();
}

// A region name as [node] region and replications use it.
bool PlainName(const std::string& s) {
  return !s.empty() && s.size() <= 64 &&
         s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
             std::string::npos;
}

Status ParseRegistry(const toml::table& t, Registry* r) {
  const std::string p = "registry.";
  RETURN_IF_ERROR(CheckKeys(t, p,
                            {"name", "push_htpasswd", "pull_auth", "max_size", "copies", "policy",
                             "prefixes", "prefetch_rate", "blob_delete", "upload_timeout",
                             "max_uploads", "gc_grace", "max_auth_failures"}));
  RETURN_IF_ERROR(GetString(t, p, "name", &r->name));
  RETURN_IF_ERROR(GetString(t, p, "push_htpasswd", &r->push_htpasswd));
  std::string pull = "anonymous";
  RETURN_IF_ERROR(GetString(t, p, "pull_auth", &pull));
  if (pull != "anonymous" && pull != "htpasswd")
    return KeyError(p + "pull_auth", "must be \"anonymous\" or \"htpasswd\", not \"" + pull + "\"");
  r->pull_requires_auth = pull == "htpasswd";
  RETURN_IF_ERROR(GetSize(t, p, "max_size", &r->max_size));
  RETURN_IF_ERROR(GetCount(t, p, "copies", &r->copies));
  if (r->copies > 8) return KeyError(p + "copies", "must be from 1 to 8");
  std::string policy = "manifests";
  RETURN_IF_ERROR(GetString(t, p, "policy", &policy));
  if (policy != "manifests" && policy != "full")
    return KeyError(p + "policy", "must be \"manifests\" or \"full\", not \"" + policy + "\"");
  r->full_policy = policy == "full";
  if (const toml::node* n = t.get("prefixes")) {
    if (!n->is_array()) return KeyError(p + "prefixes", "must be an array of repository prefixes");
    for (const toml::node& item : *n->as_array()) {
      if (!item.is_string() || item.as_string()->get().empty())
        return KeyError(p + "prefixes", "must be an array of repository prefixes");
      r->prefixes.push_back(std::string(item.as_string()->get()));
    }
  }
  if (const toml::node* n = t.get("prefetch_rate");
      n && n->is_integer() && n->as_integer()->get() >= 0) {
    r->prefetch_rate = static_cast<uint64_t>(n->as_integer()->get());  // bytes per second
  } else if (n) {
    std::string v = n->is_string() ? std::string(n->as_string()->get()) : "";
    if (v.size() > 2 && v.compare(v.size() - 2, 2, "/s") == 0) v.resize(v.size() - 2);
    auto rate = v == "0" ? util::Result<uint64_t>(uint64_t{0}) : util::ParseSize(v);
    if (v.empty() || !rate.ok())
      return KeyError(p + "prefetch_rate", "must be a rate like \"50MiB/s\" (0: no cap)");
    r->prefetch_rate = *rate;
  }
  RETURN_IF_ERROR(GetBool(t, p, "blob_delete", &r->blob_delete));
  RETURN_IF_ERROR(GetDuration(t, p, "upload_timeout", &r->upload_timeout_ms));
  if (r->upload_timeout_ms < 1000) return KeyError(p + "upload_timeout", "must be at least 1s");
  RETURN_IF_ERROR(GetCount(t, p, "max_uploads", &r->max_uploads));
  RETURN_IF_ERROR(GetDuration(t, p, "gc_grace", &r->gc_grace_ms));
  RETURN_IF_ERROR(GetCount(t, p, "max_auth_failures", &r->auth_failures_per_minute));
  return Status::Ok();
}

Status ValidateRegistry(const Config& cfg) {
  const Registry& r = cfg.registry;
  if (!r.enabled()) {
    if (!r.push_htpasswd.empty())
      return KeyError("registry.name", "is required with push_htpasswd");
    return Status::Ok();
  }
  // The name is what clients send as ?ns=, so it follows the upstream names' rule.
  if (!ValidRegistryName(r.name))
    return KeyError("registry.name",
                    "'" + r.name + "' is not a registry host name (" + kRegistryNameRule + ")");
  for (const Upstream& u : cfg.upstreams) {
    if (u.registry == r.name)
      return KeyError("registry.name", "'" + r.name + "' is also an [[upstream]]");
  }
  if (r.push_htpasswd.empty())
    return KeyError("registry.push_htpasswd", "is required: pushes are always authenticated");
  if (::access(r.push_htpasswd.c_str(), R_OK) != 0)
    return KeyError("registry.push_htpasswd", "'" + r.push_htpasswd + "' cannot be read");
  if (r.max_size < (64ull << 20)) return KeyError("registry.max_size", "must be at least 64MiB");
  return Status::Ok();
}

// A peer URL: plain http://HOST:PORT with no path (peer traffic is signed, not encrypted).
Status CheckPeerUrl(const std::string& key, const std::string& url) {
  auto u = util::ParseUrl(url);
  if (!u.ok() || u->scheme != "http" || u->explicit_path || !u->explicit_port)
    return KeyError(key, "'" + url + "' must be like http://HOST:PORT");
  return Status::Ok();
}

Status ValidateCluster(Config* cfg) {
  Node& node = cfg->node;
  if (node.name.empty()) {
    char host[256] = {0};
    if (::gethostname(host, sizeof host - 1) == 0) node.name = host;
  }
  auto plain = PlainName;
  Cluster& c = cfg->cluster;
  if (!c.enabled()) {
    if (!c.seeds.empty() || !c.advertise.empty())
      return KeyError("cluster.key_file", "is required with seeds or advertise");
    // A single node's name and region are only labels: an odd host name must not stop it.
    return Status::Ok();
  }
  if (!plain(node.name))
    return KeyError("node.name", "'" + node.name + "' must be 1-64 of [A-Za-z0-9._-]");
  if (!plain(node.region))
    return KeyError("node.region", "'" + node.region + "' must be 1-64 of [A-Za-z0-9._-]");
  if (::access(c.key_file.c_str(), R_OK) != 0)
    return KeyError("cluster.key_file", "'" + c.key_file + "' cannot be read");
  if (c.node_key_file.empty()) c.node_key_file = cfg->cache.dir + "/node.key";
  if (c.advertise.empty()) {
    // Peers can use the listen address itself when it names one interface and port.
    const util::HostPort& l = cfg->server.listen_addr;
    if (l.port == 0 || l.host.empty() || l.host == "0.0.0.0" || l.host == "::")
      return KeyError("cluster.advertise",
                      "is required when server.listen is a wildcard address or port 0");
    c.advertise = "http://" + l.ToString();
  }
  RETURN_IF_ERROR(CheckPeerUrl("cluster.advertise", c.advertise));
  for (const auto& s : c.seeds) RETURN_IF_ERROR(CheckPeerUrl("cluster.seeds", s));
  if (c.probe_interval_ms < 100)
    return KeyError("cluster.probe_interval", "must be at least 100ms");
  if (c.probe_timeout_ms == 0 || c.probe_timeout_ms >= c.probe_interval_ms)
    return KeyError("cluster.probe_timeout", "must be above 0 and below probe_interval");
  if (c.gossip_interval_ms < 10)
    return KeyError("cluster.gossip_interval", "must be at least 10ms");
  if (c.sync_interval_ms < 100) return KeyError("cluster.sync_interval", "must be at least 100ms");
  if (c.peer_timeout_ms == 0) return KeyError("cluster.peer_timeout", "must be above 0");
  return Status::Ok();
}

Status ParseUpstream(const toml::table& t, size_t index, Upstream* u) {
  const std::string p = "upstream[" + std::to_string(index) + "].";
  RETURN_IF_ERROR(CheckKeys(
      t, p,
      {"registry", "url", "default", "connect_timeout", "response_timeout", "tag_ttl", "max_stale",
       "ca_file", "insecure_skip_verify", "username", "password_file", "allow_private_redirects",
       "allow_private_addresses", "request_deadline", "single_flight"}));
  RETURN_IF_ERROR(GetString(t, p, "registry", &u->registry));
  RETURN_IF_ERROR(GetString(t, p, "url", &u->url));
  RETURN_IF_ERROR(GetBool(t, p, "default", &u->is_default));
  RETURN_IF_ERROR(GetDuration(t, p, "connect_timeout", &u->connect_timeout_ms));
  RETURN_IF_ERROR(GetDuration(t, p, "response_timeout", &u->response_timeout_ms));
  RETURN_IF_ERROR(GetDuration(t, p, "tag_ttl", &u->tag_ttl_ms));
  RETURN_IF_ERROR(GetDuration(t, p, "max_stale", &u->max_stale_ms));
  RETURN_IF_ERROR(GetString(t, p, "ca_file", &u->ca_file));
  RETURN_IF_ERROR(GetBool(t, p, "insecure_skip_verify", &u->insecure_skip_verify));
  RETURN_IF_ERROR(GetString(t, p, "username", &u->username));
  RETURN_IF_ERROR(GetString(t, p, "password_file", &u->password_file));
  bool old_name = false;
  RETURN_IF_ERROR(GetBool(t, p, "allow_private_redirects", &old_name));
  RETURN_IF_ERROR(GetBool(t, p, "allow_private_addresses", &u->allow_private_addresses));
  u->allow_private_addresses = u->allow_private_addresses || old_name;
  RETURN_IF_ERROR(GetDuration(t, p, "request_deadline", &u->request_deadline_ms));
  if (u->request_deadline_ms == 0) return KeyError(p + "request_deadline", "must be above 0");
  std::string scope = "fleet";
  RETURN_IF_ERROR(GetString(t, p, "single_flight", &scope));
  if (scope != "fleet" && scope != "region")
    return KeyError(p + "single_flight", "must be \"fleet\" or \"region\", not \"" + scope + "\"");
  u->fleet_single_flight = scope == "fleet";
  if (u->registry.empty()) return KeyError(p + "registry", "is required");
  if (u->url.empty()) return KeyError(p + "url", "is required");
  return Status::Ok();
}

// "http://host[:port]" with no path, query or credentials.
Status ParseUrl(const std::string& key, Upstream* u) {
  auto url = util::ParseUrl(
      u->url.size() > 1 && u->url.back() == '/' ? u->url.substr(0, u->url.size() - 1) : u->url);
  if (!url.ok())
    return KeyError(
        key, "'" + u->url + "' is not a URL like https://host[:port]: " + url.status().message());
  if (url->explicit_path)
    return KeyError(key,
                    "'" + u->url + "' must be scheme://host[:port] with no path or credentials");
  u->scheme = url->scheme;
  u->host = url->host;
  u->port = url->port;
  return Status::Ok();
}

}  // namespace

bool ValidRegistryName(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  for (char c : name)
    if (c <= ' ' || c > '~' || std::string_view("/?&=%#").find(c) != std::string_view::npos)
      return false;
  return true;
}

std::vector<std::string> RestartKeys(const Config& a, const Config& b) {
  std::vector<std::string> out;
  auto differ = [&out](const char* key, bool changed) {
    if (changed) out.push_back(key);
  };
  differ("server.listen", a.server.listen != b.server.listen);
  const Server &s = a.server, &t = b.server;
  differ("server (timeouts and limits)",
         s.header_timeout_ms != t.header_timeout_ms || s.idle_timeout_ms != t.idle_timeout_ms ||
             s.response_head_timeout_ms != t.response_head_timeout_ms ||
             s.shutdown_grace_ms != t.shutdown_grace_ms ||
             s.max_request_line != t.max_request_line || s.max_header_bytes != t.max_header_bytes ||
             s.max_headers != t.max_headers || s.max_connections != t.max_connections ||
             s.max_input_bytes != t.max_input_bytes ||
             s.max_queued_response_bytes != t.max_queued_response_bytes ||
             s.max_manifest_bytes != t.max_manifest_bytes || s.max_fills != t.max_fills ||
             s.max_bytes_in_flight != t.max_bytes_in_flight || s.sendfile != t.sendfile);
  differ("metrics.listen", a.metrics.listen != b.metrics.listen);
  differ("cache", a.cache.dir != b.cache.dir || a.cache.max_size != b.cache.max_size ||
                      a.cache.min_free_fraction != b.cache.min_free_fraction ||
                      a.cache.min_free_bytes != b.cache.min_free_bytes ||
                      a.cache.map_size != b.cache.map_size ||
                      a.cache.scrub_rate != b.cache.scrub_rate);
  differ("node", a.node.name != b.node.name || a.node.region != b.node.region ||
                     a.node.latitude != b.node.latitude || a.node.longitude != b.node.longitude);
  const Cluster &c = a.cluster, &d = b.cluster;
  differ("cluster",
         c.key_file != d.key_file || c.node_key_file != d.node_key_file || c.seeds != d.seeds ||
             c.advertise != d.advertise || c.probe_interval_ms != d.probe_interval_ms ||
             c.probe_timeout_ms != d.probe_timeout_ms ||
             c.suspect_timeout_ms != d.suspect_timeout_ms ||
             c.gossip_interval_ms != d.gossip_interval_ms || c.gossip_fanout != d.gossip_fanout ||
             c.sync_interval_ms != d.sync_interval_ms ||
             c.max_clock_skew_ms != d.max_clock_skew_ms || c.peer_timeout_ms != d.peer_timeout_ms ||
             c.quarantine_ms != d.quarantine_ms || c.max_message_bytes != d.max_message_bytes ||
             c.max_summary_bytes != d.max_summary_bytes || c.max_members != d.max_members ||
             c.peer_networks.size() != d.peer_networks.size());
  const Registry &r = a.registry, &q = b.registry;
  differ("registry", r.name != q.name || r.push_htpasswd != q.push_htpasswd ||
                         r.pull_requires_auth != q.pull_requires_auth || r.max_size != q.max_size ||
                         r.copies != q.copies || r.full_policy != q.full_policy ||
                         r.prefixes != q.prefixes || r.prefetch_rate != q.prefetch_rate ||
                         r.blob_delete != q.blob_delete ||
                         r.upload_timeout_ms != q.upload_timeout_ms ||
                         r.max_uploads != q.max_uploads || r.gc_grace_ms != q.gc_grace_ms ||
                         r.auth_failures_per_minute != q.auth_failures_per_minute);
  bool ups = a.upstreams.size() != b.upstreams.size();
  for (size_t i = 0; !ups && i < a.upstreams.size(); ++i) {
    const Upstream &u = a.upstreams[i], &v = b.upstreams[i];
    ups = u.registry != v.registry || u.url != v.url || u.is_default != v.is_default ||
          u.connect_timeout_ms != v.connect_timeout_ms ||
          u.response_timeout_ms != v.response_timeout_ms || u.tag_ttl_ms != v.tag_ttl_ms ||
          u.max_stale_ms != v.max_stale_ms || u.ca_file != v.ca_file ||
          u.insecure_skip_verify != v.insecure_skip_verify || u.username != v.username ||
          u.password_file != v.password_file ||
          u.allow_private_addresses != v.allow_private_addresses ||
          u.request_deadline_ms != v.request_deadline_ms ||
          u.fleet_single_flight != v.fleet_single_flight;
  }
  differ("upstream", ups);
  return out;
}

Config Defaults() {
  Config cfg;
  Upstream hub;
  hub.registry = "docker.io";
  hub.url = "https://registry-1.docker.io";
  hub.is_default = true;
  cfg.upstreams.push_back(hub);
  cfg.metrics.listen = "127.0.0.1:9464";
  Status s = Validate(&cfg);
  (void)s;  // the embedded defaults are valid by construction (unit-tested)
  return cfg;
}

Status Validate(Config* cfg) {
  auto listen = util::ParseHostPort(cfg->server.listen);
  if (!listen.ok()) return KeyError("server.listen", listen.status().message());
  cfg->server.listen_addr = *listen;
  if (cfg->cache.dir.empty()) return KeyError("cache.dir", "must not be empty");
  if (cfg->cache.max_size < (64ull << 20))
    return KeyError("cache.max_size", "must be at least 64MiB");
  if (cfg->upstreams.empty() && !cfg->registry.enabled())
    return KeyError("upstream", "at least one [[upstream]] (or a [registry]) is required");
  std::set<std::string> names;
  int defaults = 0;
  for (size_t i = 0; i < cfg->upstreams.size(); ++i) {
    Upstream& u = cfg->upstreams[i];
    const std::string p = "upstream[" + std::to_string(i) + "].";
    if (!names.insert(u.registry).second)
      return KeyError(p + "registry", "'" + u.registry + "' is listed twice");
    if (!ValidRegistryName(u.registry))
      return KeyError(p + "registry", "'" + u.registry + "' is not a registry host name (" +
                                          kRegistryNameRule + ")");
    RETURN_IF_ERROR(ParseUrl(p + "url", &u));
    if (!u.ca_file.empty() && ::access(u.ca_file.c_str(), R_OK) != 0)
      return KeyError(p + "ca_file", "'" + u.ca_file + "' cannot be read");
    if (!u.password_file.empty() && u.username.empty())
      return KeyError(p + "password_file", "is set but username is not");
    if (!u.password_file.empty() && ::access(u.password_file.c_str(), R_OK) != 0)
      return KeyError(p + "password_file", "'" + u.password_file + "' cannot be read");
    if (u.is_default) ++defaults;
  }
  if (defaults > 1) return KeyError("upstream", "more than one upstream has default = true");
  // The default upstream goes first; with none marked, the first one is the
  // default, unless there is an own registry: it then answers requests with no ns=.
  if (defaults == 1) cfg->default_upstream_marked = true;
  for (size_t i = 0; i < cfg->upstreams.size(); ++i) {
    if (cfg->upstreams[i].is_default && i != 0) std::swap(cfg->upstreams[0], cfg->upstreams[i]);
  }
  if (!cfg->upstreams.empty() && (defaults == 1 || !cfg->registry.enabled()))
    cfg->upstreams[0].is_default = true;
  RETURN_IF_ERROR(ValidateRegistry(*cfg));
  util::LogLevel level;
  if (!util::ParseLogLevel(cfg->log_level.c_str(), &level))
    return KeyError("log.level", "'" + cfg->log_level + "' must be debug, info, warn or error");
  util::LogFormat format;
  if (!util::ParseLogFormat(cfg->log_format.c_str(), &format))
    return KeyError("log.format", "'" + cfg->log_format + "' must be text or json");
  if (cfg->metrics.enabled()) {
    auto m = util::ParseHostPort(cfg->metrics.listen);
    if (!m.ok()) return KeyError("metrics.listen", m.status().message());
    cfg->metrics.listen_addr = *m;
    if (m->port != 0 && m->port == cfg->server.listen_addr.port &&
        m->host == cfg->server.listen_addr.host)
      return KeyError("metrics.listen", "'" + cfg->metrics.listen + "' is server.listen too");
  }
  return ValidateCluster(cfg);
}

// toml++ 3.3 (Debian 12) hands non-ASCII characters to a whitespace
// classifier that reaches __builtin_unreachable() for most of them (U+00A1..
// U+0499, U+2C5E..U+3057, U+FB36..U+FEFE), from more places than a small
// lexer can predict (fuzz_config found four ways in). Undefined behaviour on
// a config file is not acceptable, and every value georeg reads (addresses,
// URLs, paths, names) is ASCII: a config file is ASCII, with an optional
// leading BOM. Returns the 1-based line of the first other byte, or 0.
size_t LineOfNonAscii(const std::string& text) {
  size_t line = 1;
  for (size_t i = text.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\n') ++line;
    if (c >= 0x80) return line;
  }
  return 0;
}

util::Status CheckTomlSyntax(const std::string& text, const std::string& source_name) {
  if (size_t line = LineOfNonAscii(text))
    return Status::InvalidArgument(source_name + ":" + std::to_string(line) +
                                   ": a non-ASCII character");
  toml::parse_result parsed = toml::parse(text, source_name);
  if (parsed) return Status::Ok();
  std::ostringstream msg;
  msg << source_name << ":" << parsed.error().source().begin.line << ": "
      << parsed.error().description();
  return Status::InvalidArgument(msg.str());
}

util::Result<Config> ParseString(const std::string& text, const std::string& source_name) {
  if (size_t line = LineOfNonAscii(text))
    return Status::InvalidArgument(source_name + ":" + std::to_string(line) +
                                   ": a non-ASCII character (config files are ASCII)");
  toml::parse_result parsed = toml::parse(text, source_name);
  if (!parsed) {
    const auto& err = parsed.error();
    std::ostringstream msg;
    msg << source_name << ":" << err.source().begin.line << ": " << err.description();
    return Status::InvalidArgument(msg.str());
  }
  const toml::table& root = parsed.table();
  Config cfg;
  cfg.upstreams.clear();
  RETURN_IF_ERROR(CheckKeys(
      root, "", {"server", "cache", "upstream", "log", "node", "cluster", "registry", "metrics"}));
  if (const toml::node* n = root.get("metrics")) {
    if (!n->is_table()) return KeyError("metrics", "must be a table");
    RETURN_IF_ERROR(CheckKeys(*n->as_table(), "metrics.", {"listen"}));
    RETURN_IF_ERROR(GetString(*n->as_table(), "metrics.", "listen", &cfg.metrics.listen));
  }
  if (const toml::node* n = root.get("registry")) {
    if (!n->is_table()) return KeyError("registry", "must be a table");
    RETURN_IF_ERROR(ParseRegistry(*n->as_table(), &cfg.registry));
  }
  if (const toml::node* n = root.get("node")) {
    if (!n->is_table()) return KeyError("node", "must be a table");
    RETURN_IF_ERROR(ParseNode(*n->as_table(), &cfg.node));
  }
  if (const toml::node* n = root.get("cluster")) {
    if (!n->is_table()) return KeyError("cluster", "must be a table");
    RETURN_IF_ERROR(ParseCluster(*n->as_table(), &cfg.cluster));
  }
  if (const toml::node* n = root.get("server")) {
    if (!n->is_table()) return KeyError("server", "must be a table");
    RETURN_IF_ERROR(ParseServer(*n->as_table(), &cfg.server));
  }
  if (const toml::node* n = root.get("cache")) {
    if (!n->is_table()) return KeyError("cache", "must be a table");
    const toml::table& t = *n->as_table();
    RETURN_IF_ERROR(
        CheckKeys(t, "cache.", {"dir", "max_size", "min_free", "map_size", "scrub_rate"}));
    RETURN_IF_ERROR(GetSize(t, "cache.", "scrub_rate", &cfg.cache.scrub_rate));
    if (const toml::node* ms = t.get("map_size");
        !(ms && ms->is_string() && ms->as_string()->get() == "auto"))
      RETURN_IF_ERROR(GetSize(t, "cache.", "map_size", &cfg.cache.map_size));
    RETURN_IF_ERROR(GetString(t, "cache.", "dir", &cfg.cache.dir));
    RETURN_IF_ERROR(GetSize(t, "cache.", "max_size", &cfg.cache.max_size));
    if (const toml::node* mf = t.get("min_free")) {
      std::string v = mf->is_string() ? std::string(mf->as_string()->get()) : "";
      if (!v.empty() && v.back() == '%') {
        char* end = nullptr;
        double pct = std::strtod(v.c_str(), &end);
        if (end != v.c_str() + v.size() - 1 || pct < 0 || pct >= 100)
          return KeyError("cache.min_free",
                          "'" + v + "' must be a percentage below 100% or a size");
        cfg.cache.min_free_fraction = pct / 100;
        cfg.cache.min_free_bytes = 0;
      } else {
        uint64_t bytes = 0;
        RETURN_IF_ERROR(GetSize(t, "cache.", "min_free", &bytes));
        cfg.cache.min_free_fraction = 0;
        cfg.cache.min_free_bytes = bytes;
      }
    }
  }
  if (const toml::node* n = root.get("log")) {
    if (!n->is_table()) return KeyError("log", "must be a table");
    RETURN_IF_ERROR(CheckKeys(*n->as_table(), "log.", {"level", "format", "access"}));
    RETURN_IF_ERROR(GetString(*n->as_table(), "log.", "level", &cfg.log_level));
    RETURN_IF_ERROR(GetString(*n->as_table(), "log.", "format", &cfg.log_format));
    RETURN_IF_ERROR(GetBool(*n->as_table(), "log.", "access", &cfg.access_log));
  }
  if (const toml::node* n = root.get("upstream")) {
    if (!n->is_array_of_tables())
      return KeyError("upstream", "must be written as [[upstream]] tables");
    size_t i = 0;
    for (const toml::node& item : *n->as_array()) {
      Upstream u;
      RETURN_IF_ERROR(ParseUpstream(*item.as_table(), i++, &u));
      cfg.upstreams.push_back(std::move(u));
    }
  }
  return cfg;
}

util::Result<Config> LoadString(const std::string& text, const std::string& source_name) {
  auto cfg = ParseString(text, source_name);
  if (!cfg.ok()) return cfg;
  RETURN_IF_ERROR(Validate(&*cfg));
  return cfg;
}

util::Result<Config> ParseFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError(path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseString(ss.str(), path);
}

util::Result<Config> LoadFile(const std::string& path) {
  auto cfg = ParseFile(path);
  if (!cfg.ok()) return cfg;
  RETURN_IF_ERROR(Validate(&*cfg));
  return cfg;
}

util::Result<Upstream> ParseUpstreamFlag(const std::string& text) {
  size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
    return Status::InvalidArgument("--upstream '" + text + "' must be REGISTRY=URL");
  Upstream u;
  u.registry = text.substr(0, eq);
  u.url = text.substr(eq + 1);
  return u;
}

}  // namespace config
