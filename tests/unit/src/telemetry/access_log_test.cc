// The access log (src/telemetry/access_log.h): what a line keeps of the
// target, and large batches written in whole lines.
#include "src/telemetry/access_log.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "tests/unit/capture.h"

using capture::Contains;

TEST_CASE("access log: the query is dropped but ns=, odd targets stay one bounded line") {
  CHECK(telemetry::LoggedTarget("/v2/a/manifests/latest?ns=docker.io") ==
        "/v2/a/manifests/latest?ns=docker.io");
  CHECK(telemetry::LoggedTarget("/v2/a/blobs/x?X-Amz-Signature=abc&ns=quay.io&token=s") ==
        "/v2/a/blobs/x?ns=quay.io");
  CHECK(telemetry::LoggedTarget("/v2/a/blobs/x?token=secret") == "/v2/a/blobs/x");
  CHECK(telemetry::LoggedTarget("/v2/a b\x01\n") == "/v2/a?b??");
  std::string longer(1000, 'a');
  CHECK(telemetry::LoggedTarget("/" + longer).size() == 256 + 3);
  http::RequestRecord r;
  r.method = "GET";
  r.target = "/v2/x/blobs/y?sig=1";
  r.status = 200;
  r.body_bytes = 5;
  r.duration_us = 1500;
  r.remote = "127.0.0.1";
  r.outcome = {"blob", "coalesced", "peer"};
  telemetry::AccessLog log;
  std::string none = capture::Stderr([&] { log.Add(r); });
  CHECK(none.empty());  // batched: written by Flush
  std::string line = capture::Stderr([&] { log.Flush(); });
  CHECK(Contains(
      line,
      " info  access method=GET path=/v2/x/blobs/y status=200 bytes=5 kind=blob result=coalesced "
      "source=peer ms=1.500 remote=127.0.0.1\n"));
  CHECK_FALSE(Contains(line, "sig"));
}

TEST_CASE("access lines: a large batch is written whole, in pieces of whole lines") {
  CHECK(util::LogWriteSize("a\nbb\nccc\n", 100) == 9);
  CHECK(util::LogWriteSize("a\nbb\nccc\n", 6) == 5);  // "a\nbb\n": the third line would pass 6
  CHECK(util::LogWriteSize("a\nbb\nccc\n", 5) == 5);
  CHECK(util::LogWriteSize("long line\nx\n", 4) == 10);  // longer than max: alone, not cut
  http::RequestRecord r;
  r.method = "GET";
  r.target = "/v2/x/manifests/latest";
  r.status = 200;
  r.outcome = {"manifest", "hit", "cache"};
  telemetry::AccessLog log;
  std::string out = capture::Stderr([&] {
    for (int i = 0; i < 500; ++i) log.Add(r);  // past the 64 KiB flush threshold
    log.Flush();
  });
  size_t lines = 0;
  for (size_t at = 0;
       (at = out.find(" access method=GET path=/v2/x/manifests/latest ", at)) != std::string::npos;
       ++at)
    ++lines;
  CHECK(lines == 500);
  CHECK(std::count(out.begin(), out.end(), '\n') == 500);
}
