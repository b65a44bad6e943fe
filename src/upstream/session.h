// Session: requests to one upstream registry, with its authentication and
// the redirects its blob downloads answer with.
//
// On top of Client (one per origin it talks to: the registry, its token
// realm, redirect targets), a Session:
//   - answers a 401 challenge once per request: Bearer (RFC 6750 as registries
//     use it: GET realm?service=..&scope=repository:<name>:pull, anonymously
//     or with the upstream's credentials; tokens cached per scope until they
//     expire; concurrent requests share one token fetch) or Basic (the
//     upstream's credentials). A 401 after the retry goes to the caller.
//   - follows 301/302/303/307/308 for GET and HEAD, at most 5 hops. The
//     Authorization header goes only to the registry's own host: never to a
//     redirect target on another host, never to a peer.
//   - applies the address policy to every origin but the registry itself
//     (which the operator named): a token realm or redirect target that
//     resolves to a loopback, private, link-local (metadata), multicast or
//     unspecified address is never connected to, so neither the upstream's
//     credentials nor its tokens can be steered at the host's own services,
//     unless the upstream allows private addresses.
//   - records Docker Hub's `ratelimit-remaining`.
// Credentials and tokens are never logged.
//
// Callbacks as Client's: Start() never calls back from inside itself;
// on_head at most once (the final response), on_body, on_complete exactly
// once, later, unless cancelled. Errors: Client's, and Unavailable for a
// refused challenge, a bad realm or redirect, or more than 5 redirects.
// Loop thread only; the Env must outlive the Session.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "src/upstream/client.h"
#include "util/metrics.h"
#include "util/url.h"

namespace upstream {

struct SessionOptions {
  std::string name;      // the registry name, for logs
  Endpoint endpoint;     // the registry itself
  std::string username;  // empty: anonymous
  std::string password;
  bool allow_private_addresses = false;  // realms and redirects may be non-public
  // TLS for hosts other than the registry (realm, redirect targets): the
  // system CAs and the upstream's ca_file.
  std::shared_ptr<TlsContext> other_hosts_tls;
};

class Session;

// What the metrics show of one upstream, read when scraped.
struct SessionStats {
  std::map<int, uint64_t>
      responses;          // every response head (redirects, 401s, blob storage), by status
  uint64_t failures = 0;  // requests that ended without a final response (connection, TLS,
                          // deadline, refused challenge, bad redirect)
  // From Start to the final response head (or the error).
  util::Histogram duration{util::Histogram::LatencyBounds()};
  bool up = true;  // the last request got a final answer below 500 (true before any)
};

// A request in flight: the handle callers pause, resume or cancel.
class Request final : public InFlight, public std::enable_shared_from_this<Request> {
 public:
  void Pause() override;
  void Resume() override;
  void Cancel() override;

 private:
  friend class Session;
  Session* session_ = nullptr;
  std::string method_;
  std::vector<http::Header> headers_;
  std::string scope_;
  Callbacks cb_;
  FetchOptions options_;
  uint64_t deadline_at_ = 0;  // clock time
  uint64_t started_us_ = 0;
  bool answered_ = false;  // the final head went to the caller
  util::Url target_;
  std::shared_ptr<Fetch> inner_;
  enum class Intercept { kNone, kAuth, kRedirect } intercept_ = Intercept::kNone;
  std::string challenge_, location_;
  bool auth_retried_ = false;
  bool sent_token_ = false;
  int hops_ = 0;
  bool paused_ = false;
  bool cancelled_ = false;
};

// What asks an upstream registry: a Session, or a test's stand-in
// (tests/unit/src/registry/). Start has Session::Start's contract.
class Requester {
 public:
  virtual ~Requester() = default;
  virtual std::shared_ptr<InFlight> Send(std::string method, std::string path,
                                         std::vector<http::Header> headers,
                                         const std::string& repository, Callbacks cb,
                                         FetchOptions options) = 0;
};

class Session final : public Requester {
 public:
  Session(io::Env env, SessionOptions options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // `path` is the request target on the registry ("/v2/..."); `repository`
  // scopes the token.
  std::shared_ptr<Request> Start(std::string method, std::string path,
                                 std::vector<http::Header> headers, const std::string& repository,
                                 Callbacks cb, FetchOptions options = {});
  std::shared_ptr<InFlight> Send(std::string method, std::string path,
                                 std::vector<http::Header> headers, const std::string& repository,
                                 Callbacks cb, FetchOptions options) override {
    return Start(std::move(method), std::move(path), std::move(headers), repository, std::move(cb),
                 options);
  }
  void Shutdown();
  const std::optional<std::string>& ratelimit_remaining() const { return ratelimit_remaining_; }
  const SessionStats& stats() const { return stats_; }
  const SessionOptions& options() const { return options_; }

 private:
  struct Token {
    std::string value;
    uint64_t expires_ms = 0;  // clock time
  };
  struct TokenFetch;

  void Attempt(const std::shared_ptr<Request>& r);
  void OnAttemptDone(const std::shared_ptr<Request>& r, util::Status st);
  void HandleChallenge(const std::shared_ptr<Request>& r);
  void FollowRedirect(const std::shared_ptr<Request>& r);
  void Complete(const std::shared_ptr<Request>& r, util::Status st);
  void GetToken(const std::string& scope, const std::string& realm, const std::string& service,
                std::function<void(util::Status)> done);
  bool OnRegistryHost(const util::Url& t) const;
  Client* ClientFor(const util::Url& origin);
  std::string BasicAuthorization() const;

  io::Env env_;
  SessionOptions options_;
  std::map<std::string, std::unique_ptr<Client>> clients_;  // by "scheme://host:port"
  std::map<std::string, Token> tokens_;                     // by scope
  std::map<std::string, std::unique_ptr<TokenFetch>> token_fetches_;
  bool basic_ = false;  // the registry asked for Basic
  std::optional<std::string> ratelimit_remaining_;
  SessionStats stats_;
};

}  // namespace upstream
