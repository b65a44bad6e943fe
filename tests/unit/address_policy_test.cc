#include <arpa/inet.h>
#include <catch2/catch.hpp>

#include "src/upstream/address_policy.h"

namespace {
bool NonPublic(const char* ip) {
  sockaddr_storage ss{};
  if (inet_pton(AF_INET, ip, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr) == 1) {
    ss.ss_family = AF_INET;
  } else {
    REQUIRE(inet_pton(AF_INET6, ip, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr) == 1);
    ss.ss_family = AF_INET6;
  }
  return upstream::IsNonPublicAddress(reinterpret_cast<sockaddr*>(&ss));
}
}  // namespace

TEST_CASE("redirect address policy") {
  for (const char* ip : {"127.0.0.1", "127.1.2.3", "0.0.0.0", "10.0.0.1", "172.16.0.1", "172.31.255.255",
                         "192.168.1.1", "169.254.169.254", "100.64.0.1", "::1", "::", "fe80::1", "fd00::1",
                         "fc00::1", "::ffff:127.0.0.1", "::ffff:10.1.2.3"}) {
    INFO(ip);
    CHECK(NonPublic(ip));
  }
  for (const char* ip : {"8.8.8.8", "172.32.0.1", "172.15.255.255", "100.128.0.1", "192.169.0.1", "2600::1",
                         "::ffff:8.8.8.8", "1.1.1.1"}) {
    INFO(ip);
    CHECK_FALSE(NonPublic(ip));
  }
}
