// The access log: one line per finished request (docs/operations.md, "Logs").
//
// Fields: method, path, status, bytes, result, source, ms, remote. The
// path is the request target without its query, but for `ns=` (which
// registry): a query may carry a token or a signature, and a pull never
// needs one here. Long or odd targets are cut and their control bytes
// replaced, so a line stays one line of bounded size.
//
// Lines are batched: AccessLog keeps them and writes them in one write(2)
// when Flush() is called (the daemon does, once per loop iteration, before
// the loop waits for events) or when 64 KiB are waiting. So a request costs
// no syscall of its own, and no line waits longer than the loop's turn.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "src/http/server.h"
#include "util/log.h"

namespace telemetry {

// The target as logged: path (at most 256 bytes, "..." marks a cut), then "?ns=<value>" if present.
std::string LoggedTarget(std::string_view target);

class AccessLog {
 public:
  // Formats the line at info level (gossip: debug), if that level is logged.
  void Add(const http::RequestRecord& r);
  // Writes what waits, if anything.
  void Flush();
  ~AccessLog() { Flush(); }

 private:
  static constexpr size_t kFlushBytes = 64 * 1024;
  std::string pending_;
};

}  // namespace telemetry
