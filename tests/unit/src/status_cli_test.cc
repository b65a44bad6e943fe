// `georeg status` as a person reads it: each count beside the bytes of the
// same set (the cache's blobs, the own registry's apart).
#include <catch2/catch.hpp>

#include <string>

#include "src/status_cli.h"

TEST_CASE("status: the cache line counts cached blobs, the registry line own blobs") {
  // A node holding four pushed blobs and nothing cached (the case seen as
  // "CACHE 0B of 1.0GiB, 4 blob(s)").
  std::string text = status_cli::FormatStatus(R"({
    "node": {"name": "n1", "region": "eastus", "version": "0.1.0", "uptime_s": 5},
    "cache": {"blobs": 0, "bytes": 0, "budget": 1073741824, "hits": 0, "misses": 0,
              "evictions": 0, "map_used": 0, "map_size": 0,
              "registry": "fleet.example", "registry_bytes": 4096, "registry_blobs": 4,
              "registry_budget": 1073741824}})");
  CHECK(text.find("CACHE 0B of 1.0GiB, 0 cached blob(s),") != std::string::npos);
  CHECK(text.find("REGISTRY fleet.example 4.0KiB of 1.0GiB, 4 own blob(s)") != std::string::npos);
}

TEST_CASE("status: no registry line without an own registry") {
  std::string text = status_cli::FormatStatus(
      R"({"node": {"name": "n1"}, "cache": {"blobs": 2, "bytes": 2048, "budget": 4096}})");
  CHECK(text.find("2 cached blob(s)") != std::string::npos);
  CHECK(text.find("REGISTRY") == std::string::npos);
}
