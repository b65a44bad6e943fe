// JSON answers on an exchange: the one way georeg's own APIs (the admin
// socket, replications, status) send a JSON document, and their error shape
// {"error": "<one line>"}. The /v2/ routes answer OCI error bodies instead
// (src/registry/oci_errors.h). Loop thread, like the exchange.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "src/http/server.h"

namespace http {

// `body` compact, then a newline; Content-Type application/json before `headers`.
void RespondJson(const std::shared_ptr<Exchange>& ex, int status, const nlohmann::json& body,
                 std::vector<Header> headers = {});
// {"error": message}.
void RespondJsonError(const std::shared_ptr<Exchange>& ex, int status, const std::string& message,
                      std::vector<Header> headers = {});

}  // namespace http
