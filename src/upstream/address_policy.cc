#include "src/upstream/address_policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace upstream {
namespace {

const char* kLinkLocal = "link-local or metadata";
const char* kMulticast = "multicast";
const char* kUnspecified = "unspecified";

const char* ClassifyV4(uint32_t a) {  // host byte order
  if ((a >> 24) == 127) return "loopback";
  if ((a >> 24) == 0) return kUnspecified;
  if ((a >> 28) == 0xe) return kMulticast;  // 224.0.0.0/4
  if (a == 0xffffffffu) return "broadcast";
  if ((a >> 24) == 10 || (a >> 20) == 0xac1 || (a >> 16) == 0xc0a8) return "private";
  if ((a >> 22) == (100u << 2 | 1)) return "carrier-grade NAT";  // 100.64.0.0/10
  if ((a >> 16) == 0xa9fe) return kLinkLocal;
  return nullptr;
}

const char* Classify(const sockaddr* addr) {
  if (addr->sa_family == AF_INET) {
    return ClassifyV4(ntohl(reinterpret_cast<const sockaddr_in*>(addr)->sin_addr.s_addr));
  }
  if (addr->sa_family == AF_INET6) {
    const uint8_t* b = reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr.s6_addr;
    static const uint8_t kZero[16] = {};
    if (std::memcmp(b, kZero, 15) == 0 && (b[15] == 0 || b[15] == 1))
      return b[15] ? "loopback" : kUnspecified;
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(b, kMapped, 12) == 0) {
      uint32_t v4 = uint32_t(b[12]) << 24 | uint32_t(b[13]) << 16 | uint32_t(b[14]) << 8 | b[15];
      return ClassifyV4(v4);
    }
    if ((b[0] & 0xfe) == 0xfc) return "private";
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return kLinkLocal;
    if (b[0] == 0xff) return kMulticast;
    return nullptr;
  }
  return "unsupported family";
}

}  // namespace

bool IsNonPublicAddress(const sockaddr* addr) { return Classify(addr) != nullptr; }

const char* RefusalOf(const AddressPolicy& policy, const sockaddr* addr) {
  const char* c = Classify(addr);
  if (c && policy.forbid_non_public) return c;
  if (c && policy.forbid_special &&
      (c == kLinkLocal || c == kMulticast || c == kUnspecified ||
       std::strcmp(c, "broadcast") == 0 || std::strcmp(c, "unsupported family") == 0))
    return c;
  if (!policy.allowed_networks.empty()) {
    bool v6 = addr->sa_family == AF_INET6;
    const uint8_t* bytes = v6 ? reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr.s6_addr
                              : reinterpret_cast<const uint8_t*>(
                                    &reinterpret_cast<const sockaddr_in*>(addr)->sin_addr);
    for (const util::Cidr& net : policy.allowed_networks)
      if (net.Contains(v6, bytes)) return nullptr;
    return "outside peer_networks";
  }
  return nullptr;
}

std::string DescribeAddress(const sockaddr* addr) {
  const char* c = Classify(addr);
  return c ? c : "public";
}

}  // namespace upstream
