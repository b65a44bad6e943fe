#include "src/telemetry/status_page.h"

#include <unistd.h>

#include <map>

#include "peers/region_locations.h"
#include "src/http/json_response.h"
#include "src/ui_assets.h"

namespace telemetry {

std::string NodeName(const config::Node& node, const peering::Cluster* cluster) {
  if (cluster) return cluster->name();
  if (!node.name.empty()) return node.name;
  char host[256] = "";
  return gethostname(host, sizeof host - 1) == 0 ? host : "";
}

StatusPage::StatusPage(const config::Config& cfg, registry::Service* service,
                       peering::Cluster* cluster, uint64_t started_wall_ms, const io::Clock* clock)
    : node_(cfg.node),
      service_(service),
      cluster_(cluster),
      started_wall_ms_(started_wall_ms),
      clock_(clock) {
  node_.name = NodeName(node_, cluster_);
}

nlohmann::json StatusPage::Status() const {
  using nlohmann::json;
  uint64_t now = clock_->WallMs();
  json node = {{"name", node_.name},
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
  out["registry"] = out["cache"].contains("registry") ? out["cache"]["registry"] : json(nullptr);
  // The regions, for the map: where each is (this node's from its config,
  // the others' from the well-known cloud region names), how many nodes it
  // has, its replication's status, and the RTT to it from here.
  std::map<std::string, json> regions;
  auto region = [&regions](const std::string& name) -> json& {
    json& r = regions[name];
    if (r.is_null()) {
      r = {{"name", name},           {"nodes", 0},          {"live", 0},
           {"replication", nullptr}, {"rtt_ms", nullptr},   {"latitude", nullptr},
           {"longitude", nullptr},   {"placed_by", nullptr}};
      if (auto at = peers::KnownRegionLocation(name)) {
        r["latitude"] = at->latitude;
        r["longitude"] = at->longitude;
        r["placed_by"] = "builtin";
      }
    }
    return r;
  };
  json& self = region(node_.region);
  self["nodes"] = 1;
  self["live"] = 1;
  self["self"] = true;
  if (node_.has_location) {
    self["latitude"] = node_.latitude;
    self["longitude"] = node_.longitude;
    self["placed_by"] = "config";
  }
  for (const json& p : peers) {
    json& r = region(p["region"].get<std::string>());
    r["nodes"] = r["nodes"].get<int>() + 1;
    std::string state = p["state"].get<std::string>();
    if (state != "alive" && state != "suspect") continue;
    r["live"] = r["live"].get<int>() + 1;
    if (p["min_rtt_ms"].is_number() &&
        (r["rtt_ms"].is_null() || p["min_rtt_ms"].get<double>() < r["rtt_ms"].get<double>()))
      r["rtt_ms"] = p["min_rtt_ms"];
  }
  for (const json& rep : out["replications"]) {
    json& r = region(rep["name"].get<std::string>());
    r["replication"] = rep["status"]["displayStatus"];
  }
  json list = json::array();
  for (auto& [name, r] : regions) list.push_back(std::move(r));
  out["regions"] = list;
  return out;
}

void StatusPage::ServeUi(const std::shared_ptr<http::Exchange>& ex, Ui what) const {
  const http::Request& req = ex->request();
  if (req.method != "GET" && req.method != "HEAD") {
    ex->Respond(405, {{"Content-Type", "text/plain"}, {"Allow", "GET, HEAD"}},
                "method not allowed\n");
  } else if (what == kRedirect) {
    ex->Respond(301, {{"Location", "/ui/"}, {"Content-Type", "text/plain"}}, "/ui/\n");
  } else if (what == kPage) {
    // Everything the page needs is on this server: nothing else may load.
    ex->Respond(200,
                {{"Content-Type", "text/html; charset=utf-8"},
                 {"Content-Security-Policy",
                  "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'"},
                 {"X-Content-Type-Options", "nosniff"}},
                std::string(embedded::kIndexHtml));
  } else {
    ex->Respond(200,
                {{"Content-Type", "text/plain; charset=utf-8"}, {"Cache-Control", "max-age=86400"}},
                std::string(embedded::kWorldPath));
  }
}

void StatusPage::ServeStatus(const std::shared_ptr<http::Exchange>& ex) const {
  const http::Request& req = ex->request();
  if (req.method != "GET" && req.method != "HEAD") {
    http::RespondJsonError(ex, 405, "the status is read with GET", {{"Allow", "GET, HEAD"}});
    return;
  }
  http::RespondJson(ex, 200, Status(), {{"Cache-Control", "no-store"}});
}

}  // namespace telemetry
