#include "src/replication_cli.h"

#include <cstdio>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "push/replication.h"
#include "src/node_api.h"
#include "util/table.h"
#include "util/url.h"

namespace replication_cli {

using nlohmann::json;

namespace {

constexpr int kOk = 0, kRefused = 1, kUsage = 2, kUnreachable = 3;

int Fail(int code, const std::string& message) {
  std::fprintf(stderr, "georeg: %s\n", message.c_str());
  return code;
}

// The node's answer as JSON, or the exit code and line for a refusal.
int Request(const Options& o, const std::string& method, const std::string& path, json* out,
            const std::string& body = "") {
  if (o.registry.empty()) return Fail(kUsage, "--registry is required");
  if (!config::ValidRegistryName(o.registry))
    return Fail(kUsage, "invalid registry name '" + o.registry + "': " + config::kRegistryNameRule);
  auto url = node_api::EndpointOf(o.endpoint, o.config);
  if (!url.ok()) return Fail(kUsage, url.status().message());
  auto a = node_api::Call(*url, method, path, body, o.username, o.password);
  if (!a.ok())
    return Fail(a.status().code() == util::Code::kInvalidArgument ? kUsage : kUnreachable,
                a.status().message());
  json j = json::parse(a->body, nullptr, /*allow_exceptions=*/false);
  if (a->status >= 300) {
    std::string why;
    if (j.is_object() && j.contains("error") && j["error"].is_string()) {
      why = j["error"].get<std::string>();
    } else if (j.is_object() && j.contains("errors") && j["errors"].is_array() &&
               !j["errors"].empty() && j["errors"][0].is_object() &&
               j["errors"][0].contains("message")) {
      why = j["errors"][0]["message"].is_string() ? j["errors"][0]["message"].get<std::string>()
                                                  : "refused";
    } else {
      why = "the node answered " + std::to_string(a->status);
    }
    if (a->status == 401)
      why +=
          " (give the push credentials with -u USER -p PASSWORD or "
          "GEOREG_USERNAME/GEOREG_PASSWORD)";
    return Fail(kRefused, why);
  }
  if (a->status == 204) {
    *out = nullptr;
    return kOk;
  }
  if (j.is_discarded()) return Fail(kRefused, "the node's answer is not JSON");
  *out = std::move(j);
  return kOk;
}

std::string Path(const Options& o, const std::string& rest = "") {
  return "/_georeg/v1/registries/" + o.registry + "/replications" + rest;
}

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

void PrintReplications(const Options& o, const json& items) {
  if (o.output == "table") {
    std::vector<std::vector<std::string>> rows;
    for (const json& r : items)
      rows.push_back({Str(r, "name"), Str(r, "location"), Str(r, "provisioningState"),
                      r.contains("status") ? Str(r["status"], "displayStatus") : ""});
    std::fputs(
        util::FormatTable({"NAME", "LOCATION", "PROVISIONING STATE", "STATUS"}, rows).c_str(),
        stdout);
    return;
  }
  std::printf("%s\n", items.dump(2).c_str());
}

int PrintOne(const Options& o, int rc, const json& r) {
  if (rc != kOk) return rc;
  if (o.output == "table") {
    PrintReplications(o, json::array({r}));
  } else {
    std::printf("%s\n", r.dump(2).c_str());
  }
  return kOk;
}

int NeedLocation(const Options& o) {
  if (o.location.empty()) return Fail(kUsage, "--location is required");
  // Checked here, as the node checks it: nothing is sent for a name it would refuse.
  if (!push::ValidRegionName(o.location))
    return Fail(kUsage, "invalid region name '" + o.location + "': " + push::kRegionNameRule);
  return kOk;
}

}  // namespace

int Create(const Options& o) {
  if (int rc = NeedLocation(o)) return rc;
  json r;
  int rc = Request(o, "PUT", Path(o, "/" + o.location), &r);
  return PrintOne(o, rc, r);
}

int List(const Options& o) {
  json items;
  if (int rc = Request(o, "GET", Path(o), &items)) return rc;
  if (!items.is_array()) return Fail(kRefused, "the node's answer is not a list");
  PrintReplications(o, items);
  return kOk;
}

int Show(const Options& o) {
  if (int rc = NeedLocation(o)) return rc;
  json r;
  int rc = Request(o, "GET", Path(o, "/" + o.location), &r);
  return PrintOne(o, rc, r);
}

int Update(const Options& o) {
  if (int rc = NeedLocation(o)) return rc;
  if (o.routing.empty()) return Fail(kUsage, "nothing to update: give --routing enabled|disabled");
  json r;
  int rc = Request(o, "PATCH", Path(o, "/" + o.location), &r, json{{"routing", o.routing}}.dump());
  return PrintOne(o, rc, r);
}

int Delete(const Options& o) {
  if (int rc = NeedLocation(o)) return rc;
  json r;
  return Request(o, "DELETE", Path(o, "/" + o.location), &r);
}

int Status(const Options& o) {
  if (o.image.empty()) return Fail(kUsage, "--image REPO:TAG is required");
  for (char c : o.image)
    if (c == '?' || c == '&' || c == '#' || c == ' ' || c == '%')
      return Fail(kUsage, "invalid image '" + o.image + "'");
  json s;
  if (int rc = Request(
          o, "GET", "/_georeg/v1/registries/" + o.registry + "/image-status?image=" + o.image, &s))
    return rc;
  if (o.output != "table") {
    std::printf("%s\n", s.dump(2).c_str());
    return kOk;
  }
  std::vector<std::vector<std::string>> rows;
  auto frac = [](const json& j) {
    return std::to_string(j.value("present", 0)) + "/" + std::to_string(j.value("total", 0));
  };
  for (const json& r : s.value("regions", json::array()))
    rows.push_back({Str(r, "region"), r.value("replicated", false) ? "yes" : "no",
                    frac(r["manifests"]), frac(r["blobs"]),
                    r.value("present", false) ? "yes" : "no"});
  std::printf("%s %s (%s, policy %s)\n", Str(s, "image").c_str(), Str(s, "digest").c_str(),
              Str(s, "registry").c_str(), Str(s, "policy").c_str());
  std::fputs(
      util::FormatTable({"REGION", "REPLICATED", "MANIFESTS", "BLOBS", "PRESENT"}, rows).c_str(),
      stdout);
  return kOk;
}

}  // namespace replication_cli
