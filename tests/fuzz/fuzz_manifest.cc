// libFuzzer: what georeg reads out of a manifest an upstream or peer sent
// (its media type, an index's children), the Accept matching it is served
// with, and what a pushed manifest references (push/manifest.h).
#include <cstdint>
#include <string>

#include "push/manifest.h"
#include "src/oci/media_types.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string s(reinterpret_cast<const char*>(data), size);
  size_t nl = s.find('\n');
  std::string content_type = nl == std::string::npos ? "" : s.substr(0, nl);
  std::string body = nl == std::string::npos ? s : s.substr(nl + 1);
  std::string type = oci::ManifestMediaType(content_type, body);
  (void)oci::AcceptsMediaType(&content_type, type);
  if (oci::IndexChildren(type, body, 16).size() > 16) __builtin_trap();  // the bound held
  auto pushed = push::ParsePushedManifest(content_type, body, 64);
  if (pushed.ok() && pushed->blobs.size() + pushed->manifests.size() > 64) __builtin_trap();
  return 0;
}
