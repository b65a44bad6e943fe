// Server: an HTTP/1.1 server on a libuv loop, for the OCI routes, the peer
// routes and the admin socket.
//
// Threading: everything runs on the loop thread. Ownership: the Server owns
// its Connections; a Connection deletes itself once its socket and timer
// have closed (io::Handle). An Exchange (one request and its response) is
// shared between the Connection and the handler answering it, which may
// answer later; when the connection goes away first, the Exchange is
// detached and its abort callback fires once.
//
// Behaviour: keep-alive and pipelining (requests are handled one at a time,
// so responses go out in request order), "Connection: close" honoured, head
// limits (414/431), malformed requests 400 (CONNECT and upgrades 405) then
// close, a header-read timeout (408), an idle timeout, and a response-head
// deadline: a handler that has not sent a head in time is aborted and the
// client gets a fast 503, because containerd 1.6 waits forever for a mirror
// that never answers.
//
// Cached bytes by reference (ServerOptions::sendfile): body bytes that are
// also in a file (Exchange::Write's FileRange: a chunk in data.mdb) go out
// with sendfile(2), from the page cache, copied once, by the kernel, to the
// receiver. The kernel's socket buffers then hold references to those file
// pages, not copies, until the receiver has read them, so the file must not
// be rewritten there meanwhile: the connection keeps the write's `keep` (the
// store's read transaction, under which LMDB reuses no page freed after it)
// until the peer acknowledged the bytes and kLendLingerMs more passed (a
// receiver on this host holds them in its queue after the acknowledgement),
// and hands what it still holds at close to the Server, which lets go of it
// kLendLingerMs (or, for bytes still unacknowledged, kLendOrphanMs) later.
// At most two keeps per connection: the oldest covers every later byte.
//
// Bounds (ServerOptions): connections (beyond max_connections, or beyond
// the open file limit less 256 descriptors kept for upstreams and the cache,
// a new one is closed at once; refusals are logged once a minute with a
// count and the reason), unparsed input per connection (reading stops), queued response
// bytes per connection (the next pipelined request waits until the client
// has read below the bound), request bodies (read only when the handler
// asks, after it authenticated the head, up to the route's limit). A
// connection whose client keeps reading is never cut by the idle timeout;
// one that stops reading for idle_timeout is closed. Reading is measured
// over the connection, not per response, in bytes the client acknowledged
// (TCP): what the kernel's send buffer takes moves in steps seconds apart.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "src/http/request_parser.h"
#include "src/io/env.h"
#include "src/io/handle.h"
#include "util/log.h"
#include "util/status.h"
#include "util/units.h"

namespace http {

class Connection;

// What answered a request, for the access log and the metrics. The handler
// sets it as it decides; every field is a string literal from a short list.
struct Outcome {
  std::string_view kind = "other";  // oci::KindLabel's, or "api" (replications), "peer" (a peer's
                                    // content request), "gossip" (the cluster's messages)
  std::string_view result;  // "hit", "miss", "stale", "coalesced", "peer"; empty: none applies
  std::string_view source;  // the body's bytes: "cache", "peer", "upstream"; empty: neither
};

// A request the server is done with (ServerOptions::on_done).
struct RequestRecord {
  enum class Ending { kEnded, kReset, kAborted };
  std::string_view method;  // empty: the server answered before a request was parsed
  std::string_view target;
  std::string_view remote;
  int status = 0;            // the status sent; 0 when no head went out
  uint64_t body_bytes = 0;   // body bytes handed to the connection
  uint64_t duration_us = 0;  // from the end of the request head
  Ending ending = Ending::kEnded;
  Outcome outcome;
};

struct ServerOptions {
  RequestParser::Limits limits;
  uint64_t header_timeout_ms = 10000;
  uint64_t idle_timeout_ms = 60000;
  uint64_t response_head_timeout_ms = 20000;
  uint64_t max_connections = 4096;
  size_t max_input_bytes = 64 * 1024;          // unparsed (pipelined) input buffered per connection
  size_t max_queued_response_bytes = 1 << 20;  // before the next pipelined request is handled
  // Body and content type for errors the server itself answers (400, 405,
  // 408, 411, 413, 414, 431, 503). The service installs OCI error JSON.
  std::function<std::string(int status, const std::string& message)> error_body;
  std::string error_content_type = "text/plain";
  // Send FileRange bytes with sendfile(2) (TCP connections only); off: write
  // them from memory (`data`). The daemon decides (config, or a probe).
  bool sendfile = false;
  // Called once per request as it finishes (ended, reset, or cut off), and
  // for each error the server answers itself. An observer: it must not
  // touch the connection. May be empty.
  std::function<void(const RequestRecord&)> on_done;
};

struct ServerStats {
  uint64_t accepted = 0;
  uint64_t refused_limit = 0;  // over max_connections
  uint64_t accept_errors = 0;  // EMFILE, ENFILE, ...
};

class Exchange;

// Where a streamed request body goes (Exchange::ReadBodyStream).
struct BodySink {
  // A piece of the body, decoded (chunked framing removed). Returning false
  // pauses reading until Exchange::ResumeBody().
  std::function<bool(std::string_view piece)> data;
  // The whole body arrived (after its last piece).
  std::function<void()> end;
};

// Where body bytes given to Exchange::Write also lie in a file, for
// sendfile(2); fd -1: in memory only. The file must stay unchanged at that
// range while the write's `keep` lives (see "Cached bytes by reference").
struct FileRange {
  int fd = -1;
  uint64_t offset = 0;
};

// What an Exchange sends through: the server's connection, or a test's
// stand-in (tests/unit/registry_fakes.h), so the code answering requests is
// tested without sockets. Each call has the contract of the Exchange method
// of the same name; the transport calls Exchange::Abort when it goes away.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual int ReadBody(Exchange* ex, uint64_t max_bytes,
                       std::function<void(std::string body)> done) = 0;
  virtual int ReadBodyStream(Exchange* ex, uint64_t max_bytes, BodySink sink) = 0;
  virtual void ResumeBody(Exchange* ex) = 0;
  // `body`, when not empty, is the whole body (content_length bytes), sent
  // in the same write as the head: one syscall for a small response.
  virtual void SendHead(int status, const std::vector<Header>& headers, uint64_t content_length,
                        std::string_view body) = 0;
  virtual void QueueWrite(const char* data, size_t len, std::shared_ptr<const void> keep,
                          std::function<void(bool ok)> done, FileRange file) = 0;
  virtual void EndExchange(Exchange* ex) = 0;
  virtual void ResetExchange(Exchange* ex) = 0;
};

class Exchange {
 public:
  Exchange(Transport* conn, Request request) : conn_(conn), request_(std::move(request)) {}
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  const Request& request() const { return request_; }
  bool is_head() const { return request_.method == "HEAD"; }
  // False once the connection is gone, the response was aborted, or End()/Reset() ran.
  bool active() const { return conn_ != nullptr; }
  bool head_sent() const { return head_sent_; }
  // For the access log and the metrics (RequestRecord).
  Outcome& outcome() { return outcome_; }
  int status() const { return status_; }
  uint64_t body_bytes() const { return body_bytes_; }

  // `cb` fires at most once: if the exchange is aborted (client gone, head
  // deadline passed, shutdown) before End() or Reset(). Never inside a call
  // on this exchange: a connection that fails inside Write() detaches the
  // exchange at once (active() is false) and fires `cb` on a later turn.
  void SetAbortCallback(std::function<void()> cb) { on_abort_ = std::move(cb); }

  // Reads the request body, at most `max_bytes` (Content-Length only).
  // Returns 0 and calls `done(body)` once, later, when it has arrived (never
  // if the exchange is aborted first); or returns the status to answer (411
  // chunked, 413 larger than max_bytes) and never calls `done`. Without a
  // body, `done("")` follows on a later turn. Call it at most once, before
  // SendHead.
  int ReadBody(uint64_t max_bytes, std::function<void(std::string body)> done);
  // Streams the request body (Content-Length or chunked) into `sink`, for
  // bodies too large to hold (blob uploads). Returns 0 and then calls
  // sink.data for each piece and sink.end once, all later (never inside
  // this call; never after an abort); or returns the status to answer (413
  // when Content-Length is above max_bytes) and calls nothing. A chunked
  // body that passes max_bytes ends the connection with 413. Without a
  // body, sink.end follows on a later turn. The client must keep sending:
  // a pause of idle_timeout between pieces ends it with 408 (time spent
  // paused by the sink does not count). Answers "100 Continue" when the
  // client asked for it. Call at most once, before SendHead.
  int ReadBodyStream(uint64_t max_bytes, BodySink sink);
  // After sink.data returned false: reading goes on (pieces follow on later turns).
  void ResumeBody();

  // Sends the status line and headers. Content-Length is added from
  // `content_length`, and "Connection: close" when the connection will close.
  void SendHead(int status, const std::vector<Header>& headers, uint64_t content_length);
  // Queues body bytes. Returns false if the exchange is no longer active; then
  // `done` is never called. Otherwise `done(ok)` fires exactly once, later,
  // when the kernel took the bytes (ok) or the connection failed (!ok).
  // `keep` owns the memory behind `data` and is released after `done` (for
  // bytes sent from `file`, once the receiver can no longer need the file's
  // pages: see "Cached bytes by reference").
  bool Write(const char* data, size_t len, std::shared_ptr<const void> keep,
             std::function<void(bool ok)> done, FileRange file = {});
  // The response is complete; the connection moves on to the next request.
  void End();
  // Ends the connection with a TCP reset, so the client sees an error rather
  // than a short body that could pass for complete.
  void Reset();
  // SendHead + body + End, for small responses: head and body go to the
  // kernel in one write. Instead of SendHead, not after it (then it does
  // nothing).
  void Respond(int status, const std::vector<Header>& headers, std::string_view body);

  // For the transport: it is gone (client closed, head deadline, shutdown).
  // Detaches the exchange and fires the abort callback, if any, once.
  void Abort();
  // For the transport: it no longer carries this exchange (it ended, or it
  // will be told of its abort later); active() is false from now on.
  void Detach() {
    conn_ = nullptr;
    on_body_ = nullptr;
    sink_ = {};
  }

 private:
  friend class Connection;  // hands over the body (on_body_)

  Transport* conn_;
  Request request_;
  bool head_sent_ = false;
  int status_ = 0;
  uint64_t body_bytes_ = 0;
  uint64_t content_length_ = 0;  // as SendHead announced it
  uint64_t started_us_ = 0;      // set by the connection
  Outcome outcome_;
  std::function<void()> on_abort_;
  std::function<void(std::string)> on_body_;
  BodySink sink_;
};

using Handler = std::function<void(const std::shared_ptr<Exchange>&)>;

class Server {
 public:
  // The Env must outlive the Server. REQUIRES: handler is set.
  Server(io::Env env, ServerOptions options, Handler handler);
  ~Server();  // REQUIRES: Shutdown() finished (or Listen was never called)
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens. Errors: IoError naming the address and the reason;
  // InvalidArgument for a host that is not an IP address (or localhost).
  util::Status Listen(const util::HostPort& addr);
  // Or: listens on a Unix socket at `path`, replacing a stale one. The socket
  // is created mode 0600 inside a private directory and renamed into place,
  // so it is never reachable with wider permissions. Errors: IoError.
  util::Status ListenUnix(const std::string& path);
  // Serves a TCP socket already bound and listening (socket activation:
  // LISTEN_FDS); the server owns `fd` from then on. Errors: IoError.
  util::Status ListenFd(int fd);
  int port() const { return port_; }
  // The address bound (Listen, ListenFd), as text: "127.0.0.1", "::".
  const std::string& host() const { return host_; }
  // Stops accepting, lets in-flight responses finish for up to grace_ms, then
  // closes whatever is left. `done` fires once, later, after every
  // connection and the listener closed.
  void Shutdown(uint64_t grace_ms, std::function<void()> done);
  size_t connection_count() const { return connections_.size(); }
  const ServerStats& stats() const { return stats_; }

 private:
  friend class Connection;
  static void OnConnection(uv_stream_t* listener, int status);
  void ConnectionClosed(Connection* c);
  void MaybeShutdownDone();
  void NoteRefused(const char* why, bool limit);
  // A closing connection's lent keeps: released at `release_ms` (server clock).
  void Linger(std::shared_ptr<const void> keep, uint64_t release_ms);
  void ReleaseLingering();

  io::Env env_;
  ServerOptions options_;
  Handler handler_;
  io::Handle<uv_tcp_t> tcp_listener_;
  io::Handle<uv_pipe_t> pipe_listener_;
  io::Handle<uv_timer_t> grace_timer_;
  bool unix_ = false;
  std::string unix_path_;  // unlinked at shutdown
  void CapConnectionsToFdLimit();
  void NoteBoundPort();
  std::string host_;
  enum class Phase { kIdle, kListening, kDraining, kDone } phase_ = Phase::kIdle;
  int port_ = 0;
  std::unordered_set<Connection*> connections_;
  std::function<void()> shutdown_done_;
  ServerStats stats_;
  util::LogThrottle refusals_log_;
  static constexpr size_t kReadBufferSize = 64 * 1024;
  static constexpr uint64_t kReservedFds =
      256;                        // of the open file limit, never used for client connections
  uint64_t fd_cap_ = UINT64_MAX;  // connections the open file limit allows (Listen)
  std::string fd_cap_reason_;
  std::unique_ptr<char[]> read_buf_;  // shared by the connections: see Connection::UpdateReading
  struct Lingering {
    std::shared_ptr<const void> keep;
    uint64_t release_ms;
  };
  std::vector<Lingering> lingering_;  // closed connections' lent keeps (sendfile)
  io::Handle<uv_timer_t> linger_timer_;

 public:
  static constexpr uint64_t kLendLingerMs = 1000;   // after the acknowledgement
  static constexpr uint64_t kLendOrphanMs = 60000;  // closed with bytes unacknowledged
  static constexpr size_t kMaxLingering = 1024;     // then a closing connection is reset instead
};

std::string StatusText(int status);

}  // namespace http
