// The own registry's pure logic: credentials, the failed-login limiter,
// and what a pushed manifest references.
#include <catch2/catch.hpp>

#include "push/failure_limiter.h"
#include "push/gc.h"
#include "push/htpasswd.h"
#include "push/manifest.h"

namespace {
const std::string kD1 = "sha256:" + std::string(64, '1');
const std::string kD2 = "sha256:" + std::string(64, '2');
const std::string kD3 = "sha256:" + std::string(64, '3');
}  // namespace

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

TEST_CASE("failure limiter: N failures a minute per address, bounded") {
  push::FailureLimiter lim(3, 2);
  for (int i = 0; i < 3; ++i) {
    CHECK(lim.Allowed("10.0.0.1", 1000));
    lim.Failed("10.0.0.1", 1000 + i);
  }
  CHECK_FALSE(lim.Allowed("10.0.0.1", 2000));
  CHECK(lim.Allowed("10.0.0.2", 2000));   // another address is not held back
  CHECK(lim.Allowed("10.0.0.1", 61000));  // a new minute
  lim.Failed("10.0.0.2", 3000);
  lim.Failed("10.0.0.3", 4000);  // over max_addresses: the oldest window goes
  CHECK(lim.tracked() == 2);
  CHECK(lim.Allowed("10.0.0.1", 5000));
}

TEST_CASE("pushed manifest: references, subject and artifact type") {
  std::string image =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
    "config":{"mediaType":"application/vnd.example.config","digest":")" +
      kD1 + R"(","size":2},
    "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":")" +
      kD2 + R"(","size":3}],
    "subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
      kD3 + R"(","size":4},
    "annotations":{"org.example":"x"}})";
  auto m = push::ParsePushedManifest("application/vnd.oci.image.manifest.v1+json", image);
  REQUIRE(m.ok());
  CHECK(m->blobs.size() == 2);
  CHECK(m->blobs[0].ToString() == kD1);
  CHECK(m->subject->ToString() == kD3);
  CHECK(m->artifact_type ==
        "application/vnd.example.config");  // no artifactType: the config's type
  CHECK(m->annotations_json == R"({"org.example":"x"})");
  // Content-Type missing or generic: the manifest's own mediaType decides.
  CHECK(push::ParsePushedManifest("", image).ok());
  std::string index = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",)"
                      R"("artifactType":"a/b",
    "manifests":[{"digest":")" +
                      kD1 + R"(","size":5},{"digest":")" + kD2 + R"(","size":6}]})";
  auto i = push::ParsePushedManifest("application/vnd.oci.image.index.v1+json", index);
  REQUIRE(i.ok());
  CHECK(i->manifests.size() == 2);
  CHECK(i->blobs.empty());
  CHECK(i->artifact_type == "a/b");
  CHECK_FALSE(push::ParsePushedManifest("application/vnd.oci.image.index.v1+json", index, 1)
                  .ok());  // the bound
}

TEST_CASE("pushed manifest: what is refused") {
  const std::string oci = "application/vnd.oci.image.manifest.v1+json";
  std::vector<std::pair<std::string, std::string>> bad = {
      {oci, "not json"},
      {oci, "[1,2]"},
      {oci, R"({"schemaVersion":2})"},  // no config
      {oci, R"({"config":{"digest":"sha256:12","size":1}})"},
      {oci, R"({"config":{"digest":")" + kD1 + R"("}})"},  // no size
      {oci, R"({"config":{"digest":")" + kD1 + R"(","size":-1}})"},
      {oci,
       R"({"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]})"},  // contradicts
      {"application/vnd.docker.distribution.manifest.v1+json", R"({"config":{}})"},
      {"text/plain", "{}"},
      {oci, R"({"config":{"digest":")" + kD1 + R"(","size":1},"layers":{}})"},
      {oci, R"({"config":{"digest":")" + kD1 + R"(","size":1},"subject":"x"})"},
      {oci, R"({"config":{"digest":")" + kD1 + R"(","size":1},"annotations":[]})"},
  };
  for (const auto& [type, body] : bad) {
    INFO(type << " " << body);
    CHECK_FALSE(push::ParsePushedManifest(type, body).ok());
  }
}

TEST_CASE("gc: own blobs no manifest references go once older than the grace period") {
  auto d = [](const std::string& s) { return *util::Digest::Parse(s); };
  std::vector<push::OwnBlob> blobs = {{d(kD1), 1000}, {d(kD2), 1000}, {d(kD3), 9000}};
  // kD2 is referenced; kD3 is too young; kD1 goes.
  auto out = push::Collectable(blobs, {d(kD2)}, 10'000, 5'000);
  REQUIRE(out.size() == 1);
  CHECK(out[0] == d(kD1));
  CHECK(push::Collectable(blobs, {}, 10'000, 1'000).size() == 3);
  // A clock that went back keeps everything.
  CHECK(push::Collectable(blobs, {}, 500, 0).empty());
}
