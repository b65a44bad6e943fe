// The /metrics page: every family georeg exports (docs/metrics.md), in the
// Prometheus text format 0.0.4, built when scraped from counters the
// components keep in memory (no store walk, no I/O but /proc/self).
//
// Borrows what it reads; they outlive the page. Loop thread only.
#pragma once

#include <memory>
#include <string>

#include "config/config.h"
#include "src/http/server.h"
#include "src/peering/cluster.h"
#include "src/registry/service.h"
#include "src/telemetry/request_metrics.h"

namespace telemetry {

class MetricsPage {
 public:
  // `cluster` may be null (a single node).
  MetricsPage(const config::Config& cfg, const RequestMetrics* requests, registry::Service* service,
              peering::Cluster* cluster);
  std::string Render() const;
  // The metrics listener's handler: GET or HEAD /metrics; 404 elsewhere, 405 for other methods.
  void Handle(const std::shared_ptr<http::Exchange>& ex) const;

 private:
  config::Node node_;
  const RequestMetrics* requests_;
  registry::Service* service_;
  peering::Cluster* cluster_;
};

}  // namespace telemetry
