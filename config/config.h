// Config: georeg's settings, loaded from TOML and validated in one place.
//
// Every field states its default where it is declared; docs/config.md
// documents the same keys and config/georeg.toml is a commented example.
// Values use the shared forms of util/units.h (sizes "20GiB", durations "90s",
// addresses "HOST:PORT"). No sockets and no clock. The file system is read
// in three places only: LoadFile/ParseFile read the file, and Validate checks
// that the files the config names (push_htpasswd, key_file, ca_file,
// password_file) are readable (access(2)) and takes [node] name from
// gethostname(2) when it is not set.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"
#include "util/units.h"
#include "util/url.h"

namespace config {

struct Upstream {
  std::string registry;                  // the name containerd sends as ?ns= (required)
  std::string url;                       // "http://host:port" or "https://host" (required)
  bool is_default = false;               // key `default`: used when a request has no ns=
  uint64_t connect_timeout_ms = 5000;    // key `connect_timeout`, "5s"
  uint64_t response_timeout_ms = 10000;  // key `response_timeout`, "10s": to the response head,
                                         // and the longest pause allowed inside a body
  uint64_t tag_ttl_ms = 5 * 60 * 1000;   // key `tag_ttl`, "5m": a cached tag younger than this
                                         // is answered without asking the upstream
  uint64_t max_stale_ms =
      7 * 86400 * 1000ull;  // key `max_stale`, "7d": while the upstream is
                            // down, a cached tag younger than this is still served
  std::string ca_file;      // key `ca_file`: PEM CAs to trust instead of the system bundle
  bool insecure_skip_verify = false;  // key `insecure_skip_verify`: no certificate checks (logged)
  std::string username;               // key `username`: for Basic auth and token requests
  std::string password_file;          // key `password_file`: a file holding the password
  bool allow_private_addresses =
      false;  // key `allow_private_addresses` (old name
              // `allow_private_redirects`): let token realms and redirects
              // reach loopback, private or link-local addresses
  uint64_t request_deadline_ms =
      15 * 60 * 1000;  // key `request_deadline`, "15m": the longest any
                       // one upstream conversation (a blob download) may take
  // key `single_flight`, "fleet" or "region": a blob is fetched from this
  // upstream once for the whole fleet (by its fleet owner) or once per
  // region (by each region's owner). docs/gossip.md weighs the two.
  bool fleet_single_flight = true;

  // Derived from `url` by Validate().
  std::string scheme;  // "http" or "https"
  std::string host;
  uint16_t port = 0;
};

struct Server {
  std::string listen = "127.0.0.1:5000";
  uint64_t header_timeout_ms = 10000;         // a request head must arrive within this
  uint64_t idle_timeout_ms = 60000;           // idle keep-alive connections, and stalled writes
  uint64_t response_head_timeout_ms = 20000;  // deadline for the response head (then 503)
  uint64_t shutdown_grace_ms = 10000;         // SIGTERM: in-flight responses get this long
  uint64_t max_request_line = 8192;           // longer request line: 414
  uint64_t max_header_bytes = 16384;          // larger head: 431
  uint64_t max_headers = 100;                 // more header lines: 431
  uint64_t max_connections = 4096;      // more at once: accepted and closed (logged once a minute)
  uint64_t max_input_bytes = 64 << 10;  // unparsed pipelined input per connection: reading pauses
  uint64_t max_queued_response_bytes = 1
                                       << 20;  // per connection, before the next pipelined request
  uint64_t max_manifest_bytes =
      4 << 20;               // larger manifests are refused (at the head when announced)
  uint64_t max_fills = 256;  // blob fills at once; more misses answer 503
  uint64_t max_bytes_in_flight =
      1ull << 30;  // fill chunks and manifest bodies in memory; over it, new misses answer 503
  // How cached blob bytes go out: "auto" (a probe at start picks the faster
  // here), "on" (sendfile from data.mdb), "off" (writes from the map).
  std::string sendfile = "auto";

  util::HostPort listen_addr;  // derived from `listen`
};

struct Cache {
  std::string dir = "/var/cache/georeg";
  uint64_t max_size = 20ull << 30;  // "20GiB"
  // key `min_free`, "10%": free space the cache leaves on its file system,
  // as a percentage of the file system or a size ("5GiB").
  double min_free_fraction = 0.10;
  uint64_t min_free_bytes = 0;  // used instead when min_free is a size
  uint64_t map_size = 0;        // key `map_size`: LMDB map; 0 ("auto") sizes it from max_size
  uint64_t scrub_rate =
      4ull << 20;  // key `scrub_rate`, "4MiB": bytes re-verified per second; 0 = off
};

// [node]: who this daemon is in the fleet.
struct Node {
  std::string name;  // unique in the cluster; default: the host name
  std::string region = "default";
  double latitude = 0, longitude = 0;  // for maps; not used for routing
  bool has_location = false;           // both latitude and longitude were given
};

// [cluster]: peers. Off unless key_file is set (a single node then).
struct Cluster {
  std::string key_file;  // the shared secret (at least 16 bytes) every peer request is signed with
  std::string node_key_file;  // this node's own Ed25519 key; default <cache.dir>/node.key, created
                              // when missing
  std::vector<std::string> seeds;  // peer URLs to join through ("http://10.0.1.1:5000")
  std::string advertise;  // this node's URL for peers; default http://<server.listen> unless that
                          // is a wildcard or port 0
  uint64_t probe_interval_ms = 1000;      // SWIM protocol period: one probe per period
  uint64_t probe_timeout_ms = 500;        // direct probe ack deadline, then indirect probes
  uint64_t suspect_timeout_ms = 5000;     // a suspect not refuted by then is dead
  uint64_t gossip_interval_ms = 200;      // pending rumors go out this often
  uint64_t gossip_fanout = 3;             // to this many random live peers
  uint64_t sync_interval_ms = 5000;       // anti-entropy with one random member
  uint64_t max_clock_skew_ms = 60000;     // tag updates further in the future are refused
  uint64_t peer_timeout_ms = 2000;        // a peer fetch step: connect + response head
  uint64_t quarantine_ms = 300000;        // a peer that sent bad bytes is skipped this long
  uint64_t max_message_bytes = 1 << 20;   // a gossip message body; larger: 413
  uint64_t max_summary_bytes = 8 << 20;   // a peer's digest summary; larger: dropped
  uint64_t max_members = 4096;            // members beyond this are not added (counted)
  std::vector<util::Cidr> peer_networks;  // when set, member URLs must resolve inside these

  bool enabled() const { return !key_file.empty(); }
};

// [registry]: the fleet's own registry, pushed to at any node and replicated
// to the regions that hold a replication of it (docs/replication.md).
struct Registry {
  std::string name;  // the ns= it is addressed by; empty: no own registry
  std::string
      push_htpasswd;  // bcrypt htpasswd file pushes are checked against (required with name)
  bool pull_requires_auth = false;  // key `pull_auth`, "anonymous" (default) or "htpasswd"
  uint64_t max_size =
      10ull << 30;  // own content on this node ("10GiB"), never evicted; a push past it: 403 DENIED
  uint64_t copies = 2;       // nodes holding a pushed image before its manifest PUT answers 201
  bool full_policy = false;  // key `policy`, "manifests" (default) or "full" (layers too)
  std::vector<std::string> prefixes;  // repositories replicated (prefix match); empty: all
  uint64_t prefetch_rate =
      50ull << 20;  // key `prefetch_rate`, "50MiB/s": bytes/s pre-fetching may use; 0: no cap
  bool blob_delete = false;  // key `blob_delete`: DELETE of blobs allowed
  uint64_t upload_timeout_ms =
      15 * 60 * 1000;         // an upload untouched this long is dropped with its bytes
  uint64_t max_uploads = 64;  // uploads open at once on this node
  uint64_t gc_grace_ms =
      60 * 60 * 1000;  // key `gc_grace`, "1h": an unreferenced blob is removed after this
  uint64_t auth_failures_per_minute = 10;  // key `max_auth_failures`: per client address, then 429

  bool enabled() const { return !name.empty(); }
};

// [metrics]: the Prometheus endpoint (docs/metrics.md).
struct Metrics {
  std::string listen;  // "HOST:PORT" serving GET /metrics; empty: off (the embedded defaults:
                       // 127.0.0.1:9464)
  util::HostPort listen_addr;  // derived from `listen`
  bool enabled() const { return !listen.empty(); }
};

struct Config {
  Server server;
  Metrics metrics;
  Cache cache;
  Node node;
  Cluster cluster;
  Registry registry;
  std::vector<Upstream> upstreams;  // the default one is first after Validate()
  // Derived by Validate(): an upstream said `default = true`. Without one, a
  // request with no ns= addresses the own registry (when there is one).
  bool default_upstream_marked = false;
  std::string log_level = "info";   // [log] level: debug, info, warn, error
  std::string log_format = "text";  // [log] format: text or json (one object per line)
  bool access_log = true;           // [log] access: a line per request
};

// What a reload (SIGHUP) cannot apply to a running daemon: the keys that
// differ between `running` and `next` among listeners, cache, node,
// cluster, registry and upstreams. Empty: everything that changed applies
// live (the [log] table). Pure.
std::vector<std::string> RestartKeys(const Config& running, const Config& next);

// The embedded defaults: listen 127.0.0.1:5000, metrics 127.0.0.1:9464, cache /var/cache/georeg,
// docker.io -> https://registry-1.docker.io as the default upstream. Validated.
Config Defaults();

// Parses TOML text. Unknown keys are errors. Errors: InvalidArgument with one
// line "KEY: problem" (for example "cache.max_size: size 'x' must be like ...").
util::Result<Config> LoadString(const std::string& text, const std::string& source_name);
util::Result<Config> LoadFile(const std::string& path);

// As LoadString/LoadFile without Validate(), for callers that apply command-line
// overrides first and validate after.
util::Result<Config> ParseString(const std::string& text, const std::string& source_name);
// Whether `text` is TOML georeg can read (ASCII; the parser and guards the
// config uses), for other tools' files (containerd's hosts.toml).
// Errors: InvalidArgument naming the line.
util::Status CheckTomlSyntax(const std::string& text, const std::string& source_name);
util::Result<Config> ParseFile(const std::string& path);

// Checks cross-field rules and fills derived fields: at least one upstream,
// unique registry names, at most one default (the first is default when none
// says so), URLs parse. Errors as LoadString.
util::Status Validate(Config* cfg);

// Whether `name` may name a registry (an [[upstream]] registry, [registry]
// name, a CLI's --registry): what clients send as ?ns= and what appears in
// peer and API paths. kRegistryNameRule says so to a person.
bool ValidRegistryName(std::string_view name);
inline constexpr const char* kRegistryNameRule =
    "1-255 visible ASCII characters, none of / ? & = % #";

// Parses "REGISTRY=URL" as given to --upstream.
util::Result<Upstream> ParseUpstreamFlag(const std::string& text);

}  // namespace config
