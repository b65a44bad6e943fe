// Transcripts for the upstream response parser, split at every byte.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "src/upstream/response_parser.h"

using upstream::ResponseParser;
using Result = ResponseParser::Result;

namespace {

struct Seen {
  std::vector<upstream::ResponseHead> heads;
  std::string body;
  Result result = Result::kNeedMore;
  std::string error;
  size_t leftover = 0;  // bytes after the response
  bool keep_alive = false;
};

// Feeds `input` split at `split` (0: in one piece), then EOF if `eof`.
Seen Run(const std::string& input, size_t split, bool head_request = false,
         ResponseParser::Limits limits = {}, bool eof = false) {
  ResponseParser p;
  Seen s;
  p.on_head = [&](const upstream::ResponseHead& h) {
    s.heads.push_back(h);
    return true;
  };
  p.on_body = [&](const char* d, size_t n) {
    s.body.append(d, n);
    return true;
  };
  p.Reset(head_request, limits);
  std::vector<std::string> pieces;
  if (split == 0 || split >= input.size()) {
    pieces = {input};
  } else {
    pieces = {input.substr(0, split), input.substr(split)};
  }
  size_t fed = 0;
  for (const std::string& piece : pieces) {
    size_t consumed = 0;
    s.result = p.Feed(piece.data(), piece.size(), &consumed);
    fed += consumed;
    if (s.result != Result::kNeedMore) break;
  }
  if (s.result == Result::kNeedMore && eof) s.result = p.Finish();
  s.leftover = input.size() - fed;
  s.error = p.error();
  s.keep_alive = p.keep_alive();
  return s;
}

}  // namespace

TEST_CASE("response parser: Content-Length body, any split, bytes after it are not ours") {
  const std::string r =
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nDocker-Content-Digest: sha256:x\r\n"
      "Content-Type: a\r\nContent-Type: b\r\n\r\nhelloHTTP/1.1 200 OK\r\n";
  for (size_t split = 0; split < r.size(); ++split) {
    INFO(split);
    Seen s = Run(r, split);
    REQUIRE(s.result == Result::kComplete);
    REQUIRE(s.heads.size() == 1);
    CHECK(s.heads[0].status == 200);
    CHECK(s.heads[0].content_length == 5u);
    CHECK(*s.heads[0].Find("docker-content-digest") == "sha256:x");
    CHECK(*s.heads[0].Find("content-type") == "a, b");
    CHECK(s.body == "hello");
    CHECK(s.keep_alive);
    // Only what follows the response is left over, wherever the split fell.
    if (split <= r.size() - 17) CHECK(s.leftover == 17);
  }
}

TEST_CASE("response parser: chunked body and a body ended by the close, any split") {
  const std::string chunked =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
  for (size_t split = 0; split < chunked.size(); ++split) {
    Seen s = Run(chunked, split);
    REQUIRE(s.result == Result::kComplete);
    CHECK(s.body == "abcde");
    CHECK_FALSE(s.heads[0].content_length.has_value());
  }
  const std::string until_close = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it";
  for (size_t split = 0; split < until_close.size(); ++split) {
    Seen s = Run(until_close, split, false, {}, /*eof=*/true);
    REQUIRE(s.result == Result::kComplete);
    CHECK(s.body == "all of it");
    CHECK_FALSE(s.keep_alive);
  }
}

TEST_CASE("response parser: HEAD has no body whatever Content-Length says") {
  const std::string r = "HTTP/1.1 200 OK\r\nContent-Length: 123456\r\n\r\n";
  for (size_t split = 0; split < r.size(); ++split) {
    Seen s = Run(r, split, /*head_request=*/true, {65536, 10});  // max_body does not apply to HEAD
    REQUIRE(s.result == Result::kComplete);
    CHECK(s.heads.at(0).content_length == 123456u);
    CHECK(s.body.empty());
  }
}

TEST_CASE("response parser: cut short is an error, never a complete response") {
  const std::string r = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
  for (size_t split = 0; split < r.size(); ++split) {
    Seen s = Run(r, split, false, {}, /*eof=*/true);
    CHECK(s.result == Result::kError);
  }
  CHECK(Run("", 0, false, {}, true).error == "connection closed before a response");
  CHECK(Run("HTTP/1.1 200 OK\r\nContent-", 0, false, {}, true).error ==
        "connection closed mid-head");
}

TEST_CASE("response parser: bounds on the head and the body") {
  ResponseParser::Limits small{64, 1000};
  Seen big_head =
      Run("HTTP/1.1 200 OK\r\nX: " + std::string(100, 'a') + "\r\n\r\n", 0, false, small);
  CHECK(big_head.result == Result::kError);
  CHECK(big_head.error == "response head too large");
  // Announced too large: refused at the head, before any body byte and before on_head.
  Seen announced =
      Run("HTTP/1.1 200 OK\r\nContent-Length: 2147483648\r\n\r\nxx", 0, false, {65536, 1 << 20});
  CHECK(announced.result == Result::kError);
  CHECK(announced.heads.empty());
  CHECK(announced.error.find("announced larger") != std::string::npos);
  // Chunked past the bound: cut off as the bytes pass it.
  std::string chunks = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 20; ++i) chunks += "64\r\n" + std::string(100, 'x') + "\r\n";
  Seen grown = Run(chunks, 0, false, small);
  CHECK(grown.result == Result::kError);
  CHECK(grown.body.size() <= 1000);
}

TEST_CASE("response parser: malformed responses are errors") {
  for (const char* bad :
       {"HTTP/1.1 200 OK\nContent-Length: 1\n\nx",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
        "Content-Length: 2\r\n\r\nxx",
        "HTTP/1.1 2x0 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n"}) {
    INFO(bad);
    CHECK(Run(bad, 0).result == Result::kError);
  }
}

TEST_CASE("response parser: a handler that stops the parse stops it at once") {
  ResponseParser p;
  int bodies = 0;
  p.on_head = [](const upstream::ResponseHead&) { return true; };
  p.on_body = [&](const char*, size_t) {
    ++bodies;
    return false;
  };
  p.Reset(false, {});
  std::string r =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n1\r\nb\r\n0\r\n\r\n";
  size_t consumed = 0;
  CHECK(p.Feed(r.data(), r.size(), &consumed) == Result::kStopped);
  CHECK(bodies == 1);
  CHECK(p.Feed(r.data(), r.size(), &consumed) == Result::kStopped);
}
