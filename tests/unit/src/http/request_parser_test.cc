// Transcripts: bytes in, events out.
#include <catch2/catch.hpp>

#include <string>

#include "src/http/request_parser.h"

using http::RequestParser;
using Event = RequestParser::Event;

namespace {

struct Transcript {
  std::vector<http::Request> requests;
  std::vector<std::string> bodies;
  int error = 0;
};

constexpr int64_t kNoBodies = -1;

// Feeds `input` in pieces of `step` bytes, collecting requests. With
// body_limit >= 0 every body is asked for (ExpectBody) with that limit, as a
// handler that authenticated the head would.
Transcript Run(const std::string& input, size_t step = 1 << 20, RequestParser::Limits limits = {},
               int64_t body_limit = kNoBodies) {
  RequestParser p(limits);
  Transcript t;
  std::string pending;
  for (size_t off = 0; off < input.size(); off += step) {
    pending += input.substr(off, step);
    for (;;) {
      size_t used = 0;
      Event ev = p.Feed(pending, &used);
      pending.erase(0, used);
      if (ev == Event::kRequest) {
        t.requests.push_back(p.TakeRequest());
        if (t.requests.back().has_body && body_limit >= 0) {
          if (int rc = p.ExpectBody(static_cast<uint64_t>(body_limit)); rc != 0) {
            t.error = rc;
            return t;
          }
        }
        continue;
      }
      if (ev == Event::kBody) {
        t.bodies.push_back(p.TakeBody());
        continue;
      }
      if (ev == Event::kError) {
        t.error = p.error_status();
        return t;
      }
      break;
    }
  }
  return t;
}

}  // namespace

TEST_CASE("parser: one request, any split") {
  const std::string req = "GET /v2/ HTTP/1.1\r\nHost: x\r\nAccept: a\r\n\r\n";
  for (size_t step : {1, 2, 7, 1000}) {
    auto t = Run(req, step);
    REQUIRE(t.error == 0);
    REQUIRE(t.requests.size() == 1);
    CHECK(t.requests[0].method == "GET");
    CHECK(t.requests[0].target == "/v2/");
    CHECK(t.requests[0].keep_alive);
    CHECK(*t.requests[0].Find("host") == "x");
  }
}

TEST_CASE("parser: pipelined requests come out in order") {
  auto t =
      Run("GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c "
          "HTTP/1.1\r\nHost: x\r\n"
          "Connection: close\r\n\r\n");
  REQUIRE(t.requests.size() == 3);
  CHECK(t.requests[0].target == "/a");
  CHECK(t.requests[1].method == "HEAD");
  CHECK(t.requests[2].target == "/c");
  CHECK_FALSE(t.requests[2].keep_alive);
}

TEST_CASE("parser: repeated headers merge, names lowercase") {
  auto t =
      Run("GET / HTTP/1.1\r\nHost: x\r\nAccept: a\r\nACCEPT: b\r\naccept: c\r\nX-One: 1\r\n\r\n");
  REQUIRE(t.requests.size() == 1);
  CHECK(*t.requests[0].Find("accept") == "a, b, c");
  CHECK(*t.requests[0].Find("x-one") == "1");
  CHECK(t.requests[0].Find("missing") == nullptr);
}

TEST_CASE("parser: HTTP/1.0 closes unless keep-alive") {
  CHECK_FALSE(Run("GET / HTTP/1.0\r\n\r\n").requests.at(0).keep_alive);
  CHECK(Run("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").requests.at(0).keep_alive);
}

TEST_CASE("parser: a body nobody asked for is never read, and nothing after it is parsed") {
  auto t =
      Run("PUT /v2/a/manifests/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
          "GET /v2/ HTTP/1.1\r\n\r\n");
  REQUIRE(t.requests.size() == 1);
  CHECK(t.requests[0].has_body);
  CHECK(t.requests[0].content_length == 5);
  CHECK(t.bodies.empty());
  CHECK(t.error == 400);  // the server has closed the connection by then
}

TEST_CASE("parser: an asked-for Content-Length body, at every split, then the next request") {
  std::string two =
      "POST /_georeg/v1/msg HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
      "POST /_georeg/v1/msg HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
      "GET /v2/ HTTP/1.1\r\n\r\n";
  for (size_t step = 1; step <= two.size(); ++step) {
    INFO(step);
    auto t = Run(two, step, {}, 100);
    REQUIRE(t.error == 0);
    REQUIRE(t.requests.size() == 3);
    REQUIRE(t.bodies.size() == 2);
    CHECK(t.bodies[0] == "hello");
    CHECK(t.bodies[1] == "abc");
    CHECK(t.requests[2].target == "/v2/");
    CHECK_FALSE(t.requests[2].has_body);
  }
}

TEST_CASE("parser: bodies are bounded by the route's limit, chunked ones refused") {
  CHECK(Run("POST /_georeg/v1/msg HTTP/1.1\r\nTransfer-Encoding: "
            "chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            100, {}, 100)
            .error == 411);
  CHECK(Run("POST /_georeg/v1/msg HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 100, {}, 4).error ==
        413);
  auto ok = Run("POST /_georeg/v1/msg HTTP/1.1\r\nContent-Length: 4\r\n\r\nhell", 100, {}, 4);
  CHECK(ok.error == 0);
  CHECK(ok.bodies == std::vector<std::string>{"hell"});
}

TEST_CASE("parser: malformed input is 400") {
  for (const char* bad :
       {"GET / HTTP/1.1\nHost: x\n\n",                    // bare LF
        "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",   // obs-fold
        "GET / HTTP/1.1\r\nHost: x\r\n\tfolded\r\n\r\n",  // obs-fold with a tab
        "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        "G@T / HTTP/1.1\r\n\r\n", "GET / HTTP/9.9\r\n\r\n", "GET  HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
        "GET /v2/\r\n\r\n",  // HTTP/0.9
        "GET /v2/ HTTP/0.9\r\n\r\n", "GET /v2/ HTTP/2.0\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n"}) {
    INFO(bad);
    CHECK(Run(bad, 1 << 20, {}, 1 << 20).error == 400);
  }
  using namespace std::string_literals;
  for (const std::string& nul : {"GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"s, "GET /\0 HTTP/1.1\r\n\r\n"s,
                                 "GET / HTTP/1.1\r\nX\0: b\r\n\r\n"s}) {
    for (size_t step : {1, 1000}) CHECK(Run(nul, step).error == 400);
  }
}

TEST_CASE("parser: a chunk-size overflow is never parsed: chunked bodies are refused at the head") {
  CHECK(Run("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", 1 << 20,
            {}, 1 << 20)
            .error == 411);
}

TEST_CASE("parser: CONNECT and upgrades are 405") {
  CHECK(Run("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n").error == 405);
  CHECK(Run("GET /v2/ HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n").error == 405);
}

TEST_CASE("parser: obs-fold is refused however the bytes are split; split values are not folds") {
  const std::string fold = "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n";
  const std::string split = "GET / HTTP/1.1\r\nHost: x  y z\r\n\r\n";
  for (size_t step : {1, 2, 3, 5, 8, 13, 1000}) {
    INFO(step);
    CHECK(Run(fold, step).error == 400);
    auto t = Run(split, step);
    REQUIRE(t.requests.size() == 1);
    CHECK(*t.requests[0].Find("host") == "x  y z");
  }
}

TEST_CASE("parser: limits give 414 and 431") {
  RequestParser::Limits limits;
  limits.max_request_line = 100;
  limits.max_header_bytes = 200;
  limits.max_headers = 5;
  CHECK(Run("GET /" + std::string(200, 'a') + " HTTP/1.1\r\n\r\n", 1 << 20, limits).error == 414);
  CHECK(Run("GET / HTTP/1.1\r\nX: " + std::string(300, 'a') + "\r\n\r\n", 1 << 20, limits).error ==
        431);
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 6; ++i) many += "X" + std::to_string(i) + ": y\r\n";
  CHECK(Run(many + "\r\n", 1 << 20, limits).error == 431);
  CHECK(Run(many + "\r\n", 3, limits).error == 431);  // same when trickled in
}

namespace {
// Streams every body (ExpectBodyStream): pieces joined per request.
Transcript RunStreaming(const std::string& input, size_t step, uint64_t limit,
                        size_t* max_piece = nullptr) {
  RequestParser p({});
  Transcript t;
  std::string pending, current;
  for (size_t off = 0; off < input.size(); off += step) {
    pending += input.substr(off, step);
    for (;;) {
      size_t used = 0;
      Event ev = p.Feed(pending, &used);
      pending.erase(0, used);
      if (p.streaming_body()) {
        std::string piece = p.TakeBody();
        if (max_piece) *max_piece = std::max(*max_piece, piece.size());
        current += piece;
      }
      if (ev == Event::kRequest) {
        t.requests.push_back(p.TakeRequest());
        if (t.requests.back().has_body) {
          if (int rc = p.ExpectBodyStream(limit); rc != 0) {
            t.error = rc;
            return t;
          }
        }
        continue;
      }
      if (ev == Event::kBody) {
        current += p.TakeBody();
        t.bodies.push_back(std::move(current));
        current.clear();
        continue;
      }
      if (ev == Event::kError) {
        t.error = p.error_status();
        return t;
      }
      break;
    }
  }
  return t;
}
}  // namespace

TEST_CASE(
    "parser: streamed bodies, chunked or not, at every split, in pieces no larger than what was "
    "fed") {
  std::string in =
      "PATCH /v2/a/blobs/uploads/u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
      "PUT /v2/a/blobs/uploads/u HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
      "GET /v2/ HTTP/1.1\r\n\r\n";
  for (size_t step = 1; step <= in.size(); ++step) {
    INFO(step);
    size_t max_piece = 0;
    auto t = RunStreaming(in, step, 1000, &max_piece);
    REQUIRE(t.error == 0);
    REQUIRE(t.requests.size() == 3);
    REQUIRE(t.bodies.size() == 2);
    CHECK(t.bodies[0] == "hello world");
    CHECK(t.bodies[1] == "abc");
    CHECK(max_piece <= step);
    CHECK(t.requests[2].target == "/v2/");
  }
}

TEST_CASE(
    "parser: a streamed body is bounded: at the head by Content-Length, mid-stream when chunked") {
  CHECK(RunStreaming("PUT / HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world", 100, 10).error ==
        413);
  CHECK(RunStreaming("PATCH / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello "
                     "\r\n5\r\nworld\r\n0\r\n\r\n",
                     7, 10)
            .error == 413);
  // A chunk size that overflows is a parse error, never a huge allocation.
  CHECK(RunStreaming("PATCH / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
                     100, 1 << 20)
            .error == 400);
}
