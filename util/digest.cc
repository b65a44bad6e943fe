#include "util/digest.h"

namespace util {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // uppercase is refused: the canonical form is lowercase
}

// algorithm-component ([a-z0-9]+) separated by [+._-], per the distribution spec.
bool ValidAlgorithm(std::string_view a) {
  if (a.empty()) return false;
  bool prev_sep = true;
  for (char c : a) {
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    bool sep = c == '+' || c == '.' || c == '_' || c == '-';
    if (!alnum && !sep) return false;
    if (sep && prev_sep) return false;
    prev_sep = sep;
  }
  return !prev_sep;
}

}  // namespace

bool HexDecode(std::string_view hex, uint8_t* out, size_t n) {
  if (hex.size() != 2 * n) return false;
  for (size_t i = 0; i < n; ++i) {
    int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

Result<Digest> Digest::Parse(std::string_view text) {
  size_t colon = text.find(':');
  if (colon == std::string_view::npos) return Status::InvalidArgument("digest has no algorithm");
  std::string_view algo = text.substr(0, colon);
  std::string_view hex = text.substr(colon + 1);
  if (!ValidAlgorithm(algo)) return Status::InvalidArgument("bad digest algorithm");
  if (algo != "sha256") return Status::InvalidArgument("unsupported digest algorithm");
  if (hex.size() != 64) return Status::InvalidArgument("sha256 digest must be 64 hex digits");
  Digest d;
  if (!HexDecode(hex, d.bytes.data(), d.bytes.size()))
    return Status::InvalidArgument("sha256 digest must be lowercase hex");
  return d;
}

std::string HexEncode(const uint8_t* data, size_t len) {
  static const char kHex[] = "0123456789abcdef";
  std::string out(len * 2, '0');
  for (size_t i = 0; i < len; ++i) {
    out[2 * i] = kHex[data[i] >> 4];
    out[2 * i + 1] = kHex[data[i] & 15];
  }
  return out;
}

std::string Digest::Hex() const { return HexEncode(bytes.data(), bytes.size()); }
std::string Digest::ToString() const { return "sha256:" + Hex(); }

}  // namespace util
