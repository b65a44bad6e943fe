#include "src/status_cli.h"

#include <cstdio>

#include <nlohmann/json.hpp>

#include "src/node_api.h"
#include "util/table.h"

namespace status_cli {

using nlohmann::json;

namespace {

std::string Str(const json& j, const char* key, const char* none = "-") {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return none;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_boolean()) return it->get<bool>() ? "yes" : "no";
  if (it->is_number_float()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", it->get<double>());
    return buf;
  }
  return it->dump();
}

// 4196756 -> "4.0MiB": a figure to read, not util::FormatSize's exact spelling.
std::string Human(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(bytes);
  int i = 0;
  while (v >= 1024 && i < 4) {
    v /= 1024;
    ++i;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, i ? "%.1f%s" : "%.0f%s", v, units[i]);
  return buf;
}

uint64_t Num(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

std::string Ago(const json& ms) {
  if (!ms.is_number()) return "never";
  double s = ms.get<double>() / 1000.0;
  char buf[32];
  std::snprintf(buf, sizeof buf, s < 10 ? "%.1fs ago" : "%.0fs ago", s);
  return buf;
}

}  // namespace

std::string FormatStatus(const std::string& text) {
  json st = json::parse(text, nullptr, false);
  if (!st.is_object()) return "";
  const json& node = st.value("node", json::object());
  const json& cache = st.value("cache", json::object());
  std::string out;
  out += "NODE " + Str(node, "name") + "  REGION " + Str(node, "region") + "  VERSION " +
         Str(node, "version") + "  UP " + Str(node, "uptime_s") + "s\n";
  out += "CACHE " + Human(Num(cache, "bytes")) + " of " + Human(Num(cache, "budget")) + ", " +
         Str(cache, "blobs") + " cached blob(s), hits " + Str(cache, "hits") + ", misses " +
         Str(cache, "misses") + ", evictions " + Str(cache, "evictions") + ", LMDB map " +
         Human(Num(cache, "map_used")) + " of " + Human(Num(cache, "map_size")) + "\n";
  if (cache.contains("registry"))
    out += "REGISTRY " + Str(cache, "registry") + " " + Human(Num(cache, "registry_bytes")) +
           " of " + Human(Num(cache, "registry_budget")) + ", " + Str(cache, "registry_blobs") +
           " own blob(s) (pushed or replicas, never evicted)\n";
  std::vector<std::vector<std::string>> rows;
  for (const json& u : st.value("upstreams", json::array()))
    rows.push_back({Str(u, "registry"), Str(u, "url"), u.value("up", false) ? "up" : "DOWN",
                    Str(u, "responses"), Str(u, "failures"), Str(u, "ratelimit_remaining")});
  out += "\n" + util::FormatTable(
                    {"UPSTREAM", "URL", "HEALTH", "RESPONSES", "FAILURES", "RATELIMIT LEFT"}, rows);
  rows.clear();
  for (const json& p : st.value("peers", json::array()))
    rows.push_back({Str(p, "name"), Str(p, "region"), Str(p, "state"), Str(p, "min_rtt_ms"),
                    Ago(p.value("last_contact_ms", json())), Str(p, "url")});
  if (st.value("cluster", false)) {
    out += "\n" + (rows.empty()
                       ? std::string("PEERS none yet\n")
                       : util::FormatTable(
                             {"PEER", "REGION", "STATE", "RTT MS", "LAST CONTACT", "URL"}, rows));
  }
  rows.clear();
  for (const json& r : st.value("replications", json::array())) {
    rows.push_back({Str(r, "name"), Str(r, "location"), Str(r, "provisioningState"),
                    Str(r.value("status", json::object()), "displayStatus")});
  }
  if (!rows.empty())
    out +=
        "\n" + util::FormatTable({"REPLICATION", "LOCATION", "PROVISIONING STATE", "STATUS"}, rows);
  return out;
}

int Status(const Options& o) {
  auto url = node_api::EndpointOf(o.endpoint, o.config);
  if (!url.ok()) {
    std::fprintf(stderr, "georeg: %s\n", url.status().message().c_str());
    return 2;
  }
  auto a = node_api::Call(*url, "GET", "/_georeg/v1/status");
  if (!a.ok()) {
    std::fprintf(stderr, "georeg: %s\n", a.status().message().c_str());
    return 3;
  }
  json st = json::parse(a->body, nullptr, false);
  if (a->status != 200 || !st.is_object()) {
    std::fprintf(stderr, "georeg: %s answered %d, not a status (is it georeg?)\n",
                 url->Origin().c_str(), a->status);
    return 3;
  }
  if (o.output == "json") {
    std::printf("%s\n", st.dump(2).c_str());
  } else {
    std::printf("%s", FormatStatus(a->body).c_str());
  }
  return 0;
}

}  // namespace status_cli
