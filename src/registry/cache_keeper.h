// CacheKeeper: holds the cache to its budget while georeg runs.
//
// Owns the in-memory BlobIndex (rebuilt from the store at start). The budget
// is `cache.max_size` on what the cache stores plus what fills in flight
// have reserved; and while the file system has less than `min_free` free,
// the cache may not grow at all (data.mdb reuses the pages it frees, it does
// not give them back, so the only way to stop eating the disk is to stop
// growing). Room is made by evicting whole blobs, least recently used
// first, never one being served (pinned). Eviction deletes go through the
// writer, in order before the writes of the fill that needed the room.
// Last-access times are persisted every few seconds, not per read.
//
// Loop thread only; borrows the Store and the WriterBridge.
#pragma once

#include <uv.h>

#include <cstdint>

#include "cache/blob_index.h"
#include "cache/store.h"
#include "config/config.h"
#include "src/io/env.h"
#include "src/io/handle.h"
#include "src/registry/writer_bridge.h"

namespace registry {

class CacheKeeper {
 public:
  CacheKeeper(io::Env env, const config::Cache& cfg, cache::Store* store, WriterBridge* writer);
  CacheKeeper(const CacheKeeper&) = delete;
  CacheKeeper& operator=(const CacheKeeper&) = delete;

  // Loads the index and starts the periodic check. Errors: from the store.
  util::Status Start();
  // Stops the timer (closing its handle); call before the loop ends.
  void Stop();

  // A complete blob the cache can serve now (not being evicted).
  bool Has(const util::Digest& d) const { return index_.Find(d) != nullptr; }
  // A client starts reading a cached blob: pinned until Unpin.
  void Pin(const util::Digest& d, uint64_t now_ms);
  void Unpin(const util::Digest& d) { index_.Unpin(d); }
  // How a read of chunk `index` of cached blob `d` checks its bytes: in
  // full the first time since start, then only when its pages are no
  // longer in memory (cache::ChunkCheck). MarkVerified after a full check.
  cache::ChunkCheck CheckFor(const util::Digest& d, uint32_t index) const {
    return index_.Verified(d, index) ? cache::ChunkCheck::kUnlessResident
                                     : cache::ChunkCheck::kFull;
  }
  void MarkVerified(const util::Digest& d, uint32_t index) { index_.MarkVerified(d, index); }

  // A fill of `size` bytes wants to store: makes room, evicting if needed.
  // False when it cannot (the blob is larger than the budget, or everything
  // else is in use): the fill then passes the bytes through unstored.
  bool Reserve(uint64_t size);
  void Unreserve(uint64_t size) { index_.Unreserve(size); }
  // A fill's blob was published: its reservation becomes a stored blob.
  void Published(const util::Digest& d, uint64_t size, uint64_t now_ms);
  // A blob of the own registry was stored (or a cached one became own):
  // listed, never evicted, counted against the registry's budget.
  void AddOwn(const util::Digest& d, uint64_t size, uint64_t now_ms);
  // An own blob goes back to the cache (evictable, in the cache's budget):
  // a push that adopted it failed.
  void Disown(const util::Digest& d);
  uint64_t own_bytes() const { return index_.own_bytes(); }
  // Drops a blob from the cache (eviction, operator request).
  void Remove(const util::Digest& d, const char* why);
  // Blob `d` was deleted from the store already (by a writer job that
  // decided it there, in order with the other writes): it leaves the index.
  void Forget(const util::Digest& d, const char* why);
  // A read found a chunk that fails its checksum: logs, counts, removes the
  // blob so the next request fetches it again.
  void Corrupt(const util::Digest& d, const std::string& what);

  // A write failed for lack of space: logs at most once a minute.
  void NoteNoSpace(const std::string& what);

  const cache::BlobIndex& index() const { return index_; }
  // Evicts least recently used blobs until the cache stores at most
  // `target` bytes (pinned blobs stay). Returns how many were evicted.
  size_t EvictTo(uint64_t target);
  void CountHit() { ++hits_; }
  void CountMiss() { ++misses_; }
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }
  uint64_t budget() const { return cfg_.max_size; }
  uint64_t evictions() const { return evictions_; }
  uint64_t corruptions() const { return corruptions_; }

 private:
  static void OnTimer(uv_timer_t* t);
  void CheckDisk();
  uint64_t Limit() const;
  // Evicts until committed + extra fits the limit; false if it cannot.
  bool MakeRoom(uint64_t extra);

  io::Env env_;
  config::Cache cfg_;
  cache::Store* store_;
  WriterBridge* writer_;
  cache::BlobIndex index_;
  io::Handle<uv_timer_t> timer_;
  bool low_space_ = false;
  uint64_t low_space_cap_ = 0;  // the cache's size when the disk ran low
  uint64_t last_nospace_log_ms_ = 0;
  uint64_t evictions_ = 0;
  uint64_t corruptions_ = 0;
  uint64_t hits_ = 0, misses_ = 0;
};

}  // namespace registry
