// Client: HTTP/1.1 requests to one origin (an upstream registry, a token
// realm, a redirect target or a peer), on the loop thread.
//
// Connecting: the host is resolved with uv_getaddrinfo (off the loop
// thread) and every address is tried, Happy Eyeballs style (RFC 8305): the
// families interleaved in the resolver's order, a new attempt every
// kAttemptStaggerMs or as soon as the previous one failed, the first to
// connect wins and the others are closed. An address the endpoint's policy
// refuses (loopback, private, link-local and cloud metadata, multicast,
// outside the allowed networks: src/upstream/address_policy.h) is never
// connected to.
//
// Deadlines: a connect timeout (DNS + TCP + TLS), a response timeout (to
// the head, then the longest pause inside a body), and an overall deadline
// for the whole conversation, so an origin that drips bytes cannot hold a
// request for longer than that. A body larger than FetchOptions::max_body is
// refused at the head when Content-Length announces it, and cut off when the
// bytes pass it.
//
// Reuse: idle connections are kept (keep-alive); a request sent on a reused
// connection that the origin had already closed is retried once on a fresh
// one (GET and HEAD only). https endpoints run TLS (src/upstream/tls.h).
//
// Ownership: the Client owns connections and in-flight requests; the caller
// holds a Fetch handle to pause, resume or cancel. The Env's loop, clock and
// deferred queue must outlive the Client.
//
// Callback contract (libuv's): Start() never calls back from inside itself;
// on_head at most once, on_body any number of times after it, on_complete
// exactly once, later, unless the caller cancels (then nothing more fires).
// Errors given to on_complete: Unavailable (unresolvable, refused by the
// address policy, connect, reset, short body, bad response), Timeout (a
// timeout or the deadline), InvalidArgument (a body over max_body), Aborted
// (Shutdown() with the request in flight).
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
#include "src/io/env.h"
#include "src/upstream/address_policy.h"
#include "src/upstream/response_parser.h"
#include "src/upstream/tls.h"
#include "util/status.h"

namespace upstream {

struct Endpoint {
  std::string scheme = "http";
  std::string host;
  uint16_t port = 80;
  uint64_t connect_timeout_ms = 5000;
  uint64_t response_timeout_ms = 10000;
  uint64_t deadline_ms = 15 * 60 * 1000;  // a whole conversation, unless FetchOptions says less
  std::shared_ptr<TlsContext> tls;        // set for https; shared by the origin's connections
  AddressPolicy policy;                   // checked on every resolved address (see above)
  std::string HostHeader() const;
};

struct FetchOptions {
  uint64_t deadline_ms = 0;        // 0: the endpoint's
  uint64_t max_body = UINT64_MAX;  // bytes
};

struct Callbacks {
  std::function<void(const ResponseHead&)> on_head;
  std::function<void(const char* data, size_t len)> on_body;
  std::function<void(util::Status)> on_complete;
};

class UpstreamConn;
class Client;

// A request in flight, as whoever started it sees it: a Fetch (one
// connection), a Session's Request (auth, redirects), or a test's stand-in.
class InFlight {
 public:
  virtual ~InFlight() = default;
  // Stop/restart reading the body (back-pressure). Pause takes effect after
  // the read buffer being delivered now.
  virtual void Pause() = 0;
  virtual void Resume() = 0;
  // Drops the request; no callback fires afterwards. Safe from inside a callback.
  virtual void Cancel() = 0;
};

class Fetch final : public InFlight {
 public:
  void Pause() override;
  void Resume() override;
  void Cancel() override;

 private:
  friend class UpstreamConn;
  friend class Client;
  Client* client_ = nullptr;
  std::string method_;
  std::string path_;
  std::vector<http::Header> headers_;
  std::string body_;
  FetchOptions options_;
  uint64_t deadline_at_ = 0;  // clock time
  Callbacks cb_;
  UpstreamConn* conn_ = nullptr;
  bool cancelled_ = false;
  bool paused_ = false;
  bool retried_ = false;
};

class Client {
 public:
  static constexpr uint64_t kAttemptStaggerMs =
      250;  // RFC 8305's recommended Connection Attempt Delay

  Client(io::Env env, Endpoint endpoint);
  ~Client();  // REQUIRES: Shutdown() ran and the loop turned until its handles closed
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Starts a request. `path` is the request target ("/v2/...").
  // A non-empty `body` is sent with its Content-Length (peer messages).
  std::shared_ptr<Fetch> Start(std::string method, std::string path,
                               std::vector<http::Header> headers, Callbacks cb,
                               std::string body = {}, FetchOptions options = {});
  // Closes every connection. Requests still in flight complete with Aborted
  // (from the deferred queue); Start() afterwards completes with Aborted too.
  void Shutdown();
  const Endpoint& endpoint() const { return endpoint_; }
  size_t idle_connections() const { return idle_.size(); }
  size_t open_connections() const { return all_.size(); }

 private:
  friend class UpstreamConn;
  void Dispatch(const std::shared_ptr<Fetch>& fetch);
  void Release(UpstreamConn* conn, bool reusable);
  void Forget(UpstreamConn* conn);
  // Delivers on_complete(st) to `f` from the deferred queue.
  void CompleteLater(const std::shared_ptr<Fetch>& f, util::Status st);

  io::Env env_;
  Endpoint endpoint_;
  std::deque<UpstreamConn*> idle_;
  std::unordered_set<UpstreamConn*> all_;
  bool shutting_down_ = false;
};

}  // namespace upstream
