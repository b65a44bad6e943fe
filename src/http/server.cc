#include "src/http/server.h"

#include <fcntl.h>
#include <linux/sockios.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <deque>

#include "src/io/tcp_cork.h"
#include "util/log.h"

namespace http {

std::string StatusText(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 307:
      return "Temporary Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 416:
      return "Range Not Satisfiable";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
  }
  return "Status";
}

// One client connection. Deletes itself from its socket's close callback,
// which libuv runs after every write and shutdown callback of that socket.
class Connection : public Transport {
 public:
  explicit Connection(Server* server) : server_(server), parser_(server->options_.limits) {
    timer_.Init(server->env_.loop, this, uv_timer_init);
  }

  // Accepts the pending connection. On failure the connection closes itself.
  void Start() {
    int rc = server_->unix_ ? socket_pipe_.Init(server_->env_.loop, this, uv_pipe_init, 0)
                            : socket_tcp_.Init(server_->env_.loop, this, uv_tcp_init);
    if (rc == 0)
      rc = uv_accept(
          server_->unix_ ? server_->pipe_listener_.stream() : server_->tcp_listener_.stream(),
          Stream());
    if (rc != 0) {
      server_->NoteRefused(uv_strerror(rc), false);
      Close(false);
      return;
    }
    if (!server_->unix_) {
      uv_tcp_nodelay(socket_tcp_.get(), 1);
      sockaddr_storage peer{};
      int len = sizeof peer;
      char ip[INET6_ADDRSTRLEN] = "?";
      if (uv_tcp_getpeername(socket_tcp_.get(), reinterpret_cast<sockaddr*>(&peer), &len) == 0) {
        if (peer.ss_family == AF_INET6) {
          uv_ip6_name(reinterpret_cast<sockaddr_in6*>(&peer), ip, sizeof ip);
        } else {
          uv_ip4_name(reinterpret_cast<sockaddr_in*>(&peer), ip, sizeof ip);
        }
      }
      remote_ = ip;
    } else {
      remote_ = "unix";
    }
    UpdateReading();
    ArmTimer(server_->options_.idle_timeout_ms);
  }

  // ---- used by Exchange ----
  void SendHead(int status, const std::vector<Header>& headers, uint64_t length,
                std::string_view body) override {
    if (phase_ == Phase::kBody || phase_ == Phase::kBodyPaused) {
      close_after_ = true;  // answered without reading the body: the stream cannot go on
      parser_.AbandonBody();
      phase_ = Phase::kBody;  // no longer waiting on the sink; the head below moves it on
    }
    if (server_->phase_ == Server::Phase::kDraining) close_after_ = true;
    std::string head = "HTTP/1.1 " + std::to_string(status) + " " + StatusText(status) + "\r\n";
    for (const Header& h : headers) head += h.name + ": " + h.value + "\r\n";
    head += "Content-Length: " + std::to_string(length) + "\r\n";
    if (close_after_) head += "Connection: close\r\n";
    head += "\r\n";
    head += body;
    phase_ = Phase::kSending;
    ArmTimer(server_->options_.idle_timeout_ms);
    auto owned = std::make_shared<std::string>(std::move(head));
    QueueWrite(owned->data(), owned->size(), owned, nullptr, {});
  }

  // Memory goes to libuv's write queue at once, unless a sendfile is ahead
  // of it; file bytes wait in out_ until libuv's queue is empty (order).
  void QueueWrite(const char* data, size_t len, std::shared_ptr<const void> keep,
                  std::function<void(bool)> done, FileRange file) override {
    if (phase_ == Phase::kClosed) {
      if (done)
        server_->env_.deferred->Post(
            [done = std::move(done), keep = std::move(keep)] { done(false); });
      return;
    }
    bool by_file = file.fd >= 0 && server_->options_.sendfile && socket_tcp_.open();
    if (!by_file && out_.empty()) {
      SubmitWrite(data, len, std::move(keep), std::move(done));
      return;
    }
    out_.push_back({data, len, std::move(keep), std::move(done), by_file ? file : FileRange{}, 0});
    ++pending_writes_;
    queued_bytes_ += len;
    total_queued_ += len;
    unsent_ += len;
    PumpOut();
  }

  void SubmitWrite(const char* data, size_t len, std::shared_ptr<const void> keep,
                   std::function<void(bool)> done) {
    if (!done) {
      // Nobody waits for these bytes (a head, a small response): written
      // at once when the socket takes them, past libuv's queue, whose
      // completion re-arms the socket in epoll (one epoll_ctl per write
      // with the libuv of Debian 12). uv_try_write refuses while libuv's
      // queue holds bytes, so order is kept.
      uv_buf_t buf = uv_buf_init(const_cast<char*>(data), static_cast<unsigned>(len));
      int n = uv_try_write(Stream(), &buf, 1);
      if (n > 0) {
        total_queued_ += n;
        if (static_cast<size_t>(n) == len) return;  // the kernel has it all; `keep` may go
        data += n;
        len -= n;
      }
    }
    auto* w = new WriteReq{{}, std::move(keep), std::move(done), this, len};
    w->req.data = w;
    uv_buf_t buf = uv_buf_init(const_cast<char*>(data), static_cast<unsigned>(len));
    int rc = uv_write(&w->req, Stream(), &buf, 1, OnWrite);
    if (rc != 0) {
      // Refused at once: `done` still fires exactly once, on a later turn.
      LOG_DEBUG("http: write failed: %s", uv_strerror(rc));
      if (w->done) {
        server_->env_.deferred->Post(
            [done = std::move(w->done), keep = std::move(w->keep)] { done(false); });
      }
      delete w;
      Close(true);
      return;
    }
    ++pending_writes_;
    ++uv_writes_;
    queued_bytes_ += len;
    total_queued_ += len;
  }

  // Hands out_ to the kernel in order: memory to libuv, file ranges by
  // sendfile once libuv's queue is empty. Waits for room with poll_ (a
  // duplicate of the socket's descriptor: libuv watches the original).
  void PumpOut() {
    while (!out_.empty() && phase_ != Phase::kClosed) {
      OutItem& it = out_.front();
      if (it.file.fd < 0) {  // memory that waited behind a sendfile
        OutItem w = std::move(it);
        out_.pop_front();
        --pending_writes_;
        queued_bytes_ -= w.len;
        total_queued_ -= w.len;
        unsent_ -= w.len;
        SubmitWrite(w.data, w.len, std::move(w.keep), std::move(w.done));
        continue;
      }
      if (uv_writes_ > 0) return;  // OnWrite comes back: the bytes before go first
      int fd = -1;
      uv_fileno(socket_tcp_.base(), &fd);
      io::TcpCork cork(fd);  // full segments, not a push per spliced piece
      while (it.sent < it.len) {
        off_t off = static_cast<off_t>(it.file.offset + it.sent);
        ssize_t n = ::sendfile(fd, it.file.fd, &off, it.len - it.sent);
        if (n > 0) {
          it.sent += n;
          unsent_ -= n;
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
          WaitWritable();
          return;
        }
        LOG_DEBUG("http: sendfile failed: %s",
                  n == 0 ? "file shorter than the range" : std::strerror(errno));
        Close(true);
        return;
      }
      OutItem w = std::move(it);
      out_.pop_front();
      --pending_writes_;
      queued_bytes_ -= w.len;
      Lend(std::move(w.keep));
      // Never inside the Write() that queued it: on a later turn.
      if (w.done) server_->env_.deferred->Post([done = std::move(w.done)] { done(true); });
      AfterWrite();
      if (phase_ == Phase::kClosed) return;
    }
  }

  void WaitWritable() {
    if (!poll_.open()) {
      int fd = -1;
      uv_fileno(socket_tcp_.base(), &fd);
      poll_fd_ = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
      if (poll_fd_ < 0 || poll_.Init(server_->env_.loop, this, uv_poll_init, poll_fd_) != 0) {
        LOG_WARN("http: cannot watch a connection for sendfile: %s", std::strerror(errno));
        if (poll_fd_ >= 0) ::close(poll_fd_);
        poll_fd_ = -1;
        Close(true);
        return;
      }
    }
    uv_poll_start(poll_.get(), UV_WRITABLE, [](uv_poll_t* h, int status, int) {
      auto* self = static_cast<Connection*>(h->data);
      uv_poll_stop(h);
      if (status < 0) {
        self->Close(true);
        return;
      }
      self->PumpOut();
    });
  }

  // The keep of bytes sent by sendfile outlives their write until the peer
  // can no longer need the file's pages (server.h, "Cached bytes by
  // reference"). Two at most: the older keep covers all bytes lent after it
  // (LMDB reuses no page freed after the older reader began), so the newer
  // one only moves the end it must wait for.
  void Lend(std::shared_ptr<const void> keep) {
    uint64_t now = server_->env_.clock->NowMs();
    if (lent_.size() < 2) {
      lent_.push_back({std::move(keep), Taken(), now});
    } else {
      lent_.back().end = Taken();
      lent_.back().at_ms = now;
    }
    ReleaseLent();
  }

  // Bytes the client has shown it read, for the idle timer. On TCP, those it
  // acknowledged: the send buffer (megabytes on loopback) takes a response
  // at once and then makes room only in large steps, seconds apart for a
  // slow reader, so what the kernel took stands still while the client reads
  // on. On a Unix socket, what the kernel took.
  uint64_t Progress() { return socket_tcp_.open() ? Acked() : Taken(); }
  // Bytes the kernel still holds for the client (TCP: sent or not, not yet
  // acknowledged): a connection with some is still delivering.
  bool KernelHolds() {
    int fd = -1, unacked = 0;
    return socket_tcp_.open() && uv_fileno(socket_tcp_.base(), &fd) == 0 &&
           ::ioctl(fd, SIOCOUTQ, &unacked) == 0 && unacked > 0;
  }

  uint64_t Acked() {
    int fd = -1, unacked = 0;
    if (uv_fileno(socket_tcp_.base(), &fd) != 0 || ::ioctl(fd, SIOCOUTQ, &unacked) != 0) return 0;
    uint64_t taken = Taken();
    return taken > static_cast<uint64_t>(unacked) ? taken - unacked : 0;
  }

  void ReleaseLent() {
    if (lent_.empty() || phase_ == Phase::kClosed) return;
    uint64_t now = server_->env_.clock->NowMs(), acked = Acked();
    while (!lent_.empty() && lent_.front().end <= acked &&
           now >= lent_.front().at_ms + Server::kLendLingerMs)
      lent_.pop_front();
    if (lent_.empty()) return;
    if (!lend_timer_.open() && lend_timer_.Init(server_->env_.loop, this, uv_timer_init) != 0)
      return;
    uint64_t wait = lent_.front().at_ms + Server::kLendLingerMs > now
                        ? lent_.front().at_ms + Server::kLendLingerMs - now
                        : 50;
    uv_timer_start(
        lend_timer_.get(), [](uv_timer_t* t) { static_cast<Connection*>(t->data)->ReleaseLent(); },
        std::max<uint64_t>(wait, 50), 0);
  }

  // What follows a completed write (libuv's or a sendfile).
  void AfterWrite() {
    if (phase_ == Phase::kFlushing && pending_writes_ == 0) {
      CloseWhenFlushed();
    } else if (phase_ == Phase::kIdle &&
               queued_bytes_ <= server_->options_.max_queued_response_bytes) {
      ProcessInput();  // a pipelined request may have waited for the client to read
    }
  }

  // A request without a body: `empty` runs on a later turn (never inside
  // the read call), if the exchange is still active then.
  void EndEmptyBody(std::function<void()> empty) {
    std::weak_ptr<Exchange> weak = current_;
    server_->env_.deferred->Post([weak, empty = std::move(empty)] {
      if (auto e = weak.lock(); e && e->active()) empty();
    });
  }

  // The body will be read: the stream can go on after it. It may be
  // buffered already: it is parsed on a later turn, so no body callback
  // runs inside the read call.
  void StartBody(Exchange* ex, uint64_t timeout_ms) {
    phase_ = Phase::kBody;
    close_after_ = !ex->request().keep_alive;
    ArmTimer(timeout_ms);
    std::weak_ptr<Exchange> weak = current_;
    server_->env_.deferred->Post(weak, [this, weak] {
      auto e = weak.lock();
      if (e && e->active() && phase_ == Phase::kBody) ProcessInput();
    });
    UpdateReading();
  }

  int ReadBody(Exchange* ex, uint64_t max_bytes, std::function<void(std::string)> done) override {
    if (!current_ || current_.get() != ex || phase_ != Phase::kHandling) return 500;
    if (!ex->request().has_body) {
      EndEmptyBody([done = std::move(done)] { done(""); });
      return 0;
    }
    if (int rc = parser_.ExpectBody(max_bytes); rc != 0) return rc;
    ex->on_body_ = std::move(done);
    StartBody(ex, server_->options_.header_timeout_ms);
    return 0;
  }

  int ReadBodyStream(Exchange* ex, uint64_t max_bytes, BodySink sink) override {
    if (!current_ || current_.get() != ex || phase_ != Phase::kHandling) return 500;
    if (!ex->request().has_body) {
      EndEmptyBody(std::move(sink.end));
      return 0;
    }
    if (int rc = parser_.ExpectBodyStream(max_bytes); rc != 0) return rc;
    ex->sink_ = std::move(sink);
    if (const std::string* expect = ex->request().Find("expect");
        expect && EqualsIgnoreCase(*expect, "100-continue")) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      QueueWrite(kContinue.data(), kContinue.size(), nullptr, nullptr, {});
    }
    StartBody(ex, server_->options_.idle_timeout_ms);
    return 0;
  }

  void ResumeBody(Exchange* ex) override {
    if (!current_ || current_.get() != ex || phase_ != Phase::kBodyPaused) return;
    phase_ = Phase::kBody;
    ArmTimer(server_->options_.idle_timeout_ms);
    std::weak_ptr<Exchange> weak = current_;
    server_->env_.deferred->Post(weak, [this, weak] {
      auto e = weak.lock();
      if (e && e->active() && phase_ == Phase::kBody) ProcessInput();
    });
  }

  void EndExchange(Exchange* ex) override {
    if (!current_ || current_.get() != ex) return;
    Report(ex, RequestRecord::Ending::kEnded);
    current_->Detach();
    current_.reset();
    phase_ = Phase::kIdle;
    if (close_after_ || server_->phase_ == Server::Phase::kDraining) {
      CloseWhenFlushed();
      return;
    }
    ArmTimer(server_->options_.idle_timeout_ms);
    ProcessInput();
  }

  void ResetExchange(Exchange* ex) override {
    if (current_ && current_.get() == ex) {
      Report(ex, RequestRecord::Ending::kReset);
      current_->Detach();
      current_.reset();
    }
    Close(true, /*reset=*/true);
  }

  void Close(bool notify_abort, bool reset = false) {
    if (phase_ == Phase::kClosed) return;
    phase_ = Phase::kClosed;
    if (current_) {
      // Detached now; told on a later turn: Close runs inside Exchange calls
      // too (a write the kernel refused at once), and a callback never fires
      // inside the call that was given it.
      auto ex = std::move(current_);
      Report(ex.get(), RequestRecord::Ending::kAborted);
      ex->Detach();
      if (notify_abort) server_->env_.deferred->Post([ex] { ex->Abort(); });
    }
    timer_.Close();
    lend_timer_.Close();
    if (poll_.open()) {
      poll_.Close();  // out of epoll now (uv_close stops the watcher): the duplicate can go
      ::close(poll_fd_);
      poll_fd_ = -1;
    }
    for (OutItem& it : out_) {
      if (it.done)
        server_->env_.deferred->Post(
            [done = std::move(it.done), keep = std::move(it.keep)] { done(false); });
    }
    out_.clear();
    if (!lent_.empty()) {
      // The kernel may still hold the lent bytes (our queue, or a receiver's
      // on this host): the Server keeps them a while. Unacknowledged bytes
      // of a connection closed by us could wait long in our queue: a reset
      // drops them at once when the Server holds too many already.
      uint64_t now = server_->env_.clock->NowMs();
      bool unacked = socket_tcp_.open() && Acked() < lent_.back().end;
      if (unacked && server_->lingering_.size() + lent_.size() > Server::kMaxLingering)
        reset = true;
      uint64_t hold = unacked && !reset ? Server::kLendOrphanMs : Server::kLendLingerMs;
      for (Lent& l : lent_) server_->Linger(std::move(l.keep), std::max(now, l.at_ms) + hold);
      lent_.clear();
    }
    auto after = [this] {
      server_->ConnectionClosed(this);
      delete this;
    };
    if (socket_tcp_.open()) {
      if (reset) {
        socket_tcp_.CloseReset(after);
      } else {
        socket_tcp_.Close(after);
      }
    } else if (socket_pipe_.open()) {
      socket_pipe_.Close(after);
    } else {
      // Never opened (init failed): nothing of libuv refers to us. Still
      // freed on a later turn, as if a handle had closed.
      server_->env_.deferred->Post(after);
    }
  }

  // Tells ServerOptions::on_done that `ex` (null: a request the server
  // answered itself, `server_status`) is finished.
  void Report(const Exchange* ex, RequestRecord::Ending ending, int server_status = 0) {
    const auto& on_done = server_->options_.on_done;
    if (!on_done) return;
    RequestRecord r;
    r.remote = remote_;
    r.ending = ending;
    r.status = server_status;
    if (ex) {
      r.method = ex->request().method;
      r.target = ex->request().target;
      if (ex->status_) r.status = ex->status_;
      r.body_bytes = ex->body_bytes_;
      r.duration_us = server_->env_.clock->NowUs() - ex->started_us_;
      r.outcome = ex->outcome_;
      // A client may close the moment its last byte arrives, before the
      // handler's End(): with the whole announced body handed over, that
      // response was complete, not cut off.
      if (ending == RequestRecord::Ending::kAborted && ex->head_sent_ &&
          ex->body_bytes_ == ex->content_length_ && ex->content_length_ > 0)
        r.ending = RequestRecord::Ending::kEnded;
    }
    on_done(r);
  }

  // Graceful end: everything queued goes out, then FIN; what the client
  // still sends is read and dropped until it closes (or 2 s or 1 MiB pass), so the
  // kernel does not answer unread bytes with a reset that could destroy the
  // response in flight.
  void CloseWhenFlushed() {
    close_after_ = true;
    if (phase_ == Phase::kClosed || phase_ == Phase::kFinSent) return;
    phase_ = Phase::kFlushing;
    if (pending_writes_ > 0) {
      ArmTimer(server_->options_.idle_timeout_ms);
      return;  // OnWrite comes back here
    }
    phase_ = Phase::kFinSent;
    ArmTimer(2000);
    auto* req = new uv_shutdown_t;
    req->data = this;
    int rc = uv_shutdown(req, Stream(), [](uv_shutdown_t* r, int status) {
      auto* self = static_cast<Connection*>(r->data);
      delete r;
      if (status != 0) self->Close(false);
    });
    if (rc != 0) {
      delete req;
      Close(false);
      return;
    }
    UpdateReading();
  }

  // Called when the server shuts down: idle connections close now, busy
  // ones after their current response.
  void BeginShutdown() {
    if (current_) {
      close_after_ = true;
    } else if (phase_ == Phase::kIdle) {
      CloseWhenFlushed();
    }
  }

 private:
  // kIdle: waiting for (or parsing) a request head. kHandling: the handler
  // has the request, no head sent. kBody: reading the body the handler asked
  // for. kSending: the head is out. kFlushing: the last response is queued.
  // kFinSent: FIN sent, draining the client's bytes. kClosed: handles closing.
  // kBodyPaused: a streamed body whose sink asked to wait (ResumeBody).
  enum class Phase { kIdle, kHandling, kBody, kBodyPaused, kSending, kFlushing, kFinSent, kClosed };
  struct WriteReq {
    uv_write_t req;
    std::shared_ptr<const void> keep;
    std::function<void(bool)> done;
    Connection* conn;
    size_t len;
  };

  uv_stream_t* Stream() {
    return socket_tcp_.open() ? socket_tcp_.stream() : socket_pipe_.stream();
  }
  size_t KernelQueue() { return uv_stream_get_write_queue_size(Stream()); }
  // Bytes the kernel has taken from us so far: grows while the client reads.
  uint64_t Taken() { return total_queued_ - KernelQueue() - unsent_; }

  static void OnWrite(uv_write_t* req, int status) {
    auto* w = static_cast<WriteReq*>(req->data);
    Connection* self = w->conn;
    --self->pending_writes_;
    --self->uv_writes_;
    self->queued_bytes_ -= w->len;
    if (status != 0 && self->phase_ != Phase::kClosed) self->Close(true);
    if (w->done) w->done(status == 0);
    delete w;
    if (self->phase_ == Phase::kClosed) return;
    if (!self->out_.empty()) {
      self->PumpOut();  // a sendfile waited for libuv's queue
      if (self->phase_ == Phase::kClosed) return;
    }
    self->AfterWrite();
  }

  // Reads while there is room for input and a use for it.
  void UpdateReading() {
    bool want = false;
    switch (phase_) {
      case Phase::kIdle:
      case Phase::kHandling:
      case Phase::kSending:
        want = !close_after_ && input_.size() < server_->options_.max_input_bytes;
        break;
      case Phase::kBody:
      case Phase::kBodyPaused:
        want = input_.size() < server_->options_.max_input_bytes;
        break;
      case Phase::kFlushing:
        want = false;
        break;
      case Phase::kFinSent:
        want = true;  // dropped as it arrives
        break;
      case Phase::kClosed:
        return;
    }
    if (want == reading_) return;
    reading_ = want;
    if (!want) {
      uv_read_stop(Stream());
      return;
    }
    uv_read_start(
        Stream(),
        [](uv_handle_t* h, size_t, uv_buf_t* buf) {
          // One buffer for every connection: OnRead copies what it keeps
          // before the loop reads again, so idle connections hold none.
          auto* self = static_cast<Connection*>(h->data);
          *buf = uv_buf_init(self->server_->read_buf_.get(), kReadSize);
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
          static_cast<Connection*>(s->data)->OnRead(n, buf);
        });
  }

  void OnRead(ssize_t n, const uv_buf_t* buf) {
    if (n == 0 || phase_ == Phase::kClosed) return;
    if (n < 0) {
      // EOF while a request is being answered: the client is gone (as Go's
      // server reads it), so its waiting costs nothing from here on: the
      // exchange is aborted and whatever it waited on may be cancelled.
      Close(phase_ != Phase::kFinSent);
      return;
    }
    if (phase_ == Phase::kFinSent) {
      // Lingering close: dropped, up to a bound; a client that keeps
      // sending past it gets the connection closed under it.
      drained_ += n;
      if (drained_ > kMaxDrainBytes) Close(false);
      return;
    }
    input_.append(buf->base, n);
    if (phase_ == Phase::kIdle || phase_ == Phase::kBody) ProcessInput();
    UpdateReading();
  }

  void ProcessInput() {
    if (processing_) return;  // a handler answered synchronously; the outer loop continues
    processing_ = true;
    const ServerOptions& o = server_->options_;
    while (!input_.empty() &&
           (phase_ == Phase::kBody || (phase_ == Phase::kIdle && !close_after_))) {
      if (phase_ == Phase::kIdle && queued_bytes_ > o.max_queued_response_bytes)
        break;  // OnWrite resumes
      bool was_in_request = parser_.in_request();
      size_t consumed = 0;
      RequestParser::Event ev = parser_.Feed(input_, &consumed);
      input_.erase(0, consumed);
      if (ev == RequestParser::Event::kNeedMore) {
        if (phase_ == Phase::kIdle && !was_in_request && parser_.in_request())
          ArmTimer(o.header_timeout_ms);
        if (phase_ == Phase::kBody && parser_.streaming_body()) DeliverPiece();
        break;
      }
      if (ev == RequestParser::Event::kError) {
        AnswerAndClose(parser_.error_status(), parser_.error_reason());
        break;
      }
      if (ev == RequestParser::Event::kBody) {
        auto ex = current_;
        if (parser_.streaming_body()) {
          DeliverPiece();
          // Answered early, or gone (a sink that asked to wait still gets the end).
          if ((phase_ != Phase::kBody && phase_ != Phase::kBodyPaused) || current_ != ex) continue;
          parser_.TakeBody();  // ends the body
          phase_ = Phase::kHandling;
          ArmTimer(o.response_head_timeout_ms);
          auto end = std::move(ex->sink_.end);
          ex->sink_ = {};
          if (end) end();
          continue;
        }
        phase_ = Phase::kHandling;
        ArmTimer(o.response_head_timeout_ms);
        auto done = std::move(ex->on_body_);
        ex->on_body_ = nullptr;
        if (done) done(parser_.TakeBody());
        continue;
      }
      Request req = parser_.TakeRequest();
      // A body is read only if the handler asks (ReadBody); until then the
      // stream cannot go on past it.
      if (!req.keep_alive || req.has_body) close_after_ = true;
      phase_ = Phase::kHandling;
      ArmTimer(o.response_head_timeout_ms);
      req.remote = remote_;
      current_ = std::make_shared<Exchange>(this, std::move(req));
      current_->started_us_ = server_->env_.clock->NowUs();
      auto ex = current_;  // the handler may end it synchronously
      server_->handler_(ex);
    }
    processing_ = false;
    if (phase_ != Phase::kClosed) UpdateReading();
  }

  // Hands what the last Feed decoded of a streamed body to the sink.
  void DeliverPiece() {
    std::string piece = parser_.TakeBody();
    if (piece.empty() || !current_ || !current_->sink_.data) return;
    ArmTimer(server_->options_.idle_timeout_ms);  // the client is sending
    auto ex = current_;
    bool more = ex->sink_.data(piece);
    if (!more && phase_ == Phase::kBody && current_ == ex) phase_ = Phase::kBodyPaused;
  }

  // The server's own answer (parse errors, timeouts); the connection closes after it.
  void AnswerAndClose(int status, const std::string& message) {
    close_after_ = true;
    if (current_) {
      auto ex = std::move(current_);
      Report(ex.get(), RequestRecord::Ending::kAborted, status);
      ex->Abort();
      ex->Detach();
    } else {
      Report(nullptr, RequestRecord::Ending::kEnded, status);
    }
    if (phase_ == Phase::kSending) {  // a head is out already: all we can do is cut
      Close(false, true);
      return;
    }
    const ServerOptions& o = server_->options_;
    std::string body = o.error_body ? o.error_body(status, message) : message + "\n";
    std::vector<Header> headers = {
        {"Content-Type", o.error_body ? o.error_content_type : "text/plain"}};
    SendHead(status, headers, body.size(), body);
    if (phase_ != Phase::kClosed) CloseWhenFlushed();
  }

  void ArmTimer(uint64_t ms) {
    if (phase_ == Phase::kClosed) return;
    progress_at_arm_ = Progress();
    uv_timer_start(
        timer_.get(), [](uv_timer_t* t) { static_cast<Connection*>(t->data)->OnTimer(); }, ms, 0);
  }

  void OnTimer() {
    const ServerOptions& o = server_->options_;
    // A client that keeps reading what we queued is never cut: the timer
    // only closes a connection whose writes made no progress in a period,
    // counted over the connection (every pipelined response), not per response.
    bool writing = pending_writes_ > 0 || KernelHolds();
    bool progressed = Progress() > progress_at_arm_;
    switch (phase_) {
      case Phase::kIdle:
        if (parser_.in_request()) {
          AnswerAndClose(408, "request head not received in time");
        } else if (writing && progressed) {
          ArmTimer(o.idle_timeout_ms);
        } else {
          if (writing)
            LOG_INFO("http: client stopped reading for %llu ms; closing",
                     (unsigned long long)o.idle_timeout_ms);
          Close(false);
        }
        break;
      case Phase::kHandling:
        LOG_WARN("http: no response head for %s %s within %llu ms; answering 503",
                 current_->request().method.c_str(),
                 current_->request().target.substr(0, 200).c_str(),
                 (unsigned long long)o.response_head_timeout_ms);
        AnswerAndClose(503, "no answer in time");
        break;
      case Phase::kBodyPaused:  // the sink is behind, not the client
        ArmTimer(o.idle_timeout_ms);
        break;
      case Phase::kBody:
        AnswerAndClose(408, "request body not received in time");
        break;
      case Phase::kSending:
      case Phase::kFlushing:
        if (!writing || progressed) {
          // Nothing queued: the handler waits on its source, whose own
          // timeouts bound that. Or the client is reading: keep going.
          ArmTimer(o.idle_timeout_ms);
        } else {
          LOG_INFO("http: client stopped reading for %llu ms; closing",
                   (unsigned long long)o.idle_timeout_ms);
          Close(true);
        }
        break;
      case Phase::kFinSent:
        Close(false);
        break;
      case Phase::kClosed:
        break;
    }
  }

  static constexpr size_t kReadSize = Server::kReadBufferSize;
  static constexpr size_t kMaxDrainBytes = 1 << 20;

  Server* server_;
  io::Handle<uv_tcp_t> socket_tcp_;  // one of the two is open
  io::Handle<uv_pipe_t> socket_pipe_;
  io::Handle<uv_timer_t> timer_;
  RequestParser parser_;
  std::string input_;
  std::string remote_;  // the client's IP address
  std::shared_ptr<Exchange> current_;
  Phase phase_ = Phase::kIdle;
  // Not phases: each is true or false in several phases alike (the last
  // exchange is handled, read and sent like any other; reading follows
  // the input buffer's room, not the phase).
  bool close_after_ = false;   // this exchange is the connection's last
  bool reading_ = false;       // mirrors uv_read_start/stop
  bool processing_ = false;    // ProcessInput re-entrancy guard
  size_t pending_writes_ = 0;  // writes whose `done` has not fired: libuv's and out_'s
  size_t uv_writes_ = 0;       // of them, in libuv's queue
  size_t queued_bytes_ = 0;
  uint64_t total_queued_ = 0;
  uint64_t unsent_ = 0;  // bytes in out_ not yet handed to the kernel
  struct OutItem {
    const char* data;
    size_t len;
    std::shared_ptr<const void> keep;
    std::function<void(bool)> done;
    FileRange file;  // fd -1: memory waiting behind a sendfile
    uint64_t sent;
  };
  std::deque<OutItem> out_;
  io::Handle<uv_poll_t> poll_;  // watches poll_fd_ for room while a sendfile waits
  int poll_fd_ = -1;
  struct Lent {
    std::shared_ptr<const void> keep;
    uint64_t end;    // Taken() after the last byte it covers
    uint64_t at_ms;  // when that byte was handed over
  };
  std::deque<Lent> lent_;
  io::Handle<uv_timer_t> lend_timer_;
  uint64_t progress_at_arm_ = 0;
  uint64_t drained_ = 0;  // bytes dropped after our FIN
};

// ---- Exchange ----

int Exchange::ReadBody(uint64_t max_bytes, std::function<void(std::string)> done) {
  if (!conn_ || head_sent_) return 500;
  return conn_->ReadBody(this, max_bytes, std::move(done));
}

int Exchange::ReadBodyStream(uint64_t max_bytes, BodySink sink) {
  if (!conn_ || head_sent_) return 500;
  return conn_->ReadBodyStream(this, max_bytes, std::move(sink));
}

void Exchange::ResumeBody() {
  if (conn_) conn_->ResumeBody(this);
}

void Exchange::SendHead(int status, const std::vector<Header>& headers, uint64_t content_length) {
  if (!conn_ || head_sent_) return;
  head_sent_ = true;
  status_ = status;
  content_length_ = content_length;
  conn_->SendHead(status, headers, content_length, {});
}

bool Exchange::Write(const char* data, size_t len, std::shared_ptr<const void> keep,
                     std::function<void(bool)> done, FileRange file) {
  if (!conn_ || !head_sent_) return false;
  body_bytes_ += len;
  conn_->QueueWrite(data, len, std::move(keep), std::move(done), file);
  return true;
}

void Exchange::End() {
  if (conn_) conn_->EndExchange(this);
}

void Exchange::Reset() {
  if (conn_) conn_->ResetExchange(this);
}

void Exchange::Respond(int status, const std::vector<Header>& headers, std::string_view body) {
  if (!conn_ || head_sent_) return;
  head_sent_ = true;
  status_ = status;
  content_length_ = body.size();
  if (is_head()) body = {};
  body_bytes_ += body.size();
  conn_->SendHead(status, headers, content_length_, body);
  End();
}

void Exchange::Abort() {
  Detach();
  if (on_abort_) {
    auto cb = std::move(on_abort_);
    on_abort_ = nullptr;
    cb();
  }
}

// ---- Server ----

Server::Server(io::Env env, ServerOptions options, Handler handler)
    : env_(env),
      options_(std::move(options)),
      handler_(std::move(handler)),
      read_buf_(new char[kReadBufferSize]) {}

Server::~Server() {
  // Listen() failed or was never called and Shutdown() not run: close what is open.
  tcp_listener_.Close();
  pipe_listener_.Close();
  grace_timer_.Close();
  linger_timer_.Close();
}

util::Status Server::ListenUnix(const std::string& path) {
  unix_ = true;
  phase_ = Phase::kListening;
  ::unlink(path.c_str());  // a socket left by a killed daemon (the cache lock proves it is gone)
  // Bound inside a fresh 0700 directory, made 0600, then renamed into place:
  // at no moment can anyone but us connect to it.
  std::string tmpl = path + ".XXXXXX";
  std::vector<char> dir(tmpl.begin(), tmpl.end());
  dir.push_back('\0');
  if (!::mkdtemp(dir.data()))
    return util::Status::IoError("cannot listen on " + path + ": " + std::strerror(errno));
  std::string tmp_path = std::string(dir.data()) + "/s";
  int rc = pipe_listener_.Init(env_.loop, this, uv_pipe_init, 0);
  if (rc == 0) rc = uv_pipe_bind(pipe_listener_.get(), tmp_path.c_str());
  if (rc == 0 && ::chmod(tmp_path.c_str(), 0600) != 0) rc = -errno;
  if (rc == 0 && ::rename(tmp_path.c_str(), path.c_str()) != 0) rc = -errno;
  ::unlink(tmp_path.c_str());
  ::rmdir(dir.data());
  if (rc == 0) rc = uv_listen(pipe_listener_.stream(), 64, OnConnection);
  if (rc != 0) return util::Status::IoError("cannot listen on " + path + ": " + uv_strerror(rc));
  unix_path_ = path;
  return util::Status::Ok();
}

void Server::CapConnectionsToFdLimit() {
  // libuv hides EMFILE (it accepts and drops what it cannot take), so the
  // bound is ours: connections stop short of the open file limit, leaving
  // descriptors for upstream and peer connections and the cache.
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    uint64_t soft = rl.rlim_cur;
    fd_cap_ = soft > 2 * kReservedFds ? soft - kReservedFds : soft / 2;
    fd_cap_reason_ = "the open file limit (" + std::to_string(soft) + " descriptors, " +
                     std::to_string(soft - fd_cap_) + " kept for upstreams and the cache)";
    if (fd_cap_ < options_.max_connections)
      LOG_WARN("http: at most %llu connections: %s is below max_connections %llu",
               (unsigned long long)fd_cap_, fd_cap_reason_.c_str(),
               (unsigned long long)options_.max_connections);
  }
}

util::Status Server::Listen(const util::HostPort& addr) {
  CapConnectionsToFdLimit();
  sockaddr_storage ss;
  int rc = uv_ip4_addr(addr.host.c_str(), addr.port, reinterpret_cast<sockaddr_in*>(&ss));
  if (rc != 0) rc = uv_ip6_addr(addr.host.c_str(), addr.port, reinterpret_cast<sockaddr_in6*>(&ss));
  if (rc != 0) {
    if (addr.host == "localhost") {
      rc = uv_ip4_addr("127.0.0.1", addr.port, reinterpret_cast<sockaddr_in*>(&ss));
    } else {
      return util::Status::InvalidArgument("listen address " + addr.ToString() +
                                           " is not an IP address");
    }
  }
  phase_ = Phase::kListening;
  rc = tcp_listener_.Init(env_.loop, this, uv_tcp_init);
  if (rc == 0) rc = uv_tcp_bind(tcp_listener_.get(), reinterpret_cast<sockaddr*>(&ss), 0);
  if (rc == 0) rc = uv_listen(tcp_listener_.stream(), 511, OnConnection);
  if (rc != 0)
    return util::Status::IoError("cannot listen on " + addr.ToString() + ": " + uv_strerror(rc));
  NoteBoundPort();
  return util::Status::Ok();
}

util::Status Server::ListenFd(int fd) {
  CapConnectionsToFdLimit();
  phase_ = Phase::kListening;
  int rc = tcp_listener_.Init(env_.loop, this, uv_tcp_init);
  if (rc == 0) rc = uv_tcp_open(tcp_listener_.get(), fd);
  // Already listening (the service manager did it); listen(2) again only sets the backlog.
  if (rc == 0) rc = uv_listen(tcp_listener_.stream(), 511, OnConnection);
  if (rc != 0)
    return util::Status::IoError("cannot listen on inherited socket " + std::to_string(fd) + ": " +
                                 uv_strerror(rc));
  NoteBoundPort();
  return util::Status::Ok();
}

void Server::NoteBoundPort() {
  sockaddr_storage bound;
  int len = sizeof(bound);
  uv_tcp_getsockname(tcp_listener_.get(), reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  char name[INET6_ADDRSTRLEN] = "";
  if (uv_ip_name(reinterpret_cast<sockaddr*>(&bound), name, sizeof name) == 0) host_ = name;
}

void Server::NoteRefused(const char* why, bool limit) {
  ++(limit ? stats_.refused_limit : stats_.accept_errors);
  unsigned long long count = 0;
  if (refusals_log_.Note(env_.clock->NowMs(), &count))
    LOG_WARN("http: refused %llu connection(s) in the last minute (%llu in all; last: %s)", count,
             refusals_log_.total(), why);
}

void Server::Linger(std::shared_ptr<const void> keep, uint64_t release_ms) {
  if (!keep) return;
  lingering_.push_back({std::move(keep), release_ms});
  if (!linger_timer_.open() && linger_timer_.Init(env_.loop, this, uv_timer_init) != 0) {
    lingering_.clear();
    return;
  }
  if (!uv_is_active(linger_timer_.base())) {
    uv_timer_start(
        linger_timer_.get(),
        [](uv_timer_t* t) { static_cast<Server*>(t->data)->ReleaseLingering(); }, kLendLingerMs, 0);
  }
}

void Server::ReleaseLingering() {
  uint64_t now = env_.clock->NowMs();
  std::erase_if(lingering_, [now](const Lingering& l) { return l.release_ms <= now; });
  if (!lingering_.empty() && linger_timer_.open())
    uv_timer_start(
        linger_timer_.get(),
        [](uv_timer_t* t) { static_cast<Server*>(t->data)->ReleaseLingering(); }, kLendLingerMs, 0);
}

void Server::OnConnection(uv_stream_t* listener, int status) {
  auto* self = static_cast<Server*>(listener->data);
  if (self->phase_ != Phase::kListening) return;
  if (status != 0) {
    // EMFILE/ENFILE: out of descriptors. libuv keeps a spare one to accept
    // and drop the connection, so the backlog does not spin the loop.
    self->NoteRefused(uv_strerror(status), false);
    return;
  }
  bool over_limit = self->connections_.size() >= self->options_.max_connections;
  bool over_fds = self->connections_.size() >= self->fd_cap_;
  if (over_limit || over_fds) {
    // Accepted and closed at once: the client sees a closed connection, the
    // backlog drains, and nothing of ours grows.
    io::Handle<uv_tcp_t> tcp;
    io::Handle<uv_pipe_t> pipe;
    int rc = self->unix_ ? pipe.Init(self->env_.loop, nullptr, uv_pipe_init, 0)
                         : tcp.Init(self->env_.loop, nullptr, uv_tcp_init);
    if (rc == 0) uv_accept(listener, self->unix_ ? pipe.stream() : tcp.stream());
    tcp.Close();
    pipe.Close();
    self->NoteRefused(over_limit ? "max_connections reached" : self->fd_cap_reason_.c_str(), true);
    return;
  }
  ++self->stats_.accepted;
  auto* c = new Connection(self);
  self->connections_.insert(c);
  c->Start();  // on failure it closes itself and is removed in ConnectionClosed
}

void Server::ConnectionClosed(Connection* c) {
  connections_.erase(c);
  MaybeShutdownDone();
}

void Server::Shutdown(uint64_t grace_ms, std::function<void()> done) {
  if (phase_ == Phase::kDraining || phase_ == Phase::kDone) return;
  bool listening = phase_ == Phase::kListening;
  phase_ = Phase::kDraining;
  shutdown_done_ = std::move(done);
  if (!listening) {
    MaybeShutdownDone();
    return;
  }
  auto listener_closed = [this] { MaybeShutdownDone(); };
  tcp_listener_.Close(listener_closed);
  pipe_listener_.Close(listener_closed);
  if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
  std::vector<Connection*> conns(connections_.begin(), connections_.end());
  for (Connection* c : conns) c->BeginShutdown();
  grace_timer_.Init(env_.loop, this, uv_timer_init);
  uv_timer_start(
      grace_timer_.get(),
      [](uv_timer_t* t) {
        auto* self = static_cast<Server*>(t->data);
        if (!self->connections_.empty())
          LOG_WARN("http: shutdown grace period over; closing %zu connection(s)",
                   self->connections_.size());
        std::vector<Connection*> left(self->connections_.begin(), self->connections_.end());
        for (Connection* c : left) c->Close(true);
      },
      grace_ms, 0);
  MaybeShutdownDone();
}

void Server::MaybeShutdownDone() {
  if (phase_ != Phase::kDraining || !connections_.empty()) return;
  if (tcp_listener_.open() || pipe_listener_.open()) return;
  phase_ = Phase::kDone;
  // Every connection is closed and the daemon is stopping: nothing will
  // rewrite the cache's pages under the bytes still lent.
  lingering_.clear();
  linger_timer_.Close();
  // After the grace timer closed (or at once, on a later turn, if none ran).
  auto finish = [this] {
    if (shutdown_done_) {
      auto done = std::move(shutdown_done_);
      done();
    }
  };
  if (grace_timer_.open()) {
    grace_timer_.Close(finish);
  } else {
    env_.deferred->Post(finish);
  }
}

}  // namespace http
