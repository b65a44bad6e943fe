// The manifest tree of a pushed image: the manifest a tag names, an
// index's child manifests, theirs (kMaxIndexDepth levels below the top at
// most), and the blobs all of them name. The one walk that replication
// (what a replica lacks), holdings (what a durable copy must fetch) and
// image status (what each region holds) share.
//
// Pure: the caller reads one manifest (from its store, say); the walk only
// decides what to read next. Never throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "push/manifest.h"
#include "util/digest.h"
#include "util/status.h"

namespace push {

// An index may name indexes, which may name manifests: two levels below the
// top. Deeper nesting is refused (kept from cycles and fan-out bombs).
inline constexpr int kMaxIndexDepth = 2;

struct ManifestTree {
  std::vector<util::Digest> manifests;  // every manifest reached, the top first, each once
  std::vector<util::Digest> missing;    // of them, those the reader answered NotFound
  std::vector<util::Digest> blobs;      // the blobs of those it read, each once, in order
  bool too_deep = false;                // an index below kMaxIndexDepth names children
  bool truncated = false;               // stopped at max_items (manifests + blobs)
};

// Reads one manifest: what it references, NotFound when it is not here
// (it is listed under `missing`), another error when it cannot be read
// (listed under `manifests` only: nothing below it is known).
using ManifestReader = std::function<util::Result<PushedManifest>(const util::Digest&)>;

// Walks from `top`, depth first, reading each manifest once.
ManifestTree WalkManifestTree(const util::Digest& top, const ManifestReader& read,
                              size_t max_items = SIZE_MAX);

}  // namespace push
