#include "src/upstream/address_policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace upstream {
namespace {

const char* ClassifyV4(uint32_t a) {  // host byte order
  if ((a >> 24) == 127) return "loopback";
  if ((a >> 24) == 0) return "unspecified";
  if ((a >> 24) == 10 || (a >> 20) == 0xac1 || (a >> 16) == 0xc0a8) return "private";
  if ((a >> 22) == (100u << 2 | 1)) return "carrier-grade NAT";  // 100.64.0.0/10
  if ((a >> 16) == 0xa9fe) return "link-local or metadata";
  return nullptr;
}

const char* Classify(const sockaddr* addr) {
  if (addr->sa_family == AF_INET) {
    return ClassifyV4(ntohl(reinterpret_cast<const sockaddr_in*>(addr)->sin_addr.s_addr));
  }
  if (addr->sa_family == AF_INET6) {
    const uint8_t* b = reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr.s6_addr;
    static const uint8_t kZero[16] = {};
    if (std::memcmp(b, kZero, 15) == 0 && (b[15] == 0 || b[15] == 1)) return b[15] ? "loopback" : "unspecified";
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(b, kMapped, 12) == 0) {
      uint32_t v4 = uint32_t(b[12]) << 24 | uint32_t(b[13]) << 16 | uint32_t(b[14]) << 8 | b[15];
      return ClassifyV4(v4);
    }
    if ((b[0] & 0xfe) == 0xfc) return "private";
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return "link-local or metadata";
    return nullptr;
  }
  return "unsupported family";
}

}  // namespace

bool IsNonPublicAddress(const sockaddr* addr) { return Classify(addr) != nullptr; }

std::string DescribeAddress(const sockaddr* addr) {
  const char* c = Classify(addr);
  return c ? c : "public";
}

}  // namespace upstream
