// Daemon: `georeg serve` — wires config, cache, writer thread, HTTP servers
// (registry, admin socket, metrics) and the registry service onto one libuv
// loop, and handles SIGTERM/SIGINT/SIGHUP and the service manager.
//
// Shutdown order (docs/architecture.md): stop accepting; in-flight responses
// get `server.shutdown_grace`; then fills are cancelled, upstream connections
// closed, the writer drains its queue and joins, the store syncs and closes,
// and Run() returns 0 once every handle is closed.
#pragma once

#include <functional>

#include "config/config.h"
#include "util/status.h"

namespace daemon_main {

// Reads the configuration again, as at start (file and command line), validated.
using ConfigLoader = std::function<util::Result<config::Config>()>;

// Runs until SIGTERM or SIGINT stops it. Returns the process exit code;
// errors (cannot open cache, cannot listen) are logged as one line and
// return 1. SIGHUP calls `reload`: a config that fails to load or validate
// is refused (logged) and the running one kept; a good one applies what can
// change live (log level and format, the access log) and names what needs a
// restart. With $NOTIFY_SOCKET: READY=1 once listening with the cache open,
// RELOADING=1/READY=1 around a reload, STOPPING=1. With $LISTEN_FDS: the
// socket named "metrics" serves /metrics, the first other one the registry
// (server.listen is then not bound).
int Run(const config::Config& cfg, ConfigLoader reload);

}  // namespace daemon_main
