// push::ParsePushedManifest: what a pushed manifest references.
#include <catch2/catch.hpp>

#include <string>

#include "push/manifest.h"

namespace {
const std::string kD1 = "sha256:" + std::string(64, '1');
const std::string kD2 = "sha256:" + std::string(64, '2');
const std::string kD3 = "sha256:" + std::string(64, '3');
}  // namespace

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
