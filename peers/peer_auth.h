// PeerAuth: signing and checking peer requests with the cluster key
// (docs/gossip.md, "Authentication").
//
// A peer request carries five headers: X-Georeg-Node (the sender's name),
// X-Georeg-Time (its clock, Unix ms), X-Georeg-Nonce (a per-sender counter,
// so two identical requests in one millisecond differ), X-Georeg-Body-Sha256
// (hex SHA-256 of the body) and X-Georeg-Signature: hex HMAC-SHA256 under
// the cluster key of the signed text
//   method "\n" target "\n" time "\n" nonce "\n" body-sha256 "\n" node
// and X-Georeg-Node-Signature, the sender's own Ed25519 signature of the
// same text (peers/node_key.h), which the receiver checks against the key it
// holds for the sender's name (Cluster), so no member can speak as another.
// The target includes the query, so anything that steers the request (the
// hop marker, the registry) is covered. A request is accepted only when the
// signature matches, the body hashes to what was signed, the time is within
// the replay window of ours, and that exact signature was not seen before
// within the window. The signature covers the body's hash, not the body, so
// the head is checked first (VerifyHead) and a body is read only from a
// sender that holds the key (then BodyMatches).
//
// Pure (time passed in), not thread-safe. Errors: PermissionDenied with the
// reason, for logs; peers only ever see 401.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_set>
#include <vector>

#include "peers/node_key.h"
#include "util/status.h"

namespace peers {

struct PeerHeader {
  std::string name, value;
};

// What VerifyHead found in a head signed with the cluster key.
struct VerifiedHead {
  std::string node;            // the sender's name
  std::string body_sha;        // the body hash it signed
  std::string signed_text;     // what both signatures sign
  std::string node_signature;  // X-Georeg-Node-Signature (hex), unchecked; empty if absent
};

class PeerAuth {
 public:
  // `key` is the shared secret; `window_ms` bounds clock difference and replay memory.
  PeerAuth(std::string key, uint64_t window_ms) : key_(std::move(key)), window_ms_(window_ms) {}

  // The headers for a request from `node` at Unix time `now_ms`, with the
  // node signature made by `node_key`.
  std::vector<PeerHeader> Sign(const std::string& node, const Signer& node_key,
                               const std::string& method, const std::string& target,
                               const std::string& body, uint64_t now_ms);

  // The head: cluster-key signature, time window, replay. `find` returns a
  // request header's value (lowercase name) or null. On success fills *out;
  // the node signature is the caller's to check (it knows the keys).
  template <typename FindFn>
  util::Status VerifyHead(const std::string& method, const std::string& target, FindFn find,
                          uint64_t now_ms, VerifiedHead* out) {
    const std::string* n = find("x-georeg-node");
    const std::string* t = find("x-georeg-time");
    const std::string* nonce = find("x-georeg-nonce");
    const std::string* b = find("x-georeg-body-sha256");
    const std::string* s = find("x-georeg-signature");
    if (!n || !t || !nonce || !b || !s)
      return util::Status::PermissionDenied("unsigned peer request");
    std::string text = SignedText(*n, method, target, *t + "\n" + *nonce, *b);
    util::Status st = CheckHead(text, *n, *t, *s, now_ms);
    if (st.ok()) {
      const std::string* ns = find("x-georeg-node-signature");
      *out = {*n, *b, std::move(text), ns ? *ns : ""};
    }
    return st;
  }
  // The body read after VerifyHead hashes to what was signed.
  static bool BodyMatches(const std::string& body, const std::string& body_sha);

  size_t remembered() const { return seen_.size(); }

 private:
  static std::string SignedText(const std::string& node, const std::string& method,
                                const std::string& target, const std::string& time,
                                const std::string& body_sha);
  std::string Mac(const std::string& text) const;
  util::Status CheckHead(const std::string& text, const std::string& node, const std::string& time,
                         const std::string& signature, uint64_t now_ms);

  std::string key_;
  uint64_t window_ms_;
  uint64_t next_nonce_ = 0;
  // Signatures seen whose request time is still inside the window.
  std::unordered_set<std::string> seen_;
  std::multimap<uint64_t, std::string> by_time_;
};

}  // namespace peers
