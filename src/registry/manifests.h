// ManifestResolver: manifests by tag or digest, from the cache or an upstream.
//
// By digest: the cached copy is always right (content-addressed); otherwise
// GET it. By tag: a tag confirmed within `tag_ttl` is answered from the
// cache; an older one is revalidated with a HEAD (Docker Hub does not count
// HEADs against its pull limit) and the manifest is fetched with GET only
// when the digest changed. When the upstream is unreachable, times out,
// answers 5xx, 429 or refuses our credentials, a cached tag younger than
// `max_stale` is served with "X-Georeg-Stale: age=Ns"; a tag never seen gets
// a fast 503 (never 429: containerd would retry the same host).
//
// Every manifest is verified (SHA-256 against the digest asked for and the
// upstream's Docker-Content-Digest) before it is stored, in one synced
// transaction with its tag. Concurrent requests for one reference share one
// upstream conversation. Loop thread only; borrows the Store and the
// WriterBridge, which outlive it.
//
// Bounds: a manifest larger than max_manifest_bytes is refused (at the head
// when its Content-Length says so); an upstream conversation for a manifest
// has a deadline of connect + 2 x response timeout; revalidating a cached
// tag serves it stale once the upstream took response_timeout (slow counts
// as down); when every client waiting on a conversation has left, it is
// cancelled. Bodies being fetched count against the daemon's bytes in
// flight (InFlightBytes).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cache/store.h"
#include "peers/routing.h"
#include "src/http/server.h"
#include "src/io/env.h"
#include "src/io/handle.h"
#include "src/oci/router.h"
#include "src/registry/in_flight.h"
#include "src/registry/upstream_set.h"
#include "src/registry/writer_bridge.h"
#include "util/digest.h"

namespace peering {
class Fleet;
}

namespace registry {

class ManifestResolver {
 public:
  // The Env, store, writer and cluster must outlive the resolver.
  // `in_flight` counts manifest bodies being fetched; over its limit, a
  // reference that needs the upstream gets 503 (may be null: no limit).
  // With a `cluster` (null: none), manifests missing here are asked of
  // peers (by digest) before the upstream, and tag changes seen at the
  // upstream are gossiped.
  ManifestResolver(io::Env env, cache::Store* store, WriterBridge* writer,
                   uint64_t max_manifest_bytes, std::shared_ptr<InFlightBytes> in_flight = nullptr,
                   peering::Fleet* cluster = nullptr);
  ~ManifestResolver();
  ManifestResolver(const ManifestResolver&) = delete;
  ManifestResolver& operator=(const ManifestResolver&) = delete;

  // `name` is the repository as the upstream knows it. `hop`: kPeer answers
  // from the cache only (a peer asked). REQUIRES: route.kind == kManifest.
  void Handle(Upstream* up, const std::string& name, const oci::Route& route,
              const std::shared_ptr<http::Exchange>& ex, peers::Hop hop = peers::Hop::kClient);
  // A tag learned by gossip points at `digest`: fetch that manifest now,
  // from peers only (`origin`, the node that made the tag, first: it has
  // it), verified and stored, so the first pull here finds it cached; for
  // an index, its platform manifests too (at most kMaxPrefetches of them).
  // No upstream request: a client's pull still goes there if no peer had it.
  // Bounded: at most kMaxPrefetches at once; more are dropped (and logged).
  void Prefetch(Upstream* up, const std::string& name, const util::Digest& digest,
                const std::string& origin);
  // Answers every waiting client 503 and cancels upstream requests.
  void Shutdown();

  // Manifests whose bytes failed verification, by where they came from.
  struct Stats {
    uint64_t bad_from_peer = 0, bad_from_upstream = 0;
  };
  const Stats& stats() const { return stats_; }
  // Requests waiting on a conversation another request started.
  uint64_t coalesced_waiters() const;

  static constexpr size_t kMaxPrefetches = 16;

 private:
  struct Fetch;
  void Start(Fetch* f);
  void StartRequest(Fetch* f, const char* method, const std::string& reference);
  void OnHeadDone(const std::string& key, util::Status st);
  void OnGetDone(const std::string& key, util::Status st);
  // Asks the next peer for the manifest `want`, or the upstream when none is left.
  void StartPeerOrUpstream(Fetch* f);
  void OnPeerGetDone(const std::string& key, util::Status st);
  // Verified bytes: store (with the tag, if any) and answer every waiter.
  void StoreAndServe(const std::string& key, const util::Digest& digest, bool from_peer);
  // Serves the cached tag if it is young enough, else 503. The upstream is in trouble.
  void ServeStaleOrFail(const std::string& key, const std::string& why);
  // Answers every waiter with `fn`; `result` and `source` mark their outcome
  // (a waiter that joined keeps "coalesced").
  void Finish(const std::string& key,
              const std::function<void(const std::shared_ptr<http::Exchange>&)>& fn,
              std::string_view result = {}, std::string_view source = {});
  void FinishError(const std::string& key, int status, const char* code,
                   const std::string& message);
  void AddWaiter(Fetch* f, const std::string& key, const std::shared_ptr<http::Exchange>& ex);
  void CancelRequests(Fetch* f);

  io::Env env_;
  cache::Store* store_;
  WriterBridge* writer_;
  uint64_t max_bytes_;
  std::shared_ptr<InFlightBytes> in_flight_;
  std::map<std::string, std::unique_ptr<Fetch>> fetches_;
  peering::Fleet* cluster_ = nullptr;
  util::LogThrottle prefetch_log_;
  Stats stats_;
  bool shutting_down_ = false;
};

// Sends a manifest, honouring HEAD and the client's Accept list.
void ServeManifest(const std::shared_ptr<http::Exchange>& ex, const util::Digest& digest,
                   const cache::Manifest& m, const std::string& stale_note);

}  // namespace registry
