#include <catch2/catch.hpp>

#include "src/http/range.h"

using http::ByteRange;
using http::ParseRange;

TEST_CASE("Range: the three single-range forms") {
  auto r = ParseRange("bytes=0-99", 1000);
  REQUIRE(r.kind == ByteRange::kPartial);
  CHECK(r.first == 0);
  CHECK(r.last == 99);
  CHECK(r.length() == 100);

  r = ParseRange("bytes=900-", 1000);
  REQUIRE(r.kind == ByteRange::kPartial);
  CHECK(r.first == 900);
  CHECK(r.last == 999);

  r = ParseRange("bytes=-100", 1000);
  REQUIRE(r.kind == ByteRange::kPartial);
  CHECK(r.first == 900);
  CHECK(r.last == 999);

  r = ParseRange("bytes=-5000", 1000);  // longer suffix than the blob: all of it
  REQUIRE(r.kind == ByteRange::kPartial);
  CHECK(r.first == 0);

  r = ParseRange("bytes=990-5000", 1000);  // end clamps to the size
  REQUIRE(r.kind == ByteRange::kPartial);
  CHECK(r.last == 999);
}

TEST_CASE("Range: unsatisfiable and malformed are 416, others are ignored") {
  CHECK(ParseRange("", 10).kind == ByteRange::kFull);
  CHECK(ParseRange("items=0-1", 10).kind == ByteRange::kFull);
  CHECK(ParseRange("bytes=0-1,3-4", 10).kind == ByteRange::kFull);
  for (const char* bad :
       {"bytes=10-", "bytes=10-20", "bytes=5-2", "bytes=-0", "bytes=abc", "bytes=", "bytes=-",
        "bytes=1-x", "bytes=--1", "bytes=99999999999999999999-"}) {
    INFO(bad);
    CHECK(ParseRange(bad, 10).kind == ByteRange::kUnsatisfiable);
  }
  CHECK(ParseRange("bytes=0-", 0).kind == ByteRange::kUnsatisfiable);
}

TEST_CASE("Content-Range: a 206's range, and nothing that is not one") {
  uint64_t a = 0, b = 0, n = 0;
  CHECK(http::ParseContentRange("bytes 100-199/1000", &a, &b, &n));
  CHECK((a == 100 && b == 199 && n == 1000));
  CHECK(http::ParseContentRange(" bytes 0-0/1 ", &a, &b, &n));
  CHECK((a == 0 && b == 0 && n == 1));
  CHECK_FALSE(http::ParseContentRange("bytes */1000", &a, &b, &n));
  CHECK_FALSE(http::ParseContentRange("bytes 0-99/*", &a, &b, &n));
  CHECK_FALSE(http::ParseContentRange("bytes 200-100/1000", &a, &b, &n));
  CHECK_FALSE(http::ParseContentRange("bytes 0-1000/1000", &a, &b, &n));
  CHECK_FALSE(http::ParseContentRange("items 0-9/10", &a, &b, &n));
  CHECK_FALSE(http::ParseContentRange("bytes 0-9", &a, &b, &n));
  CHECK_FALSE(http::ParseContentRange("bytes -1-9/10", &a, &b, &n));
  CHECK_FALSE(http::ParseContentRange("bytes 99999999999999999999-1/2", &a, &b, &n));
}
