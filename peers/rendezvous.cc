#include "peers/rendezvous.h"

#include <xxhash.h>

#include <algorithm>

namespace peers {

namespace {

uint64_t Weight(const util::Digest& digest, const std::string& node) {
  std::string s = node;
  s.append(reinterpret_cast<const char*>(digest.bytes.data()), digest.bytes.size());
  return XXH3_64bits(s.data(), s.size());
}

}  // namespace

std::vector<int> RendezvousRanking(const util::Digest& digest,
                                   const std::vector<std::string>& nodes, size_t k) {
  std::vector<std::pair<uint64_t, int>> weighted;
  weighted.reserve(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i)
    weighted.push_back({Weight(digest, nodes[i]), static_cast<int>(i)});
  auto before = [&nodes](const std::pair<uint64_t, int>& a, const std::pair<uint64_t, int>& b) {
    if (a.first != b.first) return a.first > b.first;
    return nodes[a.second] < nodes[b.second];
  };
  k = std::min(k, weighted.size());
  std::partial_sort(weighted.begin(), weighted.begin() + static_cast<std::ptrdiff_t>(k),
                    weighted.end(), before);
  std::vector<int> out;
  for (size_t i = 0; i < k; ++i) out.push_back(weighted[i].second);
  return out;
}

int RendezvousOwner(const util::Digest& digest, const std::vector<std::string>& nodes) {
  std::vector<int> top = RendezvousRanking(digest, nodes, 1);
  return top.empty() ? -1 : top[0];
}

}  // namespace peers
