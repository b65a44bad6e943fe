// GET /_georeg/v1/status on the registry listener: this node (name,
// region, coordinates, version, uptime), its peers (state, RTT, last
// contact), cache use, upstream health and the replications, as JSON.
// What `georeg status` prints and the map page (/ui/) draws. Unsigned and
// read-only, like /v2/: it names nodes and regions, never a credential.
//
// It also serves the map: GET /ui/ (src/telemetry/ui/index.html) and the
// world outline it draws, /ui/world.path (tools/world_outline.py), both
// compiled in.
//
// Borrows the service and cluster (cluster may be null); loop thread only.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "src/http/server.h"
#include "src/peering/cluster.h"
#include "src/registry/service.h"

namespace telemetry {

// This node's name as the metrics and the status give it: the cluster's
// (which defaults to the host name), else [node] name, else the host name.
std::string NodeName(const config::Node& node, const peering::Cluster* cluster);

class StatusPage {
 public:
  static constexpr const char* kPath = "/_georeg/v1/status";
  StatusPage(const config::Config& cfg, registry::Service* service, peering::Cluster* cluster,
             uint64_t started_wall_ms, const io::Clock* clock);
  nlohmann::json Status() const;
  // kPath: the status as JSON (GET or HEAD; else 405).
  void ServeStatus(const std::shared_ptr<http::Exchange>& ex) const;
  // The map (src/routes.h names the paths): /ui redirects to /ui/, the
  // page, and the world outline it draws (GET or HEAD; else 405).
  enum Ui { kRedirect, kPage, kWorld };
  void ServeUi(const std::shared_ptr<http::Exchange>& ex, Ui what) const;

 private:
  config::Node node_;
  registry::Service* service_;
  peering::Cluster* cluster_;
  uint64_t started_wall_ms_;
  const io::Clock* clock_;
};

}  // namespace telemetry
