#include "peers/protocol.h"

namespace peers {

uint64_t ProtocolOf(const std::string* header_value) {
  if (!header_value) return 1;
  const std::string& s = *header_value;
  if (s.empty() || s.size() > 9) return 0;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return 0;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

std::string ProtocolMismatch(uint64_t v) {
  return "protocol " + std::to_string(v) + "; this node speaks " +
         std::to_string(kMinProtocolVersion) + " to " + std::to_string(kProtocolVersion);
}

}  // namespace peers
