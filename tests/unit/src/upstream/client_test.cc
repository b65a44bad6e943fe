// The upstream client on a real loop against the project's own server on
// 127.0.0.1: the callback contract, the address policy, deadlines and body
// bounds. Every test ends with every handle closed (uv_loop_close() == 0).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <thread>

#include "src/http/server.h"
#include "src/io/clock.h"
#include "src/io/deferred.h"
#include "src/upstream/client.h"

namespace {

struct Loop {
  uv_loop_t uv;
  std::unique_ptr<io::LoopClock> clock;
  std::unique_ptr<io::Deferred> deferred;
  Loop() {
    uv_loop_init(&uv);
    clock = std::make_unique<io::LoopClock>(&uv);
    deferred = std::make_unique<io::Deferred>(&uv);
  }
  io::Env env() { return {&uv, clock.get(), deferred.get()}; }
  // Closes the queue, runs the loop dry; 0 when nothing was left open.
  int Close() {
    deferred->Close();
    uv_run(&uv, UV_RUN_DEFAULT);
    return uv_loop_close(&uv);
  }
};

struct Outcome {
  int heads = 0, completes = 0, status = 0;
  std::string body;
  util::Status st;
};

upstream::Callbacks Record(Outcome* o, std::function<void()> then = {}) {
  upstream::Callbacks cb;
  cb.on_head = [o](const upstream::ResponseHead& h) {
    ++o->heads;
    o->status = h.status;
  };
  cb.on_body = [o](const char* d, size_t n) { o->body.append(d, n); };
  cb.on_complete = [o, then](util::Status st) {
    ++o->completes;
    o->st = st;
    if (then) then();
  };
  return cb;
}

upstream::Endpoint Local(int port) {
  upstream::Endpoint ep;
  ep.host = "127.0.0.1";
  ep.port = static_cast<uint16_t>(port);
  ep.connect_timeout_ms = 2000;
  ep.response_timeout_ms = 2000;
  return ep;
}

}  // namespace

TEST_CASE("client: an early failure never calls back inside Start (a 300-byte host name)") {
  Loop loop;
  upstream::Endpoint ep;
  ep.host = std::string(300, 'a') + ".example";  // uv_getaddrinfo refuses this at once
  upstream::Client client(loop.env(), ep);
  Outcome o;
  auto f = client.Start("GET", "/token", {}, Record(&o));
  CHECK(o.completes == 0);  // not inside the call
  uv_run(&loop.uv, UV_RUN_DEFAULT);
  CHECK(o.completes == 1);
  CHECK(o.st.code() == util::Code::kUnavailable);
  client.Shutdown();
  CHECK(loop.Close() == 0);
}

TEST_CASE("client: a refused address, the address policy, and Shutdown with a request in flight") {
  Loop loop;
  upstream::Endpoint ep = Local(1);  // nothing listens on port 1
  upstream::Client refused(loop.env(), ep);
  ep.policy.forbid_non_public = true;
  upstream::Client policed(loop.env(), ep);
  Outcome a, b;
  refused.Start("GET", "/", {}, Record(&a));
  policed.Start("GET", "/", {}, Record(&b));
  uv_run(&loop.uv, UV_RUN_DEFAULT);
  CHECK(a.completes == 1);
  CHECK(a.st.message().find("connect") != std::string::npos);
  CHECK(b.completes == 1);
  CHECK(b.st.message().find("loopback") != std::string::npos);
  refused.Shutdown();
  policed.Shutdown();
  CHECK(loop.Close() == 0);
}

TEST_CASE(
    "client: a response, a reused connection, a deadline against a drip, a body over its bound") {
  Loop loop;
  http::ServerOptions so;
  io::Handle<uv_timer_t> drip;
  std::shared_ptr<http::Exchange> dripping;
  http::Server server(loop.env(), so, [&](const std::shared_ptr<http::Exchange>& ex) {
    const std::string& t = ex->request().target;
    if (t == "/ok") {
      ex->Respond(200, {}, "hello");
    } else if (t == "/huge") {
      ex->SendHead(200, {}, 2ull << 30);  // announces 2 GiB
      ex->Reset();
    } else if (t == "/drip") {
      // One byte every 100 ms of a 1000-byte body: each pause is short, the whole is slow.
      ex->SendHead(200, {}, 1000);
      dripping = ex;
      drip.Init(&loop.uv, &dripping, uv_timer_init);
      uv_timer_start(
          drip.get(),
          [](uv_timer_t* t) {
            auto* ex = static_cast<std::shared_ptr<http::Exchange>*>(t->data);
            static const char kByte = 'x';
            if ((*ex)->active()) (*ex)->Write(&kByte, 1, nullptr, nullptr);
          },
          100, 100);
    }
  });
  REQUIRE(server.Listen({"127.0.0.1", 0}).ok());
  upstream::Client client(loop.env(), Local(server.port()));

  Outcome ok1, ok2;
  client.Start("GET", "/ok", {},
               Record(&ok1, [&] { client.Start("GET", "/ok", {}, Record(&ok2)); }));
  Outcome huge;
  upstream::FetchOptions bounded;
  bounded.max_body = 1 << 20;
  client.Start("GET", "/huge", {}, Record(&huge), {}, bounded);
  Outcome slow;
  upstream::FetchOptions deadline;
  deadline.deadline_ms = 500;
  client.Start("GET", "/drip", {},
               Record(&slow,
                      [&] {
                        drip.Close();
                        if (dripping) dripping->Reset();
                        dripping.reset();
                        client.Shutdown();
                        server.Shutdown(0, [] {});
                      }),
               {}, deadline);
  uint64_t start = uv_now(&loop.uv);
  uv_run(&loop.uv, UV_RUN_DEFAULT);

  CHECK(ok1.completes == 1);
  CHECK(ok1.st.ok());
  CHECK(ok1.body == "hello");
  CHECK(ok2.completes == 1);
  CHECK(ok2.body == "hello");
  CHECK(huge.completes == 1);
  CHECK(huge.heads == 0);  // refused at the head, never handed on
  CHECK(huge.st.code() == util::Code::kInvalidArgument);
  CHECK(slow.completes == 1);
  CHECK(slow.st.code() == util::Code::kTimeout);
  CHECK(slow.body.size() < 20);
  CHECK(uv_now(&loop.uv) - start < 1500);
  CHECK(loop.Close() == 0);
}

TEST_CASE("client: Shutdown completes a request in flight once, later, with Aborted") {
  Loop loop;
  http::ServerOptions so;
  so.response_head_timeout_ms = 60000;
  std::shared_ptr<http::Exchange> held;
  http::Server server(loop.env(), so,
                      [&](const std::shared_ptr<http::Exchange>& ex) { held = ex; });
  REQUIRE(server.Listen({"127.0.0.1", 0}).ok());
  upstream::Client client(loop.env(), Local(server.port()));
  Outcome o;
  client.Start("GET", "/never", {}, Record(&o));
  io::Handle<uv_timer_t> t;
  struct Ctx {
    upstream::Client* client;
    Outcome* o;
    http::Server* server;
    bool inside = false;
  } ctx{&client, &o, &server};
  t.Init(&loop.uv, &ctx, uv_timer_init);
  uv_timer_start(
      t.get(),
      [](uv_timer_t* h) {
        auto* c = static_cast<Ctx*>(h->data);
        c->client->Shutdown();
        c->inside = c->o->completes != 0;
        c->server->Shutdown(0, [] {});
      },
      200, 0);
  uv_run(&loop.uv, UV_RUN_DEFAULT);
  t.Close();
  CHECK_FALSE(ctx.inside);
  CHECK(o.completes == 1);
  CHECK(o.st.code() == util::Code::kAborted);
  Outcome after;
  client.Start("GET", "/", {}, Record(&after));
  CHECK(after.completes == 0);
  uv_run(&loop.uv, UV_RUN_DEFAULT);
  CHECK(after.completes == 1);
  CHECK(after.st.code() == util::Code::kAborted);
  CHECK(loop.Close() == 0);
}

namespace {
// A blocking client on its own thread: sends `request`, waits for
// `wait_for` in the reply before sending `body`, returns all it read.
std::string Converse(int port, const std::string& request, const std::string& wait_for,
                     const std::string& body) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return "connect failed";
  auto send_all = [fd](const std::string& s) {
    for (size_t off = 0; off < s.size();) {
      ssize_t n =
          ::send(fd, s.data() + off, std::min<size_t>(s.size() - off, 100000), MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  };
  std::string got;
  char buf[4096];
  send_all(request);
  while (!wait_for.empty() && got.find(wait_for) == std::string::npos) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, n);
  }
  send_all(body);
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, n);
    if (got.find("\r\n\r\ndone") != std::string::npos) break;
  }
  ::close(fd);
  return got;
}
}  // namespace

TEST_CASE("server: a streamed chunked body with 100-continue, paused by its sink and resumed") {
  Loop loop;
  http::ServerOptions so;
  so.idle_timeout_ms = 5000;
  uint64_t received = 0;
  size_t pieces = 0, largest = 0, pauses = 0;
  io::Handle<uv_timer_t> resume;
  std::shared_ptr<http::Exchange> held;
  bool inside_call = false, called_inside = false;
  http::Server server(loop.env(), so, [&](const std::shared_ptr<http::Exchange>& ex) {
    held = ex;
    inside_call = true;
    int rc = ex->ReadBodyStream(
        64ull << 20,
        {[&](std::string_view piece) {
           called_inside |= inside_call;
           received += piece.size();
           largest = std::max(largest, piece.size());
           if (++pieces % 5) return true;
           ++pauses;  // a slow writer: resume 5 ms later
           uv_timer_start(
               resume.get(),
               [](uv_timer_t* t) {
                 (*static_cast<std::shared_ptr<http::Exchange>*>(t->data))->ResumeBody();
               },
               5, 0);
           return false;
         },
         [&] {
           called_inside |= inside_call;
           held->Respond(201, {}, "done");
           server.Shutdown(0, [] {});
         }});
    inside_call = false;
    CHECK(rc == 0);
  });
  resume.Init(&loop.uv, &held, uv_timer_init);
  REQUIRE(server.Listen({"127.0.0.1", 0}).ok());
  std::string body;
  const size_t kChunk = 300000, kChunks = 10;
  for (size_t i = 0; i < kChunks; ++i) {
    char size[32];
    snprintf(size, sizeof size, "%zx\r\n", kChunk);
    body += size + std::string(kChunk, static_cast<char>('a' + i)) + "\r\n";
  }
  body += "0\r\n\r\n";
  std::string reply;
  std::thread client([&] {
    reply = Converse(server.port(),
                     "PATCH /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: "
                     "100-continue\r\n\r\n",
                     "100 Continue\r\n\r\n", body);
  });
  uv_run(&loop.uv, UV_RUN_DEFAULT);
  client.join();
  resume.Close();
  held.reset();
  CHECK(reply.rfind("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n", 0) == 0);
  CHECK(received == kChunk * kChunks);
  CHECK(pauses > 0);
  CHECK(largest <= 2 * (64 << 10));  // never more than the input buffered per connection
  CHECK_FALSE(called_inside);
  CHECK(loop.Close() == 0);
}

TEST_CASE(
    "server: every request is reported once as it finishes, with its status, bytes and outcome") {
  Loop loop;
  http::ServerOptions so;
  std::vector<std::string> seen;
  so.on_done = [&](const http::RequestRecord& r) {
    seen.push_back(std::string(r.method) + " " + std::string(r.target.substr(0, 16)) + " " +
                   std::to_string(r.status) + " " + std::to_string(r.body_bytes) + " " +
                   std::to_string(int(r.ending)) + " " + std::string(r.outcome.kind) + "/" +
                   std::string(r.outcome.result) + "/" + std::string(r.outcome.source));
  };
  http::Server server(loop.env(), so, [&](const std::shared_ptr<http::Exchange>& ex) {
    if (ex->request().target == "/ok") {
      ex->outcome() = {"blob", "hit", "cache"};
      ex->Respond(200, {}, "hello");
    } else {
      ex->SendHead(200, {}, 100);
      ex->Write("abc", 3, nullptr, nullptr);
      ex->Reset();
    }
  });
  REQUIRE(server.Listen({"127.0.0.1", 0}).ok());
  upstream::Client client(loop.env(), Local(server.port()));
  Outcome ok, cut, toolong;
  int left = 3;
  auto done = [&] {
    if (--left > 0) return;
    client.Shutdown();
    server.Shutdown(0, [] {});
  };
  client.Start("GET", "/ok", {}, Record(&ok, done));
  client.Start("GET", "/cut", {}, Record(&cut, done));
  client.Start("GET", "/" + std::string(9000, 'x'), {},
               Record(&toolong, done));  // the server's own 414
  uv_run(&loop.uv, UV_RUN_DEFAULT);
  CHECK(ok.status == 200);
  CHECK(toolong.status == 414);
  std::sort(seen.begin(), seen.end());
  REQUIRE(seen.size() == 3);
  CHECK(seen[0] == "  414 0 0 other//");  // answered before a request was parsed
  CHECK(seen[1] == "GET /cut 200 3 1 other//");
  CHECK(seen[2] == "GET /ok 200 5 0 blob/hit/cache");
  CHECK(loop.Close() == 0);
}

TEST_CASE(
    "server: a client that closes right after the last byte, before End(), got a complete "
    "response") {
  Loop loop;
  http::ServerOptions so;
  std::vector<int> endings;
  so.on_done = [&](const http::RequestRecord& r) { endings.push_back(int(r.ending)); };
  std::shared_ptr<http::Exchange> held, partial;
  http::Server server(loop.env(), so, [&](const std::shared_ptr<http::Exchange>& ex) {
    ex->SendHead(200, {}, 5);
    if (ex->request().target == "/full") {
      ex->Write("hello", 5, nullptr, nullptr);  // all of it, and no End() yet
      held = ex;
    } else {
      ex->Write("he", 2, nullptr, nullptr);  // part of it
      partial = ex;
    }
  });
  REQUIRE(server.Listen({"127.0.0.1", 0}).ok());
  upstream::Client full_client(loop.env(), Local(server.port()));
  upstream::Client cut_client(loop.env(), Local(server.port()));
  Outcome full, cut;
  full_client.Start("GET", "/full", {}, Record(&full, [&] { full_client.Shutdown(); }));
  upstream::FetchOptions quick;
  quick.deadline_ms = 300;  // gives up on the missing bytes, closing its connection
  cut_client.Start("GET", "/cut", {},
                   Record(&cut,
                          [&] {
                            cut_client.Shutdown();
                            server.Shutdown(200, [] {});
                          }),
                   {}, quick);
  uv_run(&loop.uv, UV_RUN_DEFAULT);
  CHECK(full.body == "hello");
  REQUIRE(endings.size() == 2);
  std::sort(endings.begin(), endings.end());
  CHECK(endings[0] == int(http::RequestRecord::Ending::kEnded));    // /full
  CHECK(endings[1] == int(http::RequestRecord::Ending::kAborted));  // /cut
  held.reset();
  partial.reset();
  CHECK(loop.Close() == 0);
}

TEST_CASE(
    "server: file ranges go out by sendfile, in order with memory writes; keeps outlive their "
    "writes") {
  // A file of 6 MiB: more than a socket buffer, so sendfile meets EAGAIN and waits for room.
  char path[] = "/tmp/georeg-sendfile-XXXXXX";
  int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  ::unlink(path);
  std::string content(6 << 20, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>('a' + (i * 7) % 26);
  REQUIRE(::pwrite(fd, content.data(), content.size(), 0) == ssize_t(content.size()));
  const size_t first = 1 << 20,
               second = content.size() - first - 100;  // the middle 100 bytes from memory

  Loop loop;
  http::ServerOptions so;
  so.sendfile = true;
  int dones = 0, failed = 0;
  bool called_inside = false;
  bool inside = false;  // true while the handler runs (outlives it: the callbacks read it later)
  std::weak_ptr<int> watch;
  http::Server server(loop.env(), so, [&](const std::shared_ptr<http::Exchange>& ex) {
    auto keep = std::make_shared<int>(0);  // only the writes hold it
    watch = keep;
    ex->SendHead(200, {}, content.size());
    inside = true;
    auto done = [&](bool ok) {
      ++dones;
      failed += !ok;
      called_inside |= inside;
    };
    ex->Write(content.data(), first, keep, done, {fd, 0});
    ex->Write(content.data() + first, 100, nullptr, done);  // memory, behind a sendfile
    ex->Write(content.data() + first + 100, second, keep, done, {fd, first + 100});
    inside = false;
    std::weak_ptr<http::Exchange> weak = ex;
    loop.deferred->Post([weak] {
      if (auto e = weak.lock()) e->End();
    });
  });
  REQUIRE(server.Listen({"127.0.0.1", 0}).ok());
  upstream::Client client(loop.env(), Local(server.port()));
  Outcome got;
  bool alive_after_response = false;
  client.Start("GET", "/blob", {}, Record(&got, [&] {
                 alive_after_response =
                     !watch.expired();  // lent until acknowledged and a moment more
                 client.Shutdown();
                 server.Shutdown(0, [] {});
               }));
  uv_run(&loop.uv, UV_RUN_DEFAULT);
  ::close(fd);
  CHECK(got.status == 200);
  CHECK(got.body.size() == content.size());
  CHECK(got.body == content);
  CHECK(dones == 3);
  CHECK(failed == 0);
  CHECK_FALSE(called_inside);
  CHECK(alive_after_response);
  CHECK(watch.expired());  // the server let go of it at shutdown
  CHECK(loop.Close() == 0);
}
