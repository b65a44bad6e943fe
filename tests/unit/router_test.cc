#include <catch2/catch.hpp>

#include "src/oci/router.h"

using oci::ErrorCode;
using oci::RouteKind;
using oci::RouteRequest;

namespace {
const std::string kHex(64, 'b');
}

TEST_CASE("router: base, manifests and blobs") {
  CHECK(RouteRequest("GET", "/v2/").kind == RouteKind::kBase);
  CHECK(RouteRequest("GET", "/v2").kind == RouteKind::kBase);
  CHECK(RouteRequest("HEAD", "/v2/?ns=docker.io").kind == RouteKind::kBase);

  auto r = RouteRequest("GET", "/v2/library/alpine/manifests/3.19?ns=docker.io");
  REQUIRE(r.kind == RouteKind::kManifest);
  CHECK(r.name == "library/alpine");
  CHECK(r.tag == "3.19");
  CHECK_FALSE(r.digest);
  REQUIRE(r.ns);
  CHECK(*r.ns == "docker.io");

  r = RouteRequest("HEAD", "/v2/a/manifests/sha256:" + kHex);
  REQUIRE(r.kind == RouteKind::kManifest);
  REQUIRE(r.digest);
  CHECK(r.tag.empty());

  r = RouteRequest("GET", "/v2/team/app/blobs/sha256:" + kHex + "?ns=localhost%3A5000&x=1");
  REQUIRE(r.kind == RouteKind::kBlob);
  CHECK(r.name == "team/app");
  CHECK(*r.ns == "localhost:5000");

  // A repository may contain path components named like routes.
  r = RouteRequest("GET", "/v2/blobs/manifests/blobs/sha256:" + kHex);
  REQUIRE(r.kind == RouteKind::kBlob);
  CHECK(r.name == "blobs/manifests");
}

TEST_CASE("router: errors carry the OCI code and status") {
  struct Case {
    const char* method;
    std::string target;
    ErrorCode code;
    int status;
  };
  std::vector<Case> cases = {
      {"GET", "/v2/Bad/manifests/latest", ErrorCode::kNameInvalid, 400},
      {"GET", "/v2/a..b/blobs/sha256:" + kHex, ErrorCode::kNameInvalid, 400},
      {"GET", "/v2/a/blobs/sha256:1234", ErrorCode::kDigestInvalid, 400},
      {"GET", "/v2/a/blobs/latest", ErrorCode::kDigestInvalid, 400},
      {"GET", "/v2/a/blobs/sha512:" + std::string(128, 'a'), ErrorCode::kDigestInvalid, 400},
      {"GET", "/v2/a/manifests/sha256:XYZ", ErrorCode::kDigestInvalid, 400},
      {"GET", "/v2/a/manifests/-bad", ErrorCode::kManifestUnknown, 404},
      {"HEAD", "/v2/a/manifests/-bad", ErrorCode::kManifestUnknown, 404},
      {"PUT", "/v2/a/manifests/latest", ErrorCode::kUnsupported, 405},
      {"POST", "/v2/a/blobs/uploads/", ErrorCode::kUnsupported, 405},
      {"DELETE", "/v2/a/blobs/sha256:" + kHex, ErrorCode::kUnsupported, 405},
      {"PATCH", "/v2/a/blobs/uploads/x", ErrorCode::kUnsupported, 405},
      {"OPTIONS", "/v2/", ErrorCode::kUnsupported, 405},
      {"GET", "/v2/a/tags/list", ErrorCode::kNameUnknown, 404},
      {"GET", "/v2/a", ErrorCode::kNameUnknown, 404},
      {"GET", "/other", ErrorCode::kUnsupported, 404},
      {"GET", "/v2/a/manifests/x?ns=%zz", ErrorCode::kNameUnknown, 404},
  };
  for (const Case& c : cases) {
    INFO(c.method << " " << c.target);
    auto r = RouteRequest(c.method, c.target);
    REQUIRE(r.kind == RouteKind::kError);
    CHECK(r.error == c.code);
    CHECK(r.status == c.status);
  }
  CHECK(std::string(oci::ErrorCodeName(ErrorCode::kBlobUnknown)) == "BLOB_UNKNOWN");
}
