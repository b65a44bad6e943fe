// Daemon: `georeg serve` — wires config, cache, writer thread, HTTP server
// and the registry service onto one libuv loop, and handles SIGTERM/SIGINT.
//
// Shutdown order (docs/architecture.md): stop accepting; in-flight responses
// get `server.shutdown_grace`; then fills are cancelled, upstream connections
// closed, the writer drains its queue and joins, the store syncs and closes,
// and Run() returns 0 once every handle is closed.
#pragma once

#include "config/config.h"

namespace daemon_main {

// Runs until a signal stops it. Returns the process exit code; errors
// (cannot open cache, cannot listen) are logged as one line and return 1.
int Run(const config::Config& cfg);

}  // namespace daemon_main
