#include <arpa/inet.h>
#include <catch2/catch.hpp>

#include "src/upstream/address_policy.h"

namespace {
sockaddr_storage Addr(const char* ip) {
  sockaddr_storage ss{};
  if (inet_pton(AF_INET, ip, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr) == 1) {
    ss.ss_family = AF_INET;
  } else {
    REQUIRE(inet_pton(AF_INET6, ip, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr) == 1);
    ss.ss_family = AF_INET6;
  }
  return ss;
}
bool NonPublic(const char* ip) {
  sockaddr_storage ss = Addr(ip);
  return upstream::IsNonPublicAddress(reinterpret_cast<sockaddr*>(&ss));
}
const char* Refused(const upstream::AddressPolicy& p, const char* ip) {
  sockaddr_storage ss = Addr(ip);
  return upstream::RefusalOf(p, reinterpret_cast<sockaddr*>(&ss));
}
}  // namespace

TEST_CASE("redirect address policy") {
  for (const char* ip : {"127.0.0.1",
                         "127.1.2.3",
                         "0.0.0.0",
                         "10.0.0.1",
                         "172.16.0.1",
                         "172.31.255.255",
                         "192.168.1.1",
                         "169.254.169.254",
                         "100.64.0.1",
                         "::1",
                         "::",
                         "fe80::1",
                         "fd00::1",
                         "fc00::1",
                         "::ffff:127.0.0.1",
                         "::ffff:10.1.2.3",
                         "224.0.0.1",
                         "239.1.2.3",
                         "ff02::1",
                         "255.255.255.255",
                         "::ffff:169.254.169.254"}) {
    INFO(ip);
    CHECK(NonPublic(ip));
  }
  for (const char* ip : {"8.8.8.8", "172.32.0.1", "172.15.255.255", "100.128.0.1", "192.169.0.1",
                         "2600::1", "::ffff:8.8.8.8", "1.1.1.1"}) {
    INFO(ip);
    CHECK_FALSE(NonPublic(ip));
  }
}

TEST_CASE(
    "member address policy: metadata, multicast and unspecified always refused; peer_networks "
    "restricts") {
  upstream::AddressPolicy members;
  members.forbid_special = true;
  for (const char* ip : {"169.254.169.254", "fe80::1", "224.0.0.1", "ff02::1", "0.0.0.0",
                         "::", "::ffff:169.254.1.1"}) {
    INFO(ip);
    CHECK(Refused(members, ip) != nullptr);
  }
  for (const char* ip : {"10.0.0.5", "127.0.0.1", "192.168.1.1", "8.8.8.8", "fd00::5"}) {
    INFO(ip);
    CHECK(Refused(members, ip) == nullptr);
  }
  members.allowed_networks = {*util::ParseCidr("10.0.0.0/8"), *util::ParseCidr("fd00::/8")};
  CHECK(Refused(members, "10.200.0.1") == nullptr);
  CHECK(Refused(members, "::ffff:10.1.1.1") == nullptr);
  CHECK(Refused(members, "fd12::1") == nullptr);
  CHECK(std::string(Refused(members, "192.168.1.1")) == "outside peer_networks");
  CHECK(Refused(members, "169.254.169.254") != nullptr);
  CHECK_FALSE(util::ParseCidr("10.0.0.0/33").ok());
  CHECK_FALSE(util::ParseCidr("nope/8").ok());
  CHECK(util::ParseCidr("10.1.2.3/12")->ToString() == "10.1.2.3/12");
}
