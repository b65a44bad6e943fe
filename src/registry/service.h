// Service: the registry a client (containerd, podman, skopeo) and a peer
// talk to on this node, and the place its parts are put together.
//
// The route table (src/routes.h) hands it the OCI requests of clients and
// peers. For a mirrored upstream (chosen by ?ns= or a path prefix) it serves the
// OCI distribution pull API: manifests through the ManifestResolver, blobs
// through the Fills, tags/list asked of the upstream. A request for the
// fleet's own registry goes to the OwnRegistry. What gossip teaches goes
// to its owner (Learn).
//
// Its content parts (fills, holdings, fleet tags, the own registry, the
// replicator) are built together, in dependency order, by RegistryParts
// (src/registry/registry_parts.h); beside them it holds the upstreams, the
// ManifestResolver and the Scrubber.
//
// Ownership: owns the upstreams and every part above; borrows the Store,
// WriterBridge, CacheKeeper and Cluster (null without one), which must
// outlive it. Loop thread only.
#pragma once

#include <uv.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "cache/store.h"
#include "config/config.h"
#include "peers/gossip_node.h"
#include "src/http/server.h"
#include "src/io/lifetime.h"
#include "src/oci/router.h"
#include "src/registry/cache_keeper.h"
#include "src/registry/in_flight.h"
#include "src/registry/manifests.h"
#include "src/registry/registry_parts.h"
#include "src/registry/scrubber.h"
#include "src/registry/upstream_set.h"
#include "src/registry/writer_bridge.h"

namespace peering {
class Cluster;
}

namespace registry {

class Service {
 public:
  // Takes ownership of the upstreams.
  Service(io::Env env, const config::Config& cfg, std::unique_ptr<UpstreamSet> upstreams,
          cache::Store* store, WriterBridge* writer, CacheKeeper* keeper,
          peering::Cluster* cluster);
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;
  // Loads the push credentials, restores the fleet state into the cluster
  // and starts the background work (uploads' sweep, garbage collection,
  // replication, scrubbing). REQUIRES: the keeper was started. Errors:
  // InvalidArgument (the htpasswd file).
  util::Status Start();

  // A client's request of the OCI API (/v2/..., /healthz), as the route
  // table (src/routes.h) hands it over.
  void Handle(const std::shared_ptr<http::Exchange>& ex);
  // A peer's content request (Cluster::AcceptContent): `oci_target` asked
  // at `hop`.
  void HandlePeerContent(const std::shared_ptr<http::Exchange>& ex, const std::string& oci_target,
                         peers::Hop hop);
  // The parts the route table dispatches to directly.
  Replicator& replicator() { return parts_.replicator; }
  Holdings& holdings() { return parts_.holdings; }
  // What gossip (or a member's removal) taught this node: each tag goes to
  // its owner (the own registry, its replications, or the mirror's tags).
  void Learn(const peers::GossipNode::Learned& learned);
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

 private:
  // The registry a mirror path's first component names (RouteRequest), if any.
  std::optional<std::string> RegistryNamed(std::string_view component);
  void LearnTag(const peers::TagUpdate& u);
  void Withdraw(const peers::TagUpdate& u);
  // A client request, or a peer's (hop kOwner or kPeer).
  void HandleRoute(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex,
                   peers::Hop hop);
  // GET /v2/<name>/tags/list of a mirrored upstream: asked of the upstream
  // each time (with n and last), its Link header rewritten for this mirror.
  void ProxyTagsList(Upstream* up, const oci::Route& route,
                     const std::shared_ptr<http::Exchange>& ex);
  // Stores a tag learned from (or withdrawn by) the fleet, through the writer.
  void WriteGossipedTag(const peers::TagUpdate& u, uint64_t confirmed_ms);

  io::Env env_;
  uint64_t own_budget_;  // [registry] max_size
  std::string htpasswd_;
  std::shared_ptr<InFlightBytes> in_flight_;
  cache::Store* store_;
  WriterBridge* writer_;
  CacheKeeper* keeper_;
  peering::Cluster* cluster_;
  std::unique_ptr<UpstreamSet> upstreams_;
  Scrubber scrubber_;
  ManifestResolver manifests_;
  RegistryParts parts_;
  size_t proxied_ = 0;  // tag listings in flight to upstreams
  static constexpr size_t kMaxProxied = 64;
  static constexpr uint64_t kMaxTagListBytes = 4 << 20;
  io::Lifetime life_;  // guards callbacks that may outlive this object
};

}  // namespace registry
