// Images for the registry's unit tests: blobs, OCI image manifests and
// indexes, as a client pushes them.
#pragma once

#include <string>
#include <vector>

#include "util/sha256.h"

namespace images {

constexpr const char* kManifestType = "application/vnd.oci.image.manifest.v1+json";
constexpr const char* kIndexType = "application/vnd.oci.image.index.v1+json";

// `n` bytes that differ from another seed's.
inline std::string Blob(size_t n, char seed) {
  std::string s(n, seed);
  for (size_t i = 0; i < n; i += 97) s[i] = char(seed + i);
  return s;
}

inline std::string Descriptor(const char* type, const util::Digest& d, size_t size) {
  return std::string("{\"mediaType\":\"") + type + "\",\"digest\":\"" + d.ToString() +
         "\",\"size\":" + std::to_string(size) + "}";
}

// An image manifest naming `config` and `layer` (their bytes).
inline std::string ImageManifest(const std::string& config, const std::string& layer) {
  return std::string("{\"schemaVersion\":2,\"mediaType\":\"") + kManifestType + "\",\"config\":" +
         Descriptor("application/vnd.oci.image.config.v1+json", util::DigestOf(config),
                    config.size()) +
         ",\"layers\":[" +
         Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", util::DigestOf(layer),
                    layer.size()) +
         "]}";
}

// An index of `children` (image manifests' bytes).
inline std::string Index(const std::vector<std::string>& children) {
  std::string out =
      std::string("{\"schemaVersion\":2,\"mediaType\":\"") + kIndexType + "\",\"manifests\":[";
  for (size_t i = 0; i < children.size(); ++i)
    out +=
        (i ? "," : "") + Descriptor(kManifestType, util::DigestOf(children[i]), children[i].size());
  return out + "]}";
}

// A small image as a test pushes it: a config and one layer.
struct Image {
  std::string repo = "team/app";
  std::string config = "{\"architecture\":\"amd64\"}", layer = Blob(600000, 'h');
  std::string manifest = ImageManifest(config, layer);
};

}  // namespace images
