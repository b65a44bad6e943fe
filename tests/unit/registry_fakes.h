// Stand-ins for what the registry's orchestration talks to, so fills and
// manifest resolution run in unit tests on a loop with no sockets: a client
// (http::Transport under a real http::Exchange), a source of bytes (an
// upstream or a peer: upstream::InFlight whose callbacks the test drives),
// an upstream registry (upstream::Requester handing out such sources), and a
// rig with a real cache (LMDB in a temporary directory), writer thread,
// CacheKeeper and a FakeClock. Every rig ends with uv_loop_close() == 0.
#pragma once

#include <unistd.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cache/store.h"
#include "cache/writer.h"
#include "push/htpasswd.h"
#include "src/http/server.h"
#include "src/io/clock.h"
#include "src/io/deferred.h"
#include "src/registry/cache_keeper.h"
#include "src/registry/writer_bridge.h"
#include "src/upstream/session.h"

namespace fakes {

// The push user of the registry tests: alice:s3cret, as a client sends it.
inline const std::vector<http::Header> kCreds = {{"authorization", "Basic YWxpY2U6czNjcmV0"}};
// Writes an htpasswd file naming that user (bcrypt cost 4: fast in tests).
inline void WriteHtpasswd(const std::string& path) {
  auto hash = push::BcryptHash("s3cret", 4);
  REQUIRE(hash.ok());
  FILE* f = fopen(path.c_str(), "w");
  REQUIRE(f);
  fprintf(f, "alice:%s\n", hash->c_str());
  REQUIRE(fclose(f) == 0);
}

// A client: records what the server sent. Writes complete on a later turn
// (as the kernel would take them), or only on Release() while holding.
class Client : public http::Transport, public std::enable_shared_from_this<Client> {
 public:
  // With a `body`, the request has one (Content-Length), and ReadBody or
  // ReadBodyStream deliver it whole on a later turn; without, ReadBodyStream
  // waits for the test to feed `sink`.
  static std::shared_ptr<Client> Make(io::Deferred* deferred, std::string target,
                                      std::vector<http::Header> headers = {},
                                      std::string method = "GET",
                                      std::optional<std::string> body = std::nullopt) {
    auto c = std::shared_ptr<Client>(new Client(deferred));
    http::Request req;
    req.method = std::move(method);
    req.target = std::move(target);
    req.headers = std::move(headers);
    if (body) {
      req.has_body = !body->empty();
      req.content_length = body->size();
      c->request_body_ = std::move(body);
    }
    c->ex = std::make_shared<http::Exchange>(c.get(), std::move(req));
    return c;
  }
  ~Client() override { pending_.clear(); }

  std::shared_ptr<http::Exchange> ex;
  int status = 0;
  uint64_t length = 0;
  std::vector<http::Header> headers;
  std::string body;
  bool ended = false, reset = false;
  bool holding = false;  // writes wait for Release()

  // A response header by name, any case (the server sends "Content-Range"); null if absent.
  const std::string* Header(std::string_view name) const {
    for (const auto& h : headers) {
      if (h.name.size() == name.size() &&
          std::equal(name.begin(), name.end(), h.name.begin(),
                     [](char a, char b) { return std::tolower(a) == std::tolower(b); }))
        return &h.value;
    }
    return nullptr;
  }
  bool done() const { return ended || reset; }
  // Completes the held writes (later, like the real thing) and stops holding.
  void Release() {
    holding = false;
    Schedule();
  }
  // The client goes away: as the server's connection does, the exchange is
  // detached now and told on a later turn; writes in flight fail.
  void Leave() {
    if (!ex->active()) return;
    ex->Detach();
    failing_ = true;
    Schedule();
    auto e = ex;
    deferred_->Post([e] { e->Abort(); });
  }

  // ---- http::Transport ----
  int ReadBody(http::Exchange*, uint64_t max, std::function<void(std::string)> done) override {
    if (!request_body_) return 500;
    if (request_body_->size() > max) return 413;
    deferred_->Post([done, b = *request_body_] { done(b); });
    return 0;
  }
  // A streamed body: the request's own (whole, on a later turn), or what the
  // test feeds through `sink`.
  int ReadBodyStream(http::Exchange*, uint64_t max, http::BodySink s) override {
    sink = std::move(s);
    body_limit = max;
    if (request_body_) {
      std::weak_ptr<Client> weak = shared_from_this();
      deferred_->Post([weak] {
        auto c = weak.lock();
        if (!c || !c->sink.data) return;
        if (!c->request_body_->empty()) c->sink.data(*c->request_body_);
        if (c->sink.end) c->sink.end();
      });
    }
    return 0;
  }
  void ResumeBody(http::Exchange*) override { ++resumes; }
  http::BodySink sink;
  uint64_t body_limit = 0;
  int resumes = 0;
  int file_writes = 0;  // writes that named a file range (sendfile candidates)
  void SendHead(int st, const std::vector<http::Header>& h, uint64_t len,
                std::string_view inline_body) override {
    status = st;
    headers = h;
    length = len;
    body.append(inline_body);
  }
  void QueueWrite(const char* data, size_t len, std::shared_ptr<const void> keep,
                  std::function<void(bool)> done, http::FileRange file) override {
    if (file.fd >= 0) ++file_writes;
    body.append(data, len);
    pending_.push_back({std::move(done), std::move(keep)});
    if (!holding) Schedule();
  }
  void EndExchange(http::Exchange*) override {
    ended = true;
    ex->Detach();
  }
  void ResetExchange(http::Exchange*) override {
    reset = true;
    ex->Detach();
    failing_ = true;
    Schedule();
  }

 private:
  struct Pending {
    std::function<void(bool)> done;
    std::shared_ptr<const void> keep;
  };
  explicit Client(io::Deferred* d) : deferred_(d) {}
  std::optional<std::string> request_body_;
  void Schedule() {
    std::weak_ptr<Client> weak = shared_from_this();
    deferred_->Post(weak, [this] {
      if (holding && !failing_) return;
      auto batch = std::move(pending_);
      pending_.clear();
      for (auto& p : batch)
        if (p.done) p.done(!failing_);
    });
  }
  io::Deferred* deferred_;
  std::vector<Pending> pending_;
  bool failing_ = false;
};

// A source's response, driven by the test. Calls after Cancel() are
// dropped, as the real client drops them.
class Source : public upstream::InFlight {
 public:
  std::string method, path;
  uint64_t offset = 0;  // a fill's Range start
  upstream::Callbacks cb;
  bool paused = false, cancelled = false, completed = false;
  int pauses = 0, resumes = 0;

  void Pause() override {
    paused = true;
    ++pauses;
  }
  void Resume() override {
    paused = false;
    ++resumes;
  }
  void Cancel() override {
    cancelled = true;
    Release();
  }

  void Head(int status, std::optional<uint64_t> length, std::vector<http::Header> headers = {}) {
    if (over()) return;
    upstream::ResponseHead h;
    h.status = status;
    h.content_length = length;
    h.headers = std::move(headers);
    Deliver([&] { cb.on_head(h); });
  }
  void Body(std::string_view bytes) {
    if (!over()) Deliver([&] { cb.on_body(bytes.data(), bytes.size()); });
  }
  void Done(util::Status st = util::Status::Ok()) {
    if (over()) return;
    completed = true;
    Deliver([&] { cb.on_complete(std::move(st)); });
  }
  // Head, whole body, end.
  void Answer(int status, const std::string& body, std::vector<http::Header> headers = {}) {
    Head(status, body.size(), std::move(headers));
    Body(body);
    Done();
  }

 private:
  bool over() const { return cancelled || completed; }
  // Like the real clients, the callbacks (which hold whoever started the
  // request) are dropped once it is over, never while one of them runs.
  template <typename Fn>
  void Deliver(Fn fn) {
    ++depth_;
    fn();
    --depth_;
    Release();
  }
  void Release() {
    if (depth_ == 0 && over()) cb = {};
  }
  int depth_ = 0;
};

// An upstream registry: every request becomes a Source in `calls`.
class Requester : public upstream::Requester {
 public:
  std::vector<std::shared_ptr<Source>> calls;
  std::shared_ptr<upstream::InFlight> Send(std::string method, std::string path,
                                           std::vector<http::Header>, const std::string&,
                                           upstream::Callbacks cb,
                                           upstream::FetchOptions) override {
    auto s = std::make_shared<Source>();
    s->method = std::move(method);
    s->path = std::move(path);
    s->cb = std::move(cb);
    calls.push_back(s);
    return s;
  }
};

struct Rig {
  std::string dir;
  uv_loop_t loop;
  io::FakeClock clock;
  std::unique_ptr<io::Deferred> deferred;
  std::unique_ptr<cache::Store> store;
  std::unique_ptr<cache::Writer> writer;
  std::unique_ptr<registry::WriterBridge> bridge;
  std::unique_ptr<registry::CacheKeeper> keeper;
  // uv_run(NOWAIT) polls for I/O only while a referenced handle is active;
  // the writer's async handle is unreferenced (as in the daemon), so this
  // timer keeps the loop polling while RunUntil waits for the writer.
  io::Handle<uv_timer_t> keepalive;

  // `map_size`: data.mdb's largest size (a small one fills the disk early).
  explicit Rig(uint64_t budget = 1ull << 30, uint64_t map_size = 256ull << 20) {
    char tmpl[] = "/tmp/georeg-registry-test.XXXXXX";
    dir = mkdtemp(tmpl);
    uv_loop_init(&loop);
    deferred = std::make_unique<io::Deferred>(&loop);
    auto s = cache::Store::Open({dir, budget, map_size});
    REQUIRE(s.ok());
    store = std::move(*s);
    writer = std::make_unique<cache::Writer>();
    bridge = std::make_unique<registry::WriterBridge>(&loop, writer.get());
    config::Cache c;
    c.dir = dir;
    c.max_size = budget;
    c.min_free_fraction = 0;
    c.scrub_rate = 0;
    keeper = std::make_unique<registry::CacheKeeper>(env(), c, store.get(), bridge.get());
    REQUIRE(keeper->Start().ok());
    keepalive.Init(&loop, this, uv_timer_init);
    uv_timer_start(
        keepalive.get(), [](uv_timer_t*) {}, 3'600'000, 3'600'000);
  }
  // A test that failed half-way still closes everything (and says nothing more).
  ~Rig() {
    if (!closed_) Close();
    std::filesystem::remove_all(dir);
  }
  io::Env env() { return {&loop, &clock, deferred.get()}; }

  // Turns the loop until `pred` holds (the writer thread answers through an
  // async handle, so this waits a little between turns); false after ~10 s.
  bool RunUntil(const std::function<bool()>& pred) {
    for (int i = 0; i < 10000; ++i) {
      uv_run(&loop, UV_RUN_NOWAIT);
      if (pred()) return true;
      ::usleep(1000);
    }
    return false;
  }
  // Everything the writer was given is done and answered.
  bool Settle() {
    return RunUntil([this] { return bridge->pending() == 0 && deferred->pending() == 0; });
  }
  // Shuts down as the daemon does; 0 when no handle was left open.
  int Close() {
    closed_ = true;
    keepalive.Close();
    keeper->Stop();
    Settle();
    writer.reset();
    bridge->Close();
    deferred->Close();
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop);
  }

 private:
  bool closed_ = false;
};

}  // namespace fakes
