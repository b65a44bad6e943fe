// The CLI's requests to a node (src/node_api.h): a path that would not be
// one request line is refused before anything is sent.
#include "src/node_api.h"

#include <catch2/catch.hpp>

TEST_CASE("node API: a path with a space or an invisible byte is refused, nothing sent") {
  // Port 1 on loopback refuses connections: a request that was sent fails
  // Unavailable, one refused before fails InvalidArgument.
  auto node = util::ParseUrl("http://127.0.0.1:1");
  REQUIRE(node.ok());
  for (std::string path :
       {std::string("/_georeg/v1/registries/a b/replications"), std::string("/x\r\nHost: y"),
        std::string("/x\x01"), std::string("/caf\xc3\xa9")}) {
    auto a = node_api::Call(*node, "GET", path);
    REQUIRE_FALSE(a.ok());
    CHECK(a.status().code() == util::Code::kInvalidArgument);
    CHECK(a.status().message().find("not visible ASCII") != std::string::npos);
  }
  auto sent = node_api::Call(*node, "GET", "/_georeg/v1/registries/a/replications");
  REQUIRE_FALSE(sent.ok());
  CHECK(sent.status().code() == util::Code::kUnavailable);
}
