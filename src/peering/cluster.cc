#include "src/peering/cluster.h"

#include "peers/rendezvous.h"
#include "util/sha256.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "peers/message_codec.h"
#include "peers/placement.h"
#include "peers/protocol.h"
#include "src/upstream/session.h"
#include "util/join.h"
#include "util/log.h"
#include "util/url.h"

namespace peering {

using util::Status;

namespace {

constexpr uint64_t kTickMs = 20;
constexpr uint64_t kSummaryRefreshMs = 1000;
// A region-mate's summary is fetched at most this often, however busy its cache.
constexpr uint64_t kSummaryMinIntervalMs = 5000;
constexpr double kSummaryFpRate = 0.01;
constexpr size_t kMaxRemoteBlobPeers = 3;
constexpr size_t kMaxRemoteManifestPeers = 4;  // manifests are small: a 404 costs one round trip
// A hold is answered when every blob of the image is stored: a 1 GiB layer
// across a slow link takes minutes.
constexpr uint64_t kHoldTimeoutMs = 15 * 60 * 1000;

peers::GossipOptions OptionsFrom(const config::Cluster& c) {
  peers::GossipOptions o;
  o.probe_interval_ms = c.probe_interval_ms;
  o.probe_timeout_ms = c.probe_timeout_ms;
  o.suspect_timeout_ms = c.suspect_timeout_ms;
  o.gossip_interval_ms = c.gossip_interval_ms;
  o.fanout = static_cast<uint32_t>(c.gossip_fanout);
  o.sync_interval_ms = c.sync_interval_ms;
  o.max_clock_skew_ms = c.max_clock_skew_ms;
  o.max_members = static_cast<uint32_t>(std::min<uint64_t>(c.max_members, UINT32_MAX));
  return o;
}

peers::MemberRecord SelfRecord(const config::Config& cfg, uint64_t wall_ms) {
  peers::MemberRecord r;
  r.name = cfg.node.name;
  r.region = cfg.node.region;
  r.url = cfg.cluster.advertise;
  // Seconds since the epoch: a restarted node outranks every record of its previous life.
  r.incarnation = wall_ms / 1000;
  return r;
}

void RespondPeerError(const std::shared_ptr<http::Exchange>& ex, int status, const char* code,
                      const std::string& message) {
  nlohmann::json j = {{"errors", {{{"code", code}, {"message", message}}}}};
  ex->Respond(status, {{"Content-Type", "application/json"}}, j.dump());
}

}  // namespace

util::Result<std::shared_ptr<const peers::Signer>> LoadNodeKey(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    peers::Ed25519Signer::Seed seed;
    if (::getrandom(seed.data(), seed.size(), 0) != static_cast<ssize_t>(seed.size()))
      return Status::IoError(std::string("node key: no random bytes: ") + std::strerror(errno));
    std::string hex = util::HexEncode(seed.data(), seed.size()) + "\n";
    // O_EXCL: two daemons on one directory never both write a key.
    int w = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (w < 0)
      return Status::IoError("node key '" + path + "' cannot be created: " + std::strerror(errno));
    bool ok =
        ::write(w, hex.data(), hex.size()) == static_cast<ssize_t>(hex.size()) && ::fsync(w) == 0;
    ::close(w);
    if (!ok) {
      ::unlink(path.c_str());
      return Status::IoError("node key '" + path + "' cannot be written");
    }
    LOG_INFO("cluster: created a node key in %s", path.c_str());
    return std::shared_ptr<const peers::Signer>(std::make_shared<peers::Ed25519Signer>(seed));
  }
  if (fd < 0)
    return Status::IoError("node key '" + path + "' cannot be read: " + std::strerror(errno));
  char buf[128];
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  std::string text(buf, n > 0 ? static_cast<size_t>(n) : 0);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  auto seed = peers::Ed25519Signer::ParseSeed(text);
  if (!seed.ok())
    return Status::InvalidArgument("node key '" + path + "': " + seed.status().message());
  return std::shared_ptr<const peers::Signer>(std::make_shared<peers::Ed25519Signer>(*seed));
}

util::Result<std::string> ReadClusterKey(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("cluster.key_file '" + path + "' cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string key = ss.str();
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
  if (key.size() < 16)
    return Status::InvalidArgument("cluster.key_file '" + path + "' holds fewer than 16 bytes");
  return key;
}

Cluster::Cluster(io::Env env, const config::Config& cfg, std::string key,
                 std::shared_ptr<const peers::Signer> node_key, const cache::BlobIndex* index,
                 uint64_t slowest_upstream_ms)
    : env_(env),
      cfg_(cfg.cluster),
      owner_timeout_ms_(cfg.cluster.peer_timeout_ms + slowest_upstream_ms),
      // The replay window is the skew bound: a node further off cannot gossip anyway.
      auth_(std::move(key), cfg.cluster.max_clock_skew_ms),
      node_(SelfRecord(cfg, env.clock->WallMs()), cfg.cluster.seeds, OptionsFrom(cfg.cluster),
            std::hash<std::string>()(cfg.node.name) ^ env.clock->WallMs(), std::move(node_key)),
      index_(index),
      summary_book_(kSummaryMinIntervalMs) {}

Cluster::~Cluster() = default;

uint64_t Cluster::PhysicalMs() const { return env_.clock->WallMs(); }

void Cluster::Start() {
  timer_.Init(env_.loop, this, uv_timer_init);
  uv_timer_start(timer_.get(), OnTimer, 0, kTickMs);
  LOG_INFO("cluster: node %s, region %s, advertising %s, %zu seed(s)", node_.name().c_str(),
           node_.self().region.c_str(), node_.self().url.c_str(), cfg_.seeds.size());
}

void Cluster::OnTimer(uv_timer_t* t) { static_cast<Cluster*>(t->data)->Tick(); }

void Cluster::Tick() {
  node_.Tick(env_.clock->NowMs());
  Flush();
  // Only members that changed since the last tick are looked at: a tick
  // costs the same in a fleet of ten and of a thousand.
  std::vector<std::string> changed = node_.TakeChangedMembers();
  LogMemberChanges(changed);
  summary_watch_.insert(changed.begin(), changed.end());
  if (env_.clock->NowMs() >= next_summary_ms_) {
    next_summary_ms_ = env_.clock->NowMs() + kSummaryRefreshMs;
    RefreshOwnSummary();
  }
  FetchSummaries();
}

void Cluster::LogMemberChanges(const std::vector<std::string>& changed) {
  if (node_.revoked() && !logged_revoked_) {
    logged_revoked_ = true;
    LOG_ERROR(
        "cluster: this node's key was revoked (georeg peers remove); it no longer gossips. To "
        "rejoin, remove "
        "%s and restart: a new key is made",
        cfg_.node_key_file.c_str());
  }
  for (const std::string& name : changed) {
    const peers::Member* m = node_.Find(name);
    if (!m) {
      if (logged_states_.erase(name)) {
        LOG_INFO("cluster: member %s is gone (its key was revoked)", name.c_str());
        summaries_.erase(name);
        summary_book_.Forget(name);
      }
      continue;
    }
    auto [it, added] = logged_states_.try_emplace(name, m->record.state);
    if (added) {
      LOG_INFO("cluster: member %s (%s, %s) is %s", name.c_str(), m->record.region.c_str(),
               m->record.url.c_str(), peers::MemberStateName(m->record.state));
    } else if (it->second != m->record.state) {
      it->second = m->record.state;
      LOG_INFO("cluster: member %s is now %s", name.c_str(),
               peers::MemberStateName(m->record.state));
    }
  }
}

void Cluster::RefreshOwnSummary() {
  if (index_->generation() == own_summary_generation_) return;
  own_summary_generation_ = index_->generation();
  std::vector<util::Digest> digests = index_->Digests();
  peers::DigestBloom filter(digests.size(), kSummaryFpRate);
  for (const auto& d : digests) filter.Add(d);
  own_summary_ = filter.Encode();
  node_.SetSummaryVersion(++own_summary_version_);
}

void Cluster::FetchSummaries() {
  for (const std::string& name : summary_book_.DueAmong(node_.self().region, node_.members(),
                                                        &summary_watch_, env_.clock->NowMs())) {
    const peers::Member* m = node_.Find(name);
    auto body = std::make_shared<std::string>();
    auto version = std::make_shared<uint64_t>(0);
    auto ok = std::make_shared<bool>(false);
    upstream::Callbacks cb;
    std::string from = name;
    cb.on_head = [this, ok, version, from](const upstream::ResponseHead& h) {
      *ok =
          h.status == 200 && AcceptProtocol(peers::ProtocolOf(h.Find("x-georeg-protocol")), from,
                                            "summary", &stats_.protocol_refused_summaries, nullptr);
      if (const std::string* v = h.Find("x-georeg-summary-version"))
        *version = std::strtoull(v->c_str(), nullptr, 10);
    };
    cb.on_body = [body](const char* d, size_t n) {
      body->append(d, n);
    };  // bounded: max_summary_bytes
    std::string peer = name;
    cb.on_complete = [this, peer, body, version, ok](Status st) {
      if (st.ok() && !*ok) st = Status::Unavailable("refused");
      if (st.code() == util::Code::kInvalidArgument) ++stats_.oversized;  // over max_summary_bytes
      auto f = st.ok() ? peers::DigestBloom::Decode(*body) : util::Result<peers::DigestBloom>(st);
      if (!f.ok()) {
        summary_book_.FetchFailed(peer);
        // A bad or oversized filter is the peer's fault; a failed fetch is the network's (retried).
        bool peers_fault = st.ok() || st.code() == util::Code::kInvalidArgument;
        util::Log(peers_fault ? util::LogLevel::kWarn : util::LogLevel::kDebug,
                  "cluster: summary of %s: %s", peer.c_str(), f.status().ToString().c_str());
        return;
      }
      ++stats_.summaries_fetched;
      stats_.summary_bytes += body->size();
      if (summary_book_.Fetched(peer, *version)) summaries_[peer] = std::move(*f);
    };
    upstream::FetchOptions opts;
    opts.max_body = cfg_.max_summary_bytes;
    opts.deadline_ms = 4 * cfg_.peer_timeout_ms;
    ClientFor(m->record.url, false)
        ->Start("GET", kSummaryPath, SignedHeaders("GET", kSummaryPath, ""), std::move(cb), {},
                opts);
  }
}

void Cluster::Flush() {
  if (shut_down_) return;
  for (peers::Envelope& e : node_.TakeOutbox()) {
    std::string body = peers::EncodeMessage(e.message);
    stats_.gossip_bytes_sent += body.size();
    auto headers = SignedHeaders("POST", kMsgPath, body);
    headers.push_back({"Content-Type", "application/json"});
    upstream::Callbacks cb;
    std::string to = e.to.empty() ? e.to_url : e.to;
    const char* type = peers::MessageTypeName(e.message.type);
    cb.on_head = [to, type](const upstream::ResponseHead& h) {
      if (h.status != 204) LOG_WARN("cluster: %s to %s answered %d", type, to.c_str(), h.status);
    };
    cb.on_body = [](const char*, size_t) {};
    cb.on_complete = [to, type](Status st) {
      if (!st.ok()) LOG_DEBUG("cluster: %s to %s: %s", type, to.c_str(), st.ToString().c_str());
    };
    upstream::FetchOptions opts;
    opts.max_body = 64 << 10;  // the answer is a 204 or a short error
    opts.deadline_ms = 2 * cfg_.peer_timeout_ms;
    ClientFor(e.to_url, false)
        ->Start("POST", kMsgPath, std::move(headers), std::move(cb), std::move(body), opts);
  }
}

upstream::Client* Cluster::ClientFor(const std::string& url, bool owner_step, bool hold) {
  std::string key = hold ? url + " hold" : owner_step ? url + " owner" : url;
  auto it = clients_.find(key);
  if (it != clients_.end()) return it->second.get();
  upstream::Endpoint ep;
  // Validated at config load or carried in an authenticated member record;
  // a record with a bad URL only yields requests that fail to connect.
  if (auto u = util::ParseUrl(url); u.ok()) {
    ep.scheme = u->scheme;
    ep.host = u->host;
    ep.port = u->port;
  }
  // A member URL came from a message: never towards cloud metadata,
  // multicast or the unspecified address, and only into the operator's
  // networks when peer_networks is set. Checked on every resolved address.
  ep.policy.forbid_special = true;
  ep.policy.allowed_networks = cfg_.peer_networks;
  ep.connect_timeout_ms = cfg_.peer_timeout_ms;
  ep.response_timeout_ms = hold         ? kHoldTimeoutMs
                           : owner_step ? owner_timeout_ms_
                                        : cfg_.peer_timeout_ms;
  auto client = std::make_unique<upstream::Client>(env_, std::move(ep));
  upstream::Client* raw = client.get();
  clients_[key] = std::move(client);
  return raw;
}

std::vector<http::Header> Cluster::SignedHeaders(const std::string& method,
                                                 const std::string& target,
                                                 const std::string& body) {
  std::vector<http::Header> out;
  for (auto& h : auth_.Sign(node_.name(), node_.signer(), method, target, body, PhysicalMs()))
    out.push_back({h.name, h.value});
  out.push_back({peers::kProtocolHeader, std::to_string(peers::kProtocolVersion)});
  return out;
}

bool Cluster::AcceptProtocol(uint64_t v, const std::string& from, const char* what,
                             uint64_t* refused, const std::shared_ptr<http::Exchange>& ex) {
  if (peers::SpeaksProtocol(v)) return true;
  ++*refused;
  unsigned long long count = 0;
  if (protocol_log_.Note(env_.clock->NowMs(), &count))
    LOG_WARN(
        "cluster: refused %llu peer %s(s) in the last minute in a protocol this node does not "
        "speak; last: from %s, %s (upgrade the older side; this node serves on from its cache "
        "and upstreams)",
        count, what, from.c_str(), peers::ProtocolMismatch(v).c_str());
  if (ex) RespondPeerError(ex, 400, "PROTOCOL", peers::ProtocolMismatch(v));
  return false;
}

void Cluster::ReceiveMessage(const std::shared_ptr<http::Exchange>& ex, LearnedFn learned) {
  const http::Request& req = ex->request();
  peers::VerifiedHead head;
  // The head first: no byte of a body is read from a sender without the key.
  Status st = auth_.VerifyHead(
      req.method, req.target, [&req](std::string_view n) { return req.Find(n); }, PhysicalMs(),
      &head);
  if (!st.ok()) return RefusePeer(ex, st);
  if (!AcceptProtocol(peers::ProtocolOf(req.Find("x-georeg-protocol")), head.node, "request",
                      &stats_.protocol_refused_requests, ex))
    return;
  std::weak_ptr<http::Exchange> weak = ex;
  int rc = ex->ReadBody(cfg_.max_message_bytes, [this, weak, head, learned](std::string body) {
    auto ex = weak.lock();
    if (!ex) return;
    if (!peers::PeerAuth::BodyMatches(body, head.body_sha))
      return RefusePeer(ex, Status::PermissionDenied("body from '" + head.node +
                                                     "' does not match its signature"));
    peers::GossipNode::Learned l = OnMessage(ex, head, body);
    if (!l.empty()) learned(std::move(l));
  });
  if (rc == 413) {
    ++stats_.oversized;
    RespondPeerError(ex, 413, "TOO_LARGE",
                     "message larger than " + std::to_string(cfg_.max_message_bytes) + " bytes");
  } else if (rc != 0) {
    RespondPeerError(ex, rc, "BAD_REQUEST", "a message needs Content-Length");
  }
}

util::Result<std::string> Cluster::Authenticate(const std::shared_ptr<http::Exchange>& ex) {
  const http::Request& req = ex->request();
  peers::VerifiedHead head;
  Status st = auth_.VerifyHead(
      req.method, req.target, [&req](std::string_view n) { return req.Find(n); }, PhysicalMs(),
      &head);
  if (!st.ok()) {
    RefusePeer(ex, st);
    return st;
  }
  uint64_t v = peers::ProtocolOf(req.Find("x-georeg-protocol"));
  if (!AcceptProtocol(v, head.node, "request", &stats_.protocol_refused_requests, ex))
    return Status::InvalidArgument(peers::ProtocolMismatch(v));
  // These routes have no body, and what was signed says so.
  if (req.has_body || !peers::PeerAuth::BodyMatches("", head.body_sha)) {
    RespondPeerError(ex, 400, "BAD_REQUEST", "this peer route takes no body");
    return Status::InvalidArgument("a body on a peer route without one");
  }
  if (!SignedBySender(head, nullptr)) {
    st = Status::PermissionDenied("'" + head.node +
                                  "' is not a member, or its node signature is bad");
    RefusePeer(ex, st);
    return st;
  }
  return head.node;
}

void Cluster::ServeSummary(const std::shared_ptr<http::Exchange>& ex) {
  ex->Respond(200,
              {{"Content-Type", "application/octet-stream"},
               {"X-Georeg-Summary-Version", std::to_string(own_summary_version_)},
               {peers::kProtocolHeader, std::to_string(peers::kProtocolVersion)}},
              own_summary_);
}

util::Result<Cluster::ContentRequest> Cluster::AcceptContent(
    const std::shared_ptr<http::Exchange>& ex, const std::string& sender) {
  const http::Request& req = ex->request();
  ContentRequest out;
  out.hop = peers::Hop::kPeer;  // the safe default: answer from the cache only
  size_t q = req.target.find('?');
  std::string query = q == std::string::npos ? "" : req.target.substr(q + 1);
  for (size_t pos = 0; pos <= query.size();) {
    size_t amp = query.find('&', pos);
    std::string kv = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    if (kv.rfind("hop=", 0) == 0 && !peers::ParseHop(kv.substr(4), &out.hop)) {
      RespondPeerError(ex, 400, "BAD_REQUEST", "unknown hop");
      return Status::InvalidArgument("unknown hop");
    }
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  if (out.hop == peers::Hop::kClient) out.hop = peers::Hop::kPeer;  // a peer is never a client
  ++stats_.served_to_peers;
  const peers::Member* m = node_.Find(sender);
  if (m && m->record.region != node_.self().region) ++stats_.served_cross_region;
  out.oci_target = req.target.substr(std::string(kOciPrefix).size());
  return out;
}

void Cluster::RespondNoRoute(const std::shared_ptr<http::Exchange>& ex) {
  RespondPeerError(ex, 404, "NOT_FOUND", "no such peer route");
}

void Cluster::RefusePeer(const std::shared_ptr<http::Exchange>& ex, const Status& st) {
  const http::Request& req = ex->request();
  ++stats_.auth_failures;
  unsigned long long count = 0;
  if (auth_log_.Note(env_.clock->NowMs(), &count))
    LOG_WARN(
        "cluster: refused %llu peer request(s) in the last minute (%llu in all); last: %s %s: %s",
        count, (unsigned long long)stats_.auth_failures, req.method.c_str(),
        req.target.substr(0, 80).c_str(), st.message().c_str());
  RespondPeerError(ex, 401, "UNAUTHORIZED", "peer request not authenticated");
}

bool Cluster::SignedBySender(const peers::VerifiedHead& head, const peers::Message* m) const {
  const std::string* key = node_.KeyOf(head.node);
  if (!key && m) {
    for (const auto& r : m->members) {
      // A revoked sender passes too: the gossip node takes nothing from it
      // but tells it that it was removed.
      if (r.name == head.node && (node_.CheckRecord(r) || node_.IsRevoked(r))) {
        key = &r.public_key;
        break;
      }
    }
  }
  return key && node_.signer().Verify(*key, head.signed_text, head.node_signature);
}

peers::GossipNode::Learned Cluster::OnMessage(const std::shared_ptr<http::Exchange>& ex,
                                              const peers::VerifiedHead& head,
                                              const std::string& body) {
  auto m = peers::DecodeMessage(body);
  if (!m.ok()) {
    RespondPeerError(ex, 400, "BAD_REQUEST", m.status().message());
    return {};
  }
  stats_.gossip_bytes_received += body.size();
  if (m->from != head.node) {
    RespondPeerError(ex, 400, "BAD_REQUEST", "message sender is not the signer");
    return {};
  }
  if (!AcceptProtocol(m->protocol, head.node, "message", &stats_.protocol_refused_messages, ex))
    return {};
  if (!SignedBySender(head, &*m)) {
    RefusePeer(ex, Status::PermissionDenied("'" + head.node +
                                            "' is not a member, or its node signature is bad"));
    return {};
  }
  peers::GossipNode::Learned learned = node_.Receive(*m, env_.clock->NowMs(), PhysicalMs());
  ex->Respond(204, {}, "");
  Flush();  // answers (acks) go out now, not at the next tick: they carry RTT samples
  return learned;
}

peers::RouteCandidate Cluster::CandidateOf(const std::string& name, const peers::Member& m) const {
  peers::RouteCandidate c;
  c.name = name;
  c.region = m.record.region;
  c.url = m.record.url;
  c.live = m.record.state == peers::MemberState::kAlive;  // suspects are not asked
  c.rtt_ms = m.min_rtt_ms();
  c.quarantined = Quarantined(name);
  c.routable = Routable(m.record.region);
  return c;
}

std::vector<peers::PeerStep> Cluster::ReplicaCandidates() const {
  std::vector<peers::RouteCandidate> members;
  for (const auto& [name, m] : node_.members()) members.push_back(CandidateOf(name, m));
  return peers::ReplicaCandidates(node_.self().region, members, replicated_regions_);
}

void Cluster::Hold(const peers::PeerStep& step, const std::string& oci_target,
                   std::function<void(Status)> done) {
  std::string target = std::string(kHoldPrefix) + oci_target;
  auto status = std::make_shared<int>(0);
  upstream::Callbacks cb;
  cb.on_head = [status](const upstream::ResponseHead& h) { *status = h.status; };
  cb.on_body = [](const char*, size_t) {};
  cb.on_complete = [status, done, name = step.name](Status st) {
    if (st.ok() && *status != 200)
      st = Status::Unavailable(name + " answered " + std::to_string(*status));
    done(st);
  };
  upstream::FetchOptions opts;
  opts.max_body = 64 << 10;
  opts.deadline_ms = kHoldTimeoutMs;
  ClientFor(step.url, false, true)
      ->Start("POST", target, SignedHeaders("POST", target, ""), std::move(cb), "", opts);
}

bool Cluster::Quarantined(const std::string& peer) const {
  auto it = quarantined_until_.find(peer);
  return it != quarantined_until_.end() && it->second > env_.clock->NowMs();
}

std::string Cluster::TagOrigin(const std::string& registry, const std::string& repository,
                               const std::string& tag) const {
  const peers::TagVersion* v = node_.tags().Find({registry, repository, tag});
  return v ? v->origin : "";
}

peers::RoutePlan Cluster::Plan(const util::Digest& digest, peers::Hop incoming, bool blob,
                               peers::Scope scope, const std::vector<std::string>& prefer) const {
  std::vector<peers::RouteCandidate> candidates;
  for (const auto& [name, m] : node_.members()) {
    peers::RouteCandidate c = CandidateOf(name, m);
    if (blob) {
      auto s = summaries_.find(name);
      c.may_have = s != summaries_.end() && s->second.MayContain(digest);
    } else {
      c.may_have = true;
    }
    candidates.push_back(std::move(c));
  }
  peers::RoutePlan plan =
      peers::PlanRoute(node_.name(), node_.self().region, candidates, digest, incoming,
                       blob ? kMaxRemoteBlobPeers : kMaxRemoteManifestPeers, scope);
  // Nodes known to have it (a tag's origin, a pushed image's holders),
  // whatever state our view holds them in, unless they left.
  std::vector<peers::RouteCandidate> holders;
  for (const std::string& name : prefer) {
    const peers::Member* p = node_.Find(name);
    if (p && p->record.state != peers::MemberState::kLeft) holders.push_back(CandidateOf(name, *p));
  }
  peers::PreferHolders(node_.name(), node_.self().region, holders, &plan);
  return plan;
}

std::shared_ptr<upstream::InFlight> Cluster::Send(
    const peers::PeerStep& step, const std::string& method, const std::string& oci_target,
    std::vector<http::Header> headers, upstream::Callbacks cb, upstream::FetchOptions options) {
  std::string target = std::string(kOciPrefix) + oci_target +
                       (oci_target.find('?') == std::string::npos ? "?" : "&") +
                       "hop=" + peers::HopName(step.hop);
  auto signed_headers = SignedHeaders(method, target, "");
  signed_headers.insert(signed_headers.end(), headers.begin(), headers.end());
  bool cross = step.region != node_.self().region;
  if (method == "HEAD") {
    ++stats_.peer_heads;
  } else {
    // Stats live as long as the Cluster, which outlives its clients' callbacks.
    ClusterStats* stats = &stats_;
    auto on_head = std::move(cb.on_head);
    cb.on_head = [stats, cross, on_head](const upstream::ResponseHead& h) {
      if (h.status == 200 || h.status == 206)
        ++(cross ? stats->peer_gets_cross_region : stats->peer_gets_same_region);
      on_head(h);
    };
    auto on_body = std::move(cb.on_body);
    cb.on_body = [stats, cross, on_body](const char* d, size_t n) {
      (cross ? stats->peer_bytes_cross_region : stats->peer_bytes_same_region) += n;
      on_body(d, n);
    };
  }
  // Owner and fleet steps may wait for an upstream: they get the longer head timeout.
  bool long_wait = step.hop == peers::Hop::kOwner || step.hop == peers::Hop::kFleet;
  return ClientFor(step.url, long_wait)
      ->Start(method, target, std::move(signed_headers), std::move(cb), {}, options);
}

void Cluster::ReportFailure(const std::string& peer, const std::string& why, bool corrupt) {
  ++stats_.peer_fetch_failures;
  if (!corrupt) {
    LOG_WARN("cluster: fetch from peer %s failed: %s", peer.c_str(), why.c_str());
    return;
  }
  ++stats_.peer_bad_bytes;
  ++stats_.quarantines;
  quarantined_until_[peer] = env_.clock->NowMs() + cfg_.quarantine_ms;
  LOG_ERROR("cluster: peer %s sent bad bytes (%s); quarantined for %llu s", peer.c_str(),
            why.c_str(), (unsigned long long)(cfg_.quarantine_ms / 1000));
}

peers::TagUpdate Cluster::RecordTag(const std::string& registry, const std::string& repository,
                                    const std::string& tag, const util::Digest& digest,
                                    const std::string& value) {
  peers::TagKey key{registry, repository, tag};
  const peers::TagVersion* before = node_.tags().Find(key);
  bool changed = !before || before->digest != digest || before->value != value;
  peers::TagUpdate u = node_.RecordTag(key, digest, PhysicalMs(), value);
  if (changed) {
    LOG_INFO("cluster: tag %s/%s:%s -> %s, gossiping", registry.c_str(), repository.c_str(),
             tag.c_str(), digest.ToString().c_str());
  }
  Flush();
  return u;
}

void Cluster::PushTag(const peers::TagUpdate& u,
                      std::function<void(size_t told, size_t asked)> done) {
  std::map<std::string, std::vector<std::string>> regions;  // live members by region, us included
  regions[node_.self().region].push_back(node_.name());
  for (const auto& [name, m] : node_.members())
    if (m.record.state == peers::MemberState::kAlive) regions[m.record.region].push_back(name);
  std::vector<const peers::Member*> owners;
  for (const auto& [region, names] : regions)
    for (const std::string& n : TagKeepers(u.key, names)) owners.push_back(node_.Find(n));
  auto join = util::Join::Make(
      [done = std::move(done)](Status, size_t told, size_t asked) { done(told, asked); });
  std::string body = peers::EncodeMessage(node_.TagPush(u));
  for (const peers::Member* m : owners) {
    auto headers = SignedHeaders("POST", kMsgPath, body);
    headers.push_back({"Content-Type", "application/json"});
    auto status = std::make_shared<int>(0);
    upstream::Callbacks cb;
    cb.on_head = [status](const upstream::ResponseHead& h) { *status = h.status; };
    cb.on_body = [](const char*, size_t) {};
    cb.on_complete = [told = join->Add(), status](Status st) {
      told(st.ok() && *status != 204 ? Status::Unavailable("not taken") : st);
    };
    upstream::FetchOptions opts;
    opts.max_body = 64 << 10;
    opts.deadline_ms = 2 * cfg_.peer_timeout_ms;
    ClientFor(m->record.url, false)
        ->Start("POST", kMsgPath, std::move(headers), std::move(cb), body, opts);
  }
  // Never from inside this call, even with no owner to tell.
  env_.deferred->Post([join] { join->Close(); });
}

std::optional<peers::PeerStep> Cluster::StepTo(const std::string& name) const {
  const peers::Member* m = node_.Find(name);
  if (!m) return std::nullopt;
  return peers::PeerStep{name, m->record.url, peers::Hop::kPeer, m->record.region};
}

bool Cluster::Restore(const peers::TagUpdate& u) { return node_.Restore(u, PhysicalMs()); }

const peers::TagVersion* Cluster::FindTag(const peers::TagKey& key) const {
  return node_.tags().Find(key);
}

std::vector<std::string> Cluster::TagKeepers(const peers::TagKey& key,
                                             const std::vector<std::string>& region) const {
  return peers::TagKeepers(peers::TagPoint(key), region, node_.name(), kTagKeepers);
}

std::vector<peers::PeerStep> Cluster::TagRegionOwners(const peers::TagKey& key) const {
  std::vector<std::string> names = {node_.name()};
  for (const auto& [name, m] : node_.members())
    if (m.record.state == peers::MemberState::kAlive && m.record.region == node_.self().region)
      names.push_back(name);
  std::vector<peers::PeerStep> out;
  for (const std::string& n : TagKeepers(key, names)) {
    const peers::Member* m = node_.Find(n);
    out.push_back({n, m->record.url, peers::Hop::kOwner, m->record.region});
  }
  return out;
}

Status Cluster::Remove(const std::string& name, std::vector<peers::TagUpdate>* withdrawn) {
  std::string key = node_.KeyOf(name) ? *node_.KeyOf(name) : "";
  Status st = node_.Revoke(name, withdrawn);
  if (!st.ok()) return st;
  LOG_WARN(
      "cluster: member %s removed by the operator: key %.16s... revoked fleet-wide, its tags "
      "withdrawn",
      name.c_str(), key.c_str());
  Flush();
  return Status::Ok();
}

void Cluster::Leave() {
  if (shut_down_) return;
  LOG_INFO("cluster: leaving");
  node_.Leave();
  Flush();
}

void Cluster::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  timer_.Close();
  for (auto& [k, c] : clients_) c->Shutdown();
}

nlohmann::json Cluster::StatusJson() const {
  const auto& self = node_.self();
  nlohmann::json members = nlohmann::json::array();
  members.push_back({{"name", self.name},
                     {"region", self.region},
                     {"url", self.url},
                     {"state", peers::MemberStateName(self.state)},
                     {"incarnation", self.incarnation},
                     {"public_key", self.public_key},
                     {"revoked", node_.revoked()},
                     {"self", true},
                     {"rtt_ms", nullptr},
                     {"quarantined", false},
                     {"summary_version", own_summary_version_}});
  std::vector<std::string> names;
  for (const auto& [name, m] : node_.members()) names.push_back(name);
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    const peers::Member& m = *node_.Find(name);
    members.push_back(
        {{"name", name},
         {"region", m.record.region},
         {"url", m.record.url},
         {"state", peers::MemberStateName(m.record.state)},
         {"incarnation", m.record.incarnation},
         {"public_key", m.record.public_key},
         {"self", false},
         {"rtt_ms", m.rtt_ms < 0 ? nlohmann::json(nullptr) : nlohmann::json(m.rtt_ms)},
         {"min_rtt_ms",
          m.min_rtt_ms() < 0 ? nlohmann::json(nullptr) : nlohmann::json(m.min_rtt_ms())},
         {"quarantined", Quarantined(name)},
         {"last_contact_ms", m.last_heard_ms ? nlohmann::json(env_.clock->NowMs() - m.last_heard_ms)
                                             : nlohmann::json(nullptr)},
         {"summary_version", summary_book_.version(name)}});
  }
  const peers::GossipStats& g = node_.stats();
  return {
      {"enabled", true},
      {"name", self.name},
      {"region", self.region},
      {"members", members},
      {"tags", node_.tags().size()},
      {"revocations", node_.revocations().size()},
      {"stats",
       {{"messages_sent", g.messages_sent},
        {"messages_received", g.messages_received},
        {"tags_applied", g.tags_applied},
        {"tags_refused_future", g.tags_refused_future},
        {"probes_failed", g.probes_failed},
        {"refutations", g.refutations},
        {"tags_refused_invalid", g.tags_refused_invalid},
        {"members_refused", g.members_refused},
        {"records_refused_signature", g.records_refused_signature},
        {"tags_refused_signature", g.tags_refused_signature},
        {"tags_unknown_origin", g.tags_unknown_origin},
        {"revocations_applied", g.revocations_applied},
        {"revocations_refused", g.revocations_refused},
        {"oversized", stats_.oversized},
        {"auth_failures", stats_.auth_failures},
        {"protocol_refused", stats_.protocol_refused_requests + stats_.protocol_refused_messages +
                                 stats_.protocol_refused_summaries},
        {"peer_fetch_failures", stats_.peer_fetch_failures},
        {"peer_bad_bytes", stats_.peer_bad_bytes},
        {"quarantines", stats_.quarantines},
        {"peer_gets_same_region", stats_.peer_gets_same_region},
        {"peer_gets_cross_region", stats_.peer_gets_cross_region},
        {"peer_bytes_same_region", stats_.peer_bytes_same_region},
        {"peer_bytes_cross_region", stats_.peer_bytes_cross_region},
        {"peer_heads", stats_.peer_heads},
        {"served_to_peers", stats_.served_to_peers},
        {"served_cross_region", stats_.served_cross_region},
        {"summaries_fetched", stats_.summaries_fetched},
        {"summary_bytes", stats_.summary_bytes},
        {"gossip_bytes_sent", stats_.gossip_bytes_sent},
        {"gossip_bytes_received", stats_.gossip_bytes_received}}}};
}

void Cluster::Describe(util::Exposition* out) const {
  using T = util::Exposition::Type;
  std::map<std::string, uint64_t> states = {{"alive", 0}, {"suspect", 0}, {"dead", 0}, {"left", 0}};
  std::map<std::string, double>
      region_rtt;  // the nearest live member of each other region, seconds
  uint64_t quarantined = 0;
  for (const auto& [name, m] : node_.members()) {
    ++states[peers::MemberStateName(m.record.state)];
    if (Quarantined(name)) ++quarantined;
    bool live = m.record.state == peers::MemberState::kAlive ||
                m.record.state == peers::MemberState::kSuspect;
    if (!live || m.rtt_ms < 0 || m.record.region == node_.self().region) continue;
    double rtt = m.min_rtt_ms() >= 0 ? m.min_rtt_ms() / 1000.0 : m.rtt_ms / 1000.0;
    auto it = region_rtt.find(m.record.region);
    if (it == region_rtt.end() || rtt < it->second) region_rtt[m.record.region] = rtt;
  }
  out->Family("georeg_peers", T::kGauge,
              "Cluster members other than this node, by their state as this node sees it.");
  for (const auto& [state, n] : states) out->Sample({{"state", state}}, double(n));
  out->Family("georeg_peers_quarantined", T::kGauge,
              "Peers skipped for sending bytes that failed verification.");
  out->Sample(double(quarantined));
  out->Family("georeg_region_rtt_seconds", T::kGauge,
              "Round-trip time to the nearest live member of each other region (its minimum over "
              "recent probes).");
  for (const auto& [region, rtt] : region_rtt) out->Sample({{"region", region}}, rtt);
  const peers::GossipStats& g = node_.stats();
  out->Family("georeg_gossip_messages_total", T::kCounter, "Gossip messages, by direction.");
  out->Sample({{"direction", "received"}}, double(g.messages_received));
  out->Sample({{"direction", "sent"}}, double(g.messages_sent));
  out->Family("georeg_gossip_bytes_total", T::kCounter, "Gossip message body bytes, by direction.");
  out->Sample({{"direction", "received"}}, double(stats_.gossip_bytes_received));
  out->Sample({{"direction", "sent"}}, double(stats_.gossip_bytes_sent));
  out->Family("georeg_tag_updates_applied_total", T::kCounter,
              "Tag updates (local or gossiped) that changed this node's tag table.");
  out->Sample(double(g.tags_applied));
  out->Family("georeg_tag_updates_refused_total", T::kCounter,
              "Gossiped tag updates refused, by reason.");
  out->Sample({{"reason", "future"}}, double(g.tags_refused_future));
  out->Sample({{"reason", "invalid"}}, double(g.tags_refused_invalid));
  out->Sample({{"reason", "signature"}}, double(g.tags_refused_signature));
  out->Sample({{"reason", "unknown_origin"}}, double(g.tags_unknown_origin));
  out->Family("georeg_peer_transfers_total", T::kCounter,
              "Content requests to peers that brought a body (200 or 206), by whether the peer is "
              "in this region.");
  out->Sample({{"scope", "cross_region"}}, double(stats_.peer_gets_cross_region));
  out->Sample({{"scope", "same_region"}}, double(stats_.peer_gets_same_region));
  out->Family("georeg_peer_bytes_total", T::kCounter,
              "Body bytes fetched from peers, by whether the peer is in this region (cross_region: "
              "between regions).");
  out->Sample({{"scope", "cross_region"}}, double(stats_.peer_bytes_cross_region));
  out->Sample({{"scope", "same_region"}}, double(stats_.peer_bytes_same_region));
  out->Family("georeg_served_to_peers_total", T::kCounter,
              "Content requests peers sent this node, by whether the peer is in this region.");
  out->Sample({{"scope", "cross_region"}}, double(stats_.served_cross_region));
  out->Sample({{"scope", "same_region"}},
              double(stats_.served_to_peers - stats_.served_cross_region));
  out->Family(
      "georeg_peer_failures_total", T::kCounter,
      "Peer trouble, by kind: fetch (unreachable, error, broke off), bad_bytes (failed "
      "verification), "
      "auth (a request we refused with 401), oversized (a message or summary over its bound).");
  out->Sample({{"kind", "auth"}}, double(stats_.auth_failures));
  out->Sample({{"kind", "bad_bytes"}}, double(stats_.peer_bad_bytes));
  out->Sample({{"kind", "fetch"}}, double(stats_.peer_fetch_failures));
  out->Sample({{"kind", "oversized"}}, double(stats_.oversized));
  out->Family("georeg_peer_protocol_refused_total", T::kCounter,
              "What peers sent in a protocol version this node does not speak, refused: "
              "requests, gossip messages, digest summaries (docs/gossip.md, \"Versions\").");
  out->Sample({{"what", "message"}}, double(stats_.protocol_refused_messages));
  out->Sample({{"what", "request"}}, double(stats_.protocol_refused_requests));
  out->Sample({{"what", "summary"}}, double(stats_.protocol_refused_summaries));
}

void Cluster::SetRegionPolicy(std::set<std::string> replicated, std::set<std::string> drained) {
  replicated_regions_ = std::move(replicated);
  drained_regions_ = std::move(drained);
}

bool Cluster::Routable(const std::string& region) const {
  return region == node_.self().region || !drained_regions_.count(region);
}

std::vector<Cluster::NodeInfo> Cluster::Nodes() const {
  std::vector<NodeInfo> out = {{node_.name(), node_.self().region, true}};
  for (const auto& [name, m] : node_.members()) out.push_back({name, m.record.region, m.live()});
  return out;
}

}  // namespace peering
