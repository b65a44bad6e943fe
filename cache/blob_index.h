// BlobIndex: what the cache holds, in memory, for budget and eviction.
//
// One entry per complete blob: size, last access and a pin count. Blobs
// being served are pinned and never chosen for eviction; blobs being filled
// are not in the index yet but hold a reservation of their size, so the
// budget counts them before they land. Eviction is least-recently-used over
// whole blobs. Blobs of the own registry are listed too (they are served
// and summarized like any other) but never chosen for eviction and counted
// apart, against the registry's own budget. It also remembers which chunks
// of each blob a read has verified since start (the entry's lifetime is
// exactly the stored bytes'), so a warm serve need not hash them again
// (cache::ChunkCheck). Pure (time is passed in), loop thread only; rebuilt
// from the store at start, with nothing verified.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "util/digest.h"

namespace cache {

class BlobIndex {
 public:
  struct Entry {
    uint64_t size = 0;
    uint64_t last_access_ms = 0;
    uint32_t pins = 0;
    bool access_dirty = false;   // last_access changed since it was last persisted
    bool own = false;            // own registry content: never evicted
    std::vector<bool> verified;  // by chunk index; grows as chunks are verified
  };

  void Add(const util::Digest& d, uint64_t size, uint64_t last_access_ms, bool own = false);
  // Moves a listed blob between the cache and the own registry's content.
  void SetOwn(const util::Digest& d, bool own);
  void Remove(const util::Digest& d);
  const Entry* Find(const util::Digest& d) const;
  void Touch(const util::Digest& d, uint64_t now_ms);
  void Pin(const util::Digest& d);
  void Unpin(const util::Digest& d);
  // Chunk `index` of a listed blob passed its checksum since start. Add()
  // (the bytes may be new) and Remove() forget it.
  void MarkVerified(const util::Digest& d, uint32_t index);
  bool Verified(const util::Digest& d, uint32_t index) const;

  void Reserve(uint64_t bytes) { reserved_ += bytes; }
  void Unreserve(uint64_t bytes) { reserved_ -= bytes < reserved_ ? bytes : reserved_; }

  // Cached (not own) blobs and their bytes: what the cache budget holds.
  uint64_t stored_bytes() const { return stored_; }
  size_t cached_count() const { return cached_count_; }
  // The own registry's blobs and their bytes.
  uint64_t own_bytes() const { return own_; }
  size_t own_count() const { return own_count_; }
  // Stored plus reserved by fills in flight: what the budget is held against.
  uint64_t committed_bytes() const { return stored_ + reserved_; }
  size_t count() const { return entries_.size(); }  // cached and own
  // Changes whenever a blob is added or removed (peers' digest summaries).
  uint64_t generation() const { return generation_; }
  std::vector<util::Digest> Digests() const;

  // Unpinned cached (not own) blobs, least recently used first, until their sizes add up to
  // `bytes` (or every candidate is chosen). Ties break by digest, so the
  // choice is deterministic.
  std::vector<util::Digest> ChooseEvictions(uint64_t bytes) const;

  // Blobs whose last access changed since the previous call, with that time.
  std::vector<std::pair<util::Digest, uint64_t>> TakeDirtyAccess();

 private:
  // Adds (removes) an entry's size and one to the totals of its kind.
  void Count(const Entry& e);
  void Uncount(const Entry& e);

  std::unordered_map<util::Digest, Entry, util::DigestHash> entries_;
  uint64_t generation_ = 0;
  uint64_t stored_ = 0;
  uint64_t own_ = 0;
  size_t cached_count_ = 0, own_count_ = 0;
  uint64_t reserved_ = 0;
};

}  // namespace cache
