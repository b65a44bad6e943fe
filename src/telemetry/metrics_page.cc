#include "src/telemetry/metrics_page.h"

#include "src/telemetry/process_metrics.h"
#include "src/telemetry/status_page.h"

namespace telemetry {

MetricsPage::MetricsPage(const config::Config& cfg, const RequestMetrics* requests,
                         registry::Service* service, peering::Cluster* cluster)
    : node_(cfg.node), requests_(requests), service_(service), cluster_(cluster) {
  node_.name = NodeName(node_, cluster_);
}

std::string MetricsPage::Render() const {
  using T = util::Exposition::Type;
  util::Exposition out;
  out.Family("georeg_build_info", T::kGauge, "Always 1; the georeg version that is running.");
  out.Sample({{"version", GEOREG_VERSION}}, 1);
  out.Family("georeg_node_info", T::kGauge, "Always 1; this node's name and region.");
  out.Sample({{"node", node_.name}, {"region", node_.region}}, 1);
  requests_->Describe(&out);
  service_->Describe(&out);
  if (cluster_) cluster_->Describe(&out);
  DescribeProcess(&out);
  return out.text();
}

void MetricsPage::Handle(const std::shared_ptr<http::Exchange>& ex) const {
  const http::Request& req = ex->request();
  std::string_view path = std::string_view(req.target).substr(0, req.target.find('?'));
  if (path != "/metrics") {
    ex->Respond(404, {{"Content-Type", "text/plain"}}, "not found: metrics are at /metrics\n");
    return;
  }
  if (req.method != "GET" && req.method != "HEAD") {
    ex->Respond(405, {{"Content-Type", "text/plain"}, {"Allow", "GET, HEAD"}},
                "method not allowed\n");
    return;
  }
  ex->Respond(200, {{"Content-Type", "text/plain; version=0.0.4; charset=utf-8"}}, Render());
}

}  // namespace telemetry
