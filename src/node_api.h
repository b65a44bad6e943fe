// The CLI's side of a node's HTTP API: one request to a running georeg
// (the replication API, the status), on a loop of its own, with a 30 s
// deadline and an 8 MiB bound on the answer.
#pragma once

#include <string>

#include "util/status.h"
#include "util/url.h"

namespace node_api {

struct Answer {
  int status = 0;
  std::string body;
};

// `endpoint` when given, else the local daemon at server.listen of
// `config_path` (or the built-in default), a wildcard read as loopback.
// Errors: InvalidArgument (a bad URL or config).
util::Result<util::Url> EndpointOf(const std::string& endpoint, const std::string& config_path);

// Sends `method path` (with a JSON `body` when non-empty, Basic credentials
// when given). Errors: InvalidArgument (a path with a space or a byte that
// is not visible ASCII: it would be another request line; nothing is sent),
// Unavailable (cannot reach the node, deadline).
util::Result<Answer> Call(const util::Url& node, const std::string& method, const std::string& path,
                          const std::string& body = "", const std::string& username = "",
                          const std::string& password = "");

}  // namespace node_api
