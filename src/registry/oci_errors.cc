#include "src/registry/oci_errors.h"

#include <nlohmann/json.hpp>

namespace registry {

std::string OciErrorBody(const char* code, const std::string& message) {
  nlohmann::json j = {{"errors", {{{"code", code}, {"message", message}, {"detail", nullptr}}}}};
  return j.dump() + "\n";
}

std::vector<http::Header> BaseHeaders() {
  return {{"Docker-Distribution-API-Version", "registry/2.0"}};
}

void RespondOciError(const std::shared_ptr<http::Exchange>& ex, int status, const char* code,
                     const std::string& message) {
  auto headers = BaseHeaders();
  headers.push_back({"Content-Type", "application/json"});
  ex->Respond(status, headers, OciErrorBody(code, message));
}

}  // namespace registry
