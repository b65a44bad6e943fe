#include "push/manifest_tree.h"

#include <unordered_set>
#include <utility>

namespace push {

ManifestTree WalkManifestTree(const util::Digest& top, const ManifestReader& read,
                              size_t max_items) {
  ManifestTree tree;
  std::unordered_set<util::Digest, util::DigestHash> seen_manifests, seen_blobs;
  std::vector<std::pair<util::Digest, int>> todo = {{top, 0}};
  while (!todo.empty()) {
    if (tree.manifests.size() + tree.blobs.size() >= max_items) {
      tree.truncated = true;
      break;
    }
    auto [d, depth] = todo.back();
    todo.pop_back();
    if (!seen_manifests.insert(d).second) continue;
    tree.manifests.push_back(d);
    util::Result<PushedManifest> m = read(d);
    if (!m.ok()) {
      if (m.status().IsNotFound()) tree.missing.push_back(d);
      continue;
    }
    if (!m->manifests.empty() && depth >= kMaxIndexDepth) tree.too_deep = true;
    if (depth < kMaxIndexDepth) {
      // Reversed onto the stack, so children are visited in their order.
      for (auto it = m->manifests.rbegin(); it != m->manifests.rend(); ++it)
        todo.push_back({*it, depth + 1});
    }
    for (const util::Digest& b : m->blobs)
      if (seen_blobs.insert(b).second) tree.blobs.push_back(b);
  }
  return tree;
}

}  // namespace push
