// Which resolved addresses an outbound connection may go to. Pure.
//
// A token realm, a blob redirect or a member URL names a host someone else
// chose; following it blindly would let an upstream or a cluster member make
// georeg connect (with credentials or signed requests) to the host's own
// loopback, the local network, or a cloud metadata service. The Client
// checks every resolved address against its endpoint's policy before it
// connects (src/upstream/client.h).
#pragma once

#include <sys/socket.h>

#include <string>
#include <vector>

#include "util/url.h"

namespace upstream {

struct AddressPolicy {
  // Refuse loopback, private (RFC 1918, fc00::/7), carrier-grade NAT
  // (100.64/10) and everything forbid_special refuses: for what an upstream
  // names (realms, redirects) unless it allows private addresses.
  bool forbid_non_public = false;
  // Refuse link-local (169.254/16 with the metadata address, fe80::/10),
  // multicast and unspecified addresses: for member URLs, always.
  bool forbid_special = false;
  // When not empty, only addresses inside these networks (member URLs with
  // [cluster] peer_networks).
  std::vector<util::Cidr> allowed_networks;
};

// Why `policy` refuses `addr` ("loopback", "link-local or metadata",
// "outside peer_networks", ...), or nullptr when it is allowed. IPv4-mapped
// IPv6 addresses are judged as the IPv4 address they carry.
const char* RefusalOf(const AddressPolicy& policy, const sockaddr* addr);

// True for every class forbid_non_public refuses.
bool IsNonPublicAddress(const sockaddr* addr);

// "loopback", "private", "link-local or metadata", "multicast", ... or "public".
std::string DescribeAddress(const sockaddr* addr);

}  // namespace upstream
