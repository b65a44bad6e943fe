#include "peers/holder_hints.h"

#include <algorithm>

namespace peers {

std::vector<std::string> HolderHints::Of(const util::Digest& digest) const {
  auto it = holders_.find(digest);
  return it == holders_.end() ? std::vector<std::string>{} : it->second;
}

void HolderHints::Note(const util::Digest& digest, const std::vector<std::string>& holders) {
  if (holders.empty() || max_ == 0) return;
  auto [it, inserted] = holders_.try_emplace(digest);
  for (const std::string& h : holders)
    if (std::find(it->second.begin(), it->second.end(), h) == it->second.end())
      it->second.push_back(h);
  if (!inserted) return;
  order_.push_back(digest);
  if (order_.size() > max_) {
    holders_.erase(order_.front());
    order_.pop_front();
  }
}

}  // namespace peers
