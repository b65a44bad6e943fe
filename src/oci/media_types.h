// Media types of manifests: what a manifest is, what an index lists, and
// whether a client's Accept takes it. Pure; never throws (bodies are
// parsed with exceptions off).
#pragma once

#include <string>
#include <vector>

#include "util/digest.h"

namespace oci {

// The media type of a manifest: its Content-Type, or when that is missing or
// generic, the manifest's own "mediaType" field. Pure; never throws.
std::string ManifestMediaType(const std::string& content_type, const std::string& body);

// The manifests an image index (OCI index or Docker manifest list) of
// `media_type` lists, at most `max`, in order; none for anything else or
// for a body that is not an index. Pure; never throws.
std::vector<util::Digest> IndexChildren(const std::string& media_type, const std::string& body,
                                        size_t max);

// True if a client that sent `accept` (merged header value, may be null)
// takes `media_type`.
bool AcceptsMediaType(const std::string* accept, const std::string& media_type);

}  // namespace oci
