// DigestBloom: a Bloom filter over blob digests, the compact "what I hold"
// summary a node publishes to its peers (docs/gossip.md, "Who has what").
//
// Sized for a false-positive rate: m = -n ln p / (ln 2)^2 bits and
// k = (m / n) ln 2 hash functions, by double hashing of XXH3-128 of the
// digest bytes. A false positive costs one peer request answered 404.
// Pure; Encode/Decode give the wire form (little-endian header, then bits).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/digest.h"
#include "util/status.h"

namespace peers {

class DigestBloom {
 public:
  DigestBloom() = default;
  // An empty filter sized for `expected` digests at `fp_rate`.
  DigestBloom(size_t expected, double fp_rate);

  void Add(const util::Digest& d);
  bool MayContain(const util::Digest& d) const;
  size_t bit_count() const { return bits_.size() * 8; }
  uint32_t hash_count() const { return k_; }

  std::string Encode() const;
  // Errors: InvalidArgument for a malformed or oversized filter.
  static util::Result<DigestBloom> Decode(const std::string& bytes);

 private:
  std::vector<uint8_t> bits_;
  uint32_t k_ = 0;
};

}  // namespace peers
