#include <catch2/catch.hpp>

#include "src/upstream/www_authenticate.h"

using upstream::ParseWwwAuthenticate;

TEST_CASE("WWW-Authenticate: Docker Hub's bearer challenge") {
  auto c = ParseWwwAuthenticate(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",)"
      R"(scope="repository:library/alpine:pull")");
  REQUIRE(c.size() == 1);
  CHECK(c[0].scheme == "bearer");
  CHECK(c[0].Param("realm") == "https://auth.docker.io/token");
  CHECK(c[0].Param("service") == "registry.docker.io");
  CHECK(c[0].Param("scope") == "repository:library/alpine:pull");
}

TEST_CASE("WWW-Authenticate: several challenges, commas inside quotes, escapes, spacing, case") {
  auto c = ParseWwwAuthenticate(R"(Basic realm="a, b", BEARER Realm = "https://x/token" , )"
                                R"(service=reg,error="invalid_token", Negotiate)");
  REQUIRE(c.size() == 3);
  CHECK(c[0].scheme == "basic");
  CHECK(c[0].Param("realm") == "a, b");
  CHECK(c[1].scheme == "bearer");
  CHECK(c[1].Param("realm") == "https://x/token");
  CHECK(c[1].Param("service") == "reg");
  CHECK(c[1].Param("error") == "invalid_token");
  CHECK(c[2].scheme == "negotiate");
  CHECK(c[2].params.empty());

  c = ParseWwwAuthenticate(R"(Bearer realm="q\"uote\\d")");
  REQUIRE(c.size() == 1);
  CHECK(c[0].Param("realm") == R"(q"uote\d)");
}

TEST_CASE("WWW-Authenticate: token68 and junk do not crash or loop") {
  auto c = ParseWwwAuthenticate("Negotiate abc123==, Basic realm=x");
  REQUIRE(c.size() == 2);
  CHECK(c[1].scheme == "basic");
  CHECK(c[1].Param("realm") == "x");
  for (const char* junk :
       {"", ",,,", "=", "Bearer realm=\"unterminated", "Bearer ,=,=", "\"", "Bearer realm="}) {
    INFO(junk);
    auto r = ParseWwwAuthenticate(junk);
    CHECK(r.size() <= 2);
  }
  CHECK(upstream::FindChallenge(ParseWwwAuthenticate("Basic realm=x, Bearer realm=y"), "bearer")
            ->Param("realm") == "y");
  CHECK(upstream::FindChallenge(ParseWwwAuthenticate("Basic realm=x"), "bearer") == nullptr);
}
