#include "peers/gossip_node.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

namespace peers {

const char* MessageTypeName(MessageType t) {
  switch (t) {
    case MessageType::kPing:
      return "ping";
    case MessageType::kAck:
      return "ack";
    case MessageType::kPingReq:
      return "ping-req";
    case MessageType::kSync:
      return "sync";
    case MessageType::kSyncReply:
      return "sync-reply";
    case MessageType::kPush:
      return "push";
  }
  return "?";
}

bool ParseMessageType(const std::string& text, MessageType* out) {
  for (MessageType t : {MessageType::kPing, MessageType::kAck, MessageType::kPingReq,
                        MessageType::kSync, MessageType::kSyncReply, MessageType::kPush}) {
    if (text == MessageTypeName(t)) {
      *out = t;
      return true;
    }
  }
  return false;
}

uint64_t TagConvergenceBoundMs(const GossipOptions& o, size_t n, uint64_t max_rtt_ms) {
  double nn = static_cast<double>(std::max<size_t>(n, 2));
  double f = static_cast<double>(o.fanout);
  double rounds = std::ceil(std::log(nn) / std::log(f + 1)) + std::ceil(std::log(nn) / f) + 2;
  return 2 * o.sync_interval_ms +
         static_cast<uint64_t>(rounds) * (o.gossip_interval_ms + max_rtt_ms);
}

uint64_t DeadDetectionBoundMs(const GossipOptions& o, size_t n) {
  return (2 * (std::max<size_t>(n, 2) - 1) + 1) * o.probe_interval_ms + o.suspect_timeout_ms;
}

GossipNode::GossipNode(MemberRecord self, std::vector<std::string> seed_urls, GossipOptions options,
                       uint64_t rng_seed, std::shared_ptr<const Signer> signer)
    : self_(std::move(self)),
      opt_(options),
      rng_(rng_seed),
      clock_(options.max_clock_skew_ms),
      signer_(std::move(signer)) {
  self_.state = MemberState::kAlive;
  self_.public_key = signer_->public_key();
  SignSelf();
  for (auto& s : seed_urls) {
    if (s != self_.url) seeds_.push_back(std::move(s));
  }
}

void GossipNode::SignSelf() { self_.signature = signer_->Sign(self_.SignedForm()); }

const std::string* GossipNode::KeyOf(const std::string& name) const {
  if (name == self_.name) return &self_.public_key;
  auto it = members_.find(name);
  return it == members_.end() ? nullptr : &it->second.record.public_key;
}

bool GossipNode::CheckRecord(const MemberRecord& r) const {
  if (revocations_.count(Revocation::KeyOf(r.name, r.public_key))) return false;
  const std::string* pinned = KeyOf(r.name);
  if (pinned && *pinned != r.public_key) return false;
  return signer_->Verify(r.public_key, r.SignedForm(), r.signature);
}

const Member* GossipNode::Find(const std::string& name) const {
  auto it = members_.find(name);
  return it == members_.end() ? nullptr : &it->second;
}

size_t GossipNode::live_count() const { return live_.size(); }

std::vector<Envelope> GossipNode::TakeOutbox() {
  std::vector<Envelope> out;
  out.swap(outbox_);
  return out;
}

Message GossipNode::Make(MessageType type) {
  Message m;
  m.type = type;
  m.from = self_.name;
  m.summary_version = summary_version_;
  return m;
}

void GossipNode::Send(const std::string& to, Message m) {
  auto it = members_.find(to);
  if (it == members_.end()) return;
  SendToUrl(it->second.record.url, to, std::move(m));
}

void GossipNode::SendToUrl(const std::string& url, const std::string& to, Message m) {
  ++stats_.messages_sent;
  outbox_.push_back({url, to, std::move(m)});
}

uint32_t GossipNode::RetransmitLimit() const {
  double n = static_cast<double>(members_.size() + 1);
  return opt_.retransmit_mult * static_cast<uint32_t>(std::max(1.0, std::ceil(std::log10(n + 1))));
}

void GossipNode::RumorMember(const MemberRecord& r) { member_rumors_.Add(r.name, r); }

void GossipNode::RumorTag(const TagUpdate& u) {
  tag_rumors_.Add(u.key.registry + '\n' + u.key.repository + '\n' + u.key.tag, u);
}

// Our own record rides on every message (so a peer that never heard of us
// can answer, and refutations spread fast), then the least-sent rumors of
// each kind, half the budget each.
void GossipNode::Piggyback(Message* m) {
  m->members.push_back(self_);
  uint32_t limit = RetransmitLimit();
  size_t half = std::max<size_t>(1, opt_.max_piggyback / 2);
  tag_rumors_.Take(half, limit, [m](const TagUpdate& u) { m->tags.push_back(u); });
  revocation_rumors_.Take(4, limit, [m](const Revocation& r) { m->revocations.push_back(r); });
  member_rumors_.Take(half, limit, [this, m](const MemberRecord& r) {
    if (r.name != self_.name) m->members.push_back(r);
  });
}

std::vector<std::string> GossipNode::RandomLive(size_t k, const std::string& except) {
  const auto& live = live_;
  std::vector<std::string> out;
  if (live.empty()) return out;
  if (live.size() <= k + 1) {
    for (const auto& n : live) {
      if (n != except && out.size() < k) out.push_back(n);
    }
    std::shuffle(out.begin(), out.end(), rng_);
    return out;
  }
  // Many more members than wanted: draw without replacement by rejection.
  std::uniform_int_distribution<size_t> pick(0, live.size() - 1);
  std::set<size_t> chosen;
  while (out.size() < k) {
    size_t i = pick(rng_);
    if (live[i] == except || !chosen.insert(i).second) continue;
    out.push_back(live[i]);
  }
  return out;
}

void GossipNode::SetState(Member* m, MemberState s, uint64_t now_ms) {
  bool was_live = m->live();
  m->record.state = s;
  m->state_since_ms = now_ms;
  NoteState(*m, was_live);
  RumorMember(m->record);
}

void GossipNode::NoteChanged(const std::string& name) {
  if (changed_set_.insert(name).second) changed_.push_back(name);
}

std::vector<std::string> GossipNode::TakeChangedMembers() {
  changed_set_.clear();
  return std::exchange(changed_, {});
}

void GossipNode::NoteState(const Member& m, bool was_live) {
  const std::string& name = m.record.name;
  NoteChanged(name);
  if (m.live() && !was_live) {
    live_pos_[name] = live_.size();
    live_.push_back(name);
  } else if (!m.live() && was_live) {
    size_t pos = live_pos_.at(name);
    live_pos_[live_.back()] = pos;
    std::swap(live_[pos], live_.back());
    live_.pop_back();
    live_pos_.erase(name);
  }
  if (m.record.state == MemberState::kSuspect)
    suspect_deadlines_.emplace(m.state_since_ms + opt_.suspect_timeout_ms, name);
}

void GossipNode::Refute(uint64_t incarnation) {
  self_.incarnation = std::max(self_.incarnation, incarnation) + 1;
  self_.state = MemberState::kAlive;
  SignSelf();
  ++stats_.refutations;
  RumorMember(self_);
}

void GossipNode::MergeMember(const MemberRecord& r, uint64_t now_ms, uint64_t physical_ms) {
  if (r.name.empty() || r.url.empty()) return;
  if (r.incarnation > (physical_ms + opt_.max_clock_skew_ms) / 1000 + kMaxIncarnationLead) {
    ++stats_.members_refused;
    return;
  }
  auto it = members_.find(r.name);
  const MemberRecord* known = r.name == self_.name   ? &self_
                              : it == members_.end() ? nullptr
                                                     : &it->second.record;
  // A record we already checked, in another state at the same incarnation
  // (suspect, dead: the alive form's signature), needs no second check.
  bool checked = known && known->incarnation == r.incarnation && known->signature == r.signature &&
                 known->public_key == r.public_key && known->url == r.url &&
                 known->region == r.region &&
                 (known->state == MemberState::kLeft) == (r.state == MemberState::kLeft);
  if (!checked && !CheckRecord(r)) {
    ++stats_.records_refused_signature;
    return;
  }
  if (r.name == self_.name) {
    if (!left_ && r.Supersedes(self_)) Refute(r.incarnation);
    return;
  }
  if (it == members_.end()) {
    if (members_.size() >= opt_.max_members) {
      ++stats_.members_refused;
      return;
    }
    Member m;
    m.record = r;
    m.state_since_ms = now_ms;
    NoteState(m, false);
    members_.emplace(r.name, m);
    RumorMember(r);
    return;
  }
  Member& m = it->second;
  if (!r.Supersedes(m.record)) return;
  bool state_changed = r.state != m.record.state;
  bool was_live = m.live();
  m.record = r;
  if (state_changed) {
    m.state_since_ms = now_ms;
    NoteState(m, was_live);
  }
  RumorMember(r);
}

bool GossipNode::SignedByOrigin(const TagUpdate& u) {
  const std::string* key = KeyOf(u.version.origin);
  if (!key) {
    ++stats_.tags_unknown_origin;
    return false;
  }
  if (!signer_->Verify(*key, u.SignedForm(), u.version.signature)) {
    ++stats_.tags_refused_signature;
    return false;
  }
  return true;
}

void GossipNode::ApplyTag(const TagUpdate& u, uint64_t physical_ms, bool from_peer) {
  if (from_peer) {
    // Only what would change the table is worth a signature check.
    const TagVersion* cur = tags_.Find(u.key);
    if (cur && !u.version.NewerThan(*cur)) return;
    if (!SignedByOrigin(u)) return;
  }
  if (from_peer && !clock_.Observe(u.version.hlc, physical_ms)) {
    ++(u.version.hlc.logical > kMaxHlcLogical ? stats_.tags_refused_invalid
                                              : stats_.tags_refused_future);
    return;
  }
  if (!tags_.Apply(u)) return;
  ++stats_.tags_applied;
  RumorTag(u);
  if (from_peer) learned_.tags.push_back(u);
}

TagUpdate GossipNode::RecordTag(const TagKey& key, const util::Digest& digest, uint64_t physical_ms,
                                const std::string& value) {
  if (const TagVersion* cur = tags_.Find(key); cur && cur->digest == digest && cur->value == value)
    return {key, *cur};
  TagUpdate u{key, {digest, clock_.Now(physical_ms), self_.name, "", value}};
  u.version.signature = signer_->Sign(u.SignedForm());
  ApplyTag(u, physical_ms, false);
  return u;
}

bool GossipNode::Restore(const TagUpdate& u, uint64_t physical_ms) {
  if (u.version.hlc.logical > kMaxHlcLogical) return false;
  // Our own past, not a peer's claim: no skew bound (it may be old), and the
  // origin's key may not be known yet; peers check the signature themselves.
  clock_.Observe(u.version.hlc, std::max(physical_ms, u.version.hlc.wall_ms));
  return tags_.Apply(u);
}

void GossipNode::NoteSummaryVersion(const Message& m) {
  auto it = members_.find(m.from);
  if (it != members_.end() && m.summary_version > it->second.summary_version) {
    it->second.summary_version = m.summary_version;
    NoteChanged(m.from);
  }
}

GossipNode::Learned GossipNode::Receive(const Message& m, uint64_t now_ms, uint64_t physical_ms) {
  learned_ = {};
  ReceiveMessage(m, now_ms, physical_ms);
  return std::exchange(learned_, {});
}

void GossipNode::ReceiveMessage(const Message& m, uint64_t now_ms, uint64_t physical_ms) {
  if (left_) return;
  ++stats_.messages_received;
  for (const auto& r : m.members) MergeMember(r, now_ms, physical_ms);
  if (auto it = members_.find(m.from); it != members_.end()) it->second.last_heard_ms = now_ms;
  // After the members: a revocation is checked against its signer's key,
  // which may have arrived in this message.
  for (const auto& r : m.revocations) ApplyRevocation(r);
  if (left_) return;  // we were revoked
  TellIfRevoked(m);
  NoteSummaryVersion(m);
  // A member we hold dead is talking to us (a healed partition, a false
  // death): tell it at once, so it refutes instead of waiting for a sync.
  if (auto it = members_.find(m.from);
      it != members_.end() && it->second.record.state == MemberState::kDead) {
    Message tell = Make(MessageType::kPush);
    tell.members = {self_, it->second.record};
    Send(m.from, std::move(tell));
  }
  if (m.type != MessageType::kSync) {
    for (const auto& t : m.tags) ApplyTag(t, physical_ms, true);
  }
  switch (m.type) {
    case MessageType::kPing: {
      Message ack = Make(MessageType::kAck);
      ack.seq = m.seq;
      Piggyback(&ack);
      Send(m.from, std::move(ack));
      break;
    }
    case MessageType::kAck: {
      if (m.target.empty()) {
        if (probing_ && m.seq == probe_.seq && m.from == probe_.target) {
          probing_ = false;
          auto it = members_.find(m.from);
          if (it != members_.end())
            it->second.AddRttSample(static_cast<double>(now_ms - probe_.sent_ms));
          return;
        }
        auto relay = relays_.find(m.seq);
        if (relay != relays_.end()) {
          Message ack = Make(MessageType::kAck);
          ack.seq = relay->second.requester_seq;
          ack.target = m.from;
          Piggyback(&ack);
          Send(relay->second.requester, std::move(ack));
          relays_.erase(relay);
        }
      } else if (probing_ && m.seq == probe_.seq && m.target == probe_.target) {
        probing_ = false;  // an indirect ack: alive, but no RTT sample
      }
      break;
    }
    case MessageType::kPingReq: {
      if (!members_.count(m.target)) break;
      uint64_t seq = next_seq_++;
      relays_[seq] = {m.from, m.seq, now_ms + opt_.probe_interval_ms};
      Message ping = Make(MessageType::kPing);
      ping.seq = seq;
      Piggyback(&ping);
      Send(m.target, std::move(ping));
      break;
    }
    case MessageType::kSync:
      ReceiveSync(m);
      break;
    case MessageType::kSyncReply: {
      // We took their newer entries and records above; what still differs
      // is newer here.
      auto differing =
          TagTable::DifferingBuckets(tags_.Summaries(opt_.tag_buckets), m.tag_summaries);
      auto members_differing =
          m.member_summaries.empty()
              ? std::vector<uint32_t>{}
              : TagTable::DifferingBuckets(MemberSummaries(), m.member_summaries);
      bool tags_differ = !differing.empty() && !m.tag_summaries.empty();
      if (tags_differ || !members_differing.empty()) {
        Message push = Make(MessageType::kPush);
        if (tags_differ) push.tags = tags_.EntriesIn(differing, opt_.tag_buckets);
        push.members = MembersIn(members_differing);
        Send(m.from, std::move(push));
      }
      break;
    }
    case MessageType::kPush:
      break;
  }
}

std::vector<uint64_t> GossipNode::MemberSummaries() const {
  std::vector<uint64_t> out(kMemberBuckets, 0);
  out[MemberBucketOf(self_.name)] ^= MemberRecordHash(self_);
  for (const auto& [name, m] : members_) out[MemberBucketOf(name)] ^= MemberRecordHash(m.record);
  return out;
}

std::vector<MemberRecord> GossipNode::MembersIn(const std::vector<uint32_t>& buckets) const {
  std::vector<MemberRecord> out = {self_};
  for (const auto& [name, m] : members_)
    if (std::binary_search(buckets.begin(), buckets.end(), MemberBucketOf(name)))
      out.push_back(m.record);
  return out;
}

// A sync starts with summaries only (and this node's record, so a seed
// learns a joining node): the answer brings the records that differ.
Message GossipNode::FullSync(MessageType type) {
  Message m = Make(type);
  m.members.push_back(self_);
  m.member_summaries = MemberSummaries();
  m.tag_summaries = tags_.Summaries(opt_.tag_buckets);
  for (const auto& [key, r] : revocations_) m.revocations.push_back(r);
  return m;
}

void GossipNode::ReceiveSync(const Message& m) {
  Message reply = FullSync(MessageType::kSyncReply);
  if (m.member_summaries.empty()) {
    // An earlier release: the whole membership, as it expects.
    reply.members = MembersIn({});
    for (const auto& [name, mem] : members_) reply.members.push_back(mem.record);
  } else {
    reply.members =
        MembersIn(TagTable::DifferingBuckets(reply.member_summaries, m.member_summaries));
  }
  auto differing = TagTable::DifferingBuckets(reply.tag_summaries, m.tag_summaries);
  reply.tags = tags_.EntriesIn(differing, opt_.tag_buckets);
  Send(m.from, std::move(reply));
}

void GossipNode::StartProbe(uint64_t now_ms) {
  std::string target;
  for (int pass = 0; pass < 2 && target.empty(); ++pass) {
    while (!probe_order_.empty() && target.empty()) {
      std::string name = std::move(probe_order_.back());
      probe_order_.pop_back();
      auto it = members_.find(name);
      if (it != members_.end() && it->second.live()) target = name;
    }
    if (target.empty()) {
      probe_order_ = live_;
      std::sort(probe_order_.begin(), probe_order_.end());  // a repeatable order before the shuffle
      std::shuffle(probe_order_.begin(), probe_order_.end(), rng_);
    }
  }
  if (target.empty()) return;
  probe_ = {target, next_seq_++, now_ms, false, false};
  probing_ = true;
  Message ping = Make(MessageType::kPing);
  ping.seq = probe_.seq;
  Piggyback(&ping);
  Send(target, std::move(ping));
}

void GossipNode::CheckProbe(uint64_t now_ms) {
  if (!probing_) return;
  if (!probe_.indirect_sent && now_ms >= probe_.sent_ms + opt_.probe_timeout_ms) {
    probe_.indirect_sent = true;
    for (const auto& helper : RandomLive(opt_.indirect_probes, probe_.target)) {
      Message req = Make(MessageType::kPingReq);
      req.seq = probe_.seq;
      req.target = probe_.target;
      Piggyback(&req);
      Send(helper, std::move(req));
    }
  }
  if (now_ms >= probe_.sent_ms + opt_.probe_interval_ms) {
    probing_ = false;
    ++stats_.probes_failed;
    auto it = members_.find(probe_.target);
    if (it != members_.end() && it->second.record.state == MemberState::kAlive)
      SetState(&it->second, MemberState::kSuspect, now_ms);
  }
}

void GossipNode::GossipTick() {
  if (member_rumors_.empty() && tag_rumors_.empty()) return;
  for (const auto& to : RandomLive(opt_.fanout, "")) {
    Message push = Make(MessageType::kPush);
    Piggyback(&push);
    Send(to, std::move(push));
  }
}

void GossipNode::SyncTick() {
  // Dead members stay candidates: that is how the two sides of a healed
  // partition find each other again. Seeds are used while no one is live.
  std::vector<std::pair<std::string, std::string>> pool;  // (url, name)
  for (const auto& [name, m] : members_) {
    if (m.record.state != MemberState::kLeft) pool.push_back({m.record.url, name});
  }
  if (live_count() == 0) {
    for (const auto& s : seeds_) pool.push_back({s, ""});
  }
  if (pool.empty()) return;
  std::uniform_int_distribution<size_t> pick(0, pool.size() - 1);
  const auto& [url, name] = pool[pick(rng_)];
  SendToUrl(url, name, FullSync(MessageType::kSync));
}

void GossipNode::ReachTick() {
  std::set<std::string> live_urls;
  for (const std::string& name : live_) live_urls.insert(members_.at(name).record.url);
  std::vector<std::pair<std::string, std::string>> seeds, dead;  // (url, name)
  for (const std::string& s : seeds_)
    if (!live_urls.count(s)) seeds.push_back({s, ""});
  for (const auto& [name, m] : members_)
    if (m.record.state == MemberState::kDead && !live_urls.count(m.record.url))
      dead.push_back({m.record.url, name});
  // unordered_map order moves as members come and go: a stable rotation.
  std::sort(dead.begin(), dead.end());
  bool seeds_first = reach_turns_++ % 2 == 0;
  if (seeds.empty() && dead.empty()) return;
  bool from_seeds = seeds_first ? !seeds.empty() : dead.empty();
  auto& list = from_seeds ? seeds : dead;
  size_t& next = from_seeds ? reach_seed_next_ : reach_dead_next_;
  const auto& [url, name] = list[next++ % list.size()];
  SendToUrl(url, name, FullSync(MessageType::kSync));
}

void GossipNode::Tick(uint64_t now_ms) {
  if (left_) return;
  if (!started_) {
    started_ = true;
    std::uniform_int_distribution<uint64_t> probe_jitter(0, opt_.probe_interval_ms);
    std::uniform_int_distribution<uint64_t> gossip_jitter(0, opt_.gossip_interval_ms);
    next_probe_ms_ = now_ms + probe_jitter(rng_);
    next_gossip_ms_ = now_ms + gossip_jitter(rng_);
    next_sync_ms_ = now_ms;  // join at once
  }
  while (!suspect_deadlines_.empty() && suspect_deadlines_.begin()->first <= now_ms) {
    auto due = suspect_deadlines_.extract(suspect_deadlines_.begin());
    auto it = members_.find(due.mapped());
    if (it == members_.end()) continue;  // revoked since
    Member& m = it->second;
    // Refuted or re-suspected since: this deadline is stale.
    if (m.record.state == MemberState::kSuspect &&
        now_ms >= m.state_since_ms + opt_.suspect_timeout_ms)
      SetState(&m, MemberState::kDead, now_ms);
  }
  for (auto it = relays_.begin(); it != relays_.end();) {
    it = it->second.expires_ms <= now_ms ? relays_.erase(it) : std::next(it);
  }
  CheckProbe(now_ms);
  if (now_ms >= next_probe_ms_) {
    StartProbe(now_ms);
    next_probe_ms_ = std::max(next_probe_ms_ + opt_.probe_interval_ms, now_ms + 1);
  }
  if (now_ms >= next_gossip_ms_) {
    GossipTick();
    next_gossip_ms_ = now_ms + opt_.gossip_interval_ms;
  }
  if (now_ms >= next_sync_ms_) {
    SyncTick();
    if (live_count() > 0) ReachTick();  // with no one live, SyncTick asks the seeds
    // Alone (joining, or cut off from everyone), look for peers every probe period.
    next_sync_ms_ = now_ms + (live_count() == 0 ? opt_.probe_interval_ms : opt_.sync_interval_ms);
  }
}

void GossipNode::Leave() {
  if (left_) return;
  self_.incarnation++;
  self_.state = MemberState::kLeft;
  SignSelf();
  for (const auto& to : RandomLive(16, "")) {
    Message m = Make(MessageType::kPush);
    m.members.push_back(self_);
    Send(to, std::move(m));
  }
  left_ = true;
}

util::Status GossipNode::Revoke(const std::string& name, std::vector<TagUpdate>* withdrawn) {
  if (name == self_.name)
    return util::Status::InvalidArgument("a node cannot remove itself; run this on another node");
  auto it = members_.find(name);
  if (it == members_.end()) return util::Status::NotFound("no member named '" + name + "'");
  Revocation r{name, it->second.record.public_key, self_.name, ""};
  r.signature = signer_->Sign(r.SignedForm());
  learned_ = {};
  ApplyRevocation(r);
  if (withdrawn) *withdrawn = std::move(learned_.withdrawn);
  learned_ = {};
  return util::Status::Ok();
}

void GossipNode::ApplyRevocation(const Revocation& r) {
  if (revocations_.count(r.Key())) return;
  const std::string* by = KeyOf(r.by);
  if (!by) return;  // its signer is not known yet: the next sync brings both
  if (revocations_.size() >= opt_.max_members ||
      !signer_->Verify(*by, r.SignedForm(), r.signature)) {
    ++stats_.revocations_refused;
    return;
  }
  revocations_.emplace(r.Key(), r);
  revocation_rumors_.Add(r.Key(), r);
  ++stats_.revocations_applied;
  if (r.name == self_.name) {
    if (r.public_key != self_.public_key) return;  // an old key of ours
    revoked_self_ = true;
    left_ = true;  // nothing we say is accepted any more
    return;
  }
  if (const std::string* key = KeyOf(r.name); !key || *key != r.public_key) return;
  revoked_urls_[r.Key()] = members_.at(r.name).record.url;  // bounded with revocations_
  EraseMember(r.name);
  for (TagUpdate& u : tags_.RemoveOrigin(r.name)) learned_.withdrawn.push_back(std::move(u));
}

bool GossipNode::IsRevoked(const MemberRecord& r) const {
  return revocations_.count(Revocation::KeyOf(r.name, r.public_key)) &&
         signer_->Verify(r.public_key, r.SignedForm(), r.signature);
}

// A revoked node still talking to us (it missed the news: nobody gossips
// with it any more): tell it, so it stops and says so.
void GossipNode::TellIfRevoked(const Message& m) {
  for (const auto& r : m.members) {
    if (r.name != m.from) continue;
    std::string key = Revocation::KeyOf(r.name, r.public_key);
    auto rv = revocations_.find(key);
    // Told at the address it had as a member, never at one its message names
    // now: a revoked key must not steer our requests anywhere new.
    auto url = revoked_urls_.find(key);
    if (rv == revocations_.end() || url == revoked_urls_.end()) return;
    Message tell = Make(MessageType::kPush);
    tell.members.push_back(self_);
    tell.revocations.push_back(rv->second);
    SendToUrl(url->second, r.name, std::move(tell));
    return;
  }
}

void GossipNode::EraseMember(const std::string& name) {
  auto it = members_.find(name);
  if (it == members_.end()) return;
  Member& m = it->second;
  bool was_live = m.live();
  m.record.state = MemberState::kLeft;
  NoteState(m, was_live);  // out of the live set
  members_.erase(it);
  if (probing_ && probe_.target == name) probing_ = false;
}

}  // namespace peers
