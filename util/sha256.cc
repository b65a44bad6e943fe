#include "util/sha256.h"

namespace util {

Sha256::Hash Sha256::Finish() {
  Hash out;
  sha256_digest(&ctx_, out.size(), out.data());
  return out;
}

Sha256::Hash Sha256::Of(std::string_view s) {
  Sha256 h;
  h.Update(s);
  return h.Finish();
}

Digest DigestOf(std::string_view bytes) { return Digest::FromRaw(Sha256::Of(bytes).data()); }

}  // namespace util
