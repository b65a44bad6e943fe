#include "src/upstream/client.h"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "src/io/handle.h"
#include "src/upstream/address_policy.h"
#include "util/log.h"

namespace upstream {

using util::Status;

namespace {
constexpr size_t kReadSize = 256 * 1024;
constexpr size_t kMaxResponseHead = 64 * 1024;
constexpr size_t kMaxIdle = 16;
constexpr size_t kMaxAddresses = 16;  // tried per connect; a resolver answer can be longer
constexpr uint64_t kIdleKeepMs = 30000;

// RFC 8305 section 4: interleave the families, starting with the family of
// the first address the resolver preferred.
std::vector<sockaddr_storage> OrderAddresses(const addrinfo* res) {
  std::vector<sockaddr_storage> first, second;
  int first_family = res ? res->ai_family : AF_UNSPEC;
  for (const addrinfo* a = res; a; a = a->ai_next) {
    if (a->ai_family != AF_INET && a->ai_family != AF_INET6) continue;
    sockaddr_storage ss{};
    std::memcpy(&ss, a->ai_addr, std::min<size_t>(a->ai_addrlen, sizeof(ss)));
    (a->ai_family == first_family ? first : second).push_back(ss);
  }
  std::vector<sockaddr_storage> out;
  for (size_t i = 0; i < std::max(first.size(), second.size()) && out.size() < kMaxAddresses; ++i) {
    if (i < first.size()) out.push_back(first[i]);
    if (i < second.size() && out.size() < kMaxAddresses) out.push_back(second[i]);
  }
  return out;
}

std::string AddressText(const sockaddr_storage& ss) {
  char buf[64] = "?";
  if (ss.ss_family == AF_INET6) {
    uv_ip6_name(reinterpret_cast<const sockaddr_in6*>(&ss), buf, sizeof(buf));
    return "[" + std::string(buf) + "]";
  }
  uv_ip4_name(reinterpret_cast<const sockaddr_in*>(&ss), buf, sizeof(buf));
  return buf;
}
}  // namespace

std::string Endpoint::HostHeader() const {
  bool default_port = (scheme == "http" && port == 80) || (scheme == "https" && port == 443);
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return default_port ? h : h + ":" + std::to_string(port);
}

// One TCP connection to the origin. Deletes itself once its timer handle has
// closed (the last thing Close() does); the socket, the resolver request and
// the connect attempts live in their own storage and never point back at a
// closed connection.
class UpstreamConn {
 public:
  explicit UpstreamConn(Client* client) : client_(client) {
    timer_.Init(client->env_.loop, this, uv_timer_init);
    stagger_.Init(client->env_.loop, this, uv_timer_init);
  }

  // Starts `fetch` on this connection: connects first if it is new.
  void Begin(std::shared_ptr<Fetch> fetch) {
    fetch_ = std::move(fetch);
    fetch_->conn_ = this;
    if (state_ == State::kIdle) {
      reused_ = true;
      uv_read_stop(tcp_.stream());
      SendRequest();
      return;
    }
    reused_ = false;
    state_ = State::kResolving;
    ArmTimer(client_->endpoint_.connect_timeout_ms);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    std::string port = std::to_string(client_->endpoint_.port);
    resolve_ = new Resolve{{}, this};
    resolve_->req.data = resolve_;
    int rc = uv_getaddrinfo(client_->env_.loop, &resolve_->req, OnResolved,
                            client_->endpoint_.host.c_str(), port.c_str(), &hints);
    if (rc != 0) {
      // Begin runs from the deferred queue (Client::Dispatch), never inside
      // Start(): failing here reaches the caller on a later turn already.
      delete resolve_;
      resolve_ = nullptr;
      Fail(Status::Unavailable("resolve " + Name() + ": " + uv_strerror(rc)));
    }
  }

  void Pause() {
    if (state_ != State::kBusy) return;
    uv_read_stop(tcp_.stream());
    uv_timer_stop(timer_.get());
    ArmDeadlineOnly();
  }
  void Resume() {
    if (state_ != State::kBusy) return;
    StartReading();
    ArmTimer(client_->endpoint_.response_timeout_ms);
  }

  // The fetch was cancelled: the response is abandoned mid-way, so the
  // connection cannot be reused.
  void Drop() {
    fetch_.reset();
    Close();
  }

  void Close() {
    if (state_ == State::kClosing) return;
    state_ = State::kClosing;
    if (fetch_) {
      // Closed under a request (Client::Shutdown): it still gets its one callback.
      auto f = std::move(fetch_);
      f->conn_ = nullptr;
      if (!f->cancelled_) client_->CompleteLater(f, Status::Aborted("client shut down"));
    }
    if (resolve_) {
      resolve_->owner = nullptr;  // its callback frees it
      uv_cancel(reinterpret_cast<uv_req_t*>(&resolve_->req));
      resolve_ = nullptr;
    }
    AbandonAttempts(nullptr);
    tcp_.Close();
    stagger_.Close();
    timer_.Close([this] { Destroy(); });
  }

  // Parks the connection in the idle pool, watching for the server closing it.
  void Park() {
    state_ = State::kIdle;
    ArmTimer(kIdleKeepMs);
    StartReading();
  }

 private:
  friend class Client;
  enum class State { kNew, kResolving, kConnecting, kHandshaking, kBusy, kIdle, kClosing };
  struct Resolve {
    uv_getaddrinfo_t req;
    UpstreamConn* owner;  // null once the connection gave up on it
  };
  struct Attempt {
    uv_connect_t req;
    io::Handle<uv_tcp_t> tcp;
    UpstreamConn* owner;  // null once abandoned
    sockaddr_storage addr;
  };

  void Destroy() {
    client_->Forget(this);
    delete this;
  }

  static void OnResolved(uv_getaddrinfo_t* req, int status, addrinfo* res) {
    auto* r = static_cast<Resolve*>(req->data);
    UpstreamConn* self = r->owner;
    delete r;
    if (!self) {
      if (res) uv_freeaddrinfo(res);
      return;
    }
    self->resolve_ = nullptr;
    if (status != 0 || !res) {
      if (res) uv_freeaddrinfo(res);
      self->Fail(Status::Unavailable("resolve " + self->client_->endpoint_.host + ": " +
                                     uv_strerror(status)));
      return;
    }
    std::vector<sockaddr_storage> all = OrderAddresses(res);
    uv_freeaddrinfo(res);
    std::string refused;
    for (const sockaddr_storage& ss : all) {
      const sockaddr* sa = reinterpret_cast<const sockaddr*>(&ss);
      if (const char* why = RefusalOf(self->client_->endpoint_.policy, sa)) {
        if (refused.empty()) refused = why;
        continue;
      }
      self->addresses_.push_back(ss);
    }
    if (self->addresses_.empty()) {
      self->Fail(Status::Unavailable(
          refused.empty()
              ? "resolve " + self->client_->endpoint_.host + ": no usable address"
              : "refused: " + self->client_->endpoint_.host +
                    (refused.rfind("outside", 0) == 0 ? " resolves to an address " + refused
                                                      : " resolves to a " + refused + " address")));
      return;
    }
    self->state_ = State::kConnecting;
    self->StartNextAttempt();
  }

  // Happy Eyeballs: starts the next address (skipping those that fail at
  // once) and arms the stagger timer for the one after it.
  void StartNextAttempt() {
    while (next_address_ < addresses_.size()) {
      auto* a = new Attempt{{}, {}, this, addresses_[next_address_++]};
      a->req.data = a;
      int rc = a->tcp.Init(client_->env_.loop, a, uv_tcp_init);
      if (rc == 0)
        rc = uv_tcp_connect(&a->req, a->tcp.get(), reinterpret_cast<const sockaddr*>(&a->addr),
                            OnAttemptDone);
      if (rc != 0) {
        last_connect_error_ = AddressText(a->addr) + ": " + uv_strerror(rc);
        a->tcp.Close();
        delete a;  // no connect callback was queued
        continue;
      }
      attempts_.push_back(a);
      if (next_address_ < addresses_.size())
        uv_timer_start(
            stagger_.get(),
            [](uv_timer_t* t) { static_cast<UpstreamConn*>(t->data)->StartNextAttempt(); },
            Client::kAttemptStaggerMs, 0);
      return;
    }
    if (attempts_.empty())
      Fail(Status::Unavailable("connect " + Name() + ": " +
                               (last_connect_error_.empty() ? "no address" : last_connect_error_)));
  }

  // Closes every attempt but `keep`; their callbacks come back with
  // UV_ECANCELED and free them.
  void AbandonAttempts(Attempt* keep) {
    for (Attempt* a : attempts_) {
      if (a == keep) continue;
      a->owner = nullptr;
      a->tcp.Close();
    }
    attempts_.clear();
    if (keep) attempts_.push_back(keep);
  }

  static void OnAttemptDone(uv_connect_t* req, int status) {
    auto* a = static_cast<Attempt*>(req->data);
    UpstreamConn* self = a->owner;
    if (!self) {
      a->tcp.Close();
      delete a;
      return;
    }
    std::erase(self->attempts_, a);
    if (status != 0) {
      self->last_connect_error_ = AddressText(a->addr) + ": " + uv_strerror(status);
      LOG_DEBUG("upstream: connect %s: %s", self->Name().c_str(),
                self->last_connect_error_.c_str());
      a->tcp.Close();
      delete a;
      // The next address now, without waiting out the stagger.
      if (self->attempts_.empty()) {
        uv_timer_stop(self->stagger_.get());
        self->StartNextAttempt();
      }
      return;
    }
    uv_timer_stop(self->stagger_.get());
    self->AbandonAttempts(nullptr);
    self->tcp_ = std::move(a->tcp);
    self->tcp_->data = self;
    delete a;
    self->OnConnected();
  }

  void OnConnected() {
    uv_tcp_nodelay(tcp_.get(), 1);
    const Endpoint& ep = client_->endpoint_;
    if (ep.tls) {
      tls_ = std::make_unique<TlsSession>(ep.tls, ep.host);
      state_ = State::kHandshaking;
      StartReading();
      ContinueHandshake();
      return;
    }
    SendRequest();
  }

  // Runs the TLS handshake as far as the bytes at hand allow; sends the
  // request when it is done. The connect timer keeps running meanwhile.
  void ContinueHandshake() {
    auto progress = tls_->Handshake();
    FlushTls();
    if (!progress.ok()) {
      LOG_WARN("upstream: %s", progress.status().message().c_str());
      Fail(progress.status());
      return;
    }
    if (*progress == TlsSession::Progress::kDone) SendRequest();
  }

  void FlushTls() {
    std::string out = tls_->TakeOutput();
    if (!out.empty()) WriteRaw(std::move(out));
  }

  // Queues bytes for the socket. Returns a libuv error code (0 when queued).
  int WriteRaw(std::string bytes) {
    struct W {
      uv_write_t req;
      std::string buf;
    };
    auto* w = new W{{}, std::move(bytes)};
    w->req.data = w;
    uv_buf_t buf = uv_buf_init(w->buf.data(), static_cast<unsigned>(w->buf.size()));
    int rc = uv_write(&w->req, tcp_.stream(), &buf, 1,
                      [](uv_write_t* r, int) { delete static_cast<W*>(r->data); });
    if (rc != 0) delete w;
    return rc;
  }

  void SendRequest() {
    state_ = State::kBusy;
    bool head = fetch_->method_ == "HEAD";
    parser_.Reset(head, {kMaxResponseHead, fetch_->options_.max_body});
    parser_.on_head = [this](const ResponseHead& h) {
      std::shared_ptr<Fetch> f = fetch_;
      if (f && !f->cancelled_ && f->cb_.on_head) f->cb_.on_head(h);
      return fetch_ == f && f;  // false: cancelled inside the callback
    };
    parser_.on_body = [this](const char* d, size_t n) {
      std::shared_ptr<Fetch> f = fetch_;
      if (f && !f->cancelled_ && f->cb_.on_body) f->cb_.on_body(d, n);
      return fetch_ == f && f;
    };
    const Endpoint& ep = client_->endpoint_;
    std::string req = fetch_->method_ + " " + fetch_->path_ +
                      " HTTP/1.1\r\nHost: " + ep.HostHeader() +
                      "\r\nUser-Agent: georeg/" GEOREG_VERSION "\r\n";
    for (const auto& h : fetch_->headers_) req += h.name + ": " + h.value + "\r\n";
    if (!fetch_->body_.empty())
      req += "Content-Length: " + std::to_string(fetch_->body_.size()) + "\r\n";
    req += "\r\n";
    req += fetch_->body_;
    ArmTimer(ep.response_timeout_ms);
    int rc;
    if (tls_) {
      Status st = tls_->Write(req);
      if (!st.ok()) {
        Fail(st);
        return;
      }
      rc = WriteRaw(tls_->TakeOutput());
    } else {
      rc = WriteRaw(std::move(req));
    }
    if (rc != 0) {
      FailOrRetry(Status::Unavailable("send to " + Name() + ": " + uv_strerror(rc)));
      return;
    }
    if (fetch_->paused_) {
      Pause();
    } else {
      StartReading();
    }
  }

  void StartReading() {
    uv_read_start(
        tcp_.stream(),
        [](uv_handle_t* h, size_t, uv_buf_t* buf) {
          auto* self = static_cast<UpstreamConn*>(h->data);
          if (!self->buf_) self->buf_.reset(new char[kReadSize]);
          *buf = uv_buf_init(self->buf_.get(), kReadSize);
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
          static_cast<UpstreamConn*>(s->data)->OnRead(n, buf);
        });
  }

  void OnRead(ssize_t n, const uv_buf_t* buf) {
    if (n == 0) return;
    if (state_ == State::kIdle) {  // the server closed (or spoke out of turn): drop it
      client_->Release(this, false);
      return;
    }
    if (state_ == State::kHandshaking) {
      if (n < 0) {
        Fail(Status::Unavailable("TLS handshake with " + Name() + ": connection closed"));
        return;
      }
      tls_->Feed(buf->base, n);
      ContinueHandshake();
      return;
    }
    if (state_ != State::kBusy) return;
    if (n < 0) {
      if (n == UV_EOF) {
        OnParsed(parser_.Finish(), 0, 0);
        return;
      }
      FailOrRetry(Status::Unavailable("read from " + Name() + ": " + uv_strerror(n) +
                                      (parser_.started() ? " mid-response" : "")));
      return;
    }
    const char* data = buf->base;
    size_t len = n;
    std::string plain;
    if (tls_) {
      tls_->Feed(buf->base, n);
      auto more = tls_->Read(&plain);
      FlushTls();
      if (!more.ok()) {
        Fail(more.status());
        return;
      }
      if (plain.empty()) {
        if (!*more) OnParsed(parser_.Finish(), 0, 0);  // close_notify: like EOF
        return;
      }
      data = plain.data();
      len = plain.size();
    }
    ArmTimer(client_->endpoint_.response_timeout_ms);
    size_t consumed = 0;
    ResponseParser::Result r = parser_.Feed(data, len, &consumed);
    OnParsed(r, consumed, len);
  }

  void OnParsed(ResponseParser::Result r, size_t consumed, size_t len) {
    switch (r) {
      case ResponseParser::Result::kNeedMore:
        return;
      case ResponseParser::Result::kStopped:  // cancelled inside a callback: Drop() closed us
        return;
      case ResponseParser::Result::kComplete:
        // Bytes after the response: the origin spoke out of turn; do not reuse.
        Complete(Status::Ok(), parser_.keep_alive() && consumed == len);
        return;
      case ResponseParser::Result::kError:
        if (!parser_.started()) {
          FailOrRetry(Status::Unavailable("connection closed by " + Name()));
        } else if (parser_.error().find("larger than allowed") != std::string::npos) {
          Fail(Status::InvalidArgument(Name() + ": " + parser_.error()));
        } else {
          Fail(Status::Unavailable("bad response from " + Name() + ": " + parser_.error()));
        }
        return;
    }
  }

  void FailOrRetry(Status st) {
    if (reused_ && fetch_ && !parser_.started() && !fetch_->retried_ &&
        (fetch_->method_ == "GET" || fetch_->method_ == "HEAD")) {
      // The idle connection had been closed by the origin: try a fresh one.
      auto f = std::move(fetch_);
      f->retried_ = true;
      f->conn_ = nullptr;
      Close();
      f->client_->Dispatch(f);
      return;
    }
    Fail(std::move(st));
  }

  void Fail(Status st) { Complete(std::move(st), false); }

  void Complete(Status st, bool reusable) {
    uv_timer_stop(timer_.get());
    std::shared_ptr<Fetch> f = std::move(fetch_);
    if (reusable && st.ok()) {
      uv_read_stop(tcp_.stream());
      client_->Release(this, true);
    } else {
      Close();
    }
    if (!f || f->cancelled_) return;
    f->conn_ = nullptr;
    auto cb = std::move(f->cb_.on_complete);
    f->cb_ = Callbacks();
    if (cb) cb(std::move(st));
  }

  // Arms the phase timeout, or less when the fetch's deadline comes first.
  void ArmTimer(uint64_t ms) {
    if (fetch_ && state_ != State::kIdle) {
      uint64_t now = client_->env_.clock->NowMs();
      uint64_t left = fetch_->deadline_at_ > now ? fetch_->deadline_at_ - now : 0;
      ms = std::min(ms, left);
    }
    uv_timer_start(
        timer_.get(), [](uv_timer_t* t) { static_cast<UpstreamConn*>(t->data)->OnTimer(); }, ms, 0);
  }
  // A paused body has no idle timeout, but the deadline still holds.
  void ArmDeadlineOnly() {
    if (fetch_) ArmTimer(UINT64_MAX);
  }

  void OnTimer() {
    if (state_ == State::kIdle) {
      client_->Release(this, false);
      return;
    }
    if (fetch_ && client_->env_.clock->NowMs() >= fetch_->deadline_at_) {
      Fail(Status::Timeout("request to " + Name() + " passed its deadline"));
      return;
    }
    const char* phase = state_ == State::kBusy
                            ? (parser_.head_done() ? "body from" : "response from")
                        : state_ == State::kHandshaking ? "TLS handshake with"
                                                        : "connect to";
    Fail(Status::Timeout(std::string(phase) + " " + Name() + " timed out"));
  }

  std::string Name() const {
    return client_->endpoint_.host + ":" + std::to_string(client_->endpoint_.port);
  }

  Client* client_;
  io::Handle<uv_tcp_t> tcp_;      // open once an attempt connected
  io::Handle<uv_timer_t> timer_;  // phase timeouts and the deadline
  io::Handle<uv_timer_t> stagger_;
  Resolve* resolve_ = nullptr;
  std::vector<sockaddr_storage> addresses_;
  size_t next_address_ = 0;
  std::vector<Attempt*> attempts_;
  std::string last_connect_error_;
  State state_ = State::kNew;
  bool reused_ = false;
  std::shared_ptr<Fetch> fetch_;
  ResponseParser parser_;
  std::unique_ptr<char[]> buf_;
  std::unique_ptr<TlsSession> tls_;  // null for plain HTTP
};

void Fetch::Pause() {
  paused_ = true;
  if (conn_) conn_->Pause();
}

void Fetch::Resume() {
  paused_ = false;
  if (conn_) conn_->Resume();
}

void Fetch::Cancel() {
  if (cancelled_) return;
  // cb_ is not cleared here: Cancel() may run inside one of those callbacks.
  // It is released with the Fetch.
  cancelled_ = true;
  if (conn_) {
    UpstreamConn* c = conn_;
    conn_ = nullptr;
    c->Drop();
  }
}

Client::Client(io::Env env, Endpoint endpoint) : env_(env), endpoint_(std::move(endpoint)) {}

Client::~Client() = default;

std::shared_ptr<Fetch> Client::Start(std::string method, std::string path,
                                     std::vector<http::Header> headers, Callbacks cb,
                                     std::string body, FetchOptions options) {
  auto f = std::make_shared<Fetch>();
  f->body_ = std::move(body);
  f->client_ = this;
  f->method_ = std::move(method);
  f->path_ = std::move(path);
  f->headers_ = std::move(headers);
  f->options_ = options;
  uint64_t deadline = options.deadline_ms ? options.deadline_ms : endpoint_.deadline_ms;
  f->deadline_at_ = env_.clock->NowMs() + deadline;
  f->cb_ = std::move(cb);
  if (shutting_down_) {
    CompleteLater(f, Status::Aborted("client shut down"));
    return f;
  }
  // Everything, even a connection from the idle pool, starts on a later
  // turn: no failure can reach the caller from inside Start(). The queue
  // holds the request until then (callers may drop their handle).
  env_.deferred->Post([this, f] {
    if (f->cancelled_) return;
    if (shutting_down_) {
      CompleteLater(f, Status::Aborted("client shut down"));
      return;
    }
    Dispatch(f);
  });
  return f;
}

void Client::CompleteLater(const std::shared_ptr<Fetch>& f, Status st) {
  env_.deferred->Post([f, st] {
    if (f->cancelled_ || !f->cb_.on_complete) return;
    auto cb = std::move(f->cb_.on_complete);
    f->cb_ = Callbacks();
    cb(st);
  });
}

void Client::Dispatch(const std::shared_ptr<Fetch>& f) {
  if (endpoint_.scheme == "https" && !endpoint_.tls) {
    CompleteLater(f, Status::Unavailable("https origin " + endpoint_.host + " has no TLS context"));
    return;
  }
  UpstreamConn* conn;
  if (!idle_.empty()) {
    conn = idle_.back();  // most recently used: least likely to have been closed
    idle_.pop_back();
  } else {
    conn = new UpstreamConn(this);
    all_.insert(conn);
  }
  conn->Begin(f);
}

void Client::Release(UpstreamConn* conn, bool reusable) {
  auto it = std::find(idle_.begin(), idle_.end(), conn);
  if (it != idle_.end()) idle_.erase(it);
  if (reusable && !shutting_down_ && idle_.size() < kMaxIdle) {
    conn->Park();
    idle_.push_back(conn);
  } else {
    conn->Close();
  }
}

void Client::Forget(UpstreamConn* conn) {
  all_.erase(conn);
  auto it = std::find(idle_.begin(), idle_.end(), conn);
  if (it != idle_.end()) idle_.erase(it);
}

void Client::Shutdown() {
  shutting_down_ = true;
  std::vector<UpstreamConn*> conns(all_.begin(), all_.end());
  for (UpstreamConn* c : conns) c->Close();
  idle_.clear();
}

}  // namespace upstream
