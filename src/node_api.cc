#include "src/node_api.h"

#include <nettle/base64.h>
#include <uv.h>

#include <memory>
#include <vector>

#include "config/config.h"
#include "src/io/clock.h"
#include "src/io/deferred.h"
#include "src/upstream/client.h"

namespace node_api {

namespace {
constexpr uint64_t kTimeoutMs = 30'000;
constexpr size_t kMaxAnswer = 8u << 20;

std::string Base64(const std::string& in) {
  std::string out(BASE64_ENCODE_RAW_LENGTH(in.size()), '\0');
  base64_encode_raw(out.data(), in.size(), reinterpret_cast<const uint8_t*>(in.data()));
  return out;
}
}  // namespace

util::Result<util::Url> EndpointOf(const std::string& endpoint, const std::string& config_path) {
  std::string text = endpoint;
  if (text.empty()) {
    config::Config cfg = config::Defaults();
    if (!config_path.empty()) {
      auto parsed = config::ParseFile(config_path);
      if (!parsed.ok()) return util::Status::InvalidArgument(parsed.status().message());
      cfg = *parsed;
    }
    auto hp = util::ParseHostPort(cfg.server.listen);
    if (!hp.ok()) return util::Status::InvalidArgument(hp.status().message());
    std::string host = hp->host;
    if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
    if (host == "::") host = "::1";
    text = "http://" + util::HostPort{host, hp->port}.ToString();
  }
  auto url = util::ParseUrl(text);
  if (!url.ok()) return util::Status::InvalidArgument("--endpoint: " + url.status().message());
  return url;
}

util::Result<Answer> Call(const util::Url& node, const std::string& method, const std::string& path,
                          const std::string& body, const std::string& username,
                          const std::string& password) {
  // A request line carries the path as it is: a space or a control byte
  // would make it another request, or none (the node answers 400).
  for (char c : path)
    if (c <= ' ' || c > '~')
      return util::Status::InvalidArgument(
          "cannot ask the node for '" + path +
          "': it holds a space or a byte that is not visible ASCII");
  const util::Url* url = &node;
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
  if (!username.empty() || !password.empty())
    headers.push_back({"Authorization", "Basic " + Base64(username + ":" + password)});
  if (!body.empty()) headers.push_back({"Content-Type", "application/json"});
  upstream::Callbacks cb;
  cb.on_head = [&](const upstream::ResponseHead& h) { answer.status = h.status; };
  cb.on_body = [&](const char* d, size_t n) {
    if (answer.body.size() < kMaxAnswer) answer.body.append(d, n);
  };
  cb.on_complete = [&](util::Status st) {
    result = st;
    client->Shutdown();
    deferred->Close();
  };
  upstream::FetchOptions fo;
  fo.max_body = kMaxAnswer;
  // PUT and DELETE carry no body; the client sends Content-Length only with one.
  client->Start(method, path, headers, std::move(cb), body, fo);
  uv_run(&loop, UV_RUN_DEFAULT);
  client.reset();
  deferred.reset();
  uv_loop_close(&loop);
  if (!result.ok())
    return util::Status::Unavailable("cannot reach " + url->Origin() + ": " + result.message());
  return answer;
}

}  // namespace node_api
