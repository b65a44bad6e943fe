#include "peers/peer_auth.h"

#include <nettle/hmac.h>
#include <nettle/memops.h>

#include "util/digest.h"
#include "util/sha256.h"

namespace peers {

using util::Status;

std::string PeerAuth::SignedText(const std::string& node, const std::string& method,
                                 const std::string& target, const std::string& time,
                                 const std::string& body_sha) {
  return method + "\n" + target + "\n" + time + "\n" + body_sha + "\n" + node;
}

std::string PeerAuth::Mac(const std::string& text) const {
  hmac_sha256_ctx ctx;
  hmac_sha256_set_key(&ctx, key_.size(), reinterpret_cast<const uint8_t*>(key_.data()));
  hmac_sha256_update(&ctx, text.size(), reinterpret_cast<const uint8_t*>(text.data()));
  uint8_t mac[SHA256_DIGEST_SIZE];
  hmac_sha256_digest(&ctx, sizeof mac, mac);
  return util::HexEncode(mac, sizeof mac);
}

std::vector<PeerHeader> PeerAuth::Sign(const std::string& node, const Signer& node_key,
                                       const std::string& method, const std::string& target,
                                       const std::string& body, uint64_t now_ms) {
  util::Sha256::Hash h = util::Sha256::Of(body);
  std::string body_sha = util::HexEncode(h.data(), h.size());
  std::string time = std::to_string(now_ms), nonce = std::to_string(next_nonce_++);
  std::string text = SignedText(node, method, target, time + "\n" + nonce, body_sha);
  return {{"X-Georeg-Node", node},           {"X-Georeg-Time", time},
          {"X-Georeg-Nonce", nonce},         {"X-Georeg-Body-Sha256", body_sha},
          {"X-Georeg-Signature", Mac(text)}, {"X-Georeg-Node-Signature", node_key.Sign(text)}};
}

bool PeerAuth::BodyMatches(const std::string& body, const std::string& body_sha) {
  util::Sha256::Hash h = util::Sha256::Of(body);
  return util::HexEncode(h.data(), h.size()) == body_sha;
}

Status PeerAuth::CheckHead(const std::string& text, const std::string& node, const std::string& ms,
                           const std::string& signature, uint64_t now_ms) {
  std::string expected = Mac(text);
  if (signature.size() != expected.size() ||
      !nettle_memeql_sec(signature.data(), expected.data(), expected.size()))
    return Status::PermissionDenied("bad signature from '" + node + "'");
  char* end = nullptr;
  uint64_t t = std::strtoull(ms.c_str(), &end, 10);
  if (ms.empty() || *end != '\0') return Status::PermissionDenied("bad time from '" + node + "'");
  uint64_t diff = t > now_ms ? t - now_ms : now_ms - t;
  if (diff > window_ms_)
    return Status::PermissionDenied("request from '" + node + "' is " + std::to_string(diff) +
                                    " ms off our clock (window " + std::to_string(window_ms_) +
                                    " ms)");
  // Forget signatures that fell out of the window: their time check fails now anyway.
  while (!by_time_.empty() && by_time_.begin()->first + window_ms_ < now_ms) {
    seen_.erase(by_time_.begin()->second);
    by_time_.erase(by_time_.begin());
  }
  if (!seen_.insert(signature).second)
    return Status::PermissionDenied("replayed request from '" + node + "'");
  by_time_.emplace(t, signature);
  return Status::Ok();
}

}  // namespace peers
