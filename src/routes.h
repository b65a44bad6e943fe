// The registry port's route table: every path the registry listener
// answers, declared in one place (routes.cc, kRoutes) and dispatched to the
// module that serves it:
//
//   /_georeg/v1/status              StatusPage (the node's status)
//   /ui, /ui/, /ui/world.path       StatusPage (the map)
//   /_georeg/v1/registries/...      Replicator (the replications API)
//   POST /_georeg/v1/msg            Cluster (gossip), then Service::Learn
//   GET  /_georeg/v1/summary        Cluster (our digest summary)
//   GET|HEAD /_georeg/v1/oci/v2/... Service (content a peer asks for)
//   POST /_georeg/v1/hold/v2/...    Holdings (a peer's hold)
//   other /_georeg/...              404 (after the peer's signature is checked)
//   everything else                 Service: /v2/... and /healthz by the OCI
//                                   router (src/oci/router.h)
//
// Peer routes need a cluster (without one: 404) and a request signed by a
// member (Cluster::Authenticate). /metrics is served on its own listener
// ([metrics] listen, telemetry::MetricsPage), the cache CLI on the admin
// socket (Service::HandleAdmin).
//
// MatchRoute is pure (tested without sockets); RegistryRoutes dispatches.
// Ownership: borrows the service, cluster (null without one) and status
// page, which outlive it. Loop thread only.
#pragma once

#include <memory>
#include <string_view>

#include "src/http/server.h"

namespace peering {
class Cluster;
}
namespace registry {
class Service;
}
namespace telemetry {
class StatusPage;
}

namespace routes {

enum class Endpoint {
  kStatus,
  kUiRedirect,
  kUiPage,
  kUiWorld,
  kReplications,
  kPeerMessage,
  kPeerSummary,
  kPeerContent,
  kPeerHold,
  kPeerOther,
  kOci,
};

// The endpoint `method` and `path` (the target without its query) reach.
Endpoint MatchRoute(std::string_view method, std::string_view path);
// Its label in the access log and metrics (`kind`), before the module
// refines it (an OCI request's kind comes from the router).
const char* KindOf(Endpoint e);

class RegistryRoutes {
 public:
  RegistryRoutes(registry::Service* service, peering::Cluster* cluster,
                 const telemetry::StatusPage* status);
  void Handle(const std::shared_ptr<http::Exchange>& ex);

 private:
  void HandlePeer(Endpoint e, const std::shared_ptr<http::Exchange>& ex);

  registry::Service* service_;
  peering::Cluster* cluster_;
  const telemetry::StatusPage* status_;
};

}  // namespace routes
