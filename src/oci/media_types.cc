#include "src/oci/media_types.h"

#include <string_view>

#include <nlohmann/json.hpp>

namespace oci {

namespace {

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

}  // namespace

std::string ManifestMediaType(const std::string& content_type, const std::string& body) {
  std::string media_type = Trim(content_type.substr(0, content_type.find(';')));
  if (media_type.empty() || media_type == "application/json" ||
      media_type == "application/octet-stream") {
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_object() && j.contains("mediaType") && j["mediaType"].is_string())
      media_type = j["mediaType"];
  }
  return media_type;
}

std::vector<util::Digest> IndexChildren(const std::string& media_type, const std::string& body,
                                        size_t max) {
  std::vector<util::Digest> out;
  if (media_type != "application/vnd.oci.image.index.v1+json" &&
      media_type != "application/vnd.docker.distribution.manifest.list.v2+json")
    return out;
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("manifests") || !j["manifests"].is_array()) return out;
  for (const auto& m : j["manifests"]) {
    if (out.size() >= max) break;
    if (!m.is_object() || !m.contains("digest") || !m["digest"].is_string()) continue;
    if (auto d = util::Digest::Parse(m["digest"].get<std::string>()); d.ok()) out.push_back(*d);
  }
  return out;
}

bool AcceptsMediaType(const std::string* accept, const std::string& media_type) {
  if (!accept || Trim(*accept).empty() || media_type.empty()) return true;
  std::string_view rest = *accept;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    item = item.substr(0, item.find(';'));
    std::string t = Trim(item);
    if (t == "*/*" || t == media_type) return true;
  }
  return false;
}

}  // namespace oci
