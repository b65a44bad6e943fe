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

std::string OriginKey(const std::string& scheme, const std::string& host, uint16_t port) {
  return scheme + "://" + host + ":" + std::to_string(port);
}

}  // namespace

bool ParseUrl(const std::string& url, std::string* scheme, std::string* host, uint16_t* port, std::string* path) {
  size_t sep = url.find("://");
  if (sep == std::string::npos) return false;
  *scheme = url.substr(0, sep);
  for (char& c : *scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (*scheme != "http" && *scheme != "https") return false;
  size_t host_start = sep + 3;
  size_t path_start = url.find_first_of("/?#", host_start);
  std::string authority = url.substr(host_start, path_start == std::string::npos ? url.npos : path_start - host_start);
  *path = path_start == std::string::npos ? "/" : url.substr(path_start);
  if (size_t hash = path->find('#'); hash != std::string::npos) path->erase(hash);
  if (path->empty() || (*path)[0] == '?') *path = "/" + *path;
  if (authority.empty() || authority.find('@') != std::string::npos) return false;
  *port = *scheme == "https" ? 443 : 80;
  if (authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string::npos) return false;
    *host = authority.substr(1, close - 1);
    authority = authority.substr(close + 1);
    if (authority.empty()) return true;
    if (authority[0] != ':') return false;
    authority = authority.substr(1);
  } else {
    size_t colon = authority.find(':');
    *host = authority.substr(0, colon);
    if (colon == std::string::npos) return !host->empty();
    authority = authority.substr(colon + 1);
  }
  if (authority.empty() || authority.size() > 5 || authority.find_first_not_of("0123456789") != std::string::npos)
    return false;
  unsigned long p = std::stoul(authority);
  if (p == 0 || p > 65535) return false;
  *port = static_cast<uint16_t>(p);
  return !host->empty();
}

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

Session::Session(uv_loop_t* loop, SessionOptions options) : loop_(loop), options_(std::move(options)) {
  const Endpoint& ep = options_.endpoint;
  clients_[OriginKey(ep.scheme, ep.host, ep.port)] = std::make_unique<Client>(loop, ep);
}

Session::~Session() = default;

bool Session::OnRegistryHost(const Request::Target& t) const {
  const Endpoint& ep = options_.endpoint;
  return t.scheme == ep.scheme && t.host == ep.host && t.port == ep.port;
}

Client* Session::ClientFor(const std::string& scheme, const std::string& host, uint16_t port,
                           bool redirect_target) {
  // A redirect target and a token realm on the same origin get separate
  // clients: only redirect targets are subject to the address policy.
  std::string key = OriginKey(scheme, host, port) + (redirect_target ? " redirect" : "");
  auto it = clients_.find(key);
  if (it != clients_.end()) return it->second.get();
  Endpoint ep;
  ep.scheme = scheme;
  ep.host = host;
  ep.port = port;
  ep.connect_timeout_ms = options_.endpoint.connect_timeout_ms;
  ep.response_timeout_ms = options_.endpoint.response_timeout_ms;
  if (scheme == "https") ep.tls = options_.other_hosts_tls;
  ep.forbid_non_public = redirect_target && !options_.allow_private_redirects;
  auto client = std::make_unique<Client>(loop_, ep);
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

std::shared_ptr<Request> Session::Start(std::string method, std::string path, std::vector<http::Header> headers,
                                        const std::string& repository, Callbacks cb) {
  auto r = std::make_shared<Request>();
  r->session_ = this;
  r->method_ = std::move(method);
  r->headers_ = std::move(headers);
  r->scope_ = "repository:" + repository + ":pull";
  r->cb_ = std::move(cb);
  const Endpoint& ep = options_.endpoint;
  r->target_ = {ep.scheme, ep.host, ep.port, std::move(path)};
  Attempt(r);
  return r;
}

void Session::Attempt(const std::shared_ptr<Request>& r) {
  std::vector<http::Header> headers = r->headers_;
  r->sent_token_ = false;
  if (OnRegistryHost(r->target_)) {
    auto tok = tokens_.find(r->scope_);
    if (tok != tokens_.end() && tok->second.expires_ms > uv_now(loop_)) {
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
  Client* client = ClientFor(r->target_.scheme, r->target_.host, r->target_.port,
                             r->hops_ > 0 && !OnRegistryHost(r->target_));
  r->inner_ = client->Start(r->method_, r->target_.path, std::move(headers), std::move(cb));
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
      Complete(r, Status::Unavailable("upstream " + options_.name + " sent a Bearer challenge without a realm"));
      return;
    }
    if (r->sent_token_) tokens_.erase(r->scope_);  // expired or insufficient: fetch a new one, once
    GetToken(r->scope_, realm, bearer->Param("service"), [this, r](Status st) {
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
      Complete(r, Status::Unavailable("upstream " + options_.name + " requires credentials and none are configured"));
      return;
    }
    basic_ = true;
    Attempt(r);
    return;
  }
  Complete(r, Status::Unavailable("upstream " + options_.name + " answered 401 without a usable challenge"));
}

void Session::GetToken(const std::string& scope, const std::string& realm, const std::string& service,
                       std::function<void(Status)> done) {
  if (auto it = token_fetches_.find(scope); it != token_fetches_.end()) {
    it->second->waiters.push_back(std::move(done));
    return;
  }
  std::string scheme, host, path;
  uint16_t port;
  if (!ParseUrl(realm, &scheme, &host, &port, &path)) {
    done(Status::Unavailable("upstream " + options_.name + " named a bad token realm"));
    return;
  }
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
    if (raw->body.size() + n <= kMaxTokenResponse) raw->body.append(d, n);
  };
  cb.on_complete = [this, scope](Status st) {
    auto it = token_fetches_.find(scope);
    if (it == token_fetches_.end()) return;
    std::unique_ptr<TokenFetch> tf = std::move(it->second);
    token_fetches_.erase(it);
    Status result = st;
    if (st.ok() && tf->status != 200) {
      result = Status::Unavailable("token request for " + options_.name + " answered " + std::to_string(tf->status));
    } else if (st.ok()) {
      auto j = nlohmann::json::parse(tf->body, nullptr, false);
      std::string token;
      if (j.is_object()) {
        if (j.contains("token") && j["token"].is_string()) token = j["token"];
        if (token.empty() && j.contains("access_token") && j["access_token"].is_string()) token = j["access_token"];
      }
      if (token.empty()) {
        result = Status::Unavailable("token response for " + options_.name + " holds no token");
      } else {
        uint64_t lifetime = kDefaultTokenLifetimeS;
        if (j.contains("expires_in") && j["expires_in"].is_number_unsigned()) lifetime = j["expires_in"];
        // Renew a little early so a token does not expire in flight.
        uint64_t margin_ms = std::min<uint64_t>(lifetime * 100, 10000);
        tokens_[scope] = Token{token, uv_now(loop_) + lifetime * 1000 - margin_ms};
        LOG_DEBUG("upstream %s: new token for %s, valid %llu s", options_.name.c_str(), scope.c_str(),
                  (unsigned long long)lifetime);
      }
    }
    if (!result.ok()) LOG_WARN("upstream %s: %s", options_.name.c_str(), result.message().c_str());
    for (auto& w : tf->waiters) w(result);
  };
  LOG_INFO("upstream %s: token request for %s", options_.name.c_str(), scope.c_str());
  raw->fetch = ClientFor(scheme, host, port, /*redirect_target=*/false)->Start("GET", path, std::move(headers), std::move(cb));
}

void Session::FollowRedirect(const std::shared_ptr<Request>& r) {
  if (++r->hops_ > kMaxRedirects) {
    Complete(r, Status::Unavailable("upstream " + options_.name + ": more than 5 redirects"));
    return;
  }
  Request::Target next;
  const std::string& loc = r->location_;
  if (!loc.empty() && loc[0] == '/') {
    next = r->target_;
    next.path = loc;
  } else if (!ParseUrl(loc, &next.scheme, &next.host, &next.port, &next.path)) {
    Complete(r, Status::Unavailable("upstream " + options_.name + " redirected to an unusable location"));
    return;
  }
  LOG_INFO("upstream %s: redirected to %s://%s:%u", options_.name.c_str(), next.scheme.c_str(), next.host.c_str(),
           next.port);
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
