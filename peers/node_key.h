// Node keys: how a node signs what it says and checks what others say
// (docs/gossip.md, "Node keys").
//
// Every node has its own Ed25519 key pair. It signs its membership record
// and every tag update it originates; the signatures travel with them and
// are relayed unchanged, so a node can speak only for itself. The cluster
// key (PeerAuth) still decides who may talk at all.
//
// Signer is the interface the gossip node uses, so the simulator can pass a
// cheap stand-in; Ed25519Signer is the real one (nettle). Keys and
// signatures are lowercase hex: 64 digits for a public key, 128 for a
// signature. Pure, thread-compatible.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "util/status.h"

namespace peers {

class Signer {
 public:
  virtual ~Signer() = default;
  // Our public key (hex).
  virtual const std::string& public_key() const = 0;
  // A signature of `message` under our private key (hex).
  virtual std::string Sign(std::string_view message) const = 0;
  // Whether `signature` is `public_key`'s signature of `message`. False for
  // anything malformed; never throws.
  virtual bool Verify(const std::string& public_key, std::string_view message,
                      const std::string& signature) const = 0;
};

class Ed25519Signer : public Signer {
 public:
  static constexpr size_t kSeedSize = 32;
  using Seed = std::array<uint8_t, kSeedSize>;

  // The key pair of a 32-byte private seed.
  explicit Ed25519Signer(const Seed& seed);
  // Errors: InvalidArgument unless `hex` is 64 hex digits.
  static util::Result<Seed> ParseSeed(std::string_view hex);

  const std::string& public_key() const override { return public_hex_; }
  std::string Sign(std::string_view message) const override;
  bool Verify(const std::string& public_key, std::string_view message,
              const std::string& signature) const override;

 private:
  Seed seed_;
  std::array<uint8_t, 32> public_{};
  std::string public_hex_;
};

}  // namespace peers
