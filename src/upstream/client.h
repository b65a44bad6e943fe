// Client: HTTP/1.1 requests to one upstream registry, on the loop thread.
//
// Keeps idle connections for reuse (keep-alive), resolves names with
// uv_getaddrinfo (off the loop thread), and enforces a connect timeout (DNS +
// TCP) and a response timeout (to the response head, then the longest pause
// inside a body). A request sent on a reused connection that the upstream had
// already closed is retried once on a fresh one (GET and HEAD only).
// https endpoints run TLS (src/upstream/tls.h) over the same connection;
// a kept-alive connection keeps its TLS session.
//
// Ownership: the Client owns connections and in-flight requests; the caller
// holds a Fetch handle to pause, resume or cancel. Callbacks: on_head at most
// once, on_body any number of times after it, on_complete exactly once,
// unless the caller cancels (then nothing more fires). Errors given to
// on_complete: Unavailable (connect, refused, reset, short body), Timeout.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "src/http/headers.h"
#include "src/upstream/tls.h"
#include "util/status.h"

namespace upstream {

struct Endpoint {
  std::string scheme = "http";
  std::string host;
  uint16_t port = 80;
  uint64_t connect_timeout_ms = 5000;
  uint64_t response_timeout_ms = 10000;
  std::shared_ptr<TlsContext> tls;  // set for https; shared by the upstream's connections
  bool forbid_non_public = false;   // refuse hosts that resolve to loopback/private/link-local
  std::string HostHeader() const;
};

struct ResponseHead {
  int status = 0;
  std::vector<http::Header> headers;  // lowercase names, repeats merged
  std::optional<uint64_t> content_length;
  const std::string* Find(std::string_view name) const { return http::FindHeader(headers, name); }
};

struct Callbacks {
  std::function<void(const ResponseHead&)> on_head;
  std::function<void(const char* data, size_t len)> on_body;
  std::function<void(util::Status)> on_complete;
};

class UpstreamConn;
class Client;

class Fetch {
 public:
  // Stop/restart reading the body (back-pressure). Pause takes effect after
  // the read buffer being delivered now.
  void Pause();
  void Resume();
  // Drops the request; no callback fires afterwards. Safe from inside a callback.
  void Cancel();

 private:
  friend class UpstreamConn;
  friend class Client;
  Client* client_ = nullptr;
  std::string method_;
  std::string path_;
  std::vector<http::Header> headers_;
  std::string body_;
  Callbacks cb_;
  UpstreamConn* conn_ = nullptr;
  bool cancelled_ = false;
  bool paused_ = false;
  bool got_bytes_ = false;  // any response byte seen (retry only before that)
  bool retried_ = false;
};

class Client {
 public:
  Client(uv_loop_t* loop, Endpoint endpoint);
  ~Client();  // REQUIRES: Shutdown() ran and the loop turned until its handles closed
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Starts a request. `path` is the request target ("/v2/...").
  // A non-empty `body` is sent with its Content-Length (peer messages).
  std::shared_ptr<Fetch> Start(std::string method, std::string path, std::vector<http::Header> headers,
                               Callbacks cb, std::string body = {});
  // Closes idle connections and cancels nothing else; used at shutdown.
  void Shutdown();
  const Endpoint& endpoint() const { return endpoint_; }
  size_t idle_connections() const { return idle_.size(); }

 private:
  friend class UpstreamConn;
  void Dispatch(const std::shared_ptr<Fetch>& fetch);
  void Release(UpstreamConn* conn, bool reusable);
  void Forget(UpstreamConn* conn);

  uv_loop_t* loop_;
  Endpoint endpoint_;
  std::deque<UpstreamConn*> idle_;
  std::unordered_set<UpstreamConn*> all_;
  bool shutting_down_ = false;
};

}  // namespace upstream
