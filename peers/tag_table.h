// TagTable: the fleet's tag -> digest map as a last-writer-wins register per
// tag, with bucketed summaries for anti-entropy (docs/gossip.md).
//
// Pure, not thread-safe. Keys are (registry, repository, tag); versions are
// ordered by HLC timestamp, then origin node name. Apply never rolls a tag
// back, and applying a set of updates in any order yields the same table.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "peers/hlc.h"
#include "util/digest.h"

namespace peers {

inline constexpr size_t kMaxTagValueBytes = 4096;

struct TagKey {
  std::string registry, repository, tag;
  bool operator<(const TagKey& o) const {
    return std::tie(registry, repository, tag) < std::tie(o.registry, o.repository, o.tag);
  }
  bool operator==(const TagKey& o) const {
    return registry == o.registry && repository == o.repository && tag == o.tag;
  }
};

struct TagVersion {
  util::Digest digest;
  HlcTimestamp hlc;
  std::string origin;  // the node that made the change
  std::string signature =
      {};  // origin's signature of TagUpdate::SignedForm() (hex); not part of the order
  // What else the origin says about the entry (signed with it; at most
  // kMaxTagValueBytes): "" for a mirrored tag; for the own registry's tags
  // and fleet records, a small JSON object (docs/replication.md).
  std::string value = {};
  // The total order every node agrees on.
  bool NewerThan(const TagVersion& o) const {
    if (o.hlc < hlc) return true;
    if (hlc < o.hlc) return false;
    return origin > o.origin;
  }
};

struct TagUpdate {
  TagKey key;
  TagVersion version;
  // What the origin signed: everything but the signature.
  std::string SignedForm() const {
    return "georeg-tag\n" + key.registry + "\n" + key.repository + "\n" + key.tag + "\n" +
           version.digest.ToString() + "\n" + std::to_string(version.hlc.wall_ms) + "\n" +
           std::to_string(version.hlc.logical) + "\n" + version.origin +
           (version.value.empty() ? std::string() : "\n" + version.value);
  }
};

class TagTable {
 public:
  // Applies an update if it is newer than what the table holds for its key.
  // Returns true when the table changed.
  bool Apply(const TagUpdate& update);
  const TagVersion* Find(const TagKey& key) const;
  // Withdraws every entry `origin` made (its key was revoked); returns them.
  std::vector<TagUpdate> RemoveOrigin(const std::string& origin);
  size_t size() const { return entries_.size(); }
  // Every entry of one registry (tombstones included), in key order.
  std::vector<TagUpdate> EntriesOf(const std::string& registry) const;

  // Anti-entropy: one 64-bit summary per bucket (XOR of entry hashes).
  std::vector<uint64_t> Summaries(uint32_t buckets) const;
  // The buckets whose summaries differ between two nodes.
  static std::vector<uint32_t> DifferingBuckets(const std::vector<uint64_t>& mine,
                                                const std::vector<uint64_t>& theirs);
  // Every entry of the given buckets (what travels after a summary exchange).
  std::vector<TagUpdate> EntriesIn(const std::vector<uint32_t>& buckets,
                                   uint32_t bucket_count) const;

  static uint32_t BucketOf(const TagKey& key, uint32_t buckets);

 private:
  std::map<TagKey, TagVersion> entries_;
};

}  // namespace peers
