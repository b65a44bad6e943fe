// Cluster: this daemon's part in the fleet, on the libuv loop
// (docs/gossip.md).
//
// Runs the pure peers::GossipNode on a timer and carries its messages as
// signed HTTP POSTs to /_georeg/v1/msg on the peers' own servers. For the
// peer routes the route table (src/routes.h) hands it, it checks the
// cluster-key signature and the sender's own node signature against the
// key held for its name (anything unsigned, stale, replayed, signed with
// another key or by a revoked node gets 401 and changes nothing), applies
// gossip and says what it taught (ReceiveMessage), and serves this node's
// digest summary (a Bloom filter of the cached blobs). It fetches its
// region-mates' summaries when they announce a new version
// (peers::SummaryBook); plans where a miss goes (peers::PlanRoute, with
// known holders placed by peers::PreferHolders) and starts signed GETs,
// HEADs and holds to peers; quarantines peers that sent bad bytes; and
// turns tag changes into gossip. It calls nothing above it: what it
// learns goes back to its caller.
//
// Peer addresses come only from the configuration (seeds) and from
// membership records in authenticated messages, never from a client request.
//
// Ownership: owns the gossip node, the peer HTTP clients and its timer;
// borrows the blob index (for summaries), which must outlive it. Loop thread
// only. Shutdown() closes the timer and the clients.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "cache/blob_index.h"
#include "config/config.h"
#include "peers/bloom.h"
#include "peers/gossip_node.h"
#include "peers/peer_auth.h"
#include "peers/routing.h"
#include "peers/summary_book.h"
#include "src/http/server.h"
#include "src/io/env.h"
#include "src/io/handle.h"
#include "src/peering/fleet.h"
#include "src/upstream/client.h"
#include "util/metrics.h"

namespace peering {

struct ClusterStats {
  uint64_t auth_failures = 0;  // peer requests refused with 401
  uint64_t peer_fetch_failures = 0;
  uint64_t peer_bad_bytes = 0;  // peers that sent bytes failing verification
  uint64_t quarantines = 0;
  uint64_t oversized = 0;  // messages or summaries over their bound
  // Content requests to peers whose answer was 200 or 206 (a transfer),
  // and the body bytes they brought, by whether the peer is in our region.
  uint64_t peer_gets_same_region = 0;
  uint64_t peer_gets_cross_region = 0;
  uint64_t peer_bytes_same_region = 0;
  uint64_t peer_bytes_cross_region = 0;
  uint64_t peer_heads = 0;             // HEAD requests sent to peers
  uint64_t served_to_peers = 0;        // content requests peers sent us
  uint64_t served_cross_region = 0;    // ... from another region
  uint64_t summaries_fetched = 0;      // region-mates' digest summaries taken
  uint64_t summary_bytes = 0;          // ... and their bytes
  uint64_t gossip_bytes_sent = 0;      // gossip message bodies posted to peers
  uint64_t gossip_bytes_received = 0;  // ... and accepted from them (signed, decoded)
  // What a peer sent in a protocol version this node does not speak
  // (peers/protocol.h), refused: requests, gossip messages, summaries.
  uint64_t protocol_refused_requests = 0;
  uint64_t protocol_refused_messages = 0;
  uint64_t protocol_refused_summaries = 0;
};

class Cluster final : public Fleet {
 public:
  // `key` is the cluster secret (read from key_file by the caller);
  // `node_key` this node's own key pair (LoadNodeKey).
  // `slowest_upstream_ms`: an owner asked for a blob may first wait for its
  // upstream, so owner requests get this much more time for their head.
  Cluster(io::Env env, const config::Config& cfg, std::string key,
          std::shared_ptr<const peers::Signer> node_key, const cache::BlobIndex* index,
          uint64_t slowest_upstream_ms);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  void Start();
  // SIGTERM: tells the peers we leave (they stop routing to us at once).
  void Leave();
  // Stops the timer, closes the peer connections.
  void Shutdown();

  // The peer routes, as the registry port's route table (src/routes.cc)
  // dispatches them. Every one is signed with the cluster key and the
  // sender's node key: anything unsigned, stale, replayed or signed by a
  // revoked node is answered 401 and changes nothing.
  static constexpr const char* kMsgPath = "/_georeg/v1/msg";          // POST: gossip
  static constexpr const char* kSummaryPath = "/_georeg/v1/summary";  // GET: our digest summary
  static constexpr const char* kOciPrefix = "/_georeg/v1/oci";        // + /v2/...: content
  static constexpr const char* kHoldPrefix = "/_georeg/v1/hold";      // + /v2/...: keep a copy

  // POST kMsgPath: reads, checks and applies a gossip message and answers
  // it; when it taught something, calls `learned` with it, once,
  // later (never from inside the call). A refused message is answered to
  // its sender and `learned` is not called.
  using LearnedFn = std::function<void(peers::GossipNode::Learned)>;
  void ReceiveMessage(const std::shared_ptr<http::Exchange>& ex, LearnedFn learned);
  // A peer route without a body (summary, content, hold): the sender's
  // name when the request is signed by a member. Errors: PermissionDenied
  // or InvalidArgument, and the exchange was answered (401 or 400).
  util::Result<std::string> Authenticate(const std::shared_ptr<http::Exchange>& ex);
  // GET kSummaryPath of an authenticated sender.
  void ServeSummary(const std::shared_ptr<http::Exchange>& ex);
  // A content request (kOciPrefix + an OCI path) of an authenticated
  // `sender`: the OCI target and the hop it asks at (never kClient).
  // Errors: InvalidArgument (an unknown hop), and the exchange was answered 400.
  struct ContentRequest {
    std::string oci_target;
    peers::Hop hop = peers::Hop::kPeer;
  };
  util::Result<ContentRequest> AcceptContent(const std::shared_ptr<http::Exchange>& ex,
                                             const std::string& sender);
  // Answers a peer request the route table has no route for.
  static void RespondNoRoute(const std::shared_ptr<http::Exchange>& ex);

  // The Fleet (src/peering/fleet.h).
  const std::string& name() const override { return node_.name(); }
  const std::string& region() const override { return node_.self().region; }
  std::vector<NodeInfo> Nodes() const override;
  std::optional<peers::PeerStep> StepTo(const std::string& name) const override;
  peers::RoutePlan Plan(const util::Digest& digest, peers::Hop incoming, bool blob,
                        peers::Scope scope,
                        const std::vector<std::string>& prefer = {}) const override;
  std::vector<peers::PeerStep> ReplicaCandidates() const override;
  std::vector<peers::PeerStep> TagRegionOwners(const peers::TagKey& key) const override;
  void SetRegionPolicy(std::set<std::string> replicated, std::set<std::string> drained) override;
  bool Routable(const std::string& region) const override;
  // Counted in the cluster's stats (transfers by region scope).
  std::shared_ptr<upstream::InFlight> Send(const peers::PeerStep& step, const std::string& method,
                                           const std::string& oci_target,
                                           std::vector<http::Header> headers,
                                           upstream::Callbacks cb,
                                           upstream::FetchOptions options = {}) override;
  void ReportFailure(const std::string& peer, const std::string& why, bool corrupt) override;
  // At most kHoldTimeoutMs.
  void Hold(const peers::PeerStep& step, const std::string& oci_target,
            std::function<void(util::Status)> done) override;
  peers::TagUpdate RecordTag(const std::string& registry, const std::string& repository,
                             const std::string& tag, const util::Digest& digest,
                             const std::string& value = "") override;
  // The keepers: kTagKeepers per region, so the pusher's own death leaves
  // one in its region; each answer bounded by the peer timeout.
  void PushTag(const peers::TagUpdate& u,
               std::function<void(size_t told, size_t asked)> done) override;
  bool Restore(const peers::TagUpdate& u) override;
  const peers::TagVersion* FindTag(const peers::TagKey& key) const override;
  std::string TagOrigin(const std::string& registry, const std::string& repository,
                        const std::string& tag) const override;
  std::vector<peers::TagUpdate> FleetEntries(const std::string& registry) const override {
    return node_.tags().EntriesOf(registry);
  }
  static constexpr size_t kTagKeepers = 2;
  // `georeg peers remove NAME`: revokes the member's key fleet-wide
  // (peers::GossipNode::Revoke). Errors: NotFound, InvalidArgument.
  // The entries withdrawn with it (its tags) are added to `withdrawn`.
  util::Status Remove(const std::string& name, std::vector<peers::TagUpdate>* withdrawn);

  // For the admin socket: self, members, stats.
  nlohmann::json StatusJson() const;
  // The cluster's families for /metrics (docs/metrics.md): peers by state,
  // gossip, peer transfers by region scope, tag updates, RTT by region.
  void Describe(util::Exposition* out) const;

 private:
  static void OnTimer(uv_timer_t* t);
  void Tick();
  void Flush();
  void LogMemberChanges(const std::vector<std::string>& changed);
  void RefreshOwnSummary();
  void FetchSummaries();
  // Of `region` (member names), the keepers of `key`, us left out.
  std::vector<std::string> TagKeepers(const peers::TagKey& key,
                                      const std::vector<std::string>& region) const;
  upstream::Client* ClientFor(const std::string& url, bool long_wait, bool hold = false);
  std::vector<http::Header> SignedHeaders(const std::string& method, const std::string& target,
                                          const std::string& body);
  bool Quarantined(const std::string& peer) const;
  // A member as routing and placement see it (peers/routing.h), may_have unset.
  peers::RouteCandidate CandidateOf(const std::string& name, const peers::Member& m) const;
  void RefusePeer(const std::shared_ptr<http::Exchange>& ex, const util::Status& st);
  // A peer that speaks protocol version `v` (peers/protocol.h): true when
  // this node speaks it; else counted in `*refused`, logged (once a minute)
  // and answered 400 PROTOCOL when `ex` is given.
  bool AcceptProtocol(uint64_t v, const std::string& from, const char* what, uint64_t* refused,
                      const std::shared_ptr<http::Exchange>& ex);
  // Applies an authenticated message and answers it; what it taught.
  peers::GossipNode::Learned OnMessage(const std::shared_ptr<http::Exchange>& ex,
                                       const peers::VerifiedHead& head, const std::string& body);
  // The node signature of `head` verifies under the key we hold for its
  // sender, or (a sender not known yet) under the key of the sender's own
  // signed record in `m`.
  bool SignedBySender(const peers::VerifiedHead& head, const peers::Message* m) const;
  uint64_t PhysicalMs() const;

  io::Env env_;
  config::Cluster cfg_;
  uint64_t owner_timeout_ms_;
  peers::PeerAuth auth_;
  peers::GossipNode node_;
  const cache::BlobIndex* index_;
  io::Handle<uv_timer_t> timer_;
  std::map<std::string, std::unique_ptr<upstream::Client>> clients_;  // by "url" or "url owner"
  // Our summary.
  std::string own_summary_;
  uint64_t own_summary_version_ = 0;
  uint64_t own_summary_generation_ = UINT64_MAX;
  uint64_t next_summary_ms_ = 0;
  peers::SummaryBook summary_book_;                      // which region-mates' summaries we hold
  std::map<std::string, peers::DigestBloom> summaries_;  // their filters, by name
  std::set<std::string> summary_watch_;  // members whose summary may be due (SummaryBook::DueAmong)
  std::map<std::string, uint64_t> quarantined_until_;  // peer -> loop time
  std::map<std::string, peers::MemberState> logged_states_;
  ClusterStats stats_;
  std::set<std::string> replicated_regions_, drained_regions_;
  util::LogThrottle auth_log_;
  util::LogThrottle protocol_log_;
  bool shut_down_ = false;
  bool logged_revoked_ = false;
};

// Reads the cluster key file: the whole file, trailing newline removed.
// Errors: IoError; InvalidArgument when shorter than 16 bytes.
util::Result<std::string> ReadClusterKey(const std::string& path);

// This node's key pair from `path` (64 hex digits of private seed). A
// missing file is created, mode 0600, from the kernel's random source; the
// key must survive restarts, because the fleet knows the node by it.
// Errors: IoError; InvalidArgument for a file that is not a key.
util::Result<std::shared_ptr<const peers::Signer>> LoadNodeKey(const std::string& path);

}  // namespace peering
