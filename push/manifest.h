// What a pushed manifest references, checked before it is stored: the
// blobs (config and layers), the child manifests (of an index), the
// subject (OCI 1.1 referrers), and the artifact type the referrers API
// reports (artifactType, else the config's media type).
//
// Pure; never throws. Accepts OCI image manifests and indexes and Docker
// schema 2 manifests and manifest lists; anything else is MANIFEST_INVALID.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "util/digest.h"
#include "util/status.h"

namespace push {

struct PushedManifest {
  std::string media_type;               // Content-Type, or the manifest's mediaType
  std::vector<util::Digest> blobs;      // config, then layers (in order)
  std::vector<util::Digest> manifests;  // an index's children
  std::optional<util::Digest> subject;
  std::string artifact_type;
  std::string annotations_json;  // "" or the "annotations" object, serialized
};

// Errors: InvalidArgument with the reason (not JSON, unknown media type,
// a mediaType field that contradicts Content-Type, a descriptor without a
// valid digest or size, more than `max_references` descriptors).
util::Result<PushedManifest> ParsePushedManifest(const std::string& content_type,
                                                 const std::string& body,
                                                 size_t max_references = 4096);

}  // namespace push
