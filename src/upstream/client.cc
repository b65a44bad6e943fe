#include "src/upstream/client.h"

#include <llhttp.h>

#include <algorithm>
#include <cstring>

#include "src/upstream/address_policy.h"
#include "util/log.h"

namespace upstream {

using util::Status;

namespace {
constexpr size_t kReadSize = 256 * 1024;
constexpr size_t kMaxResponseHead = 64 * 1024;
constexpr size_t kMaxIdle = 16;
constexpr uint64_t kIdleKeepMs = 30000;
}  // namespace

std::string Endpoint::HostHeader() const {
  bool default_port = (scheme == "http" && port == 80) || (scheme == "https" && port == 443);
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return default_port ? h : h + ":" + std::to_string(port);
}

// One TCP connection to the upstream. Deleted from its close callbacks only.
class UpstreamConn {
 public:
  explicit UpstreamConn(Client* client) : client_(client) {
    uv_tcp_init(client->loop_, &tcp_);
    uv_timer_init(client->loop_, &timer_);
    tcp_.data = timer_.data = gai_.data = connect_.data = this;
    llhttp_settings_init(&settings_);
    settings_.on_header_field = OnHeaderField;
    settings_.on_header_value = OnHeaderValue;
    settings_.on_header_value_complete = OnHeaderValueComplete;
    settings_.on_headers_complete = OnHeadersComplete;
    settings_.on_body = OnBody;
    settings_.on_message_complete = OnMessageComplete;
    llhttp_init(&parser_, HTTP_RESPONSE, &settings_);
    parser_.data = this;
  }

  // Starts `fetch` on this connection: connects first if it is new.
  void Begin(std::shared_ptr<Fetch> fetch) {
    fetch_ = std::move(fetch);
    fetch_->conn_ = this;
    if (state_ == State::kIdle) {
      reused_ = true;
      uv_read_stop(Stream());
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
    gai_pending_ = true;
    int rc = uv_getaddrinfo(client_->loop_, &gai_, OnResolved, client_->endpoint_.host.c_str(), port.c_str(), &hints);
    if (rc != 0) {
      gai_pending_ = false;
      Fail(Status::Unavailable("resolve " + client_->endpoint_.host + ": " + uv_strerror(rc)));
    }
  }

  void Pause() {
    if (state_ != State::kBusy) return;
    uv_read_stop(Stream());
    uv_timer_stop(&timer_);
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
    if (gai_pending_) uv_cancel(reinterpret_cast<uv_req_t*>(&gai_));
    uv_timer_stop(&timer_);
    handles_open_ = 2;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), OnClosed);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), OnClosed);
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

  uv_stream_t* Stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }

  static void OnClosed(uv_handle_t* h) {
    auto* self = static_cast<UpstreamConn*>(h->data);
    if (--self->handles_open_ == 0 && !self->gai_pending_) self->Destroy();
  }
  void Destroy() {
    client_->Forget(this);
    delete this;
  }

  static void OnResolved(uv_getaddrinfo_t* req, int status, addrinfo* res) {
    auto* self = static_cast<UpstreamConn*>(req->data);
    self->gai_pending_ = false;
    if (self->state_ == State::kClosing) {
      if (res) uv_freeaddrinfo(res);
      if (self->handles_open_ == 0) self->Destroy();
      return;
    }
    if (status != 0 || !res) {
      if (res) uv_freeaddrinfo(res);
      self->Fail(Status::Unavailable("resolve " + self->client_->endpoint_.host + ": " + uv_strerror(status)));
      return;
    }
    if (self->client_->endpoint_.forbid_non_public && IsNonPublicAddress(res->ai_addr)) {
      std::string kind = DescribeAddress(res->ai_addr);
      uv_freeaddrinfo(res);
      self->Fail(Status::Unavailable("refused: " + self->client_->endpoint_.host + " resolves to a " + kind +
                                     " address"));
      return;
    }
    self->state_ = State::kConnecting;
    int rc = uv_tcp_connect(&self->connect_, &self->tcp_, res->ai_addr, OnConnected);
    uv_freeaddrinfo(res);
    if (rc != 0) self->Fail(Status::Unavailable("connect " + self->Name() + ": " + uv_strerror(rc)));
  }

  static void OnConnected(uv_connect_t* req, int status) {
    auto* self = static_cast<UpstreamConn*>(req->data);
    if (self->state_ == State::kClosing) return;
    if (status != 0) {
      self->Fail(Status::Unavailable("connect " + self->Name() + ": " + uv_strerror(status)));
      return;
    }
    uv_tcp_nodelay(&self->tcp_, 1);
    const Endpoint& ep = self->client_->endpoint_;
    if (ep.tls) {
      self->tls_ = std::make_unique<TlsSession>(ep.tls, ep.host);
      self->state_ = State::kHandshaking;
      self->StartReading();
      self->ContinueHandshake();
      return;
    }
    self->SendRequest();
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
    int rc = uv_write(&w->req, Stream(), &buf, 1, [](uv_write_t* r, int) { delete static_cast<W*>(r->data); });
    if (rc != 0) delete w;
    return rc;
  }

  void SendRequest() {
    state_ = State::kBusy;
    head_ = ResponseHead();
    head_bytes_ = 0;
    message_done_ = false;
    llhttp_init(&parser_, HTTP_RESPONSE, &settings_);
    parser_.data = this;
    const Endpoint& ep = client_->endpoint_;
    std::string req = fetch_->method_ + " " + fetch_->path_ + " HTTP/1.1\r\nHost: " + ep.HostHeader() +
                      "\r\nUser-Agent: georeg/" GEOREG_VERSION "\r\n";
    for (const auto& h : fetch_->headers_) req += h.name + ": " + h.value + "\r\n";
    if (!fetch_->body_.empty()) req += "Content-Length: " + std::to_string(fetch_->body_.size()) + "\r\n";
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
    StartReading();
  }

  void StartReading() {
    uv_read_start(
        Stream(),
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
      if (n == UV_EOF && llhttp_finish(&parser_) == HPE_OK && message_done_) {
        Complete(Status::Ok(), false);
        return;
      }
      FailOrRetry(Status::Unavailable(std::string(n == UV_EOF ? "connection closed by " : "read from ") +
                                      Name() + (n == UV_EOF ? "" : std::string(": ") + uv_strerror(n)) +
                                      (fetch_ && fetch_->got_bytes_ ? " mid-response" : "")));
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
        if (!*more) OnRead(UV_EOF, nullptr);  // close_notify: like EOF
        return;
      }
      data = plain.data();
      len = plain.size();
    }
    fetch_->got_bytes_ = true;
    ArmTimer(client_->endpoint_.response_timeout_ms);
    std::shared_ptr<Fetch> hold = fetch_;  // callbacks may cancel
    llhttp_errno_t err = llhttp_execute(&parser_, data, len);
    if (state_ != State::kBusy || fetch_ != hold) return;  // cancelled inside a callback
    if (err == HPE_PAUSED && message_done_) {
      Complete(Status::Ok(), llhttp_should_keep_alive(&parser_));
      return;
    }
    if (err != HPE_OK) {
      Fail(Status::Unavailable("bad response from " + Name() + ": " + llhttp_errno_name(err) +
                               (error_.empty() ? "" : " (" + error_ + ")")));
    }
  }

  void FailOrRetry(Status st) {
    if (reused_ && fetch_ && !fetch_->got_bytes_ && !fetch_->retried_ &&
        (fetch_->method_ == "GET" || fetch_->method_ == "HEAD")) {
      // The idle connection had been closed by the upstream: try a fresh one.
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
    uv_timer_stop(&timer_);
    std::shared_ptr<Fetch> f = std::move(fetch_);
    if (reusable && st.ok()) {
      uv_read_stop(Stream());
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

  void ArmTimer(uint64_t ms) {
    uv_timer_start(&timer_, [](uv_timer_t* t) { static_cast<UpstreamConn*>(t->data)->OnTimer(); }, ms, 0);
  }

  // Fails the fetch from the next loop turn, so on_complete never runs inside Start().
  void FailSoon(Status st) {
    state_ = State::kResolving;
    pending_error_ = std::move(st);
    ArmTimer(0);
  }

  void OnTimer() {
    if (!pending_error_.ok()) {
      Fail(std::move(pending_error_));
      return;
    }
    if (state_ == State::kIdle) {
      client_->Release(this, false);
      return;
    }
    const char* phase = state_ == State::kBusy          ? (head_.status ? "body from" : "response from")
                        : state_ == State::kHandshaking ? "TLS handshake with"
                                                        : "connect to";
    Fail(Status::Timeout(std::string(phase) + " " + Name() + " timed out"));
  }

  std::string Name() const { return client_->endpoint_.host + ":" + std::to_string(client_->endpoint_.port); }

  static UpstreamConn* Self(llhttp_t* p) { return static_cast<UpstreamConn*>(p->data); }
  int CountHead(size_t len) {
    head_bytes_ += len;
    if (head_bytes_ > kMaxResponseHead) {
      error_ = "response head too large";
      return -1;
    }
    return 0;
  }
  static int OnHeaderField(llhttp_t* p, const char* at, size_t len) {
    UpstreamConn* self = Self(p);
    if (self->in_value_) {
      self->in_value_ = false;
      self->field_.clear();
    }
    self->field_.append(at, len);
    return self->CountHead(len);
  }
  static int OnHeaderValue(llhttp_t* p, const char* at, size_t len) {
    UpstreamConn* self = Self(p);
    if (!self->in_value_) {
      self->in_value_ = true;
      self->value_.clear();
    }
    self->value_.append(at, len);
    return self->CountHead(len);
  }
  static int OnHeaderValueComplete(llhttp_t* p) {
    UpstreamConn* self = Self(p);
    http::AddHeader(&self->head_.headers, std::move(self->field_), std::move(self->value_));
    self->in_value_ = false;
    self->field_.clear();
    self->value_.clear();
    return 0;
  }
  static int OnHeadersComplete(llhttp_t* p) {
    UpstreamConn* self = Self(p);
    self->head_.status = p->status_code;
    if (p->flags & F_CONTENT_LENGTH) self->head_.content_length = p->content_length;
    std::shared_ptr<Fetch> f = self->fetch_;
    if (f && !f->cancelled_ && f->cb_.on_head) f->cb_.on_head(self->head_);
    if (self->fetch_ != f || !f) return HPE_PAUSED;  // cancelled: stop parsing
    return f->method_ == "HEAD" ? 1 : 0;
  }
  static int OnBody(llhttp_t* p, const char* at, size_t len) {
    UpstreamConn* self = Self(p);
    std::shared_ptr<Fetch> f = self->fetch_;
    if (f && !f->cancelled_ && f->cb_.on_body) f->cb_.on_body(at, len);
    return 0;
  }
  static int OnMessageComplete(llhttp_t* p) {
    Self(p)->message_done_ = true;
    return HPE_PAUSED;
  }

  Client* client_;
  uv_tcp_t tcp_;
  uv_timer_t timer_;
  uv_getaddrinfo_t gai_;
  uv_connect_t connect_;
  int handles_open_ = 0;
  bool gai_pending_ = false;
  State state_ = State::kNew;
  bool reused_ = false;
  std::shared_ptr<Fetch> fetch_;
  llhttp_settings_t settings_;
  llhttp_t parser_;
  ResponseHead head_;
  size_t head_bytes_ = 0;
  std::string field_, value_, error_;
  bool in_value_ = false;
  bool message_done_ = false;
  std::unique_ptr<char[]> buf_;
  std::unique_ptr<TlsSession> tls_;  // null for plain HTTP
  Status pending_error_;
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

Client::Client(uv_loop_t* loop, Endpoint endpoint) : loop_(loop), endpoint_(std::move(endpoint)) {}

Client::~Client() = default;

std::shared_ptr<Fetch> Client::Start(std::string method, std::string path, std::vector<http::Header> headers,
                                     Callbacks cb, std::string body) {
  auto f = std::make_shared<Fetch>();
  f->body_ = std::move(body);
  f->client_ = this;
  f->method_ = std::move(method);
  f->path_ = std::move(path);
  f->headers_ = std::move(headers);
  f->cb_ = std::move(cb);
  Dispatch(f);
  return f;
}

void Client::Dispatch(const std::shared_ptr<Fetch>& f) {
  UpstreamConn* conn;
  if (!idle_.empty()) {
    conn = idle_.back();  // most recently used: least likely to have been closed
    idle_.pop_back();
  } else {
    conn = new UpstreamConn(this);
    all_.insert(conn);
  }
  if (endpoint_.scheme == "https" && !endpoint_.tls) {
    conn->fetch_ = f;
    f->conn_ = conn;
    conn->FailSoon(Status::Unavailable("https upstream " + endpoint_.host + " has no TLS context"));
    return;
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
