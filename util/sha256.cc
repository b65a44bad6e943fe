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

}  // namespace util
