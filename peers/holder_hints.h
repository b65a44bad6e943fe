// HolderHints: the nodes known to hold a digest of the fleet's own
// registry (it was pushed there, they keep a replica, a gossiped tag named
// them), so a miss asks them first (peers::PreferHolders).
//
// Hints, not truth: a holder may have lost the digest since, and the miss
// goes on to the usual owners then. Bounded: at most `max_digests`
// digests; when full, the digest noted first is forgotten first. Pure;
// one thread.
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "util/digest.h"

namespace peers {

class HolderHints {
 public:
  static constexpr size_t kDefaultMaxDigests = 1 << 16;
  explicit HolderHints(size_t max_digests = kDefaultMaxDigests) : max_(max_digests) {}

  // The nodes known to hold `digest`, in the order they were noted; empty
  // when none is known.
  std::vector<std::string> Of(const util::Digest& digest) const;
  // Adds `holders` to those of `digest` (each name once); none: no change.
  void Note(const util::Digest& digest, const std::vector<std::string>& holders);
  size_t size() const { return holders_.size(); }

 private:
  size_t max_;
  std::unordered_map<util::Digest, std::vector<std::string>, util::DigestHash> holders_;
  std::deque<util::Digest> order_;  // the digests, first noted first
};

}  // namespace peers
