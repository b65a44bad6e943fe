// libFuzzer: the request parser (split at a byte the input chooses, bodies
// asked for with a limit) and the router on every request it yields.
#include <cstdint>
#include <string>

#include "src/http/request_parser.h"
#include "src/oci/router.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  size_t split = data[0] % (size);
  std::string input(reinterpret_cast<const char*>(data + 1), size - 1);
  http::RequestParser::Limits limits;
  limits.max_request_line = 512;
  limits.max_header_bytes = 2048;
  limits.max_headers = 20;
  http::RequestParser p(limits);
  std::string pending;
  for (std::string piece : {input.substr(0, split), input.substr(std::min(split, input.size()))}) {
    pending += piece;
    for (int guard = 0; guard < 1000; ++guard) {
      size_t used = 0;
      auto ev = p.Feed(pending, &used);
      if (used > pending.size()) __builtin_trap();
      pending.erase(0, used);
      if (ev == http::RequestParser::Event::kRequest) {
        http::Request r = p.TakeRequest();
        oci::Route route = oci::RouteRequest(r.method, r.target);
        (void)route;
        if (r.has_body && p.ExpectBody(256) != 0) return 0;
        continue;
      }
      if (ev == http::RequestParser::Event::kBody) {
        if (p.TakeBody().size() > 256) __builtin_trap();
        continue;
      }
      if (ev == http::RequestParser::Event::kError) return 0;
      break;
    }
  }
  return 0;
}
