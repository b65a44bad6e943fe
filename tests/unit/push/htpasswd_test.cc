// push::Htpasswd: the push credentials file and Basic credentials.
#include <catch2/catch.hpp>

#include <string>

#include "push/htpasswd.h"

TEST_CASE("htpasswd: bcrypt lines verify, anything else is refused at parse time") {
  auto hash = push::BcryptHash("s3cret", 4);  // cost 4: fast in tests
  REQUIRE(hash.ok());
  CHECK(hash->rfind("$2b$04$", 0) == 0);
  auto h = push::Htpasswd::Parse("# push users\nalice:" + *hash + "\r\n\n");
  REQUIRE(h.ok());
  CHECK(h->size() == 1);
  CHECK(h->Verify("alice", "s3cret"));
  CHECK_FALSE(h->Verify("alice", "s3cret "));
  CHECK_FALSE(h->Verify("alice", ""));
  CHECK_FALSE(h->Verify("bob", "s3cret"));
  // htpasswd -B writes $2y$: libxcrypt verifies that form too.
  std::string y = *hash;
  y[2] = 'y';
  CHECK(push::Htpasswd::Parse("alice:" + y)->Verify("alice", "s3cret"));
  for (const char* bad : {"alice", ":x", "alice:{SHA}abc", "alice:$apr1$abc$def", "alice:plain"}) {
    INFO(bad);
    auto r = push::Htpasswd::Parse(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().rfind("line 1:", 0) == 0);
  }
  CHECK(push::Htpasswd::Load("/nonexistent/htpasswd").status().code() == util::Code::kIoError);
  CHECK_FALSE(push::BcryptHash("x", 3).ok());
}

TEST_CASE("htpasswd: Basic credentials are split at the first colon") {
  std::string user, password;
  REQUIRE(push::ParseBasicAuth("Basic YWxpY2U6czNjcmV0Ojo=", &user, &password));  // alice:s3cret::
  CHECK(user == "alice");
  CHECK(password == "s3cret::");
  REQUIRE(push::ParseBasicAuth("basic  Ym9iOg==", &user, &password));  // bob:
  CHECK(user == "bob");
  CHECK(password.empty());
  CHECK_FALSE(push::ParseBasicAuth("Bearer abc", &user, &password));
  CHECK_FALSE(push::ParseBasicAuth("Basic bm9jb2xvbg==", &user, &password));  // nocolon
  CHECK_FALSE(push::ParseBasicAuth("Basic !!!", &user, &password));
  CHECK_FALSE(push::ParseBasicAuth("Basic " + std::string(5000, 'A'), &user, &password));
}
