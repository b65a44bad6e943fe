#include "src/upstream/session.h"

#include <mbedtls/base64.h>

#include <nlohmann/json.hpp>

#include "src/upstream/www_authenticate.h"
#include "util/log.h"

namespace upstream {

using util::Status;

namespace {

constexpr int kMaxRedirects = 5;
constexpr uint64_t kDefaultTokenLifetimeS = 60;  // the distribution spec's default for expires_in
constexpr size_t kMaxTokenResponse = 64 * 1024;

bool IsRedirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

std::string UrlEncode(const std::string& s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace

// ---- Request ----

void Request::Pause() {
  paused_ = true;
  if (inner_) inner_->Pause();
}

void Request::Resume() {
  paused_ = false;
  if (inner_) inner_->Resume();
}

void Request::Cancel() {
  cancelled_ = true;
  if (inner_) {
    auto f = std::move(inner_);
    f->Cancel();
  }
}

// ---- Session ----

struct Session::TokenFetch {
  std::vector<std::function<void(Status)>> waiters;
  std::shared_ptr<Fetch> fetch;
  int status = 0;
  std::string body;
};

Session::Session(io::Env env, SessionOptions options) : env_(env), options_(std::move(options)) {
  const Endpoint& ep = options_.endpoint;
  util::Url origin{ep.scheme, ep.host, ep.port, "/", false};
  clients_[origin.Origin()] = std::make_unique<Client>(env_, ep);
}

Session::~Session() = default;

bool Session::OnRegistryHost(const util::Url& t) const {
  const Endpoint& ep = options_.endpoint;
  return t.scheme == ep.scheme && t.host == ep.host && t.port == ep.port;
}

Client* Session::ClientFor(const util::Url& origin) {
  // The registry's own origin is the one client without the address policy:
  // the operator named it. Every other origin came from the upstream.
  std::string key = origin.Origin();
  auto it = clients_.find(key);
  if (it != clients_.end()) return it->second.get();
  Endpoint ep;
  ep.scheme = origin.scheme;
  ep.host = origin.host;
  ep.port = origin.port;
  ep.connect_timeout_ms = options_.endpoint.connect_timeout_ms;
  ep.response_timeout_ms = options_.endpoint.response_timeout_ms;
  ep.deadline_ms = options_.endpoint.deadline_ms;
  if (origin.scheme == "https") ep.tls = options_.other_hosts_tls;
  ep.policy.forbid_non_public = !options_.allow_private_addresses;
  ep.policy.forbid_special = !options_.allow_private_addresses;
  auto client = std::make_unique<Client>(env_, ep);
  Client* raw = client.get();
  clients_[key] = std::move(client);
  return raw;
}

std::string Session::BasicAuthorization() const {
  std::string plain = options_.username + ":" + options_.password;
  size_t olen = 0;
  std::string out(4 * ((plain.size() + 2) / 3) + 1, '\0');
  mbedtls_base64_encode(reinterpret_cast<unsigned char*>(out.data()), out.size(), &olen,
                        reinterpret_cast<const unsigned char*>(plain.data()), plain.size());
  out.resize(olen);
  return "Basic " + out;
}

std::shared_ptr<Request> Session::Start(std::string method, std::string path,
                                        std::vector<http::Header> headers,
                                        const std::string& repository, Callbacks cb,
                                        FetchOptions options) {
  auto r = std::make_shared<Request>();
  r->session_ = this;
  r->method_ = std::move(method);
  r->headers_ = std::move(headers);
  r->scope_ = "repository:" + repository + ":pull";
  r->cb_ = std::move(cb);
  // One deadline for the whole conversation, redirects and token included.
  uint64_t deadline = options.deadline_ms ? options.deadline_ms : options_.endpoint.deadline_ms;
  r->options_ = options;
  r->options_.deadline_ms = deadline;
  r->deadline_at_ = env_.clock->NowMs() + deadline;
  r->started_us_ = env_.clock->NowUs();
  const Endpoint& ep = options_.endpoint;
  r->target_ = {ep.scheme, ep.host, ep.port, std::move(path), true};
  Attempt(r);  // Client::Start calls back on a later turn only
  return r;
}

void Session::Attempt(const std::shared_ptr<Request>& r) {
  std::vector<http::Header> headers = r->headers_;
  r->sent_token_ = false;
  if (OnRegistryHost(r->target_)) {
    auto tok = tokens_.find(r->scope_);
    if (tok != tokens_.end() && tok->second.expires_ms > env_.clock->NowMs()) {
      headers.push_back({"Authorization", "Bearer " + tok->second.value});
      r->sent_token_ = true;
    } else if (basic_ && !options_.username.empty()) {
      headers.push_back({"Authorization", BasicAuthorization()});
    }
  }
  r->intercept_ = Request::Intercept::kNone;
  std::weak_ptr<Request> weak = r;
  Callbacks cb;
  cb.on_head = [this, weak](const ResponseHead& h) {
    auto r = weak.lock();
    if (!r || r->cancelled_) return;
    if (const std::string* rl = h.Find("ratelimit-remaining")) ratelimit_remaining_ = *rl;
    ++stats_.responses[h.status];
    bool own_host = OnRegistryHost(r->target_);
    if (h.status == 401 && own_host && !r->auth_retried_) {
      r->intercept_ = Request::Intercept::kAuth;
      const std::string* wa = h.Find("www-authenticate");
      r->challenge_ = wa ? *wa : "";
      return;
    }
    if (IsRedirect(h.status) && (r->method_ == "GET" || r->method_ == "HEAD")) {
      if (const std::string* loc = h.Find("location")) {
        r->intercept_ = Request::Intercept::kRedirect;
        r->location_ = *loc;
        return;
      }
    }
    r->answered_ = true;
    stats_.up = h.status < 500;
    stats_.duration.Observe(double(env_.clock->NowUs() - r->started_us_) / 1e6);
    if (r->cb_.on_head) r->cb_.on_head(h);
  };
  cb.on_body = [weak](const char* d, size_t n) {
    auto r = weak.lock();
    if (!r || r->cancelled_ || r->intercept_ != Request::Intercept::kNone) return;
    if (r->cb_.on_body) r->cb_.on_body(d, n);
  };
  cb.on_complete = [this, weak](Status st) {
    auto r = weak.lock();
    if (!r || r->cancelled_) return;
    OnAttemptDone(r, std::move(st));
  };
  uint64_t now = env_.clock->NowMs();
  if (now >= r->deadline_at_) {
    // Only reached from a callback (a redirect or a token): a later turn already.
    OnAttemptDone(r,
                  Status::Timeout("upstream " + options_.name + ": request passed its deadline"));
    return;
  }
  FetchOptions opts = r->options_;
  opts.deadline_ms = r->deadline_at_ - now;
  r->inner_ = ClientFor(r->target_)
                  ->Start(r->method_, r->target_.path, std::move(headers), std::move(cb), {}, opts);
  if (r->paused_) r->inner_->Pause();
}

void Session::OnAttemptDone(const std::shared_ptr<Request>& r, Status st) {
  r->inner_.reset();
  switch (r->intercept_) {
    case Request::Intercept::kAuth:
      HandleChallenge(r);
      return;
    case Request::Intercept::kRedirect:
      FollowRedirect(r);
      return;
    case Request::Intercept::kNone:
      Complete(r, std::move(st));
      return;
  }
}

void Session::Complete(const std::shared_ptr<Request>& r, Status st) {
  if (!st.ok() && !r->answered_ && !r->cancelled_) {
    ++stats_.failures;
    stats_.up = false;
    stats_.duration.Observe(double(env_.clock->NowUs() - r->started_us_) / 1e6);
  }
  auto cb = std::move(r->cb_.on_complete);
  r->cb_ = Callbacks();
  if (cb) cb(std::move(st));
}

void Session::HandleChallenge(const std::shared_ptr<Request>& r) {
  r->auth_retried_ = true;
  auto challenges = ParseWwwAuthenticate(r->challenge_);
  if (const Challenge* bearer = FindChallenge(challenges, "bearer")) {
    std::string realm = bearer->Param("realm");
    if (realm.empty()) {
      Complete(r, Status::Unavailable("upstream " + options_.name +
                                      " sent a Bearer challenge without a realm"));
      return;
    }
    if (r->sent_token_) tokens_.erase(r->scope_);  // expired or insufficient: fetch a new one, once
    std::weak_ptr<Request> weak = r;
    GetToken(r->scope_, realm, bearer->Param("service"), [this, weak](Status st) {
      auto r = weak.lock();
      if (!r) return;
      if (r->cancelled_) return;
      if (!st.ok()) {
        Complete(r, std::move(st));
        return;
      }
      Attempt(r);
    });
    return;
  }
  if (FindChallenge(challenges, "basic")) {
    if (options_.username.empty()) {
      Complete(r, Status::Unavailable("upstream " + options_.name +
                                      " requires credentials and none are configured"));
      return;
    }
    basic_ = true;
    Attempt(r);
    return;
  }
  Complete(r, Status::Unavailable("upstream " + options_.name +
                                  " answered 401 without a usable challenge"));
}

void Session::GetToken(const std::string& scope, const std::string& realm,
                       const std::string& service, std::function<void(Status)> done) {
  if (auto it = token_fetches_.find(scope); it != token_fetches_.end()) {
    it->second->waiters.push_back(std::move(done));
    return;
  }
  auto url = util::ParseUrl(realm);
  if (!url.ok()) {
    // Never inside the call: `done` runs on a later turn, like every callback.
    env_.deferred->Post([done = std::move(done),
                         msg = "upstream " + options_.name + " named a bad token realm (" +
                               url.status().message() + ")"] { done(Status::Unavailable(msg)); });
    return;
  }
  std::string path = url->path;
  path += path.find('?') == std::string::npos ? "?" : "&";
  if (!service.empty()) path += "service=" + UrlEncode(service) + "&";
  path += "scope=" + UrlEncode(scope);
  std::vector<http::Header> headers;
  // Credentials go to the registry's own realm only (the realm the registry
  // itself announced), never anywhere else.
  if (!options_.username.empty()) headers.push_back({"Authorization", BasicAuthorization()});
  auto tf = std::make_unique<TokenFetch>();
  tf->waiters.push_back(std::move(done));
  TokenFetch* raw = tf.get();
  token_fetches_[scope] = std::move(tf);
  Callbacks cb;
  cb.on_head = [raw](const ResponseHead& h) { raw->status = h.status; };
  cb.on_body = [raw](const char* d, size_t n) {
    raw->body.append(d, n);
  };  // bounded by max_body below
  cb.on_complete = [this, scope](Status st) {
    auto it = token_fetches_.find(scope);
    if (it == token_fetches_.end()) return;
    std::unique_ptr<TokenFetch> tf = std::move(it->second);
    token_fetches_.erase(it);
    Status result = st;
    if (st.ok() && tf->status != 200) {
      result = Status::Unavailable("token request for " + options_.name + " answered " +
                                   std::to_string(tf->status));
    } else if (st.ok()) {
      auto j = nlohmann::json::parse(tf->body, nullptr, false);
      std::string token;
      if (j.is_object()) {
        if (j.contains("token") && j["token"].is_string()) token = j["token"];
        if (token.empty() && j.contains("access_token") && j["access_token"].is_string())
          token = j["access_token"];
      }
      if (token.empty()) {
        result = Status::Unavailable("token response for " + options_.name + " holds no token");
      } else {
        uint64_t lifetime = kDefaultTokenLifetimeS;
        if (j.contains("expires_in") && j["expires_in"].is_number_unsigned())
          lifetime = j["expires_in"];
        lifetime =
            std::min<uint64_t>(lifetime, 86400);  // a day at most: no overflow, no forever-token
        // Renew a little early so a token does not expire in flight.
        uint64_t margin_ms = std::min<uint64_t>(lifetime * 100, 10000);
        tokens_[scope] = Token{token, env_.clock->NowMs() + lifetime * 1000 - margin_ms};
        LOG_DEBUG("upstream %s: new token for %s, valid %llu s", options_.name.c_str(),
                  scope.c_str(), (unsigned long long)lifetime);
      }
    }
    if (!result.ok()) LOG_WARN("upstream %s: %s", options_.name.c_str(), result.message().c_str());
    for (auto& w : tf->waiters) w(result);
  };
  LOG_INFO("upstream %s: token request for %s", options_.name.c_str(), scope.c_str());
  util::Url origin = *url;
  FetchOptions opts;
  opts.max_body = kMaxTokenResponse;
  opts.deadline_ms =
      options_.endpoint.connect_timeout_ms + 2 * options_.endpoint.response_timeout_ms;
  // Start() never calls back inside itself, so `raw` is still ours here.
  raw->fetch = ClientFor(origin)->Start("GET", path, std::move(headers), std::move(cb), {}, opts);
}

void Session::FollowRedirect(const std::shared_ptr<Request>& r) {
  if (++r->hops_ > kMaxRedirects) {
    Complete(r, Status::Unavailable("upstream " + options_.name + ": more than 5 redirects"));
    return;
  }
  util::Url next;
  const std::string& loc = r->location_;
  if (!loc.empty() && loc[0] == '/' && (loc.size() < 2 || loc[1] != '/')) {
    next = r->target_;
    next.path = loc;
  } else if (auto u = util::ParseUrl(loc); u.ok()) {
    next = std::move(*u);
  } else {
    Complete(r, Status::Unavailable("upstream " + options_.name +
                                    " redirected to an unusable location"));
    return;
  }
  LOG_INFO("upstream %s: redirected to %s://%s:%u", options_.name.c_str(), next.scheme.c_str(),
           next.host.c_str(), next.port);
  r->target_ = std::move(next);
  // Authorization is added per attempt, and only on the registry's own host.
  Attempt(r);
}

void Session::Shutdown() {
  for (auto& [k, tf] : token_fetches_) {
    if (tf->fetch) tf->fetch->Cancel();
  }
  token_fetches_.clear();
  for (auto& [k, c] : clients_) c->Shutdown();
}

}  // namespace upstream
