// The peer protocol's version (docs/gossip.md, "Versions"). Every gossip
// message carries it ("pv"), every peer request and every summary answer
// names it (the X-Georeg-Protocol header), and every fleet record kept
// across restarts carries it ("pv"). What came before versions were named
// (no "pv", no header) is version 1.
//
// A node speaks kProtocolVersion and understands every version from
// kMinProtocolVersion to it; it ignores fields it does not know (a newer
// minor addition), and refuses a version outside that range: the message,
// request or record is dropped with a log line and a count
// (georeg_peer_protocol_refused_total), and the node keeps serving from its
// cache and the upstream. A release that changes a format on purpose
// raises kProtocolVersion and refreshes tests/compat (tools/compat.sh).
//
// Pure.
#pragma once

#include <cstdint>
#include <string>

namespace peers {

inline constexpr uint64_t kProtocolVersion = 1;
inline constexpr uint64_t kMinProtocolVersion = 1;
inline constexpr const char* kProtocolHeader = "X-Georeg-Protocol";

inline bool SpeaksProtocol(uint64_t v) { return v >= kMinProtocolVersion && v <= kProtocolVersion; }

// The version a header value names: absent (null) is 1; a value that is
// not a plain decimal number is 0, which no node speaks.
uint64_t ProtocolOf(const std::string* header_value);

// "protocol 7; this node speaks 1 to 1": for refusals.
std::string ProtocolMismatch(uint64_t v);

}  // namespace peers
