#include <catch2/catch.hpp>

#include "src/oci/router.h"
#include "util/url.h"

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

TEST_CASE("router: push, discovery and delete routes, with their query parameters") {
  const std::string d = "sha256:" + kHex;
  auto start = RouteRequest("POST", "/v2/team/app/blobs/uploads/?ns=own");
  REQUIRE(start.kind == RouteKind::kUploadStart);
  CHECK(start.name == "team/app");
  CHECK(*start.ns == "own");
  auto mono = RouteRequest("POST", "/v2/a/blobs/uploads?digest=" + d);
  REQUIRE(mono.kind == RouteKind::kUploadStart);
  CHECK(mono.query_digest->ToString() == d);
  auto mount = RouteRequest("POST", "/v2/a/blobs/uploads/?mount=" + d + "&from=other/repo");
  REQUIRE(mount.kind == RouteKind::kUploadStart);
  CHECK(mount.mount->ToString() == d);
  CHECK(mount.from == "other/repo");
  for (auto [method, kind] : {std::pair{"GET", RouteKind::kUploadStatus},
                              {"PATCH", RouteKind::kUploadPatch},
                              {"PUT", RouteKind::kUploadPut},
                              {"DELETE", RouteKind::kUploadCancel}}) {
    auto r = RouteRequest(method, "/v2/a/blobs/blobs/uploads/Ab-9_z?digest=" + d);
    REQUIRE(r.kind == kind);
    CHECK(r.name == "a/blobs");  // a repository may end in /blobs
    CHECK(r.upload_id == "Ab-9_z");
  }
  CHECK(RouteRequest("PUT", "/v2/a/manifests/v1").kind == RouteKind::kManifestPut);
  CHECK(RouteRequest("PUT", "/v2/a/manifests/" + d).digest);
  CHECK(RouteRequest("DELETE", "/v2/a/manifests/v1").kind == RouteKind::kManifestDelete);
  CHECK(RouteRequest("DELETE", "/v2/a/blobs/" + d).kind == RouteKind::kBlobDelete);
  auto tags = RouteRequest("GET", "/v2/a/b/tags/list?n=10&last=v1.2");
  REQUIRE(tags.kind == RouteKind::kTagsList);
  CHECK(tags.name == "a/b");
  CHECK(*tags.n == 10);
  CHECK(tags.last == "v1.2");
  auto refs = RouteRequest("GET", "/v2/a/referrers/" + d + "?artifactType=application%2Fexample");
  REQUIRE(refs.kind == RouteKind::kReferrers);
  CHECK(refs.artifact_type == "application/example");
  CHECK(oci::IsWrite(RouteKind::kUploadStatus));
  CHECK_FALSE(oci::IsWrite(RouteKind::kTagsList));
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
      {"PUT", "/v2/a/manifests/-bad", ErrorCode::kManifestInvalid, 400},
      {"POST", "/v2/a/blobs/sha256:" + kHex, ErrorCode::kUnsupported, 405},
      {"GET", "/v2/a/blobs/uploads/", ErrorCode::kUnsupported, 405},
      {"PATCH", "/v2/a/blobs/uploads/x!y", ErrorCode::kBlobUploadUnknown, 404},
      {"PUT", "/v2/a/blobs/uploads/x?digest=sha256:12", ErrorCode::kDigestInvalid, 400},
      {"POST", "/v2/a/blobs/uploads/?mount=nope&from=b", ErrorCode::kDigestInvalid, 400},
      {"POST", "/v2/a/blobs/uploads/?mount=sha256:" + kHex + "&from=B", ErrorCode::kNameInvalid,
       400},
      {"GET", "/v2/a/tags/list?n=x", ErrorCode::kPaginationNumberInvalid, 400},
      {"GET", "/v2/a/tags/list?n=99999999999", ErrorCode::kPaginationNumberInvalid, 400},
      {"PUT", "/v2/a/tags/list", ErrorCode::kUnsupported, 405},
      {"DELETE", "/v2/a/referrers/sha256:" + kHex, ErrorCode::kUnsupported, 405},
      {"GET", "/v2/a/referrers/latest", ErrorCode::kDigestInvalid, 400},
      {"PUT", "/v2/", ErrorCode::kUnsupported, 405},
      {"OPTIONS", "/v2/", ErrorCode::kUnsupported, 405},
      {"GET", "/v2/a/tags", ErrorCode::kNameUnknown, 404},
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

TEST_CASE("router: a path prefix naming a registry stands for ?ns= (runtimes that send none)") {
  auto known = [](std::string_view r) -> std::optional<std::string> {
    if (r == "quay.io" || r == "localhost") return std::string(r);
    if (r == "127.0.0.1_5001") return "127.0.0.1:5001";  // a port, as a path writes it
    return std::nullopt;
  };
  auto r = RouteRequest("GET", "/v2/quay.io/prometheus/node-exporter/manifests/v1", known);
  REQUIRE(r.kind == RouteKind::kManifest);
  CHECK(*r.ns == "quay.io");
  CHECK(r.ns_from_path);
  CHECK(r.name == "prometheus/node-exporter");
  r = RouteRequest("HEAD", "/v2/127.0.0.1_5001/app/blobs/sha256:" + std::string(64, 'a'), known);
  REQUIRE(r.kind == RouteKind::kBlob);
  CHECK(*r.ns == "127.0.0.1:5001");
  CHECK(r.name == "app");
  r = RouteRequest("POST", "/v2/localhost/team/app/blobs/uploads/", known);
  CHECK(r.kind == RouteKind::kUploadStart);
  CHECK(*r.ns == "localhost");
  // Not a prefix: an unknown host, a component that is no host, ?ns= given, or nothing after it.
  r = RouteRequest("GET", "/v2/ghcr.io/app/manifests/v1", known);
  CHECK(r.name == "ghcr.io/app");
  CHECK_FALSE(r.ns);
  r = RouteRequest("GET", "/v2/library/alpine/manifests/v1",
                   [](std::string_view c) { return std::optional<std::string>(std::string(c)); });
  CHECK(r.name == "library/alpine");
  CHECK_FALSE(r.ns);
  r = RouteRequest("GET", "/v2/quay.io/app/manifests/v1?ns=docker.io", known);
  CHECK(r.name == "quay.io/app");
  CHECK(*r.ns == "docker.io");
  CHECK_FALSE(r.ns_from_path);
  CHECK(RouteRequest("GET", "/v2/quay.io/manifests/v1", known).kind ==
        RouteKind::kManifest);  // repo "quay.io"
  CHECK(util::RegistryPathComponent("127.0.0.1:5001") == "127.0.0.1_5001");
  // A ':' in a path: never a valid name.
  CHECK(RouteRequest("GET", "/v2/10.0.0.1:5000/app/manifests/v1", known).status == 400);
}
