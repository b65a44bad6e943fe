#include "util/url.h"

#include <arpa/inet.h>

#include <cctype>
#include <cstring>

namespace util {

std::string Url::Origin() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return scheme + "://" + h + ":" + std::to_string(port);
}

Result<Url> ParseUrl(std::string_view text) {
  Url u;
  size_t sep = text.find("://");
  if (sep == std::string_view::npos) return Status::InvalidArgument("not an absolute URL");
  for (char c : text.substr(0, sep))
    u.scheme.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (u.scheme != "http" && u.scheme != "https")
    return Status::InvalidArgument("scheme must be http or https");
  std::string_view rest = text.substr(sep + 3);
  size_t path_start = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, path_start);
  if (path_start != std::string_view::npos) {
    std::string_view p = rest.substr(path_start);
    p = p.substr(0, p.find('#'));
    u.explicit_path = !p.empty();
    u.path = std::string(p);
  }
  if (u.path.empty() || u.path[0] == '?') u.path = "/" + u.path;
  if (authority.empty()) return Status::InvalidArgument("no host");
  if (authority.find('@') != std::string_view::npos)
    return Status::InvalidArgument("credentials in a URL");
  u.port = u.scheme == "https" ? 443 : 80;
  std::string_view port;
  if (authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return Status::InvalidArgument("unclosed '[' in the host");
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return Status::InvalidArgument("junk after the IPv6 address");
      port = after.substr(1);
      if (port.empty()) return Status::InvalidArgument("empty port");
    }
    if (u.host.empty() || u.host.find_first_not_of("0123456789abcdefABCDEF:.") != std::string::npos)
      return Status::InvalidArgument("bad IPv6 address");
  } else {
    size_t colon = authority.find(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return Status::InvalidArgument("empty port");
    }
    if (u.host.empty()) return Status::InvalidArgument("no host");
    for (unsigned char c : u.host)
      if (!(std::isalnum(c) || c == '-' || c == '.' || c == '_'))
        return Status::InvalidArgument("bad host name");
  }
  if (!port.empty()) {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos)
      return Status::InvalidArgument("bad port");
    unsigned long p = std::stoul(std::string(port));
    if (p == 0 || p > 65535) return Status::InvalidArgument("port out of range");
    u.port = static_cast<uint16_t>(p);
    u.explicit_port = true;
  }
  return u;
}

bool Cidr::Contains(bool v6_addr, const uint8_t* bytes) const {
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (v6_addr && !v6 && std::memcmp(bytes, kMapped, 12) == 0) {
    v6_addr = false;
    bytes += 12;
  }
  if (v6_addr != v6) return false;
  int full = prefix / 8, rest = prefix % 8;
  if (std::memcmp(bytes, addr, full) != 0) return false;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (bytes[full] & mask) == (addr[full] & mask);
}

std::string Cidr::ToString() const {
  char buf[INET6_ADDRSTRLEN] = "";
  inet_ntop(v6 ? AF_INET6 : AF_INET, addr, buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(prefix);
}

Result<Cidr> ParseCidr(const std::string& text) {
  Cidr c;
  size_t slash = text.find('/');
  std::string host = text.substr(0, slash);
  c.v6 = host.find(':') != std::string::npos;
  if (inet_pton(c.v6 ? AF_INET6 : AF_INET, host.c_str(), c.addr) != 1)
    return Status::InvalidArgument("'" + text + "' is not a CIDR like 10.0.0.0/8");
  int max = c.v6 ? 128 : 32;
  c.prefix = max;
  if (slash != std::string::npos) {
    std::string p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3 || p.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(p) > max)
      return Status::InvalidArgument("'" + text + "' has a bad prefix length");
    c.prefix = std::stoi(p);
  }
  return c;
}

std::string RegistryPathComponent(std::string_view registry) {
  std::string out(registry);
  for (char& c : out)
    if (c == ':') c = '_';
  return out;
}

}  // namespace util
