#include "push/manifest.h"

#include <nlohmann/json.hpp>

namespace push {
namespace {

using json = nlohmann::json;

constexpr const char* kOciManifest = "application/vnd.oci.image.manifest.v1+json";
constexpr const char* kOciIndex = "application/vnd.oci.image.index.v1+json";
constexpr const char* kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
constexpr const char* kDockerList = "application/vnd.docker.distribution.manifest.list.v2+json";

std::string Base(const std::string& content_type) {
  std::string t = content_type.substr(0, content_type.find(';'));
  while (!t.empty() && t.back() == ' ') t.pop_back();
  return t;
}

// A descriptor's digest; false when it has none, a bad one, or no valid size.
bool Descriptor(const json& d, util::Digest* out, std::string* why) {
  if (!d.is_object()) {
    *why = "a descriptor is not an object";
    return false;
  }
  auto digest = d.find("digest");
  auto size = d.find("size");
  if (digest == d.end() || !digest->is_string()) {
    *why = "a descriptor has no digest";
    return false;
  }
  auto parsed = util::Digest::Parse(digest->get<std::string>());
  if (!parsed.ok()) {
    *why = "a descriptor's digest: " + parsed.status().message();
    return false;
  }
  if (size == d.end() || !size->is_number_unsigned()) {
    *why = "a descriptor has no size";
    return false;
  }
  *out = *parsed;
  return true;
}

}  // namespace

util::Result<PushedManifest> ParsePushedManifest(const std::string& content_type,
                                                 const std::string& body, size_t max_references) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return util::Status::InvalidArgument("the manifest is not a JSON object");
  PushedManifest m;
  std::string declared;
  if (auto mt = j.find("mediaType"); mt != j.end()) {
    if (!mt->is_string()) return util::Status::InvalidArgument("mediaType is not a string");
    declared = mt->get<std::string>();
  }
  m.media_type = Base(content_type);
  if (m.media_type.empty() || m.media_type == "application/json" ||
      m.media_type == "application/octet-stream")
    m.media_type = declared;
  if (!declared.empty() && declared != m.media_type)
    return util::Status::InvalidArgument("mediaType " + declared + " contradicts Content-Type " +
                                         m.media_type);
  bool index = m.media_type == kOciIndex || m.media_type == kDockerList;
  bool image = m.media_type == kOciManifest || m.media_type == kDockerManifest;
  if (!index && !image)
    return util::Status::InvalidArgument("unsupported manifest media type '" +
                                         m.media_type.substr(0, 100) + "'");
  std::string why;
  util::Digest d;
  if (image) {
    auto config = j.find("config");
    if (config == j.end() || !Descriptor(*config, &d, &why))
      return util::Status::InvalidArgument("config: " + (why.empty() ? "missing" : why));
    m.blobs.push_back(d);
    if (auto ct = config->find("mediaType"); ct != config->end() && ct->is_string())
      m.artifact_type = ct->get<std::string>();
    auto layers = j.find("layers");
    if (layers != j.end()) {
      if (!layers->is_array()) return util::Status::InvalidArgument("layers is not an array");
      for (const json& l : *layers) {
        if (!Descriptor(l, &d, &why)) return util::Status::InvalidArgument("layers: " + why);
        m.blobs.push_back(d);
      }
    } else if (m.media_type == kDockerManifest) {
      return util::Status::InvalidArgument("layers: missing");
    }
  } else {
    auto children = j.find("manifests");
    if (children == j.end() || !children->is_array())
      return util::Status::InvalidArgument("manifests: missing");
    for (const json& c : *children) {
      if (!Descriptor(c, &d, &why)) return util::Status::InvalidArgument("manifests: " + why);
      m.manifests.push_back(d);
    }
  }
  if (m.blobs.size() + m.manifests.size() > max_references)
    return util::Status::InvalidArgument("more than " + std::to_string(max_references) +
                                         " descriptors");
  if (auto s = j.find("subject"); s != j.end()) {
    if (!Descriptor(*s, &d, &why)) return util::Status::InvalidArgument("subject: " + why);
    m.subject = d;
  }
  if (auto at = j.find("artifactType"); at != j.end()) {
    if (!at->is_string()) return util::Status::InvalidArgument("artifactType is not a string");
    m.artifact_type = at->get<std::string>();
  }
  if (auto a = j.find("annotations"); a != j.end()) {
    if (!a->is_object()) return util::Status::InvalidArgument("annotations is not an object");
    m.annotations_json = a->dump();
  }
  return m;
}

}  // namespace push
