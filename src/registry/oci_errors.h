// The OCI error body and headers every /v2/ route answers with. Pure but for
// RespondOciError, which answers an exchange (loop thread).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "src/http/server.h"

namespace registry {

// {"errors":[{"code":..,"message":..,"detail":null}]} and a newline.
std::string OciErrorBody(const char* code, const std::string& message);
// Headers every /v2/ response carries.
std::vector<http::Header> BaseHeaders();
void RespondOciError(const std::shared_ptr<http::Exchange>& ex, int status, const char* code,
                     const std::string& message);

}  // namespace registry
