// BlobStream: sends one blob (or a Range of it) to one client, from a
// complete cached blob (straight from the LMDB map, nothing copied in user
// space: written from the map, or sent from data.mdb by sendfile when the
// server does that, http::ServerOptions::sendfile) or from a
// BlobFill in progress (never its last byte before the digest matched).
//
// Ownership: shared by the exchange's write callbacks and, while it follows
// a fill, by that fill; a cached blob is pinned (never evicted) while it is
// being sent. The Store and CacheKeeper must outlive it. Loop thread only.
#pragma once

#include <cstdint>
#include <memory>

#include "cache/store.h"
#include "src/http/server.h"
#include "src/registry/cache_keeper.h"
#include "util/digest.h"

namespace registry {

class BlobFill;

class BlobStream : public std::enable_shared_from_this<BlobStream> {
 public:
  // Serves `exchange` from the complete cached blob `info`.
  // The blob is pinned (never evicted) while it is being sent.
  static void ServeCached(cache::Store* store, CacheKeeper* keeper, const util::Digest& digest,
                          const cache::BlobInfo& info, std::shared_ptr<http::Exchange> exchange,
                          uint64_t now_wall_ms);

  BlobStream(cache::Store* store, CacheKeeper* keeper, util::Digest digest,
             std::shared_ptr<http::Exchange> exchange, std::shared_ptr<BlobFill> fill)
      : store_(store),
        keeper_(keeper),
        digest_(digest),
        chunk_key_(digest),
        exchange_(std::move(exchange)),
        fill_(std::move(fill)) {}

  // Sends the head for a blob of `size` bytes (200, 206 or 416) and the body.
  void Start(uint64_t size, uint32_t chunk_size);
  // More bytes may be available (fill progress).
  void Pump();
  // The fill failed: reset the client connection.
  void Abort();
  bool finished() const { return state_ == State::kFinished; }
  // The next byte this stream will send.
  uint64_t position() const { return pos_; }

 private:
  void Finish();
  // A chunk read from the map.
  struct Mapped {
    const uint8_t* base = nullptr;
    std::shared_ptr<const void> keep;  // the read transaction the bytes are valid under
    http::FileRange file;              // the chunk's start in data.mdb (fd -1: none)
  };
  // Reads chunk `index` (at least `need` bytes) from the map, checked as
  // CacheKeeper::CheckFor says (in full for a fill's chunk, not listed yet).
  // False when it is unreadable or corrupt: the client was reset.
  bool ReadChunk(uint32_t index, uint64_t need, Mapped* out);

  cache::Store* store_;
  CacheKeeper* keeper_;
  bool pinned_ = false;
  util::Digest digest_;
  util::Digest chunk_key_;  // where its chunks are stored (BlobInfo::ChunksOf)
  std::shared_ptr<http::Exchange> exchange_;
  std::shared_ptr<BlobFill> fill_;  // null when serving a complete blob
  uint64_t size_ = 0;
  uint32_t chunk_size_ = 0;
  uint64_t pos_ = 0;  // next byte to send
  uint64_t end_ = 0;  // one past the last byte to send
  enum class State {
    kWaitingSize,  // a fill's stream before the fill knows the size (Start not called)
    kReady,        // sending, no write in flight: Pump() writes the next piece
    kWriting,      // a write is in flight; its completion pumps again
    kFinished,     // ended, reset or abandoned; the pin is released
  };
  State state_ = State::kWaitingSize;
};

}  // namespace registry
