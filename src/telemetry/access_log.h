// The access log: one line per finished request (docs/operations.md, "Logs").
//
// Fields: method, path, status, bytes, result, source, ms, remote. The
// path is the request target without its query, but for `ns=` (which
// registry): a query may carry a token or a signature, and a pull never
// needs one here. Long or odd targets are cut and their control bytes
// replaced, so a line stays one line of bounded size. Pure.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "src/http/server.h"
#include "util/log.h"

namespace telemetry {

// The target as logged: path (at most 256 bytes, "..." marks a cut), then "?ns=<value>" if present.
std::string LoggedTarget(std::string_view target);
std::vector<util::LogField> AccessFields(const http::RequestRecord& r);
// Writes the line at info level (gossip: debug).
void LogAccess(const http::RequestRecord& r);

}  // namespace telemetry
