#include "src/http/server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "util/log.h"

namespace http {

std::string StatusText(int status) {
  switch (status) {
    case 200: return "OK";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 307: return "Temporary Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 414: return "URI Too Long";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
  }
  return "Status";
}

// One client connection. Deleted only after both of its handles closed.
class Connection {
 public:
  Connection(Server* server) : server_(server), parser_(server->options_.limits) {
    handle_.stream.data = this;
    timer_.data = this;
  }

  bool Start() {
    if (server_->unix_) {
      uv_pipe_init(server_->loop_, &handle_.pipe, 0);
    } else {
      uv_tcp_init(server_->loop_, &handle_.tcp);
    }
    handle_.stream.data = this;
    uv_timer_init(server_->loop_, &timer_);
    handles_open_ = 2;
    if (uv_accept(&server_->listener_.stream, Stream()) != 0) {
      Close(false);
      return false;
    }
    if (!server_->unix_) uv_tcp_nodelay(&handle_.tcp, 1);
    if (server_->connections_.size() > server_->options_.max_connections) {
      LOG_WARN("http: connection limit %llu reached; refusing a connection",
               (unsigned long long)server_->options_.max_connections);
      Close(false);
      return false;
    }
    StartReading();
    ArmTimer(server_->options_.idle_timeout_ms);
    return true;
  }

  // ---- used by Exchange ----
  void SendHead(Exchange* ex, int status, const std::vector<Header>& headers, uint64_t length) {
    if (server_->shutting_down_) close_after_ = true;
    std::string head = "HTTP/1.1 " + std::to_string(status) + " " + StatusText(status) + "\r\n";
    for (const Header& h : headers) head += h.name + ": " + h.value + "\r\n";
    head += "Content-Length: " + std::to_string(length) + "\r\n";
    if (close_after_) head += "Connection: close\r\n";
    head += "\r\n";
    state_ = State::kSending;
    ArmTimer(server_->options_.idle_timeout_ms);
    auto owned = std::make_shared<std::string>(std::move(head));
    QueueWrite(owned->data(), owned->size(), owned, nullptr);
    (void)ex;
  }

  void QueueWrite(const char* data, size_t len, std::shared_ptr<const void> keep,
                  std::function<void(bool)> done) {
    auto* w = new WriteReq{{}, std::move(keep), std::move(done), this};
    w->req.data = w;
    uv_buf_t buf = uv_buf_init(const_cast<char*>(data), static_cast<unsigned>(len));
    ++pending_writes_;
    int rc = uv_write(&w->req, Stream(), &buf, 1, OnWrite);
    if (rc != 0) {
      // uv_write failed synchronously: finish the request on the next turn so
      // `done` still fires exactly once and never inside Write().
      --pending_writes_;
      LOG_DEBUG("http: write failed: %s", uv_strerror(rc));
      auto* failed = w;
      Close(true);
      if (failed->done) failed->done(false);
      delete failed;
    }
  }

  void EndExchange(Exchange* ex) {
    if (!current_ || current_.get() != ex) return;
    current_->conn_ = nullptr;
    current_.reset();
    state_ = State::kIdle;
    if (close_after_ || server_->shutting_down_) {
      CloseWhenFlushed();
      return;
    }
    ArmTimer(server_->options_.idle_timeout_ms);
    if (!reading_) StartReading();
    ProcessInput();
  }

  void ResetExchange(Exchange* ex) {
    if (current_ && current_.get() == ex) {
      current_->conn_ = nullptr;
      current_.reset();
    }
    Close(true, /*reset=*/true);
  }

  void Close(bool notify_abort, bool reset = false) {
    if (closing_) return;
    closing_ = true;
    if (current_) {
      auto ex = std::move(current_);
      if (notify_abort) ex->Abort();
      ex->conn_ = nullptr;
    }
    uv_timer_stop(&timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), OnHandleClosed);
    if (reset && !server_->unix_ && uv_tcp_close_reset(&handle_.tcp, OnHandleClosed) == 0) return;
    uv_close(reinterpret_cast<uv_handle_t*>(&handle_.stream), OnHandleClosed);
  }

  // Graceful end: everything queued goes out, then FIN, then close.
  void CloseWhenFlushed() {
    close_after_ = true;
    if (closing_ || shutting_down_tcp_) return;
    if (pending_writes_ > 0) return;  // OnWrite comes back here
    shutting_down_tcp_ = true;
    uv_read_stop(Stream());
    ArmTimer(2000);  // a peer that never reads its socket: give up shortly
    auto* req = new uv_shutdown_t;
    req->data = this;
    if (uv_shutdown(req, Stream(), [](uv_shutdown_t* r, int) {
          auto* self = static_cast<Connection*>(r->data);
          delete r;
          self->Close(false);
        }) != 0) {
      delete req;
      Close(false);
    }
  }

  // Called when the server shuts down: idle connections close now, busy
  // ones after their current response.
  void BeginShutdown() {
    if (current_) {
      close_after_ = true;
    } else {
      CloseWhenFlushed();
    }
  }

  bool idle() const { return !current_; }

 private:
  enum class State { kIdle, kHandling, kSending };
  struct WriteReq {
    uv_write_t req;
    std::shared_ptr<const void> keep;
    std::function<void(bool)> done;
    Connection* conn;
  };

  static void OnHandleClosed(uv_handle_t* h) {
    auto* self = static_cast<Connection*>(h->data);
    if (--self->handles_open_ == 0) {
      self->server_->ConnectionClosed(self);
      delete self;
    }
  }

  static void OnWrite(uv_write_t* req, int status) {
    auto* w = static_cast<WriteReq*>(req->data);
    Connection* self = w->conn;
    --self->pending_writes_;
    if (status != 0 && !self->closing_) self->Close(true);
    if (!self->closing_ && self->state_ == State::kSending) self->ArmTimer(self->server_->options_.idle_timeout_ms);
    if (w->done) w->done(status == 0);
    delete w;
    if (self->close_after_ && !self->closing_ && !self->current_ && self->pending_writes_ == 0)
      self->CloseWhenFlushed();
  }

  void StartReading() {
    reading_ = true;
    uv_read_start(
        Stream(),
        [](uv_handle_t* h, size_t, uv_buf_t* buf) {
          auto* self = static_cast<Connection*>(h->data);
          if (!self->read_buf_) self->read_buf_.reset(new char[kReadSize]);
          *buf = uv_buf_init(self->read_buf_.get(), kReadSize);
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
          static_cast<Connection*>(s->data)->OnRead(n, buf);
        });
  }

  void OnRead(ssize_t n, const uv_buf_t* buf) {
    if (n == 0) return;
    if (n < 0) {
      // EOF with a response in flight: the client half-closed; finish it, then close.
      if (n == UV_EOF && current_) {
        uv_read_stop(Stream());
        reading_ = false;
        close_after_ = true;
        return;
      }
      Close(true);
      return;
    }
    if (shutting_down_tcp_) return;
    input_.append(buf->base, n);
    if (state_ == State::kIdle) {
      ProcessInput();
    } else if (input_.size() > kMaxBufferedInput) {
      // Pipelined requests pile up behind a slow response: stop reading.
      uv_read_stop(Stream());
      reading_ = false;
    }
  }

  void ProcessInput() {
    if (processing_) return;  // a handler answered synchronously; the outer loop continues
    processing_ = true;
    while (!closing_ && !close_after_ && state_ == State::kIdle && !input_.empty()) {
      bool was_in_request = parser_.in_request();
      size_t consumed = 0;
      RequestParser::Event ev = parser_.Feed(input_, &consumed);
      input_.erase(0, consumed);
      if (ev == RequestParser::Event::kNeedMore) {
        if (!was_in_request && parser_.in_request()) ArmTimer(server_->options_.header_timeout_ms);
        break;
      }
      if (ev == RequestParser::Event::kError) {
        AnswerAndClose(parser_.error_status(), parser_.error_reason());
        break;
      }
      Request req = parser_.TakeRequest();
      // A body that was not read (non-peer routes) leaves the stream unusable.
      if (!req.keep_alive || (req.has_body && req.body.empty())) close_after_ = true;
      state_ = State::kHandling;
      ArmTimer(server_->options_.response_head_timeout_ms);
      current_ = std::make_shared<Exchange>(this, std::move(req));
      auto ex = current_;  // the handler may end it synchronously
      server_->handler_(ex);
    }
    processing_ = false;
  }

  // The server's own answer (parse errors, timeouts); the connection closes after it.
  void AnswerAndClose(int status, const std::string& message) {
    close_after_ = true;
    if (current_) {
      auto ex = std::move(current_);
      ex->Abort();
      ex->conn_ = nullptr;
    }
    if (state_ == State::kSending) {  // a head is out already: all we can do is cut
      Close(false, true);
      return;
    }
    const ServerOptions& o = server_->options_;
    std::string body = o.error_body ? o.error_body(status, message) : message + "\n";
    std::vector<Header> headers = {{"Content-Type", o.error_body ? o.error_content_type : "text/plain"}};
    SendHead(nullptr, status, headers, body.size());
    auto owned = std::make_shared<std::string>(std::move(body));
    QueueWrite(owned->data(), owned->size(), owned, nullptr);
    state_ = State::kIdle;
    CloseWhenFlushed();
  }

  void ArmTimer(uint64_t ms) {
    if (closing_) return;
    uv_timer_start(&timer_, [](uv_timer_t* t) { static_cast<Connection*>(t->data)->OnTimer(); }, ms, 0);
  }

  void OnTimer() {
    if (shutting_down_tcp_) {
      Close(false);
      return;
    }
    switch (state_) {
      case State::kIdle:
        if (parser_.in_request()) {
          AnswerAndClose(408, "request head not received in time");
        } else {
          Close(false);
        }
        break;
      case State::kHandling:
        LOG_WARN("http: no response head for %s %s within %llu ms; answering 503",
                 current_->request().method.c_str(), current_->request().target.c_str(),
                 (unsigned long long)server_->options_.response_head_timeout_ms);
        AnswerAndClose(503, "no answer in time");
        break;
      case State::kSending:
        LOG_INFO("http: client stopped reading for %llu ms; closing",
                 (unsigned long long)server_->options_.idle_timeout_ms);
        Close(true);
        break;
    }
  }

  static constexpr size_t kReadSize = 64 * 1024;
  static constexpr size_t kMaxBufferedInput = 64 * 1024;

  Server* server_;
  uv_stream_t* Stream() { return &handle_.stream; }

  union {
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } handle_;
  uv_timer_t timer_;
  int handles_open_ = 0;
  RequestParser parser_;
  std::unique_ptr<char[]> read_buf_;
  std::string input_;
  std::shared_ptr<Exchange> current_;
  State state_ = State::kIdle;
  size_t pending_writes_ = 0;
  bool reading_ = false;
  bool processing_ = false;
  bool close_after_ = false;
  bool shutting_down_tcp_ = false;
  bool closing_ = false;
};

// ---- Exchange ----

void Exchange::SendHead(int status, const std::vector<Header>& headers, uint64_t content_length) {
  if (!conn_ || head_sent_) return;
  head_sent_ = true;
  conn_->SendHead(this, status, headers, content_length);
}

bool Exchange::Write(const char* data, size_t len, std::shared_ptr<const void> keep,
                     std::function<void(bool)> done) {
  if (!conn_ || !head_sent_) return false;
  conn_->QueueWrite(data, len, std::move(keep), std::move(done));
  return true;
}

void Exchange::End() {
  if (conn_) conn_->EndExchange(this);
}

void Exchange::Reset() {
  if (conn_) conn_->ResetExchange(this);
}

void Exchange::Respond(int status, const std::vector<Header>& headers, const std::string& body) {
  if (!conn_) return;
  SendHead(status, headers, body.size());
  if (!is_head() && !body.empty()) {
    auto owned = std::make_shared<std::string>(body);
    Write(owned->data(), owned->size(), owned, nullptr);
  }
  End();
}

void Exchange::Abort() {
  conn_ = nullptr;
  if (on_abort_) {
    auto cb = std::move(on_abort_);
    on_abort_ = nullptr;
    cb();
  }
}

// ---- Server ----

Server::Server(uv_loop_t* loop, ServerOptions options, Handler handler)
    : loop_(loop), options_(std::move(options)), handler_(std::move(handler)) {
  listener_.stream.data = this;
  grace_timer_.data = this;
}

util::Status Server::ListenUnix(const std::string& path) {
  unix_ = true;
  ::unlink(path.c_str());  // a socket left by a killed daemon (the cache lock proves it is gone)
  uv_pipe_init(loop_, &listener_.pipe, 0);
  uv_timer_init(loop_, &grace_timer_);
  listener_.stream.data = this;
  open_handles_ = 2;
  listening_ = true;
  int rc = uv_pipe_bind(&listener_.pipe, path.c_str());
  if (rc == 0) rc = uv_listen(&listener_.stream, 64, OnConnection);
  if (rc == 0) ::chmod(path.c_str(), 0600);  // the admin socket is for the daemon's owner
  if (rc != 0) return util::Status::IoError("cannot listen on " + path + ": " + uv_strerror(rc));
  return util::Status::Ok();
}

Server::~Server() = default;

util::Status Server::Listen(const util::HostPort& addr) {
  sockaddr_storage ss;
  int rc = uv_ip4_addr(addr.host.c_str(), addr.port, reinterpret_cast<sockaddr_in*>(&ss));
  if (rc != 0) rc = uv_ip6_addr(addr.host.c_str(), addr.port, reinterpret_cast<sockaddr_in6*>(&ss));
  if (rc != 0) {
    if (addr.host == "localhost") {
      rc = uv_ip4_addr("127.0.0.1", addr.port, reinterpret_cast<sockaddr_in*>(&ss));
    } else {
      return util::Status::InvalidArgument("listen address " + addr.ToString() + " is not an IP address");
    }
  }
  uv_tcp_init(loop_, &listener_.tcp);
  listener_.stream.data = this;
  uv_timer_init(loop_, &grace_timer_);
  open_handles_ = 2;
  listening_ = true;
  rc = uv_tcp_bind(&listener_.tcp, reinterpret_cast<sockaddr*>(&ss), 0);
  if (rc == 0) rc = uv_listen(&listener_.stream, 511, OnConnection);
  if (rc != 0) return util::Status::IoError("cannot listen on " + addr.ToString() + ": " + uv_strerror(rc));
  sockaddr_storage bound;
  int len = sizeof(bound);
  uv_tcp_getsockname(&listener_.tcp, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return util::Status::Ok();
}

void Server::OnConnection(uv_stream_t* listener, int status) {
  auto* self = static_cast<Server*>(listener->data);
  if (status != 0 || self->shutting_down_) return;
  auto* c = new Connection(self);
  self->connections_.insert(c);
  c->Start();  // on failure it closes itself and is removed in ConnectionClosed
}

void Server::ConnectionClosed(Connection* c) {
  connections_.erase(c);
  MaybeShutdownDone();
}

void Server::Shutdown(uint64_t grace_ms, std::function<void()> done) {
  if (shutting_down_) return;
  shutting_down_ = true;
  shutdown_done_ = std::move(done);
  auto on_closed = [](uv_handle_t* h) {
    auto* self = static_cast<Server*>(h->data);
    --self->open_handles_;
    self->MaybeShutdownDone();
  };
  if (!listening_) {
    MaybeShutdownDone();
    return;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&listener_.stream), on_closed);
  std::vector<Connection*> conns(connections_.begin(), connections_.end());
  for (Connection* c : conns) c->BeginShutdown();
  uv_timer_start(
      &grace_timer_,
      [](uv_timer_t* t) {
        auto* self = static_cast<Server*>(t->data);
        if (!self->connections_.empty())
          LOG_WARN("http: shutdown grace period over; closing %zu connection(s)", self->connections_.size());
        std::vector<Connection*> left(self->connections_.begin(), self->connections_.end());
        for (Connection* c : left) c->Close(true);
      },
      grace_ms, 0);
  uv_unref(reinterpret_cast<uv_handle_t*>(&grace_timer_));
  MaybeShutdownDone();
}

void Server::MaybeShutdownDone() {
  if (!shutting_down_ || !connections_.empty()) return;
  if (listening_ && open_handles_ == 2) return;  // listener close still pending
  if (listening_ && open_handles_ == 1) {
    --open_handles_;
    uv_timer_stop(&grace_timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(&grace_timer_), [](uv_handle_t* h) {
      auto* self = static_cast<Server*>(h->data);
      if (self->shutdown_done_) {
        auto done = std::move(self->shutdown_done_);
        done();
      }
    });
    return;
  }
  if (!listening_ && shutdown_done_) {
    auto done = std::move(shutdown_done_);
    done();
  }
}

}  // namespace http
