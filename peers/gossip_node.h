// GossipNode: one node's membership (SWIM) and tag gossip, as a pure state
// machine (docs/gossip.md).
//
// Time and the network are passed in: the daemon (src/peering/) and the
// simulator (tests/unit/gossip_sim_test.cc) call Tick() and Receive() with
// the time, and send what TakeOutbox() returns. Nothing here blocks, and
// the node never learns an address except from configuration (seeds) and
// from membership records carried in messages the caller authenticated.
//
// What it does:
//   - Failure detection: one probe per probe_interval, members in a shuffled
//     round-robin; no ack within probe_timeout -> indirect probes through
//     `indirect_probes` others; no ack by the end of the period -> suspect;
//     a suspect not refuted within suspect_timeout -> dead. A node that hears
//     itself suspected or dead raises its incarnation (refutes). Direct acks
//     give RTT samples (smoothed).
//   - Dissemination: every membership change and every new tag update is a
//     rumor, piggybacked on outgoing messages and pushed every gossip_interval
//     to `fanout` random live peers, each rumor retransmitted
//     retransmit_mult * ceil(log10(n + 1)) times.
//   - Anti-entropy: every sync_interval, an exchange of membership and tag
//     bucket summaries with one random member (dead ones included, so
//     partitions heal); only the records and entries of differing buckets
//     travel, so a converged fleet's syncs cost the same at any size. A node
//     that knows no one syncs with a seed (join).
//   - Reaching out: while a seed is not the URL of a live member, or a
//     member is dead, each sync_interval also brings one more exchange with
//     one of them (seeds and dead members by turns, each list in rotation).
//     Two clusters that formed apart (a fleet started at once, where each
//     seed was first reached by others and so never reached another seed)
//     thus merge once any node of one has a seed in the other: within
//     2 * seeds * sync_interval, then the convergence bound.
//   - Tags: last-writer-wins by (HLC, origin); updates with an HLC further
//     ahead of our clock than max_clock_skew are refused and counted.
//   - Node keys (peers/node_key.h): our record and every tag update we
//     originate carry our signature; records and updates from peers are
//     applied only when their member's (origin's) signature verifies under
//     the key this node holds for that name. A name's key is fixed while it
//     is a member; only a revocation (Revoke, "georeg peers remove")
//     withdraws it, with every tag it originated, on every node.
//
// Not thread-safe; the caller serializes calls.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "peers/hlc.h"
#include "peers/membership.h"
#include "peers/node_key.h"
#include "peers/protocol.h"
#include "peers/tag_table.h"
#include "util/status.h"

namespace peers {

enum class MessageType : uint8_t { kPing, kAck, kPingReq, kSync, kSyncReply, kPush };
const char* MessageTypeName(MessageType t);
bool ParseMessageType(const std::string& text, MessageType* out);

struct Message {
  uint64_t protocol = kProtocolVersion;  // the sender's (peers/protocol.h)
  MessageType type = MessageType::kPing;
  std::string from;                     // the sender's name
  uint64_t seq = 0;                     // probe sequence (ping, ack, ping-req)
  std::string target;                   // ping-req: whom to probe; relayed ack: who answered
  uint64_t summary_version = 0;         // the sender's digest-summary version
  std::vector<MemberRecord> members;    // rumors, or the full list (sync)
  std::vector<TagUpdate> tags;          // rumors, or differing buckets (sync reply, push)
  std::vector<uint64_t> tag_summaries;  // sync and sync reply
  // Sync and sync reply: the sender's membership by bucket (kMemberBuckets;
  // MemberRecordHash). Present: `members` holds the sender and only the
  // records of buckets that differ. Absent (an earlier release): `members`
  // is the whole membership, and so is the answer.
  std::vector<uint64_t> member_summaries;
  std::vector<Revocation> revocations;  // rumors, or all of them (sync, sync reply)
};

struct Envelope {
  std::string to_url;
  std::string to;  // the member name; empty for a seed not known yet
  Message message;
};

struct GossipOptions {
  uint64_t probe_interval_ms = 1000;
  uint64_t probe_timeout_ms = 500;
  uint64_t suspect_timeout_ms = 5000;
  uint64_t gossip_interval_ms = 200;
  uint32_t fanout = 3;
  uint64_t sync_interval_ms = 5000;
  uint64_t max_clock_skew_ms = 60000;
  uint32_t indirect_probes = 3;
  uint32_t retransmit_mult = 4;
  uint32_t max_piggyback = 24;
  uint32_t tag_buckets = 256;
  uint32_t max_members = 4096;  // members beyond this are not added (counted)
};

// An incarnation starts at the wall clock in seconds and grows by one per
// refutation; a record claiming more than this many refutations ahead of
// now (plus the skew bound) is a forgery (it would evict a node for good).
constexpr uint64_t kMaxIncarnationLead = 1'000'000;

struct GossipStats {
  uint64_t messages_sent = 0;
  uint64_t messages_received = 0;
  uint64_t tags_applied = 0;          // updates that changed the table (local or remote)
  uint64_t tags_refused_future = 0;   // updates beyond the clock-skew bound
  uint64_t probes_failed = 0;         // probes that ended in a suspicion
  uint64_t refutations = 0;           // times this node raised its incarnation
  uint64_t tags_refused_invalid = 0;  // updates whose HLC could not be honest (logical counter)
  uint64_t members_refused = 0;       // records over max_members, or with an impossible incarnation
  uint64_t records_refused_signature =
      0;  // member records not signed by their member's key (or a revoked one)
  uint64_t tags_refused_signature = 0;  // updates not signed by their origin's key
  uint64_t tags_unknown_origin =
      0;  // updates from an origin not known yet (anti-entropy brings them again)
  uint64_t revocations_applied = 0;
  uint64_t revocations_refused = 0;  // badly signed, or over the bound
};

// docs/gossip.md, "Convergence bound": after the last tag update, or after a
// partition heals, every connected node of an `n`-node cluster holds it
// within this time with high probability:
//   2 * sync_interval + (ceil(log_{fanout+1} n) + ceil(ln n / fanout) + 2) * (gossip_interval +
//   max_rtt)
uint64_t TagConvergenceBoundMs(const GossipOptions& o, size_t n, uint64_t max_rtt_ms);

// docs/gossip.md, "Failure detection bound": every live node declares a
// crashed member dead within this time (its own round-robin reaches the
// member within two cycles of n - 1 probes, plus the failed probe and the
// suspicion timeout).
uint64_t DeadDetectionBoundMs(const GossipOptions& o, size_t n);

// Rumors of one kind waiting to be piggybacked, least-sent first, each sent
// at most `limit` times. Keyed, so a newer rumor about the same thing
// replaces the older one. Tags and membership have a queue each, so a storm
// of membership changes never starves tag updates.
template <typename T>
class RumorQueue {
 public:
  void Add(const std::string& key, T item) {
    auto it = index_.find(key);
    if (it != index_.end()) by_sent_[it->second->sent].erase(it->second);
    if (by_sent_.empty()) by_sent_.resize(1);
    by_sent_[0].push_front({key, std::move(item), 0});
    index_[key] = by_sent_[0].begin();
  }
  // Calls fn(item) for up to `max` least-sent rumors and counts them sent.
  template <typename Fn>
  void Take(size_t max, uint32_t limit, Fn fn) {
    std::vector<typename List::iterator> picked;
    for (uint32_t b = 0; b < by_sent_.size() && picked.size() < max; ++b) {
      for (auto it = by_sent_[b].begin(); it != by_sent_[b].end() && picked.size() < max; ++it)
        picked.push_back(it);
    }
    for (auto it : picked) {
      fn(it->item);
      uint32_t from = it->sent++;
      if (it->sent >= limit) {
        index_.erase(it->key);
        by_sent_[from].erase(it);
        continue;
      }
      if (by_sent_.size() <= it->sent) by_sent_.resize(it->sent + 1);
      by_sent_[it->sent].splice(by_sent_[it->sent].end(), by_sent_[from],
                                it);  // iterators stay valid
    }
  }
  bool empty() const { return index_.empty(); }
  size_t size() const { return index_.size(); }

 private:
  struct Entry {
    std::string key;
    T item;
    uint32_t sent;
  };
  using List = std::list<Entry>;
  std::vector<List> by_sent_;  // index: times sent
  std::unordered_map<std::string, typename List::iterator> index_;
};

class GossipNode {
 public:
  // `self` is this node's record (state alive; incarnation: start from the
  // wall clock in seconds so a restarted node outranks its old records).
  // `seed_urls` may include our own URL (skipped). `rng_seed` makes runs
  // repeatable. `signer` holds this node's key; self's public key and
  // signature are set from it.
  GossipNode(MemberRecord self, std::vector<std::string> seed_urls, GossipOptions options,
             uint64_t rng_seed, std::shared_ptr<const Signer> signer);

  // Advances timers; `now_ms` is monotonic.
  void Tick(uint64_t now_ms);
  // What a message taught this node, for the caller to act on (store,
  // prefetch): the tag updates that changed the table, and the entries
  // withdrawn because a revocation removed their origin.
  struct Learned {
    std::vector<TagUpdate> tags;
    std::vector<TagUpdate> withdrawn;
    bool empty() const { return tags.empty() && withdrawn.empty(); }
  };
  // A message from a peer (authenticated by the caller).
  Learned Receive(const Message& m, uint64_t now_ms, uint64_t physical_ms);
  // The messages to send now; the caller delivers each at most once.
  std::vector<Envelope> TakeOutbox();

  // A tag change this node saw at its upstream (or a push, or a fleet
  // record; `value` as TagVersion::value): stamped, applied, gossiped.
  // Unchanged digest and value: the current version, nothing new.
  TagUpdate RecordTag(const TagKey& key, const util::Digest& digest, uint64_t physical_ms,
                      const std::string& value = "");
  // A push message carrying `u` (and our record), for the caller to send
  // straight to chosen members, outside the rumor rounds.
  Message TagPush(const TagUpdate& u) {
    Message m = Make(MessageType::kPush);
    m.members = {self_};
    m.tags = {u};
    return m;
  }
  // An update this node kept across a restart (the own registry's fleet
  // state): applied if newer, no listener called. False if it was not.
  bool Restore(const TagUpdate& u, uint64_t physical_ms);
  // Graceful leave: tells live peers directly; the node then stops probing.
  void Leave();
  // Revokes member `name`'s key fleet-wide: it is dropped from membership,
  // the tags it originated are withdrawn, and nothing signed with that key
  // is accepted again. The name may rejoin with a new key. The withdrawn
  // entries are added to `withdrawn` when given. Errors: NotFound (no such
  // member), InvalidArgument (our own name).
  util::Status Revoke(const std::string& name, std::vector<TagUpdate>* withdrawn = nullptr);
  // Our own key was revoked by another node: we stopped, like Leave().
  bool revoked() const { return revoked_self_; }

  // The key this node holds for `name` (ourselves included), or null.
  const std::string* KeyOf(const std::string& name) const;
  // Whether `r` is signed by its member's key, that key is not revoked, and
  // it is the key we hold for the name (if we hold one). For a message from
  // a sender not known yet: its own record says which key signed the request.
  bool CheckRecord(const MemberRecord& r) const;
  // Whether `r` is its member's own record under a key that was revoked
  // (its messages are taken only to tell it so).
  bool IsRevoked(const MemberRecord& r) const;
  const Signer& signer() const { return *signer_; }
  // Announced in every message: peers fetch our digest summary when it grows.
  void SetSummaryVersion(uint64_t v) { summary_version_ = v; }

  const std::map<std::string, Revocation>& revocations() const { return revocations_; }

  const std::string& name() const { return self_.name; }
  const MemberRecord& self() const { return self_; }
  // Others, not self; unordered (sort for display).
  const std::unordered_map<std::string, Member>& members() const { return members_; }
  const Member* Find(const std::string& name) const;
  const TagTable& tags() const { return tags_; }
  const GossipStats& stats() const { return stats_; }
  size_t live_count() const;  // live others
  // Members that appeared, changed state, went (revoked) or announced a
  // newer digest summary since the last call, each once: what the caller
  // logs and fetches looks at these, not at every member every tick.
  std::vector<std::string> TakeChangedMembers();

 private:
  struct Probe {
    std::string target;
    uint64_t seq = 0;
    uint64_t sent_ms = 0;
    bool indirect_sent = false;
    bool acked = false;
  };
  struct Relay {
    std::string requester;
    uint64_t requester_seq = 0;
    uint64_t expires_ms = 0;
  };

  void Send(const std::string& to, Message m);
  void SendToUrl(const std::string& url, const std::string& to, Message m);
  Message Make(MessageType type);
  void Piggyback(Message* m);
  void MergeMember(const MemberRecord& r, uint64_t now_ms, uint64_t physical_ms);
  void SetState(Member* m, MemberState s, uint64_t now_ms);
  void NoteState(const Member& m,
                 bool was_live);  // keeps suspect deadlines and the live set current
  void Refute(uint64_t incarnation);
  void ReceiveMessage(const Message& m, uint64_t now_ms, uint64_t physical_ms);
  void ApplyTag(const TagUpdate& u, uint64_t physical_ms, bool from_peer);
  bool SignedByOrigin(const TagUpdate& u);  // counts what it refuses
  void ApplyRevocation(const Revocation& r);
  void EraseMember(const std::string& name);
  void TellIfRevoked(const Message& m);
  void SignSelf();
  void RumorMember(const MemberRecord& r);
  void RumorTag(const TagUpdate& u);
  uint32_t RetransmitLimit() const;
  std::vector<std::string> RandomLive(size_t k, const std::string& except);
  void StartProbe(uint64_t now_ms);
  void CheckProbe(uint64_t now_ms);
  void SyncTick();
  // One exchange with a seed that is not a live member or a dead member (the
  // class comment, "Reaching out"); none when every one is live.
  void ReachTick();
  void GossipTick();
  Message FullSync(MessageType type);
  std::vector<uint64_t> MemberSummaries() const;
  // This node's record and the members in `buckets` (sorted).
  std::vector<MemberRecord> MembersIn(const std::vector<uint32_t>& buckets) const;
  void ReceiveSync(const Message& m);
  void NoteSummaryVersion(const Message& m);
  void NoteChanged(const std::string& name);

  MemberRecord self_;
  std::vector<std::string> seeds_;
  GossipOptions opt_;
  std::mt19937_64 rng_;
  HybridLogicalClock clock_;
  TagTable tags_;
  std::unordered_map<std::string, Member> members_;
  RumorQueue<MemberRecord> member_rumors_;
  RumorQueue<TagUpdate> tag_rumors_;
  RumorQueue<Revocation> revocation_rumors_;
  std::map<std::string, Revocation> revocations_;  // by Revocation::Key()
  std::map<std::string, std::string>
      revoked_urls_;  // by Revocation::Key(): where the member was, to tell it
  std::shared_ptr<const Signer> signer_;
  bool revoked_self_ = false;
  std::multimap<uint64_t, std::string>
      suspect_deadlines_;          // checked against the member's state when due
  std::vector<std::string> live_;  // names of live members, for random picks
  std::unordered_map<std::string, size_t> live_pos_;
  std::vector<Envelope> outbox_;
  std::vector<std::string> changed_;  // TakeChangedMembers(), in order
  std::set<std::string> changed_set_;
  std::vector<std::string> probe_order_;
  Probe probe_;
  bool probing_ = false;
  uint64_t next_seq_ = 1;
  std::map<uint64_t, Relay> relays_;  // our ping seq -> whom to relay the ack to
  uint64_t next_probe_ms_ = 0, next_gossip_ms_ = 0, next_sync_ms_ = 0;
  uint64_t reach_turns_ = 0;                          // even: seeds first; odd: dead members first
  size_t reach_seed_next_ = 0, reach_dead_next_ = 0;  // rotation within each list
  bool started_ = false;
  bool left_ = false;
  uint64_t summary_version_ = 0;
  GossipStats stats_;
  Learned learned_;  // by the Receive or Revoke in progress
};

}  // namespace peers
