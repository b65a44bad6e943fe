// georeg: the command line. `serve`, `config check` and `version`.
// Errors go to stderr as one line; exit codes are documented in docs/operations.md.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "config/config.h"
#include "push/htpasswd.h"
#include "src/cache_cli.h"
#include "src/daemon.h"
#include "src/replication_cli.h"
#include "src/runtime_cli.h"
#include "src/status_cli.h"

namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "georeg: %s\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"georeg: a node-local, geo-replicated OCI registry mirror"};
  app.require_subcommand(1);

  std::string config_path;
  std::string listen, metrics_listen, cache_dir;
  std::vector<std::string> upstream_flags;
  CLI::App* serve = app.add_subcommand("serve", "Run the mirror daemon");
  serve->add_option("-c,--config", config_path, "TOML config file (default: embedded defaults)");
  serve->add_option("--listen", listen, "HOST:PORT to listen on (overrides server.listen)");
  serve->add_option("--metrics-listen", metrics_listen,
                    "HOST:PORT serving /metrics, or off (overrides metrics.listen)");
  serve->add_option("--cache-dir", cache_dir, "cache directory (overrides cache.dir)");
  std::string log_format;
  serve->add_option("--log-format", log_format, "text or json (overrides log.format)")
      ->check(CLI::IsMember({"text", "json"}));
  serve->add_option(
      "--upstream", upstream_flags,
      "REGISTRY=URL, repeatable; replaces the file's upstreams, the first is the default");

  CLI::App* config_cmd = app.add_subcommand("config", "Configuration tools");
  config_cmd->require_subcommand(1);
  std::string check_path;
  CLI::App* check = config_cmd->add_subcommand("check", "Validate a config file: exit 0 if valid");
  check->add_option("-c,--config", check_path, "TOML config file")->required();

  app.add_subcommand("version", "Print the version");

  // georeg cache ...: through the daemon's admin socket, or directly when it is stopped.
  CLI::App* cache_cmd =
      app.add_subcommand("cache", "Inspect and manage the cache (docs/operations.md)");
  cache_cmd->require_subcommand(1);
  std::string cache_config, rm_digest, gc_target;
  cache_cli::Options copts;
  // The options every admin command takes: where the cache (and its admin socket) is, and the
  // output form.
  auto add_admin_options = [](CLI::App* cmd, std::string* config_path, cache_cli::Options* o) {
    cmd->add_option("-c,--config", *config_path, "config file to read cache.dir from");
    cmd->add_option("--cache-dir", o->dir,
                    "the cache directory (default: from the config, or the built-in default)");
    cmd->add_option("-o,--output", o->output,
                    "table or json (default: table on a terminal, else json)")
        ->check(CLI::IsMember({"table", "json"}));
  };
  add_admin_options(cache_cmd, &cache_config, &copts);
  CLI::App* ls = cache_cmd->add_subcommand("ls", "List cached blobs and manifests");
  CLI::App* stats = cache_cmd->add_subcommand("stats", "Bytes used, budget, counts, hit ratio");
  CLI::App* rm = cache_cmd->add_subcommand("rm", "Remove a blob or manifest");
  rm->add_option("digest", rm_digest, "sha256:...")->required();
  CLI::App* gc =
      cache_cmd->add_subcommand("gc", "Evict least recently used blobs down to a size now");
  gc->add_option("target", gc_target, "size to shrink blobs to, like 10GiB")->required();
  CLI::App* verify = cache_cmd->add_subcommand(
      "verify", "Re-check every blob with SHA-256 now; remove corrupt ones");
  // -o, --cache-dir and --config may also follow the command ("cache ls -o json").
  for (CLI::App* sub : {ls, stats, rm, gc, verify}) sub->fallthrough();

  // georeg peers ls: the cluster as the running daemon sees it.
  CLI::App* peers_cmd = app.add_subcommand("peers", "Show the cluster (docs/operations.md)");
  peers_cmd->require_subcommand(1);
  std::string peers_config;
  cache_cli::Options popts;
  add_admin_options(peers_cmd, &peers_config, &popts);
  CLI::App* peers_ls = peers_cmd->add_subcommand("ls", "Members: name, region, state, RTT, URL");
  peers_ls->fallthrough();
  std::string remove_name;
  CLI::App* peers_remove = peers_cmd->add_subcommand(
      "remove", "Revoke a member's key on every node and withdraw the tags it set");
  peers_remove->add_option("name", remove_name, "the member's name, as `peers ls` shows it")
      ->required();
  peers_remove->fallthrough();

  // georeg registry htpasswd USER: a line for [registry] push_htpasswd.
  CLI::App* registry_cmd =
      app.add_subcommand("registry", "The fleet's own registry (docs/replication.md)");
  registry_cmd->require_subcommand(1);
  std::string htpasswd_user;
  int bcrypt_cost = 10;
  CLI::App* htpasswd_cmd = registry_cmd->add_subcommand(
      "htpasswd",
      "Print a bcrypt htpasswd line for USER; the password is read from stdin (one line)");
  htpasswd_cmd->add_option("user", htpasswd_user, "the user name")->required();
  htpasswd_cmd->add_option("--cost", bcrypt_cost, "bcrypt cost, 4-31 (default 10)")
      ->check(CLI::Range(4, 31));

  // georeg replication ...: the own registry's replications, through any node.
  CLI::App* repl_cmd = app.add_subcommand(
      "replication", "Manage the registry's replications across regions (docs/replication.md)");
  repl_cmd->require_subcommand(1);
  replication_cli::Options ropts;
  if (const char* u = std::getenv("GEOREG_USERNAME")) ropts.username = u;
  if (const char* p = std::getenv("GEOREG_PASSWORD")) ropts.password = p;
  bool password_stdin = false;
  repl_cmd->add_option("-r,--registry", ropts.registry,
                       "the fleet's own registry ([registry] name)");
  repl_cmd->add_option("--endpoint", ropts.endpoint, "URL of any node (default: the local daemon)");
  repl_cmd->add_option("-c,--config", ropts.config,
                       "config file to find the local daemon's listen address in");
  repl_cmd->add_option("-o,--output", ropts.output, "json (default) or table")
      ->check(CLI::IsMember({"table", "json"}));
  repl_cmd->add_option("-u,--username", ropts.username, "push user (default: $GEOREG_USERNAME)");
  repl_cmd->add_option("-p,--password", ropts.password,
                       "push password (default: $GEOREG_PASSWORD)");
  repl_cmd->add_flag("--password-stdin", password_stdin, "read the password from stdin (one line)");
  CLI::App* repl_create =
      repl_cmd->add_subcommand("create", "Replicate the registry to a region (idempotent)");
  CLI::App* repl_list = repl_cmd->add_subcommand("list", "List the replications with their state");
  CLI::App* repl_show = repl_cmd->add_subcommand("show", "Show one replication");
  CLI::App* repl_update =
      repl_cmd->add_subcommand("update", "Enable or disable routing to a region");
  CLI::App* repl_delete =
      repl_cmd->add_subcommand("delete", "Stop replicating to a region (never the last one)");
  CLI::App* repl_status = repl_cmd->add_subcommand("status", "Which regions hold an image yet");
  for (CLI::App* sub : {repl_create, repl_show, repl_update, repl_delete})
    sub->add_option("-l,--location", ropts.location, "the region")->required();
  repl_update->add_option("--routing", ropts.routing, "enabled or disabled")
      ->required()
      ->check(CLI::IsMember({"enabled", "disabled"}));
  repl_status->add_option("--image", ropts.image, "REPOSITORY:TAG")->required();
  for (CLI::App* sub : {repl_create, repl_list, repl_show, repl_update, repl_delete, repl_status})
    sub->fallthrough();

  // georeg containerd|podman configure: point the host's runtime at georeg.
  runtime_cli::Options copts_rt;
  CLI::App* containerd_cmd =
      app.add_subcommand("containerd", "Point containerd at georeg (docs/containerd.md)");
  containerd_cmd->require_subcommand(1);
  CLI::App* containerd_configure = containerd_cmd->add_subcommand(
      "configure", "Write certs.d/<registry>/hosts.toml with georeg first");
  CLI::App* podman_cmd = app.add_subcommand(
      "podman", "Point podman, buildah and CRI-O at georeg (docs/containerd.md)");
  podman_cmd->require_subcommand(1);
  CLI::App* podman_configure = podman_cmd->add_subcommand(
      "configure", "Write a registries.conf.d drop-in with georeg as every registry's mirror");
  for (CLI::App* sub : {containerd_configure, podman_configure}) {
    sub->add_option("-c,--config", copts_rt.config,
                    "georeg's config: its listen address, upstreams, own registry");
    sub->add_option("--endpoint", copts_rt.endpoint,
                    "the daemon's URL (default: http://<server.listen>)");
    sub->add_option("--registry", copts_rt.registries,
                    "a registry to configure (repeatable; default: every upstream)");
  }
  containerd_configure->add_option(
      "--dir", copts_rt.dir, "containerd's hosts directory (default /etc/containerd/certs.d)");
  containerd_configure->add_option("--capabilities", copts_rt.capabilities,
                                   "of the georeg host (default pull,resolve)");
  podman_configure->add_option("--dir", copts_rt.dir,
                               "the drop-in directory (default /etc/containers/registries.conf.d)");

  // georeg status: one node's view of itself and the fleet.
  status_cli::Options sopts;
  CLI::App* status_cmd =
      app.add_subcommand("status", "This node, its peers, cache, upstreams and replications");
  status_cmd->add_option("--endpoint", sopts.endpoint,
                         "URL of any node (default: the local daemon)");
  status_cmd->add_option("-c,--config", sopts.config,
                         "config file to find the local daemon's listen address in");
  status_cmd->add_option("-o,--output", sopts.output, "table (default) or json")
      ->check(CLI::IsMember({"table", "json"}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  if (status_cmd->parsed()) return status_cli::Status(sopts);
  if (containerd_configure->parsed()) return runtime_cli::ContainerdConfigure(copts_rt);
  if (podman_configure->parsed()) return runtime_cli::PodmanConfigure(copts_rt);
  if (app.got_subcommand("version")) {
    std::printf("georeg %s\n", GEOREG_VERSION);
    return 0;
  }
  if (htpasswd_cmd->parsed()) {
    if (htpasswd_user.empty() || htpasswd_user.find(':') != std::string::npos)
      return Fail("the user name must be non-empty and hold no ':'");
    std::string password;
    if (!std::getline(std::cin, password) || password.empty()) return Fail("no password on stdin");
    if (!password.empty() && password.back() == '\r') password.pop_back();
    auto hash = push::BcryptHash(password, bcrypt_cost);
    if (!hash.ok()) return Fail(hash.status().message());
    std::printf("%s:%s\n", htpasswd_user.c_str(), hash->c_str());
    return 0;
  }
  if (check->parsed()) {
    auto cfg = config::LoadFile(check_path);
    if (!cfg.ok()) return Fail(cfg.status().message());
    std::printf("%s: ok\n", check_path.c_str());
    return 0;
  }

  // The cache directory the admin commands work on: --cache-dir, else the
  // config's cache.dir, else the built-in default. Errors: the config's.
  auto cache_dir_of = [](cache_cli::Options* o, const std::string& config_path) -> util::Status {
    if (!o->dir.empty()) return util::Status::Ok();
    if (config_path.empty()) {
      o->dir = config::Defaults().cache.dir;
      return util::Status::Ok();
    }
    auto cfg = config::ParseFile(config_path);
    if (!cfg.ok()) return cfg.status();
    o->dir = cfg->cache.dir;
    return util::Status::Ok();
  };
  if (cache_cmd->parsed()) {
    if (util::Status st = cache_dir_of(&copts, cache_config); !st.ok()) return Fail(st.message());
    if (ls->parsed()) return cache_cli::Ls(copts);
    if (stats->parsed()) return cache_cli::Stats(copts);
    if (rm->parsed()) return cache_cli::Rm(copts, rm_digest);
    if (gc->parsed()) return cache_cli::Gc(copts, gc_target);
    if (verify->parsed()) return cache_cli::Verify(copts);
  }
  if (repl_cmd->parsed()) {
    if (ropts.registry.empty()) return Fail("--registry is required");
    if (password_stdin && (!std::getline(std::cin, ropts.password) || ropts.password.empty()))
      return Fail("no password on stdin");
    if (!ropts.password.empty() && ropts.password.back() == '\r') ropts.password.pop_back();
    if (repl_create->parsed()) return replication_cli::Create(ropts);
    if (repl_list->parsed()) return replication_cli::List(ropts);
    if (repl_show->parsed()) return replication_cli::Show(ropts);
    if (repl_update->parsed()) return replication_cli::Update(ropts);
    if (repl_delete->parsed()) return replication_cli::Delete(ropts);
    if (repl_status->parsed()) return replication_cli::Status(ropts);
  }
  if (peers_cmd->parsed()) {
    if (util::Status st = cache_dir_of(&popts, peers_config); !st.ok()) return Fail(st.message());
    if (peers_ls->parsed()) return cache_cli::PeersLs(popts);
    if (peers_remove->parsed()) return cache_cli::PeersRemove(popts, remove_name);
  }

  // serve: the config file (or the embedded defaults) with the command
  // line's overrides, validated; read again the same way on SIGHUP.
  daemon_main::ConfigLoader load = [=]() -> util::Result<config::Config> {
    config::Config cfg;
    if (config_path.empty()) {
      cfg = config::Defaults();
    } else {
      auto parsed = config::ParseFile(config_path);
      if (!parsed.ok()) return parsed.status();
      cfg = std::move(*parsed);
    }
    if (!listen.empty()) cfg.server.listen = listen;
    // Two daemons on one host (tests, a canary beside the real one) would
    // both take the embedded defaults' metrics port: this moves or stops it.
    if (!metrics_listen.empty()) cfg.metrics.listen = metrics_listen == "off" ? "" : metrics_listen;
    if (!cache_dir.empty()) cfg.cache.dir = cache_dir;
    if (!log_format.empty()) cfg.log_format = log_format;
    if (!upstream_flags.empty()) {
      cfg.upstreams.clear();
      for (const std::string& f : upstream_flags) {
        auto u = config::ParseUpstreamFlag(f);
        if (!u.ok()) return u.status();
        cfg.upstreams.push_back(std::move(*u));
      }
      for (auto& u : cfg.upstreams) u.is_default = false;
    }
    // Under systemd, the node's key lives in StateDirectory= unless the config says otherwise.
    const char* state_dir = std::getenv("STATE_DIRECTORY");
    if (cfg.cluster.node_key_file.empty() && state_dir && *state_dir &&
        !std::strchr(state_dir, ':'))
      cfg.cluster.node_key_file = std::string(state_dir) + "/node.key";
    util::Status st = config::Validate(&cfg);
    if (!st.ok()) return st;
    return cfg;
  };
  auto cfg = load();
  if (!cfg.ok()) return Fail(cfg.status().message());
  return daemon_main::Run(*cfg, load);
}
