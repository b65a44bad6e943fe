// Digest: a content address, "sha256:<64 lowercase hex>".
//
// Only sha256 is supported; other algorithms the distribution-spec grammar
// allows are refused as unsupported (DIGEST_INVALID). A Digest is a value type
// holding the 32 raw bytes, which is also its cache key (docs/cache-format.md).
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>

#include "util/status.h"

namespace util {

struct Digest {
  std::array<uint8_t, 32> bytes{};

  // Parses "sha256:<hex>". Errors: InvalidArgument (bad grammar, wrong length,
  // uppercase hex, or an algorithm other than sha256).
  static Result<Digest> Parse(std::string_view text);
  static Digest FromRaw(const uint8_t raw[32]) {
    Digest d;
    std::memcpy(d.bytes.data(), raw, 32);
    return d;
  }
  std::string ToString() const;  // "sha256:..."
  std::string Hex() const;
  bool operator==(const Digest& o) const { return bytes == o.bytes; }
  bool operator!=(const Digest& o) const { return bytes != o.bytes; }
  bool operator<(const Digest& o) const { return bytes < o.bytes; }
};

struct DigestHash {
  size_t operator()(const Digest& d) const {
    size_t h;
    std::memcpy(&h, d.bytes.data(), sizeof(h));
    return h;
  }
};

std::string HexEncode(const uint8_t* data, size_t len);
// Lowercase hex to `n` bytes: false unless `hex` is exactly 2 * n lowercase hex digits.
bool HexDecode(std::string_view hex, uint8_t* out, size_t n);

}  // namespace util
