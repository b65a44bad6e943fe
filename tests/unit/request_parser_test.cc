// Transcripts: bytes in, events out.
#include <catch2/catch.hpp>

#include "src/http/request_parser.h"

using http::RequestParser;
using Event = RequestParser::Event;

namespace {

struct Transcript {
  std::vector<http::Request> requests;
  int error = 0;
};

// Feeds `input` in pieces of `step` bytes, collecting requests.
Transcript Run(const std::string& input, size_t step = 1 << 20, RequestParser::Limits limits = {}) {
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
  auto t = Run("GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n"
               "Connection: close\r\n\r\n");
  REQUIRE(t.requests.size() == 3);
  CHECK(t.requests[0].target == "/a");
  CHECK(t.requests[1].method == "HEAD");
  CHECK(t.requests[2].target == "/c");
  CHECK_FALSE(t.requests[2].keep_alive);
}

TEST_CASE("parser: repeated headers merge, names lowercase") {
  auto t = Run("GET / HTTP/1.1\r\nHost: x\r\nAccept: a\r\nACCEPT: b\r\naccept: c\r\nX-One: 1\r\n\r\n");
  REQUIRE(t.requests.size() == 1);
  CHECK(*t.requests[0].Find("accept") == "a, b, c");
  CHECK(*t.requests[0].Find("x-one") == "1");
  CHECK(t.requests[0].Find("missing") == nullptr);
}

TEST_CASE("parser: HTTP/1.0 closes unless keep-alive") {
  CHECK_FALSE(Run("GET / HTTP/1.0\r\n\r\n").requests.at(0).keep_alive);
  CHECK(Run("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").requests.at(0).keep_alive);
}

TEST_CASE("parser: bodies outside peer routes are flagged, never read") {
  auto t = Run("PUT /v2/a/manifests/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
  REQUIRE(t.requests.size() == 1);
  CHECK(t.requests[0].has_body);
  CHECK(t.requests[0].body.empty());
}

TEST_CASE("parser: peer routes read a Content-Length body, at every split") {
  std::string two = "POST /_georeg/v1/msg HTTP/1.1\r\nX-Georeg-Signature: s\r\nContent-Length: 5\r\n\r\nhello"
                    "POST /_georeg/v1/msg HTTP/1.1\r\nX-Georeg-Signature: s\r\nContent-Length: 3\r\n\r\nabc";
  for (size_t step : {1, 2, 7, 1000}) {
    auto t = Run(two, step);
    REQUIRE(t.requests.size() == 2);
    CHECK(t.requests[0].body == "hello");
    CHECK(t.requests[1].body == "abc");
    CHECK(t.error == 0);
  }
  CHECK(Run("POST /_georeg/v1/msg HTTP/1.1\r\nX-Georeg-Signature: s\r\nTransfer-Encoding: chunked\r\n\r\n"
            "5\r\nhello\r\n0\r\n\r\n")
            .error == 411);
  RequestParser::Limits small;
  small.max_body = 4;
  CHECK(Run("POST /_georeg/v1/msg HTTP/1.1\r\nX-Georeg-Signature: s\r\nContent-Length: 5\r\n\r\nhello", 100, small)
            .error == 413);
  // Unsigned: flagged, never read (the server answers and closes).
  auto unsigned_req = Run("POST /_georeg/v1/msg HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
  REQUIRE(unsigned_req.requests.size() == 1);
  CHECK(unsigned_req.requests[0].has_body);
  CHECK(unsigned_req.requests[0].body.empty());
}

TEST_CASE("parser: malformed input is 400") {
  for (const char* bad : {"GET / HTTP/1.1\nHost: x\n\n",                       // bare LF
                          "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",      // obs-fold
                          "GET / HTTP/1.1\r\nHost: x\r\n\tfolded\r\n\r\n",     // obs-fold with a tab
                          "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                          "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                          "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                          "G@T / HTTP/1.1\r\n\r\n", "GET / HTTP/9.9\r\n\r\n", "GET  HTTP/1.1\r\n\r\n",
                          "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n"}) {
    INFO(bad);
    CHECK(Run(bad).error == 400);
  }
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
  CHECK(Run("GET / HTTP/1.1\r\nX: " + std::string(300, 'a') + "\r\n\r\n", 1 << 20, limits).error == 431);
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 6; ++i) many += "X" + std::to_string(i) + ": y\r\n";
  CHECK(Run(many + "\r\n", 1 << 20, limits).error == 431);
  CHECK(Run(many + "\r\n", 3, limits).error == 431);  // same when trickled in
}
