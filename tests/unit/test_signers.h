// Node keys for tests: a real Ed25519 key per name (the same name, the
// same key, in every run), and a cheap stand-in for the 1000-node
// simulator, whose nodes would otherwise spend minutes in Ed25519.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "peers/node_key.h"
#include "util/digest.h"
#include "util/sha256.h"

namespace testing_keys {

inline std::shared_ptr<peers::Ed25519Signer> KeyFor(const std::string& name) {
  util::Sha256::Hash h = util::Sha256::Of("test node key " + name);
  peers::Ed25519Signer::Seed seed;
  std::copy(h.begin(), h.end(), seed.begin());
  return std::make_shared<peers::Ed25519Signer>(seed);
}

// "Signs" with a fast non-cryptographic hash of (public key, message):
// checks that the right key and message are used, forges easily, and costs
// almost nothing (the simulator checks millions of records).
class FakeSigner : public peers::Signer {
 public:
  explicit FakeSigner(const std::string& name) : public_(Hex("pub " + name)) {}
  const std::string& public_key() const override { return public_; }
  std::string Sign(std::string_view message) const override { return Mac(public_, message); }
  bool Verify(const std::string& key, std::string_view message,
              const std::string& sig) const override {
    return sig == Mac(key, message);
  }

 private:
  static std::string Hex(const std::string& s) {
    util::Sha256::Hash h = util::Sha256::Of(s);
    return util::HexEncode(h.data(), h.size());
  }
  static std::string Mac(const std::string& key, std::string_view m) {
    uint64_t h =
        std::hash<std::string_view>()(m) ^ (std::hash<std::string>()(key) * 0x9e3779b97f4a7c15ull);
    return std::to_string(h);
  }
  std::string public_;
};

}  // namespace testing_keys
