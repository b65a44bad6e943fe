// Url: the one parser of absolute http(s) URLs in georeg (upstream and peer
// URLs from the config, token realms and redirect targets from upstreams,
// member URLs from peers). Pure.
//
// Accepts scheme://host[:port][/path][?query][#fragment] with scheme http or
// https (any case), a host name or an IPv4 address or an [IPv6] literal, and
// a port in 1-65535. Refuses userinfo ("user@"), an empty host, and hosts
// with characters no DNS name or address has (spaces, controls, "%").
// The fragment is dropped; path keeps the query and is "/" when absent.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "util/status.h"

namespace util {

struct Url {
  std::string scheme;          // "http" or "https", lowercased
  std::string host;            // without brackets for IPv6
  uint16_t port = 0;           // the scheme's default when absent
  std::string path;            // "/..." with the query
  bool explicit_path = false;  // the URL had a path or query
  bool explicit_port = false;  // the URL named its port

  // scheme://host:port, with brackets around an IPv6 host.
  std::string Origin() const;
};

// Errors: InvalidArgument naming what is wrong.
Result<Url> ParseUrl(std::string_view text);

// A registry ("host" or "host:port") as one path component of a mirror
// location ("127.0.0.1:5000/localhost_5001"): ':' becomes '_', which no host
// name holds and a reference path allows.
std::string RegistryPathComponent(std::string_view registry);

// An IPv4 or IPv6 network, "10.0.0.0/8" or "fd00::/8".
struct Cidr {
  bool v6 = false;
  uint8_t addr[16] = {};
  int prefix = 0;
  // `addr` is 4 (v4) or 16 (v6) bytes in network order. An IPv4-mapped IPv6
  // address is matched as IPv4.
  bool Contains(bool v6_addr, const uint8_t* bytes) const;
  std::string ToString() const;
};
// Errors: InvalidArgument.
Result<Cidr> ParseCidr(const std::string& text);

}  // namespace util
