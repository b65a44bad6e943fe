#include "src/telemetry/status_page.h"

#include <unistd.h>

namespace telemetry {

StatusPage::StatusPage(const config::Config& cfg, registry::Service* service, peering::Cluster* cluster,
                       uint64_t started_wall_ms, const io::Clock* clock)
    : node_(cfg.node), service_(service), cluster_(cluster), started_wall_ms_(started_wall_ms), clock_(clock) {
  if (node_.name.empty()) {
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) == 0) node_.name = host;
  }
}

nlohmann::json StatusPage::Status() const {
  using nlohmann::json;
  uint64_t now = clock_->WallMs();
  json node = {{"name", cluster_ ? cluster_->name() : node_.name},
               {"region", node_.region},
               {"version", GEOREG_VERSION},
               {"uptime_s", now > started_wall_ms_ ? (now - started_wall_ms_) / 1000 : 0},
               {"latitude", node_.has_location ? json(node_.latitude) : json(nullptr)},
               {"longitude", node_.has_location ? json(node_.longitude) : json(nullptr)}};
  json out = service_->StatusJson();
  out["node"] = node;
  json peers = json::array();
  if (cluster_) {
    json c = cluster_->StatusJson();
    for (const json& m : c["members"]) {
      if (m.value("self", false)) continue;
      peers.push_back({{"name", m["name"]},
                       {"region", m["region"]},
                       {"url", m["url"]},
                       {"state", m["state"]},
                       {"rtt_ms", m["rtt_ms"]},
                       {"min_rtt_ms", m["min_rtt_ms"]},
                       {"last_contact_ms", m["last_contact_ms"]},
                       {"quarantined", m["quarantined"]}});
    }
  }
  out["cluster"] = cluster_ != nullptr;
  out["peers"] = peers;
  return out;
}

bool StatusPage::Handle(const std::shared_ptr<http::Exchange>& ex) const {
  const http::Request& req = ex->request();
  std::string_view path = std::string_view(req.target).substr(0, req.target.find('?'));
  if (path != kPath) return false;
  ex->outcome().kind = "api";
  if (req.method != "GET" && req.method != "HEAD") {
    ex->Respond(405, {{"Content-Type", "application/json"}, {"Allow", "GET, HEAD"}},
                "{\"error\":\"the status is read with GET\"}");
    return true;
  }
  ex->Respond(200, {{"Content-Type", "application/json"}, {"Cache-Control", "no-store"}}, Status().dump() + "\n");
  return true;
}

}  // namespace telemetry
