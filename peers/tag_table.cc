#include "peers/tag_table.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>

namespace peers {
namespace {

uint64_t KeyHash(const TagKey& k) {
  std::string s = k.registry + '\0' + k.repository + '\0' + k.tag;
  return XXH3_64bits(s.data(), s.size());
}

uint64_t EntryHash(const TagKey& k, const TagVersion& v) {
  std::string s = k.registry + '\0' + k.repository + '\0' + k.tag + '\0';
  s.append(reinterpret_cast<const char*>(v.digest.bytes.data()), v.digest.bytes.size());
  char hlc[12];
  std::memcpy(hlc, &v.hlc.wall_ms, 8);
  std::memcpy(hlc + 8, &v.hlc.logical, 4);
  s.append(hlc, sizeof(hlc));
  s += v.origin;
  s += '\0';
  s += v.value;
  return XXH3_64bits(s.data(), s.size());
}

}  // namespace

uint32_t TagTable::BucketOf(const TagKey& key, uint32_t buckets) {
  return static_cast<uint32_t>(KeyHash(key) % buckets);
}

bool TagTable::Apply(const TagUpdate& u) {
  auto it = entries_.find(u.key);
  if (it != entries_.end() && !u.version.NewerThan(it->second)) return false;  // never roll back
  entries_[u.key] = u.version;
  return true;
}

const TagVersion* TagTable::Find(const TagKey& key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second;
}

std::vector<TagUpdate> TagTable::RemoveOrigin(const std::string& origin) {
  std::vector<TagUpdate> out;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.origin != origin) {
      ++it;
      continue;
    }
    out.push_back({it->first, it->second});
    it = entries_.erase(it);
  }
  return out;
}

std::vector<uint64_t> TagTable::Summaries(uint32_t buckets) const {
  std::vector<uint64_t> out(buckets, 0);
  for (const auto& [k, v] : entries_) out[BucketOf(k, buckets)] ^= EntryHash(k, v);
  return out;
}

std::vector<uint32_t> TagTable::DifferingBuckets(const std::vector<uint64_t>& mine,
                                                 const std::vector<uint64_t>& theirs) {
  std::vector<uint32_t> out;
  size_t n = std::max(mine.size(), theirs.size());
  for (size_t i = 0; i < n; ++i) {
    uint64_t a = i < mine.size() ? mine[i] : 0, b = i < theirs.size() ? theirs[i] : 0;
    if (a != b) out.push_back(static_cast<uint32_t>(i));
  }
  return out;
}

std::vector<TagUpdate> TagTable::EntriesIn(const std::vector<uint32_t>& buckets,
                                           uint32_t bucket_count) const {
  std::vector<TagUpdate> out;
  for (const auto& [k, v] : entries_) {
    if (std::binary_search(buckets.begin(), buckets.end(), BucketOf(k, bucket_count)))
      out.push_back({k, v});
  }
  return out;
}

std::vector<TagUpdate> TagTable::EntriesOf(const std::string& registry) const {
  std::vector<TagUpdate> out;
  for (auto it = entries_.lower_bound(TagKey{registry, "", ""});
       it != entries_.end() && it->first.registry == registry; ++it)
    out.push_back({it->first, it->second});
  return out;
}

}  // namespace peers
