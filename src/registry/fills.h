// Fills: how a blob this node does not hold reaches it (the miss path).
//
// Serve() answers a GET or HEAD of a blob: complete in the cache -> served
// from it; a fill in flight -> joined (when the request's hop is not above
// the fill's role); else a fill starts whose sources are the peers the
// cluster plans (region owner, siblings, the fleet owner, other regions by
// RTT: peers/routing.h; for the own registry its known holders first,
// peers/holder_hints.h) and then the upstream chosen by ?ns= (never for the
// own registry). A HEAD of a blob not held and not filling asks the same
// sources with HEAD (BlobProbe) and starts no fill. A peer's request with
// hop "peer" is answered from the cache only.
//
// WhenHere() is the same fill without a client, for a hold (Holdings): a
// blob of the own registry fetched from its holders, then the owners.
//
// Ownership: owns the fills and probes in flight; borrows the store, the
// writer, the keeper, the cluster (null without one) and the hints, which
// outlive it. Loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/store.h"
#include "peers/holder_hints.h"
#include "peers/routing.h"
#include "src/http/server.h"
#include "src/io/env.h"
#include "src/oci/router.h"
#include "src/registry/blob_fill.h"
#include "src/registry/blob_probe.h"
#include "src/registry/cache_keeper.h"
#include "src/registry/in_flight.h"
#include "src/registry/upstream_set.h"
#include "src/registry/writer_bridge.h"
#include "util/log.h"

namespace peering {
class Fleet;
}

namespace registry {

class Fills {
 public:
  struct Deps {
    io::Env env;
    cache::Store* store;
    WriterBridge* writer;
    CacheKeeper* keeper;
    std::shared_ptr<InFlightBytes> in_flight;  // shared with the manifest fetches
    peering::Fleet* cluster;                   // null: no cluster
    const peers::HolderHints* hints;
  };
  // `own_registry`: the own registry's name ("" without one), the ns= of
  // its blobs' peer requests. `max_fills`: [server] max_fills.
  Fills(Deps deps, std::string own_registry, uint64_t max_fills);
  Fills(const Fills&) = delete;
  Fills& operator=(const Fills&) = delete;

  // A GET or HEAD of blob `route.digest`, answered on `ex`. `up`: the
  // mirrored upstream ?ns= chose; null for the own registry. `hop`: kClient
  // for a client, the sender's hop for a peer's request.
  void Serve(Upstream* up, const oci::Route& route, const std::shared_ptr<http::Exchange>& ex,
             peers::Hop hop);
  // Calls `then` once, later, when blob `d` (of the own registry, in
  // repository `repo`) is in the cache or could not be fetched: a fill is
  // started when none runs (its holders first, then the owners a client's
  // request would ask), none when no node could have it.
  void WhenHere(const util::Digest& d, const std::string& repo, std::function<void()> then);
  // Whether a node of the fleet has blob `route.digest` of the own
  // registry: this one, or a peer a HEAD probe finds (as a client's HEAD
  // would). `found` once, later.
  void Locate(const oci::Route& route, std::function<void(bool found)> found);
  // Cancels every fill and probe; later requests are answered 503.
  void Shutdown();

  struct Stats {
    uint64_t upstream_blob_gets = 0;   // GETs of blobs sent to an upstream (a resumed Range counts)
    uint64_t upstream_blob_heads = 0;  // HEADs of blobs sent to an upstream
    uint64_t fills_joined = 0;         // requests that joined a fill in flight
    uint64_t fills_resumed = 0;        // fills another source took over mid-body
    uint64_t bad_blobs_peer = 0;       // fills whose bytes failed verification, by the last source
    uint64_t bad_blobs_upstream = 0;
  };
  const Stats& stats() const { return stats_; }
  size_t running() const { return fills_.size(); }
  size_t probes() const { return probes_.size(); }
  // Clients waiting on a fill another request started.
  uint64_t waiters() const;

 private:
  struct Running {
    std::shared_ptr<BlobFill> fill;
    peers::Hop role = peers::Hop::kClient;  // this node's part for the digest when it started
  };
  // The cluster's plan for a blob under the upstream's single_flight scope
  // (without a cluster: the upstream only, unless a peer asked); for the
  // own registry (`up` null) the fleet scope, its holders first, no upstream.
  peers::RoutePlan Plan(Upstream* up, const util::Digest& digest, peers::Hop hop) const;
  // The plan's peers, then the upstream if the plan allows it.
  std::vector<FillSource> Sources(Upstream* up, const oci::Route& route,
                                  const peers::RoutePlan& plan);
  // HEAD of a blob not held and not filling: the probe running for it, or
  // a new one; `join` adds the asker before it starts.
  void Probe(Upstream* up, const oci::Route& route, const peers::RoutePlan& plan,
             const std::function<void(BlobProbe*)>& join);
  BlobFill::Env FillEnv();
  void WakeWaiters(const util::Digest& d);

  Deps deps_;
  std::string own_registry_;
  uint64_t max_fills_;
  std::unordered_map<util::Digest, Running, util::DigestHash> fills_;
  std::unordered_map<std::string, std::shared_ptr<BlobProbe>> probes_;  // by "digest role"
  // WhenHere callers waiting for a fill of their digest to end.
  std::unordered_map<util::Digest, std::vector<std::function<void()>>, util::DigestHash> waiters_;
  Stats stats_;
  util::LogThrottle fills_log_;
  util::LogThrottle busy_log_;
  bool shutting_down_ = false;
};

}  // namespace registry
