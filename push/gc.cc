#include "push/gc.h"

#include <unordered_set>

namespace push {

std::vector<util::Digest> Collectable(const std::vector<OwnBlob>& blobs,
                                      const std::vector<util::Digest>& references, uint64_t now_ms,
                                      uint64_t grace_ms) {
  std::unordered_set<util::Digest, util::DigestHash> referenced(references.begin(),
                                                                references.end());
  std::vector<util::Digest> out;
  for (const OwnBlob& b : blobs) {
    // A clock that went back never makes a young blob look old.
    bool old = now_ms > b.created_ms && now_ms - b.created_ms >= grace_ms;
    if (old && !referenced.count(b.digest)) out.push_back(b.digest);
  }
  return out;
}

}  // namespace push
