// Replicator: the replications of the fleet's own registry on this node
// (docs/replication.md, "Replications").
//
// - The management API `georeg replication` talks to, on the daemon's own
//   listener (any node; the answer is the fleet's state as this node sees it):
//     GET    /_georeg/v1/registries/<name>/replications           list
//     GET    /_georeg/v1/registries/<name>/replications/<region>  show
//     PUT    /_georeg/v1/registries/<name>/replications/<region>  create (idempotent)
//     PATCH  /_georeg/v1/registries/<name>/replications/<region>  update, body {"routing":
//     "enabled"|"disabled"} DELETE /_georeg/v1/registries/<name>/replications/<region>  delete
//     (never the last one) GET    /_georeg/v1/registries/<name>/image-status?image=REPO:TAG
//   Reads need what pulls need (pull_auth), writes the push credentials.
//   Errors are JSON {"error": "..."} with 400 (bad region), 401, 404
//   (unknown registry or replication), 409 (the last replication), 503 (no
//   cluster).
// - Replication records and sync reports are fleet records
//   (push/replication.h): gossiped, last-writer-wins, kept across restarts.
// - Once a second: which regions are replicated and which are drained goes to
//   the cluster (durable copies, routing); when this node's region is
//   replicated, it checks the own registry's tags under `[registry]
//   prefixes` and pre-fetches what the policy wants here (every manifest;
//   under `full` also the blobs this node owns in its region by rendezvous,
//   so the region holds each blob once), two at a time, paced by
//   `prefetch_rate`; and it reports how far it is (a SyncReport) when that
//   changed, at most once a second.
//
// Ownership: borrows the Store, the Holdings, the FleetTags, the PushAuth and the Fleet, which
// outlive it; owns its timer (Stop() closes it). Loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cache/store.h"
#include "config/config.h"
#include "peers/tag_table.h"
#include "push/replication.h"
#include "src/http/server.h"
#include "src/io/env.h"
#include "src/io/handle.h"
#include "src/io/lifetime.h"
#include "src/registry/fleet_tags.h"
#include "src/registry/holdings.h"
#include "src/registry/push_auth.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/pacer.h"

namespace peering {
class Fleet;
}

namespace registry {

class Replicator {
 public:
  // Borrows the store, holdings, tags, credentials and cluster (null: no
  // cluster, and nothing to do), which outlive it.
  Replicator(io::Env env, const config::Config& cfg, cache::Store* store, Holdings* holdings,
             FleetTags* tags, PushAuth* auth, peering::Fleet* cluster);
  ~Replicator();
  Replicator(const Replicator&) = delete;
  Replicator& operator=(const Replicator&) = delete;

  static constexpr const char* kPrefix = "/_georeg/v1/registries/";
  // Starts the once-a-second work (only with an own registry in a cluster).
  void Start();
  void Stop();
  // The once-a-second work (the timer Start sets runs it; a test calls it).
  void Tick();
  // A request whose target starts with kPrefix.
  void Handle(const std::shared_ptr<http::Exchange>& ex);
  // A replication record or sync report of our registry learned from a peer.
  void Apply(const peers::TagUpdate& u);
  // georeg_replication_status{region,status} (1 for the region's status,
  // 0 for the others) and how long it has held, for /metrics. Nothing
  // without an own registry in a cluster.
  void Describe(util::Exposition* out);
  // The replications as `replication list` shows them (empty without an own registry in a cluster).
  nlohmann::json ListJson();

  static constexpr size_t kInFlight = 2;          // pre-fetches at once
  static constexpr size_t kCheckPerTick = 512;    // tags checked per tick
  static constexpr uint64_t kRecheckMs = 30'000;  // a full check at least this often
  static constexpr size_t kMaxImageItems = 256;   // image-status: manifests + blobs looked at
  static constexpr size_t kNodesAskedPerRegion =
      3;  // image-status: live nodes asked per other region

 private:
  struct Replication {
    push::ReplicationRecord record;
    push::ReplicationState state;
    uint64_t since_ms = 0;  // when `state.status` began, as this node saw it
  };
  // A tag whose content is not all here yet, and what fetching it costs.
  struct Job {
    std::string repo;
    util::Digest digest;
    std::vector<std::string> holders;
  };

  static void OnTimer(uv_timer_t* t);
  // The live replications (by region), evaluated now.
  std::map<std::string, Replication> Replications();
  std::map<std::string, push::SyncReport> Reports() const;
  // The own tags (live, under the prefixes) and the fingerprint of all of them.
  void OwnTags(std::vector<peers::TagUpdate>* live, uint64_t* fingerprint, uint64_t* count) const;
  bool Wanted(const std::string& repo) const;
  // Whether blob `d` is this node's to hold in its region (policy full).
  bool Mine(const util::Digest& d, const std::vector<std::string>& region_nodes) const;
  std::vector<std::string> LiveRegionNodes() const;
  // Counts what of tag `u`'s image is missing here; true when something is.
  bool Check(const cache::ReadTxn& txn, const peers::TagUpdate& u,
             const std::vector<std::string>& region_nodes, uint64_t* manifests,
             uint64_t* blobs) const;
  void Pump();
  // The first replication of a registry: the region of its first push.
  void AdoptHome();
  // The blobs of `manifest` (not its children's) held here as own content that `want` selects.
  std::set<util::Digest> HeldBlobs(const util::Digest& manifest,
                                   const Holdings::BlobFilter& want) const;
  void Report(const std::string& took_on);
  // Writes a fleet record of ours (a replication or our report): gossiped and kept.
  void Record(const std::string& kind, const std::string& key, const std::string& value);

  void List(const std::shared_ptr<http::Exchange>& ex);
  void Show(const std::shared_ptr<http::Exchange>& ex, const std::string& region);
  void Create(const std::shared_ptr<http::Exchange>& ex, const std::string& region);
  void Update(const std::shared_ptr<http::Exchange>& ex, const std::string& region,
              const std::string& body);
  void Delete(const std::shared_ptr<http::Exchange>& ex, const std::string& region);
  void ImageStatus(const std::shared_ptr<http::Exchange>& ex, const std::string& image,
                   bool fetched);
  // Image status's answer: `head` with, per region, what its live nodes hold
  // of `manifests` and `blobs` (of repository `repo`).
  void SurveyRegions(const std::shared_ptr<http::Exchange>& ex, const std::string& repo,
                     nlohmann::json head, const std::vector<util::Digest>& manifests,
                     const std::vector<util::Digest>& blobs);
  nlohmann::json Resource(const std::string& region, const Replication& r) const;

  io::Env env_;
  config::Registry cfg_;
  cache::Store* store_;
  std::string name_;  // the own registry's; "" without one
  Holdings* holdings_;
  FleetTags* tags_;
  PushAuth* auth_;
  peering::Fleet* cluster_;
  io::Handle<uv_timer_t> timer_;
  io::Lifetime life_;  // guards callbacks that may outlive this object
  struct Since {
    std::string created;  // of the replication it is about
    push::DisplayStatus status = push::DisplayStatus::kSyncing;
    uint64_t ms = 0;  // wall clock
  };
  std::map<std::string, Since> status_since_;  // by region
  util::Pacer pacer_;
  // The check pass in progress (snapshot of the tags) and what it found.
  std::vector<peers::TagUpdate> pass_;
  size_t pass_next_ = 0;
  bool pass_active_ = false;
  std::string pass_for_;                 // the replication (created) the pass started under
  std::vector<std::string> pass_nodes_;  // the region's live nodes then (sorted)
  uint64_t pass_fingerprint_ = 0, pass_tags_ = 0, pass_manifests_ = 0, pass_blobs_ = 0;
  bool dirty_ = true;
  uint64_t last_pass_ms_ = 0;
  std::deque<Job> jobs_;
  size_t in_flight_ = 0;
  bool jobs_failed_ = false;
  std::string error_;       // why the last pre-fetch failed, when it is the replica's size
  std::string synced_for_;  // the replication (created) a check found complete once
  // What this node reported last, and the last completed pass.
  push::SyncReport reported_, current_;
  bool reported_once_ = false;
  uint64_t last_report_ms_ = 0;
  util::LogThrottle fail_log_;
};

}  // namespace registry
