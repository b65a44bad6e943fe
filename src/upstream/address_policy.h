// Which resolved addresses a redirect may lead to. Pure.
//
// A blob redirect names a host the upstream chose; following it blindly
// would let an upstream (or whoever controls its redirects) make georeg
// fetch from the host's own loopback, the local network or a cloud metadata
// service. Unless an upstream allows it, such targets are refused.
#pragma once

#include <sys/socket.h>

#include <string>

namespace upstream {

// True for loopback, unspecified, private (RFC 1918, fc00::/7), carrier-grade
// NAT (100.64/10), link-local (169.254/16 with the metadata address,
// fe80::/10), and IPv4-mapped IPv6 forms of those.
bool IsNonPublicAddress(const sockaddr* addr);

// "loopback", "private", "link-local or metadata", ... for a log line.
std::string DescribeAddress(const sockaddr* addr);

}  // namespace upstream
