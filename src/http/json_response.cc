#include "src/http/json_response.h"

#include <nlohmann/json.hpp>

namespace http {

void RespondJson(const std::shared_ptr<Exchange>& ex, int status, const nlohmann::json& body,
                 std::vector<Header> headers) {
  headers.insert(headers.begin(), {"Content-Type", "application/json"});
  ex->Respond(status, headers, body.dump() + "\n");
}

void RespondJsonError(const std::shared_ptr<Exchange>& ex, int status, const std::string& message,
                      std::vector<Header> headers) {
  RespondJson(ex, status, nlohmann::json{{"error", message}}, std::move(headers));
}

}  // namespace http
