#include <catch2/catch.hpp>

#include "src/registry/upstream_set.h"
#include "src/upstream/session.h"

TEST_CASE("Docker Hub aliases name one upstream; single names get library/") {
  CHECK(registry::CanonicalRegistry("docker.io") == "docker.io");
  CHECK(registry::CanonicalRegistry("index.docker.io") == "docker.io");
  CHECK(registry::CanonicalRegistry("registry-1.docker.io") == "docker.io");
  CHECK(registry::CanonicalRegistry("ghcr.io") == "ghcr.io");
  registry::Upstream hub, ghcr;
  hub.is_docker_hub = true;
  CHECK(registry::UpstreamSet::UpstreamName(hub, "alpine") == "library/alpine");
  CHECK(registry::UpstreamSet::UpstreamName(hub, "library/alpine") == "library/alpine");
  CHECK(registry::UpstreamSet::UpstreamName(hub, "bitnami/redis") == "bitnami/redis");
  CHECK(registry::UpstreamSet::UpstreamName(ghcr, "alpine") == "alpine");
}

TEST_CASE("absolute URLs for realms and redirects") {
  std::string scheme, host, path;
  uint16_t port;
  REQUIRE(upstream::ParseUrl("https://auth.docker.io/token", &scheme, &host, &port, &path));
  CHECK(scheme == "https");
  CHECK(host == "auth.docker.io");
  CHECK(port == 443);
  CHECK(path == "/token");
  REQUIRE(upstream::ParseUrl("http://10.0.0.1:8080/b?x=1#frag", &scheme, &host, &port, &path));
  CHECK(port == 8080);
  CHECK(path == "/b?x=1");
  REQUIRE(upstream::ParseUrl("HTTP://[::1]:99", &scheme, &host, &port, &path));
  CHECK(scheme == "http");
  CHECK(host == "::1");
  CHECK(path == "/");
  for (const char* bad : {"ftp://x/", "//x/y", "http://", "http://user:pw@host/", "http://h:0/", "http://h:99999/",
                          "http://h:x/", "/relative"}) {
    INFO(bad);
    CHECK_FALSE(upstream::ParseUrl(bad, &scheme, &host, &port, &path));
  }
}
