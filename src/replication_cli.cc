#include "src/replication_cli.h"

#include <uv.h>

#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "src/io/clock.h"
#include "src/io/deferred.h"
#include "src/upstream/client.h"
#include "util/table.h"
#include "util/url.h"

namespace replication_cli {

using nlohmann::json;

namespace {

constexpr int kOk = 0, kRefused = 1, kUsage = 2, kUnreachable = 3;
constexpr uint64_t kTimeoutMs = 30'000;

int Fail(int code, const std::string& message) {
  std::fprintf(stderr, "georeg: %s\n", message.c_str());
  return code;
}

struct Answer {
  int status = 0;
  std::string body;
};

std::string Base64(const std::string& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = uint8_t(in[i]) << 16 | uint8_t(in[i + 1]) << 8 | uint8_t(in[i + 2]);
    out += {t[v >> 18], t[v >> 12 & 63], t[v >> 6 & 63], t[v & 63]};
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += {t[v >> 18], t[v >> 12 & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16 | uint8_t(in[i + 1]) << 8;
    out += {t[v >> 18], t[v >> 12 & 63], t[v >> 6 & 63], '='};
  }
  return out;
}

// Where the node is: --endpoint, else the local daemon's listen address
// (from --config, else the built-in default), a wildcard read as loopback.
util::Result<util::Url> EndpointOf(const Options& o) {
  std::string text = o.endpoint;
  if (text.empty()) {
    config::Config cfg = config::Defaults();
    if (!o.config.empty()) {
      auto parsed = config::ParseFile(o.config);
      if (!parsed.ok()) return parsed.status();
      cfg = *parsed;
    }
    auto hp = util::ParseHostPort(cfg.server.listen);
    if (!hp.ok()) return hp.status();
    std::string host = hp->host;
    if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
    if (host == "::") host = "::1";
    util::HostPort local{host, hp->port};
    text = "http://" + local.ToString();
  }
  auto url = util::ParseUrl(text);
  if (!url.ok()) return util::Status::InvalidArgument("--endpoint: " + url.status().message());
  return url;
}

// One request on a loop of its own. Errors: Unavailable/Timeout (unreachable).
util::Result<Answer> Call(const Options& o, const std::string& method, const std::string& path,
                          const std::string& body = "") {
  auto url = EndpointOf(o);
  if (!url.ok()) return url.status();
  upstream::Endpoint ep;
  ep.scheme = url->scheme;
  ep.host = url->host;
  ep.port = url->port;
  ep.deadline_ms = kTimeoutMs;
  if (ep.scheme == "https") {
    auto tls = upstream::TlsContext::Create({}, false);
    if (!tls.ok()) return tls.status();
    ep.tls = *tls;
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  io::LoopClock clock(&loop);
  auto deferred = std::make_unique<io::Deferred>(&loop);
  io::Env env{&loop, &clock, deferred.get()};
  auto client = std::make_unique<upstream::Client>(env, ep);
  Answer answer;
  util::Status result = util::Status::Ok();
  std::vector<http::Header> headers = {{"Accept", "application/json"}};
  if (!o.username.empty() || !o.password.empty())
    headers.push_back({"Authorization", "Basic " + Base64(o.username + ":" + o.password)});
  if (!body.empty()) headers.push_back({"Content-Type", "application/json"});
  upstream::Callbacks cb;
  cb.on_head = [&](const upstream::ResponseHead& h) { answer.status = h.status; };
  cb.on_body = [&](const char* d, size_t n) {
    if (answer.body.size() < (8u << 20)) answer.body.append(d, n);
  };
  cb.on_complete = [&](util::Status st) {
    result = st;
    client->Shutdown();
    deferred->Close();
  };
  upstream::FetchOptions fo;
  fo.max_body = 8u << 20;
  // PUT and DELETE carry no body; the client sends Content-Length only with one.
  client->Start(method, path, headers, std::move(cb), body, fo);
  uv_run(&loop, UV_RUN_DEFAULT);
  client.reset();
  deferred.reset();
  uv_loop_close(&loop);
  if (!result.ok()) return util::Status::Unavailable("cannot reach " + url->Origin() + ": " + result.message());
  return answer;
}

// The node's answer as JSON, or the exit code and line for a refusal.
int Request(const Options& o, const std::string& method, const std::string& path, json* out,
            const std::string& body = "") {
  if (o.registry.empty()) return Fail(kUsage, "--registry is required");
  auto a = Call(o, method, path, body);
  if (!a.ok()) return Fail(a.status().code() == util::Code::kInvalidArgument ? kUsage : kUnreachable,
                           a.status().message());
  json j = json::parse(a->body, nullptr, /*allow_exceptions=*/false);
  if (a->status >= 300) {
    std::string why;
    if (j.is_object() && j.contains("error") && j["error"].is_string()) {
      why = j["error"].get<std::string>();
    } else if (j.is_object() && j.contains("errors") && j["errors"].is_array() && !j["errors"].empty() &&
               j["errors"][0].is_object() && j["errors"][0].contains("message")) {
      why = j["errors"][0]["message"].is_string() ? j["errors"][0]["message"].get<std::string>() : "refused";
    } else {
      why = "the node answered " + std::to_string(a->status);
    }
    if (a->status == 401) why += " (give the push credentials with -u USER -p PASSWORD or GEOREG_USERNAME/GEOREG_PASSWORD)";
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
    std::fputs(util::FormatTable({"NAME", "LOCATION", "PROVISIONING STATE", "STATUS"}, rows).c_str(), stdout);
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
  if (o.location.find('/') != std::string::npos || o.location.find('?') != std::string::npos)
    return Fail(kUsage, "invalid region name '" + o.location + "'");
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
    if (c == '?' || c == '&' || c == '#' || c == ' ' || c == '%') return Fail(kUsage, "invalid image '" + o.image + "'");
  json s;
  if (int rc = Request(o, "GET", "/_georeg/v1/registries/" + o.registry + "/image-status?image=" + o.image, &s))
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
    rows.push_back({Str(r, "region"), r.value("replicated", false) ? "yes" : "no", frac(r["manifests"]),
                    frac(r["blobs"]), r.value("present", false) ? "yes" : "no"});
  std::printf("%s %s (%s, policy %s)\n", Str(s, "image").c_str(), Str(s, "digest").c_str(), Str(s, "registry").c_str(),
              Str(s, "policy").c_str());
  std::fputs(util::FormatTable({"REGION", "REPLICATED", "MANIFESTS", "BLOBS", "PRESENT"}, rows).c_str(), stdout);
  return kOk;
}

}  // namespace replication_cli
