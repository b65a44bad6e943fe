#include "peers/rendezvous.h"

#include <xxhash.h>

namespace peers {

int RendezvousOwner(const util::Digest& digest, const std::vector<std::string>& nodes) {
  int best = -1;
  uint64_t best_weight = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    std::string s = nodes[i];
    s.append(reinterpret_cast<const char*>(digest.bytes.data()), digest.bytes.size());
    uint64_t w = XXH3_64bits(s.data(), s.size());
    if (best < 0 || w > best_weight || (w == best_weight && nodes[i] < nodes[best])) {
      best = static_cast<int>(i);
      best_weight = w;
    }
  }
  return best;
}

}  // namespace peers
