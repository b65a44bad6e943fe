#include "cache/blob_index.h"

#include <algorithm>

namespace cache {

void BlobIndex::Add(const util::Digest& d, uint64_t size, uint64_t last_access_ms, bool own) {
  auto [it, inserted] = entries_.try_emplace(d);
  if (!inserted) Uncount(it->second);
  if (inserted) ++generation_;
  it->second.size = size;
  it->second.last_access_ms = last_access_ms;
  it->second.own = own;
  it->second.verified.clear();
  Count(it->second);
}

void BlobIndex::Count(const Entry& e) {
  (e.own ? own_ : stored_) += e.size;
  ++(e.own ? own_count_ : cached_count_);
}

void BlobIndex::Uncount(const Entry& e) {
  (e.own ? own_ : stored_) -= e.size;
  --(e.own ? own_count_ : cached_count_);
}

void BlobIndex::SetOwn(const util::Digest& d, bool own) {
  auto it = entries_.find(d);
  if (it == entries_.end() || it->second.own == own) return;
  Uncount(it->second);
  it->second.own = own;
  Count(it->second);
}

void BlobIndex::Remove(const util::Digest& d) {
  auto it = entries_.find(d);
  if (it == entries_.end()) return;
  Uncount(it->second);
  entries_.erase(it);
  ++generation_;
}

std::vector<util::Digest> BlobIndex::Digests() const {
  std::vector<util::Digest> out;
  out.reserve(entries_.size());
  for (const auto& [d, e] : entries_) out.push_back(d);
  return out;
}

const BlobIndex::Entry* BlobIndex::Find(const util::Digest& d) const {
  auto it = entries_.find(d);
  return it == entries_.end() ? nullptr : &it->second;
}

void BlobIndex::Touch(const util::Digest& d, uint64_t now_ms) {
  auto it = entries_.find(d);
  if (it == entries_.end() || it->second.last_access_ms >= now_ms) return;
  it->second.last_access_ms = now_ms;
  it->second.access_dirty = true;
}

void BlobIndex::Pin(const util::Digest& d) {
  auto it = entries_.find(d);
  if (it != entries_.end()) ++it->second.pins;
}

void BlobIndex::MarkVerified(const util::Digest& d, uint32_t index) {
  auto it = entries_.find(d);
  if (it == entries_.end()) return;
  std::vector<bool>& v = it->second.verified;
  if (v.size() <= index) v.resize(index + 1);
  v[index] = true;
}

bool BlobIndex::Verified(const util::Digest& d, uint32_t index) const {
  const Entry* e = Find(d);
  return e && index < e->verified.size() && e->verified[index];
}

void BlobIndex::Unpin(const util::Digest& d) {
  auto it = entries_.find(d);
  if (it != entries_.end() && it->second.pins > 0) --it->second.pins;
}

std::vector<util::Digest> BlobIndex::ChooseEvictions(uint64_t bytes) const {
  std::vector<std::pair<const util::Digest*, const Entry*>> candidates;
  for (const auto& [d, e] : entries_)
    if (e.pins == 0 && !e.own) candidates.emplace_back(&d, &e);
  std::sort(candidates.begin(), candidates.end(), [](const auto& a, const auto& b) {
    if (a.second->last_access_ms != b.second->last_access_ms)
      return a.second->last_access_ms < b.second->last_access_ms;
    return *a.first < *b.first;
  });
  std::vector<util::Digest> out;
  uint64_t freed = 0;
  for (const auto& [d, e] : candidates) {
    if (freed >= bytes) break;
    out.push_back(*d);
    freed += e->size;
  }
  return out;
}

std::vector<std::pair<util::Digest, uint64_t>> BlobIndex::TakeDirtyAccess() {
  std::vector<std::pair<util::Digest, uint64_t>> out;
  for (auto& [d, e] : entries_) {
    if (!e.access_dirty) continue;
    e.access_dirty = false;
    out.emplace_back(d, e.last_access_ms);
  }
  return out;
}

}  // namespace cache
