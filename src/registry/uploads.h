// Uploads: blob uploads in progress on this node (OCI distribution spec,
// "Pushing blobs"): created by POST, fed by PATCH (chunked or not), and
// finished by PUT ?digest=, or cancelled by DELETE.
//
// The bytes never sit in memory whole: each upload hashes what arrives and
// cuts it into chunks of cache::kDefaultChunkSize, written through the
// writer under the upload's own chunk key (docs/cache-format.md); a
// finished upload is published as an own blob under its digest without
// copying them. At most kMaxWritesInFlight chunks per upload wait for the
// writer; past that the request body stops being read (flow control).
//
// Bounds: at most `max_uploads` open at once; one request at a time per
// upload; an upload no request touched for `timeout_ms` is dropped with
// its chunks; a digest that does not match drops it too (nothing stored).
// The own registry's budget is checked as bytes arrive.
//
// Ownership: borrows the Store, WriterBridge and CacheKeeper, which outlive
// it. Loop thread only. Callbacks: every function taking `done` calls it
// exactly once, later (never inside the call), unless it returned an error.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "cache/store.h"
#include "src/http/server.h"
#include "src/io/env.h"
#include "src/io/handle.h"
#include "src/registry/cache_keeper.h"
#include "src/registry/writer_bridge.h"
#include "util/digest.h"
#include "util/sha256.h"

namespace registry {

class Uploads {
 public:
  struct Options {
    uint64_t max_uploads = 64;
    uint64_t timeout_ms = 15 * 60 * 1000;
    uint64_t budget = 10ull << 30;  // own bytes stored + uploading, at most
  };
  // What a finished upload became.
  struct Published {
    util::Digest digest;
    uint64_t size = 0;
    bool existed = false;  // the blob was stored already (its bytes were kept)
  };

  Uploads(io::Env env, Options options, cache::Store* store, WriterBridge* writer,
          CacheKeeper* keeper);
  ~Uploads();
  Uploads(const Uploads&) = delete;
  Uploads& operator=(const Uploads&) = delete;

  void Start();  // the timeout sweep
  // Stops the sweep; uploads left are dropped with their chunks.
  void Stop();

  // A new, empty upload of `repo`. Errors: ResourceExhausted (max_uploads).
  util::Result<std::string> Create(const std::string& repo);
  // Null when there is no such upload (or it belongs to another repository).
  struct View {
    std::string repo;
    uint64_t offset = 0;  // bytes received
    bool busy = false;    // a request is streaming into it
  };
  std::optional<View> Find(const std::string& id, const std::string& repo) const;

  // Streams `ex`'s body into upload `id` at its current offset. Returns an
  // error without calling `done`: NotFound (no such upload), Unavailable
  // (busy with another request), InvalidArgument (413 from the server).
  // Otherwise `done` gets: Ok, PermissionDenied (over the budget), NoSpace
  // or IoError (the cache), Aborted (the client went away).
  util::Status Append(const std::string& id, const std::shared_ptr<http::Exchange>& ex,
                      uint64_t max_bytes, std::function<void(util::Status)> done);
  // Writes what remains, compares the digest and publishes the blob, then
  // removes the upload either way. Returns NotFound or Unavailable as Append;
  // `done` gets Ok with what was published, InvalidArgument for a digest
  // that does not match (nothing stored), or the cache's error.
  util::Status Finish(const std::string& id, const util::Digest& digest,
                      std::function<void(util::Status, Published)> done);
  // Drops an upload and its chunks. False when there is none.
  bool Cancel(const std::string& id);

  size_t open() const { return uploads_.size(); }
  uint64_t bytes_uploading() const { return uploading_bytes_; }
  uint64_t expired() const { return expired_; }

  static constexpr size_t kMaxWritesInFlight = 2;

 private:
  struct Upload {
    std::string id, repo;
    util::Digest chunk_key;
    util::Sha256 sha;
    uint64_t offset = 0;
    uint32_t next_chunk = 0;
    std::string buffer;  // the chunk being filled
    size_t writes_in_flight = 0;
    util::Status write_error;  // the first failed chunk write
    uint64_t touched_ms = 0;
    std::shared_ptr<http::Exchange> streaming;  // the request feeding it
    bool paused = false;                        // its body is paused for the writer
    std::function<void()> drained;              // runs when writes_in_flight reaches 0
  };
  static void OnSweep(uv_timer_t* t);
  bool Accept(Upload* u, std::string_view piece);  // the body sink
  void WriteChunk(Upload* u);
  void ChunkWritten(const std::string& id, util::Status st);
  void Drop(std::map<std::string, std::unique_ptr<Upload>>::iterator it);

  io::Env env_;
  Options options_;
  cache::Store* store_;
  WriterBridge* writer_;
  CacheKeeper* keeper_;
  std::map<std::string, std::unique_ptr<Upload>> uploads_;
  // How the request streaming into an upload is ended (once), by upload id.
  std::map<std::string, std::function<void(util::Status)>> end_of_;
  uint64_t uploading_bytes_ = 0;
  uint64_t expired_ = 0;
  io::Handle<uv_timer_t> sweep_;
};

}  // namespace registry
