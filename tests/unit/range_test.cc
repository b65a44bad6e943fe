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
  for (const char* bad : {"bytes=10-", "bytes=10-20", "bytes=5-2", "bytes=-0", "bytes=abc", "bytes=", "bytes=-",
                          "bytes=1-x", "bytes=--1", "bytes=99999999999999999999-"}) {
    INFO(bad);
    CHECK(ParseRange(bad, 10).kind == ByteRange::kUnsatisfiable);
  }
  CHECK(ParseRange("bytes=0-", 0).kind == ByteRange::kUnsatisfiable);
}
