// Membership records and the order in which they supersede each other
// (SWIM with incarnation numbers; docs/gossip.md, "Membership").
//
// Pure. A record is (name, region, url, state, incarnation, public key,
// signature). Between two
// records of one member, the one with the larger incarnation wins; at equal
// incarnations the stronger state wins: alive < suspect < dead < left. This
// is a join-semilattice, so nodes that see the same records in any order
// agree. Only the member itself raises its incarnation, which is how a live
// node refutes a suspicion (or a death declared across a partition).
//
// Signatures (docs/gossip.md, "Node keys"): the member signs its record's
// SignedForm() with its own key each time it raises its incarnation or
// leaves. Others may pass the record on as suspect or dead at the same
// incarnation (that is what failure detection is), but cannot change its
// address, region or key, declare it left, or raise its incarnation.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>

namespace peers {

enum class MemberState : uint8_t { kAlive = 0, kSuspect = 1, kDead = 2, kLeft = 3 };

const char* MemberStateName(MemberState s);
bool ParseMemberState(const std::string& text, MemberState* out);

struct MemberRecord {
  std::string name, region, url;
  MemberState state = MemberState::kAlive;
  uint64_t incarnation = 0;
  std::string public_key = {};  // the member's Ed25519 key (hex)
  std::string signature = {};   // the member's signature of SignedForm() (hex)

  // What the member signed: suspect and dead are others' opinions of an
  // alive record, so they carry the alive form's signature.
  std::string SignedForm() const {
    return "georeg-member\n" + name + "\n" + region + "\n" + url + "\n" + public_key + "\n" +
           std::to_string(incarnation) + "\n" + (state == MemberState::kLeft ? "left" : "alive");
  }

  bool Supersedes(const MemberRecord& o) const {
    if (incarnation != o.incarnation) return incarnation > o.incarnation;
    return state > o.state;
  }
};

// Anti-entropy of the membership in buckets (docs/gossip.md, "Dissemination"):
// a record falls in the bucket of its name's hash; a bucket's summary is
// the XOR of the hashes of its records (name, incarnation, state), so two
// nodes holding the same records have the same summaries, whatever order
// they learned them in, and a sync exchanges only the records of buckets
// that differ.
inline constexpr uint32_t kMemberBuckets = 64;
uint32_t MemberBucketOf(const std::string& name);
uint64_t MemberRecordHash(const MemberRecord& r);

// `by` declares that `name`'s key `public_key` is revoked (georeg peers
// remove). Signed by `by`'s own key; permanent for that key.
struct Revocation {
  std::string name, public_key, by, signature;
  std::string SignedForm() const {
    return "georeg-revoke\n" + name + "\n" + public_key + "\n" + by;
  }
  // What a revocation is filed under: the member and the key it revokes.
  static std::string KeyOf(const std::string& name, const std::string& public_key) {
    return name + "\n" + public_key;
  }
  std::string Key() const { return KeyOf(name, public_key); }
};

// One member as a node sees it: the record plus what this node measured.
struct Member {
  MemberRecord record;
  uint64_t state_since_ms = 0;   // when this node applied the current state
  double rtt_ms = -1;            // smoothed round-trip time of direct probes; <0: none yet
  uint64_t summary_version = 0;  // the newest digest-summary version it announced
  uint64_t last_heard_ms = 0;    // when a message from it last arrived (0: never)
  bool live() const {
    return record.state == MemberState::kAlive || record.state == MemberState::kSuspect;
  }

  // Smooths an RTT sample in as TCP does (RFC 6298): 7/8 old + 1/8 new, and
  // keeps the last kRttWindow samples for min_rtt_ms().
  void AddRttSample(double ms) {
    rtt_ms = rtt_ms < 0 ? ms : rtt_ms * 0.875 + ms * 0.125;
    recent_rtt_[rtt_samples_++ % kRttWindow] = ms;
  }
  // The smallest of the recent samples: the path's propagation delay without
  // the queueing, scheduling and connection setup that inflate single
  // samples. This is what "nearest" means when routing. <0: none yet.
  double min_rtt_ms() const {
    if (rtt_samples_ == 0) return -1;
    size_t n = std::min<size_t>(rtt_samples_, kRttWindow);
    return *std::min_element(recent_rtt_.begin(), recent_rtt_.begin() + n);
  }

 private:
  static constexpr size_t kRttWindow = 8;
  std::array<double, kRttWindow> recent_rtt_{};
  uint64_t rtt_samples_ = 0;
};

}  // namespace peers
