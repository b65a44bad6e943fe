#include "peers/bloom.h"

#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace peers {
namespace {

constexpr char kMagic[4] = {'G', 'R', 'B', 'F'};
constexpr size_t kHeader = 4 + 4 + 8;
constexpr uint64_t kMaxBits = 1ull << 32;  // 512 MiB: far beyond any real cache

}  // namespace

DigestBloom::DigestBloom(size_t expected, double fp_rate) {
  double n = static_cast<double>(std::max<size_t>(expected, 64));
  double ln2 = std::log(2.0);
  uint64_t m = static_cast<uint64_t>(std::ceil(-n * std::log(fp_rate) / (ln2 * ln2)));
  m = std::min<uint64_t>((m + 7) / 8 * 8, kMaxBits);
  bits_.assign(m / 8, 0);
  k_ = static_cast<uint32_t>(std::clamp(std::round(static_cast<double>(m) / n * ln2), 1.0, 16.0));
}

template <typename Fn>
static void ForEachBit(const util::Digest& d, uint32_t k, uint64_t m, Fn fn) {
  XXH128_hash_t h = XXH3_128bits(d.bytes.data(), d.bytes.size());
  for (uint32_t i = 0; i < k; ++i) fn((h.low64 + i * h.high64) % m);
}

void DigestBloom::Add(const util::Digest& d) {
  if (bits_.empty()) return;
  ForEachBit(d, k_, bit_count(),
             [this](uint64_t b) { bits_[b / 8] |= static_cast<uint8_t>(1u << (b % 8)); });
}

bool DigestBloom::MayContain(const util::Digest& d) const {
  if (bits_.empty()) return false;
  bool all = true;
  ForEachBit(d, k_, bit_count(),
             [&](uint64_t b) { all = all && (bits_[b / 8] & (1u << (b % 8))); });
  return all;
}

std::string DigestBloom::Encode() const {
  std::string out(kMagic, 4);
  uint64_t m = bit_count();
  out.append(reinterpret_cast<const char*>(&k_), 4);
  out.append(reinterpret_cast<const char*>(&m), 8);
  out.append(reinterpret_cast<const char*>(bits_.data()), bits_.size());
  return out;
}

util::Result<DigestBloom> DigestBloom::Decode(const std::string& bytes) {
  if (bytes.size() < kHeader || std::memcmp(bytes.data(), kMagic, 4) != 0)
    return util::Status::InvalidArgument("not a digest summary");
  DigestBloom f;
  uint64_t m = 0;
  std::memcpy(&f.k_, bytes.data() + 4, 4);
  std::memcpy(&m, bytes.data() + 8, 8);
  if (m % 8 != 0 || m > kMaxBits || f.k_ == 0 || f.k_ > 16 || bytes.size() != kHeader + m / 8)
    return util::Status::InvalidArgument("digest summary header does not match its size");
  f.bits_.assign(bytes.begin() + kHeader, bytes.end());
  return f;
}

}  // namespace peers
