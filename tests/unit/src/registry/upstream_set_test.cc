#include <catch2/catch.hpp>

#include "src/registry/upstream_set.h"
#include "util/url.h"

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

TEST_CASE("absolute URLs: one parser for config, realms, redirects and members") {
  auto u = util::ParseUrl("https://auth.docker.io/token");
  REQUIRE(u.ok());
  CHECK(u->scheme == "https");
  CHECK(u->host == "auth.docker.io");
  CHECK(u->port == 443);
  CHECK(u->path == "/token");
  CHECK(u->explicit_path);
  u = util::ParseUrl("http://10.0.0.1:8080/b?x=1#frag");
  REQUIRE(u.ok());
  CHECK(u->port == 8080);
  CHECK(u->path == "/b?x=1");
  u = util::ParseUrl("HTTP://[::1]:99");
  REQUIRE(u.ok());
  CHECK(u->scheme == "http");
  CHECK(u->host == "::1");
  CHECK(u->path == "/");
  CHECK_FALSE(u->explicit_path);
  CHECK(u->Origin() == "http://[::1]:99");
  u = util::ParseUrl("http://h?q=1");
  REQUIRE(u.ok());
  CHECK(u->path == "/?q=1");
  for (const char* bad :
       {"ftp://x/", "//x/y", "http://", "http://user:pw@host/", "http://h:0/", "http://h:99999/",
        "http://h:x/", "/relative", "http://h:/", "http://[::1/", "http://[::1]x/", "http://a b/",
        "http://h%2f/", "http://[zz]/"}) {
    INFO(bad);
    CHECK_FALSE(util::ParseUrl(bad).ok());
  }
}
