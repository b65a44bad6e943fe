#include "peers/node_key.h"

#include <nettle/eddsa.h>

#include "util/digest.h"

namespace peers {

Ed25519Signer::Ed25519Signer(const Seed& seed) : seed_(seed) {
  ed25519_sha512_public_key(public_.data(), seed_.data());
  public_hex_ = util::HexEncode(public_.data(), public_.size());
}

util::Result<Ed25519Signer::Seed> Ed25519Signer::ParseSeed(std::string_view hex) {
  Seed s;
  if (!util::HexDecode(hex, s.data(), s.size()))
    return util::Status::InvalidArgument("a node key is 64 lowercase hex digits");
  return s;
}

std::string Ed25519Signer::Sign(std::string_view message) const {
  uint8_t sig[ED25519_SIGNATURE_SIZE];
  ed25519_sha512_sign(public_.data(), seed_.data(), message.size(),
                      reinterpret_cast<const uint8_t*>(message.data()), sig);
  return util::HexEncode(sig, sizeof sig);
}

bool Ed25519Signer::Verify(const std::string& public_key, std::string_view message,
                           const std::string& signature) const {
  uint8_t pub[ED25519_KEY_SIZE], sig[ED25519_SIGNATURE_SIZE];
  if (!util::HexDecode(public_key, pub, sizeof pub) || !util::HexDecode(signature, sig, sizeof sig))
    return false;
  return ed25519_sha512_verify(pub, message.size(),
                               reinterpret_cast<const uint8_t*>(message.data()), sig) == 1;
}

}  // namespace peers
