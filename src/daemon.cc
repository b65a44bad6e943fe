#include "src/daemon.h"

#include <signal.h>
#include <uv.h>

#include <memory>

#include "cache/dir_lock.h"
#include "cache/store.h"
#include "cache/writer.h"
#include "src/http/server.h"
#include "src/peering/cluster.h"
#include "src/registry/blob_fill.h"
#include "src/registry/service.h"
#include "src/registry/writer_bridge.h"
#include "util/log.h"

namespace daemon_main {

int Run(const config::Config& cfg) {
  util::LogLevel level;
  if (util::ParseLogLevel(cfg.log_level.c_str(), &level)) util::SetLogLevel(level);
  ::signal(SIGPIPE, SIG_IGN);

  auto lock = cache::DirLock::Acquire(cfg.cache.dir);
  if (!lock.ok()) {
    LOG_ERROR("%s", lock.status().message().c_str());
    return 1;
  }
  auto store = cache::Store::Open({cfg.cache.dir, cfg.cache.max_size, cfg.cache.map_size});
  if (!store.ok()) {
    LOG_ERROR("cannot open cache: %s", store.status().ToString().c_str());
    return 1;
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto upstreams = registry::UpstreamSet::Create(&loop, cfg.upstreams);
  if (!upstreams.ok()) {
    LOG_ERROR("%s", upstreams.status().message().c_str());
    uv_loop_close(&loop);
    return 1;
  }
  auto writer = std::make_unique<cache::Writer>();
  registry::WriterBridge bridge(&loop, writer.get());
  registry::Service service(&loop, cfg.cache, std::move(*upstreams), store->get(), &bridge);
  if (util::Status st = service.Start(); !st.ok()) {
    LOG_ERROR("cannot load the cache index: %s", st.ToString().c_str());
    return 1;
  }
  std::unique_ptr<peering::Cluster> cluster;
  if (cfg.cluster.enabled()) {
    auto key = peering::ReadClusterKey(cfg.cluster.key_file);
    if (!key.ok()) {
      LOG_ERROR("%s", key.status().message().c_str());
      return 1;
    }
    uint64_t slowest = 0;
    for (const auto& u : cfg.upstreams) slowest = std::max(slowest, u.connect_timeout_ms + u.response_timeout_ms);
    cluster = std::make_unique<peering::Cluster>(&loop, cfg, std::move(*key), &service.blob_index(), slowest);
    service.AttachCluster(cluster.get());
  }

  http::ServerOptions opts;
  opts.limits.max_request_line = cfg.server.max_request_line;
  opts.limits.max_header_bytes = cfg.server.max_header_bytes;
  opts.limits.max_headers = cfg.server.max_headers;
  opts.header_timeout_ms = cfg.server.header_timeout_ms;
  opts.idle_timeout_ms = cfg.server.idle_timeout_ms;
  opts.response_head_timeout_ms = cfg.server.response_head_timeout_ms;
  opts.max_connections = cfg.server.max_connections;
  opts.error_content_type = "application/json";
  opts.error_body = [](int status, const std::string& message) {
    const char* code = status == 503 ? "UNAVAILABLE" : status == 408 ? "TIMEOUT" : "BAD_REQUEST";
    return registry::OciErrorBody(code, message);
  };
  http::Server server(&loop, opts, [&service](const std::shared_ptr<http::Exchange>& ex) { service.Handle(ex); });
  // The admin socket for `georeg cache ...`: same HTTP server, a Unix socket in the cache dir.
  http::Server admin(&loop, opts, [&service](const std::shared_ptr<http::Exchange>& ex) { service.HandleAdmin(ex); });

  int exit_code = 0;
  uv_signal_t sigterm, sigint;
  uv_signal_init(&loop, &sigterm);
  uv_signal_init(&loop, &sigint);
  struct Ctx {
    http::Server* server;
    http::Server* admin;
    registry::Service* service;
    peering::Cluster* cluster;
    uint64_t grace_ms;
    uv_signal_t* signals[2];
    bool stopping = false;
  } ctx{&server, &admin, &service, cluster.get(), cfg.server.shutdown_grace_ms, {&sigterm, &sigint}};
  sigterm.data = sigint.data = &ctx;
  auto on_signal = [](uv_signal_t* s, int signum) {
    auto* c = static_cast<Ctx*>(s->data);
    if (c->stopping) return;
    c->stopping = true;
    LOG_INFO("signal %d: stopping (grace %llu ms)", signum, (unsigned long long)c->grace_ms);
    for (uv_signal_t* sig : c->signals) uv_close(reinterpret_cast<uv_handle_t*>(sig), nullptr);
    // Peers learn at once that we leave, and stop sending us requests.
    if (c->cluster) c->cluster->Leave();
    c->admin->Shutdown(0, [] {});
    c->server->Shutdown(c->grace_ms, [c] {
      c->service->Shutdown();
      if (c->cluster) c->cluster->Shutdown();
    });
  };
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_signal_start(&sigint, on_signal, SIGINT);

  util::Status st = server.Listen(cfg.server.listen_addr);
  if (st.ok()) st = admin.ListenUnix(cfg.cache.dir + "/admin.sock");
  if (!st.ok()) {
    LOG_ERROR("%s", st.ToString().c_str());
    exit_code = 1;
    ctx.stopping = true;
    for (uv_signal_t* sig : ctx.signals) uv_close(reinterpret_cast<uv_handle_t*>(sig), nullptr);
    admin.Shutdown(0, [] {});
    server.Shutdown(0, [&service, &cluster] {
      service.Shutdown();
      if (cluster) cluster->Shutdown();
    });
  } else {
    std::string ups;
    for (const auto& u : cfg.upstreams) ups += " " + u.registry + "=" + u.url;
    LOG_INFO("georeg %s listening on %s:%d, cache %s (budget %s), upstreams:%s", GEOREG_VERSION,
             cfg.server.listen_addr.host.c_str(), server.port(), cfg.cache.dir.c_str(),
             util::FormatSize(cfg.cache.max_size).c_str(), ups.c_str());
    if (cluster) cluster->Start();
  }

  uv_run(&loop, UV_RUN_DEFAULT);
  // Every network handle is closed. Drain the writer (its completions are no
  // longer wanted), then close the bridge's async handle and the loop.
  writer.reset();
  bridge.Close();
  uv_run(&loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&loop);
  if (rc != 0) LOG_WARN("event loop closed with handles still open: %s", uv_strerror(rc));
  LOG_INFO("stopped");
  return exit_code;
}

}  // namespace daemon_main
