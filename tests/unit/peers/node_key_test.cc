// Node keys (peers/node_key.h): Ed25519 signatures.
#include "peers/node_key.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "tests/unit/test_signers.h"
#include "util/sha256.h"

using testing_keys::KeyFor;
using util::DigestOf;

TEST_CASE("node keys: Ed25519 signatures verify only for their key and message") {
  auto a = KeyFor("a"), b = KeyFor("b");
  CHECK(a->public_key().size() == 64);
  CHECK(a->public_key() != b->public_key());
  CHECK(KeyFor("a")->public_key() == a->public_key());  // one seed, one key
  std::string sig = a->Sign("hello");
  CHECK(sig.size() == 128);
  CHECK(a->Verify(a->public_key(), "hello", sig));
  CHECK(b->Verify(a->public_key(), "hello", sig));  // anyone can check
  CHECK_FALSE(a->Verify(b->public_key(), "hello", sig));
  CHECK_FALSE(a->Verify(a->public_key(), "hellO", sig));
  std::string flipped = sig;
  flipped[10] = flipped[10] == '0' ? '1' : '0';
  CHECK_FALSE(a->Verify(a->public_key(), "hello", flipped));
  for (const std::string& bad : {std::string(), std::string("zz"), sig.substr(2), sig + "00"})
    CHECK_FALSE(a->Verify(a->public_key(), "hello", bad));
  CHECK_FALSE(a->Verify("", "hello", sig));
  std::string upper = a->public_key();
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  CHECK_FALSE(a->Verify(upper, "hello", sig));
  CHECK(peers::Ed25519Signer::ParseSeed(std::string(64, 'a')).ok());
  CHECK_FALSE(peers::Ed25519Signer::ParseSeed(std::string(63, 'a')).ok());
  CHECK_FALSE(peers::Ed25519Signer::ParseSeed(std::string(64, 'g')).ok());
}
