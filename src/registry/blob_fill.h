// BlobFill: getting a blob from its sources (peers, then an upstream) into
// the cache while streaming it to every client that asked (BlobStream,
// src/registry/blob_stream.h).
//
// A BlobFill is one upstream GET of one digest. Clients that ask for the
// digest while it runs join it as BlobStreams and receive bytes as they
// arrive, each from its own offset (Range). Chunks go to the writer thread
// as they fill; committed chunks are dropped from memory and read back from
// the map, so a slow client never makes the fill hold a whole blob, and the
// upstream read is paused while too many chunks wait for the writer.
//
// A source that breaks off mid-body (a peer killed, a connection cut, an
// upstream reset, a body that ends short) does not end the fill while
// another source is left: the next one is asked for the rest with
// "Range: bytes=<received>-" (a 206 whose Content-Range starts there, or a
// 200 of the whole blob, whose first bytes are skipped), and the hash goes
// on over the joined bytes. Only bytes that fail verification, or the last
// source failing, reset the clients.
//
// The last byte is held back until the SHA-256 of the whole blob matched:
// on a mismatch (or truncation) every stream of the fill is reset, so no
// client can take a wrong blob for a complete one, and the fill's chunks
// are deleted. On a match the blob record is published with a synced commit.
//
// Budget: a fill reserves its size with the CacheKeeper when the upstream's
// head arrives. Without room, or when a write finds the disk or the map
// full, the fill passes the bytes through without storing: chunks stay in
// memory only until every client has them (the upstream read pauses when
// too many wait), and new clients get a fill of their own.
//
// Ownership: the Service keeps running fills in a map by digest; streams and
// in-flight writes hold shared_ptrs, so a fill lives until the last of them
// is done. A client that disconnects drops its stream only; the fill goes on.
// Loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cache/store.h"
#include "src/http/server.h"
#include "src/io/clock.h"
#include "src/registry/blob_stream.h"
#include "src/registry/cache_keeper.h"
#include "src/registry/in_flight.h"
#include "src/registry/oci_errors.h"
#include "src/registry/writer_bridge.h"
#include "src/upstream/session.h"
#include "util/digest.h"
#include "util/sha256.h"

namespace registry {

class BlobStream;

// What a fill (or a HEAD probe) asks a source for: the whole blob, the
// blob from `offset` on (a Range request, when an earlier source broke off
// mid-body), or only its head.
struct SourceRequest {
  const char* method = "GET";  // "GET" or "HEAD"
  uint64_t offset = 0;         // > 0: "Range: bytes=offset-"
};

// One place a fill may get the blob from. Sources are tried in order until
// one answers 200 with a Content-Length; a source that fails before that
// (unreachable, slow, 404, error) costs only its timeout.
struct FillSource {
  std::string label;  // "peer eu-2", "upstream docker.io": for logs and errors
  std::string peer;   // the peer's name; empty for an upstream
  // Starts the request (Client/Session contract: no callback from inside it).
  std::function<std::shared_ptr<upstream::InFlight>(const SourceRequest&, upstream::Callbacks)>
      start;
};

class BlobFill : public std::enable_shared_from_this<BlobFill> {
 public:
  // Borrowed pointers; the Service that creates fills owns or borrows them
  // for longer than any fill lives.
  struct Env {
    const io::Clock* clock;
    cache::Store* store;
    WriterBridge* writer;
    CacheKeeper* keeper;
    std::shared_ptr<InFlightBytes> in_flight;  // counts the chunks held in memory; may be null
    std::function<void(const util::Digest&, BlobFill*)> on_done;  // remove from the service's map
    // A peer sent bytes that failed verification, or broke off mid-blob.
    std::function<void(const std::string& peer, const std::string& why, bool corrupt)>
        on_peer_failure;
    std::function<void()> on_resumed;  // a source took over mid-body (counted); may be empty
    // The whole blob failed verification; `from_peer`: the last source was a peer. May be empty.
    std::function<void(bool from_peer)> on_mismatch;
  };

  // With may_store false the fill never writes (a client's own pass-through
  // fetch while another fill of the digest cannot take joiners).
  BlobFill(Env env, util::Digest digest, bool may_store)
      : env_(std::move(env)),
        digest_(digest),
        keeping_(may_store ? Keeping::kStoring : Keeping::kPassing) {}

  // Starts fetching from the first source; the others are fallbacks.
  // REQUIRES: at least one source.
  void Start(std::vector<FillSource> sources);
  // Adds a client. REQUIRES: the fill has not failed.
  void Join(std::shared_ptr<http::Exchange> exchange);
  // Shutdown: cancels the upstream request and resets the streams.
  void Cancel();

  // ---- for BlobStream ----
  // How far a stream that ends at `stream_end` may send now: everything
  // received once the digest matched; before that, never its own last byte,
  // so no client of a fill that fails can see a clean end.
  uint64_t Available(uint64_t stream_end) const;
  bool verified() const { return state_ == State::kVerified; }
  // The in-memory chunk `index`, or null if it was committed and must be read from the store.
  std::shared_ptr<const std::vector<uint8_t>> MemoryChunk(uint32_t index) const;
  bool failed() const { return state_ == State::kFailed; }
  // New clients may join: the fill stores, so every byte stays readable.
  bool joinable() const { return storing() && state_ != State::kFailed; }
  // A stream sent more: pass-through fills drop what every client has.
  void OnStreamProgress();
  // Clients attached: waiting for the head, or streaming.
  size_t clients() const { return waiting_head_.size() + streams_.size(); }

 private:
  enum class State { kWaitingHead, kStreaming, kVerified, kFailed };
  static constexpr size_t kMaxChunksInMemory = 8;

  void TryNextSource();
  // Marks where a client's bytes come from (the access log, the metrics).
  void NoteSource(http::Exchange* ex) const;
  // The current source failed (before its head, or mid-body without bad
  // bytes): the next one, from the offset reached; with none left, the
  // error for clients still waiting for a head, or a reset for streams.
  // That error is the upstream's when it failed; else 404 BLOB_UNKNOWN: a
  // peer that failed (refused, dead, shutting down) does not hold the blob
  // for us now, and a member's death never turns "unknown" into "retry".
  void SourceFailed(int status, const char* code, const std::string& message);
  // The head of a source asked for the rest of the blob.
  void OnResumeHead(const upstream::ResponseHead& head);
  void OnHead(const upstream::ResponseHead& head);
  void OnBody(const char* data, size_t len);
  void OnComplete(util::Status status);
  void CommitChunk(uint32_t index);
  void OnChunkCommitted(uint32_t index, util::Status st);
  // Answers waiting clients with an error before any head was sent.
  void RespondError(int status, const char* code, const std::string& message);
  void Fail(const std::string& why);
  void PumpAll();
  // Stops storing: the reservation is returned and chunks stay in memory.
  void PassThrough(const std::string& why);
  void TrimPassedChunks();
  // Deletes chunks this fill committed, once no stream can still read them.
  void MaybeDiscard();

  Env env_;
  util::Digest digest_;
  std::vector<FillSource> sources_;
  size_t source_ = 0;             // index of the current source
  size_t first_source_ = 0;       // the source that sent the head (and the first bytes)
  bool upstream_failed_ = false;  // the upstream answered neither the blob nor 404
  State state_ = State::kWaitingHead;
  std::shared_ptr<upstream::InFlight> fetch_;
  std::vector<std::shared_ptr<http::Exchange>> waiting_head_;  // joined before the size was known
  std::vector<std::shared_ptr<BlobStream>> streams_;
  uint64_t size_ = 0;
  uint64_t received_ = 0;
  // While streaming: the current source was asked from this offset and its
  // head has not come yet.
  std::optional<uint64_t> resume_from_;
  uint64_t skip_ = 0;  // body bytes to drop: a resumed source sent the whole blob
  uint32_t chunk_size_ = cache::kDefaultChunkSize;
  util::Sha256 hasher_;
  std::map<uint32_t, std::shared_ptr<std::vector<uint8_t>>> chunks_;  // not yet committed
  bool paused_ = false;
  uint64_t started_ms_ = 0;  // monotonic
  // What becomes of the bytes besides the clients.
  enum class Keeping {
    kStoring,         // chunks go to the cache; the size is not known (reserved) yet
    kReserved,        // ... and size_ is reserved with the keeper
    kStored,          // published: the blob is in the cache
    kPassing,         // passed through: nothing of this fill is in the store
    kPassingDiscard,  // passed through, and chunks it stored are deleted once no stream reads them
  };
  Keeping keeping_;
  bool storing() const {
    return keeping_ == Keeping::kStoring || keeping_ == Keeping::kReserved ||
           keeping_ == Keeping::kStored;
  }
  uint32_t chunks_posted_ = 0;  // chunks sent to the writer
};

}  // namespace registry
