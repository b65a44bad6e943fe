#include "src/daemon.h"

#include <signal.h>
#include <sys/resource.h>
#include <uv.h>

#include <unistd.h>

#include <functional>
#include <memory>
#include <tuple>
#include <utility>

#include "cache/dir_lock.h"
#include "cache/store.h"
#include "cache/writer.h"
#include "src/http/server.h"
#include "src/io/clock.h"
#include "src/io/deferred.h"
#include "src/io/env.h"
#include "src/io/send_probe.h"
#include "src/io/service_manager.h"
#include "src/peering/cluster.h"
#include "src/registry/oci_errors.h"
#include "src/registry/service.h"
#include "src/registry/writer_bridge.h"
#include "src/routes.h"
#include "src/telemetry/access_log.h"
#include "src/telemetry/metrics_page.h"
#include "src/telemetry/request_metrics.h"
#include "src/telemetry/status_page.h"
#include "util/log.h"

namespace daemon_main {

namespace {
// Up to the hard limit: every connection is a descriptor, and
// server.max_connections should be the bound that holds, not EMFILE.
void RaiseFdLimit() {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) return;
  rlim_t before = rl.rlim_cur;
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) == 0) {
    LOG_DEBUG("open file limit raised from %llu to %llu", (unsigned long long)before,
              (unsigned long long)rl.rlim_max);
  } else {
    LOG_WARN("cannot raise the open file limit above %llu", (unsigned long long)before);
  }
}

// The [log] table: the part of the config that applies while running.
void ApplyLogConfig(const config::Config& cfg) {
  util::LogLevel level;
  if (util::ParseLogLevel(cfg.log_level.c_str(), &level)) util::SetLogLevel(level);
  util::LogFormat format;
  if (util::ParseLogFormat(cfg.log_format.c_str(), &format)) util::SetLogFormat(format);
}

std::string ReadyStatus(const std::string& addr, const registry::CacheKeeper& keeper) {
  const cache::BlobIndex& index = keeper.index();
  std::string status = "serving on " + addr + "; cache " + std::to_string(index.cached_count()) +
                       " blob(s), " + util::FormatSize(index.stored_bytes());
  if (index.own_count())
    status += "; registry " + std::to_string(index.own_count()) + " blob(s), " +
              util::FormatSize(index.own_bytes());
  return status;
}
// [server] sendfile: "on", "off", or "auto": sendfile when the probe
// measures it clearly faster here (src/io/send_probe.h), by kSendfileMargin:
// writes are the simpler path (no pages lent to the kernel, nothing held
// for a receiver on this host), so a near tie goes to them, as does a
// failed probe.
constexpr double kSendfileMargin = 1.15;
bool ChooseSendfile(const config::Config& cfg) {
  if (cfg.server.sendfile != "auto") {
    LOG_INFO("http: cached blobs go out by %s (server.sendfile = \"%s\")",
             cfg.server.sendfile == "on" ? "sendfile" : "writes from the map",
             cfg.server.sendfile.c_str());
    return cfg.server.sendfile == "on";
  }
  auto rates = io::ProbeSend(cfg.cache.dir);
  if (!rates.ok()) {
    LOG_WARN("http: %s; cached blobs go out by writes from the map",
             rates.status().message().c_str());
    return false;
  }
  bool by_sendfile = rates->sendfile_bytes_per_s > kSendfileMargin * rates->write_bytes_per_s;
  LOG_INFO(
      "http: cached blobs go out by %s (probe over loopback: sendfile %.2f GB/s, writes from a map "
      "%.2f GB/s)",
      by_sendfile ? "sendfile" : "writes from the map", rates->sendfile_bytes_per_s / 1e9,
      rates->write_bytes_per_s / 1e9);
  return by_sendfile;
}

}  // namespace

int Run(const config::Config& cfg, ConfigLoader reload) {
  ApplyLogConfig(cfg);
  ::signal(SIGPIPE, SIG_IGN);

  auto lock = cache::DirLock::Acquire(cfg.cache.dir);
  if (!lock.ok()) {
    LOG_ERROR("%s", lock.status().message().c_str());
    return 1;
  }
  // The map holds the cache's budget and, beside it, the own registry's.
  uint64_t stored_max = cfg.cache.max_size + (cfg.registry.enabled() ? cfg.registry.max_size : 0);
  // Reader slots: a connection sending by sendfile holds up to two read
  // transactions (http/server.h, "Cached bytes by reference").
  unsigned readers =
      static_cast<unsigned>(std::min<uint64_t>(1u << 16, 2 * cfg.server.max_connections + 1024));
  auto store = cache::Store::Open({cfg.cache.dir, stored_max, cfg.cache.map_size, readers});
  if (!store.ok()) {
    LOG_ERROR("cannot open cache: %s", store.status().ToString().c_str());
    return 1;
  }
  std::string cluster_key;
  std::shared_ptr<const peers::Signer> node_key;
  if (cfg.cluster.enabled()) {
    auto key = peering::ReadClusterKey(cfg.cluster.key_file);
    if (!key.ok()) {
      LOG_ERROR("%s", key.status().message().c_str());
      return 1;
    }
    cluster_key = std::move(*key);
    auto nk = peering::LoadNodeKey(cfg.cluster.node_key_file);
    if (!nk.ok()) {
      LOG_ERROR("%s", nk.status().message().c_str());
      return 1;
    }
    node_key = std::move(*nk);
  }
  RaiseFdLimit();
  uv_loop_t loop;
  uv_loop_init(&loop);
  io::LoopClock clock(&loop);
  io::Deferred deferred(&loop);
  io::Env env{&loop, &clock, &deferred};
  auto upstreams = registry::UpstreamSet::Create(env, cfg.upstreams);
  if (!upstreams.ok()) {
    LOG_ERROR("%s", upstreams.status().message().c_str());
    deferred.Close();
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 1;
  }
  auto writer = std::make_unique<cache::Writer>();
  registry::WriterBridge bridge(&loop, writer.get());
  // Built in dependency order: the cache's index first (the cluster
  // summarizes it), then the cluster, then the registry on both.
  registry::CacheKeeper keeper(env, cfg.cache, store->get(), &bridge);
  util::Status started = keeper.Start();
  if (!started.ok()) LOG_ERROR("cannot load the cache index: %s", started.ToString().c_str());
  std::unique_ptr<peering::Cluster> cluster;
  if (started.ok() && cfg.cluster.enabled()) {
    uint64_t slowest = 0;
    for (const auto& u : cfg.upstreams)
      slowest = std::max(slowest, u.connect_timeout_ms + u.response_timeout_ms);
    cluster = std::make_unique<peering::Cluster>(env, cfg, std::move(cluster_key),
                                                 std::move(node_key), &keeper.index(), slowest);
  }
  registry::Service service(env, cfg, std::move(*upstreams), store->get(), &bridge, &keeper,
                            cluster.get());
  if (started.ok()) {
    started = service.Start();
    if (!started.ok()) LOG_ERROR("%s", started.ToString().c_str());
  }
  if (!started.ok()) {
    service.Shutdown();
    if (cluster) cluster->Shutdown();
    keeper.Stop();
    writer.reset();
    bridge.Close();
    deferred.Close();
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 1;
  }

  http::ServerOptions opts;
  opts.limits.max_request_line = cfg.server.max_request_line;
  opts.limits.max_header_bytes = cfg.server.max_header_bytes;
  opts.limits.max_headers = cfg.server.max_headers;
  opts.header_timeout_ms = cfg.server.header_timeout_ms;
  opts.idle_timeout_ms = cfg.server.idle_timeout_ms;
  opts.response_head_timeout_ms = cfg.server.response_head_timeout_ms;
  opts.max_connections = cfg.server.max_connections;
  opts.max_input_bytes = cfg.server.max_input_bytes;
  opts.max_queued_response_bytes = cfg.server.max_queued_response_bytes;
  opts.error_content_type = "application/json";
  opts.error_body = [](int status, const std::string& message) {
    // Codes of the distribution spec where one fits; the server's own
    // refusals (malformed, too large, too slow) have none, so UNKNOWN.
    const char* code = status == 503 ? "UNAVAILABLE" : status == 405 ? "UNSUPPORTED" : "UNKNOWN";
    return registry::OciErrorBody(code, message);
  };
  // The admin socket for `georeg cache ...`: same HTTP server, a Unix socket in the cache dir.
  http::Server admin(env, opts, [&service](const std::shared_ptr<http::Exchange>& ex) {
    service.HandleAdmin(ex);
  });
  // The metrics listener: no access log, plain-text errors.
  http::ServerOptions metrics_opts = opts;
  metrics_opts.error_body = nullptr;
  metrics_opts.error_content_type = "text/plain";
  metrics_opts.max_connections = 64;
  telemetry::RequestMetrics request_metrics;
  telemetry::MetricsPage metrics_page(cfg, &request_metrics, &service, cluster.get());
  http::Server metrics(
      env, metrics_opts,
      [&metrics_page](const std::shared_ptr<http::Exchange>& ex) { metrics_page.Handle(ex); });
  bool access_log = cfg.access_log;
  telemetry::AccessLog access_lines;
  opts.on_done = [&request_metrics, &access_log, &access_lines](const http::RequestRecord& r) {
    request_metrics.Record(r);
    if (access_log) access_lines.Add(r);
  };
  // The access lines of a loop turn go out in one write, before the loop
  // waits again (a prepare handle runs just before each poll).
  io::Handle<uv_prepare_t> flush_access;
  flush_access.Init(&loop, &access_lines, uv_prepare_init);
  uv_prepare_start(flush_access.get(),
                   [](uv_prepare_t* p) { static_cast<telemetry::AccessLog*>(p->data)->Flush(); });
  uv_unref(flush_access.base());
  telemetry::StatusPage status_page(cfg, &service, cluster.get(), clock.WallMs(), &clock);
  opts.sendfile = ChooseSendfile(cfg);
  routes::RegistryRoutes routes(&service, cluster.get(), &status_page);
  http::Server server(env, opts,
                      [&routes](const std::shared_ptr<http::Exchange>& ex) { routes.Handle(ex); });

  // One way down, for a signal and for a failed start alike: peers learn
  // first that we leave, then the listeners stop, in-flight responses get
  // the grace period, and only then do fills, upstreams and the cluster close.
  io::Handle<uv_signal_t> sigterm, sigint, sighup;
  bool stopping = false;
  std::string listening;  // "HOST:PORT" of the registry listener
  auto stop = [&](uint64_t grace_ms) {
    if (stopping) return;
    stopping = true;
    io::NotifyStopping();
    sigterm.Close();
    sigint.Close();
    sighup.Close();
    if (cluster) cluster->Leave();
    admin.Shutdown(0, [] {});
    metrics.Shutdown(0, [] {});
    server.Shutdown(grace_ms, [&service, &cluster, &keeper] {
      service.Shutdown();
      if (cluster) cluster->Shutdown();
      keeper.Stop();
    });
  };
  std::function<void(int)> on_signal = [&](int signum) {
    LOG_INFO("signal %d: stopping (grace %llu ms)", signum,
             (unsigned long long)cfg.server.shutdown_grace_ms);
    stop(cfg.server.shutdown_grace_ms);
  };
  // SIGHUP: the config again. Only a config that loads and validates is
  // taken; of it, what can change live is applied and the rest is named.
  config::Config running = cfg;
  std::function<void(int)> on_hangup = [&](int) {
    io::NotifyReloading();
    auto next = reload();
    if (!next.ok()) {
      LOG_ERROR("reload: %s; the running configuration is kept", next.status().message().c_str());
    } else {
      std::vector<std::string> restart = config::RestartKeys(running, *next);
      ApplyLogConfig(*next);
      access_log = next->access_log;
      std::string keys;
      for (const auto& k : restart) keys += (keys.empty() ? "" : ", ") + k;
      if (restart.empty()) {
        LOG_INFO("reload: configuration applied (log level %s, format %s, access log %s)",
                 next->log_level.c_str(), next->log_format.c_str(),
                 next->access_log ? "on" : "off");
      } else {
        LOG_WARN("reload: [log] applied; changes to %s take effect at the next restart",
                 keys.c_str());
      }
      running.log_level = next->log_level;
      running.log_format = next->log_format;
      running.access_log = next->access_log;
    }
    io::NotifyReady(ReadyStatus(listening, keeper) +
                    (next.ok() ? "; reloaded" : "; reload refused"));
  };
  for (auto [h, signum, fn] :
       {std::tuple{&sigterm, SIGTERM, &on_signal}, std::tuple{&sigint, SIGINT, &on_signal},
        std::tuple{&sighup, SIGHUP, &on_hangup}}) {
    h->Init(&loop, fn, uv_signal_init);
    uv_signal_start(
        h->get(),
        [](uv_signal_t* s, int n) { (*static_cast<std::function<void(int)>*>(s->data))(n); },
        signum);
  }

  // Sockets from the service manager take the place of the listen addresses.
  int server_fd = -1, metrics_fd = -1;
  for (const io::InheritedSocket& s : io::TakeInheritedSockets()) {
    int* slot = s.name == "metrics" ? &metrics_fd : &server_fd;
    if (*slot < 0) {
      *slot = s.fd;
    } else {
      LOG_WARN("service manager: socket %d (%s) is one too many; closed", s.fd, s.name.c_str());
      ::close(s.fd);
    }
  }
  int exit_code = 0;
  util::Status st =
      server_fd >= 0 ? server.ListenFd(server_fd) : server.Listen(cfg.server.listen_addr);
  if (st.ok()) st = admin.ListenUnix(cfg.cache.dir + "/admin.sock");
  if (st.ok() && metrics_fd >= 0) {
    st = metrics.ListenFd(metrics_fd);
  } else if (st.ok() && cfg.metrics.enabled()) {
    st = metrics.Listen(cfg.metrics.listen_addr);
    // Say which listener: the embedded defaults turn this one on unasked.
    if (!st.ok()) st = util::Status::IoError("metrics.listen: " + st.message());
  }
  if (!st.ok()) {
    LOG_ERROR("%s", st.ToString().c_str());
    exit_code = 1;
    stop(0);
  } else {
    std::string ups;
    for (const auto& u : cfg.upstreams) ups += " " + u.registry + "=" + u.url;
    listening = util::HostPort{server.host(), uint16_t(server.port())}.ToString();
    LOG_INFO("georeg %s listening on %s%s, cache %s (budget %s), upstreams:%s", GEOREG_VERSION,
             listening.c_str(), server_fd >= 0 ? " (socket from the service manager)" : "",
             cfg.cache.dir.c_str(), util::FormatSize(cfg.cache.max_size).c_str(), ups.c_str());
    if (metrics_fd >= 0 || cfg.metrics.enabled())
      LOG_INFO("metrics on http://%s/metrics",
               util::HostPort{metrics.host(), uint16_t(metrics.port())}.ToString().c_str());
    if (cluster) cluster->Start();
    io::NotifyReady(ReadyStatus(listening, keeper));
  }

  uv_run(&loop, UV_RUN_DEFAULT);
  // Every network handle is closed. Drain the writer (its completions are no
  // longer wanted), then close the bridge's async handle and the loop.
  writer.reset();
  bridge.Close();
  deferred.Close();
  flush_access.Close();
  uv_run(&loop, UV_RUN_DEFAULT);
  access_lines.Flush();
  int rc = uv_loop_close(&loop);
  if (rc != 0) LOG_WARN("event loop closed with handles still open: %s", uv_strerror(rc));
  LOG_INFO("stopped");
  return exit_code;
}

}  // namespace daemon_main
