// Service: the OCI distribution pull API on top of the cache and upstreams.
//
// Routes GET/HEAD of /v2/, manifests (ManifestResolver) and blobs, and hands
// /_georeg/ to the cluster. Order for a blob: complete in the cache -> join
// the fill in flight (when the request's hop is not above the fill's role)
// -> start a fill whose sources are the peers the cluster plans (region
// owner, siblings, the fleet owner, other regions by RTT: peers/routing.h)
// and then the upstream chosen by ?ns=. HEAD of a blob not held and not
// filling asks the same sources with HEAD (BlobProbe) and starts no fill.
// A peer's request with hop "peer" is answered from the cache only.
//
// Ownership: the Service owns the upstreams, the manifest resolver and the
// fills in flight; it borrows the Store and WriterBridge, which must outlive
// it. Loop thread only.
#pragma once

#include <uv.h>

#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>
#include <unordered_map>

#include "cache/store.h"
#include "config/config.h"
#include "src/http/server.h"
#include "src/io/lifetime.h"
#include "src/oci/router.h"
#include "src/peering/cluster.h"
#include "src/registry/blob_fill.h"
#include "src/registry/blob_probe.h"
#include "src/registry/cache_keeper.h"
#include "src/registry/in_flight.h"
#include "src/registry/manifests.h"
#include "src/registry/own_registry.h"
#include "src/registry/replicator.h"
#include "src/registry/scrubber.h"
#include "src/registry/upstream_set.h"
#include "src/registry/writer_bridge.h"

namespace registry {

class Service {
 public:
  // Takes ownership of the upstreams.
  // The Env must outlive the Service.
  Service(io::Env env, const config::Config& cfg, std::unique_ptr<UpstreamSet> upstreams,
          cache::Store* store, WriterBridge* writer);
  // Loads the cache index. Errors: from the store.
  util::Status Start();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // With a cluster: peer routes are served, misses go to peers before the
  // upstream, and tags learned from peers are written to the cache.
  void AttachCluster(peering::Cluster* cluster);

  void Handle(const std::shared_ptr<http::Exchange>& ex);
  // Cancels fills and manifest fetches, closes upstream connections.
  void Shutdown();
  // The admin socket's routes (docs/operations.md, "Cache CLI").
  void HandleAdmin(const std::shared_ptr<http::Exchange>& ex);
  const InFlightBytes& in_flight() const { return *in_flight_; }
  // Per-node content-location counters, shown by `georeg peers ls -o json`
  // beside the cluster's.
  nlohmann::json ContentStatsJson() const;
  // The registry's families for /metrics (docs/metrics.md): fills, cache,
  // map, verification, pushes, upstreams, replications. No store walk.
  void Describe(util::Exposition* out);
  // For `georeg status` and the map: cache use, upstreams, replications.
  nlohmann::json StatusJson();
  // The cached blobs, for the cluster's digest summary.
  const cache::BlobIndex& blob_index() const { return keeper_.index(); }

 private:
  // The registry a mirror path's first component names (RouteRequest), if any.
  std::optional<std::string> RegistryNamed(std::string_view component);
  // A client request, or a peer's (hop kOwner or kPeer).
  void HandleRoute(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex,
                   peers::Hop hop);
  // `up` is null for the own registry: no upstream, its holders first.
  void HandleBlob(Upstream* up, const oci::Route& route, const std::shared_ptr<http::Exchange>& ex,
                  peers::Hop hop);
  // The cluster's plan for a blob under the upstream's single_flight scope
  // (without a cluster: the upstream only, unless a peer asked); for the
  // own registry (`up` null) the fleet scope, its holders first, no upstream.
  peers::RoutePlan PlanBlob(Upstream* up, const util::Digest& digest, peers::Hop hop) const;
  // The plan's peers, then the upstream if the plan allows it.
  std::vector<FillSource> BlobSources(Upstream* up, const oci::Route& route,
                                      const peers::RoutePlan& plan);
  // HEAD of a blob not held and not filling.
  void Probe(Upstream* up, const oci::Route& route, const std::shared_ptr<http::Exchange>& ex,
             const peers::RoutePlan& plan);
  // Makes blob `d` own content here, fetching it from `holders` (then the
  // usual peers) when missing; `done` once, later.
  void HoldBlob(const util::Digest& d, const std::string& repo, std::vector<std::string> holders,
                std::function<void(util::Status)> done);
  void WakeFillWaiters(const util::Digest& d);
  // GET /v2/<name>/tags/list of a mirrored upstream: asked of the upstream
  // each time (with n and last), its Link header rewritten for this mirror.
  void ProxyTagsList(Upstream* up, const oci::Route& route,
                     const std::shared_ptr<http::Exchange>& ex);
  BlobFill::Env FillEnv();
  // Stores a tag learned from (or withdrawn by) the fleet, through the writer.
  void WriteGossipedTag(const peers::TagUpdate& u, uint64_t confirmed_ms);

  io::Env env_;
  uint64_t max_fills_;
  uint64_t own_budget_;  // [registry] max_size
  std::shared_ptr<InFlightBytes> in_flight_;
  cache::Store* store_;
  WriterBridge* writer_;
  std::unique_ptr<UpstreamSet> upstreams_;
  CacheKeeper keeper_;
  Scrubber scrubber_;
  ManifestResolver manifests_;
  OwnRegistry own_;
  Replicator replicator_;
  struct ContentStats {
    uint64_t upstream_blob_gets =
        0;  // GETs of blobs sent to an upstream (a resumed fill's Range counts)
    uint64_t upstream_blob_heads = 0;  // HEADs of blobs sent to an upstream
    uint64_t fills_joined = 0;         // requests that joined a fill in flight
    uint64_t fills_resumed = 0;        // fills another source took over mid-body
    uint64_t bad_blobs_peer = 0;       // fills whose bytes failed verification, by the last source
    uint64_t bad_blobs_upstream = 0;
  };
  struct RunningFill {
    std::shared_ptr<BlobFill> fill;
    peers::Hop role = peers::Hop::kClient;  // this node's part for the digest when it started
  };
  std::unordered_map<util::Digest, RunningFill, util::DigestHash> fills_;
  std::unordered_map<std::string, std::shared_ptr<BlobProbe>> probes_;  // by "digest role"
  // Holds waiting for a fill of their digest to end (HoldBlob).
  std::unordered_map<util::Digest, std::vector<std::function<void()>>, util::DigestHash>
      fill_waiters_;
  ContentStats stats_;
  peering::Cluster* cluster_ = nullptr;
  util::LogThrottle fills_log_;
  util::LogThrottle busy_log_;
  bool shutting_down_ = false;
  size_t proxied_ = 0;  // tag listings in flight to upstreams
  static constexpr size_t kMaxProxied = 64;
  static constexpr uint64_t kMaxTagListBytes = 4 << 20;
  io::Lifetime life_;  // guards callbacks that may outlive this object
};

}  // namespace registry
