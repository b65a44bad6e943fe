// Bloom filters of what a node holds (peers/bloom.h).
#include "peers/bloom.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "util/sha256.h"

using util::DigestOf;

TEST_CASE("bloom: no false negatives, false positives near the target, wire round trip") {
  peers::DigestBloom f(5000, 0.01);
  for (int i = 0; i < 5000; ++i) f.Add(DigestOf("in" + std::to_string(i)));
  for (int i = 0; i < 5000; ++i) REQUIRE(f.MayContain(DigestOf("in" + std::to_string(i))));
  int fp = 0;
  for (int i = 0; i < 20000; ++i) fp += f.MayContain(DigestOf("out" + std::to_string(i)));
  CHECK(fp < 20000 * 0.02);  // 1% target
  CHECK(f.bit_count() <= 5000 * 10 + 64);
  auto back = peers::DigestBloom::Decode(f.Encode());
  REQUIRE(back.ok());
  CHECK(back->MayContain(DigestOf("in42")));
  CHECK(back->Encode() == f.Encode());
  CHECK(!peers::DigestBloom::Decode("GRBF").ok());
  std::string truncated = f.Encode();
  truncated.pop_back();
  CHECK(!peers::DigestBloom::Decode(truncated).ok());
  CHECK_FALSE(peers::DigestBloom().MayContain(DigestOf("x")));
}
