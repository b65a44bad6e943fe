// OwnRegistry: the fleet's own registry as this node serves it
// (docs/replication.md): pushes following the OCI distribution spec (blob
// uploads, cross-repository mounts, manifest PUT by tag or digest, with
// `subject`), pulls of what was pushed, tags/list with n/last pagination,
// the referrers API, and deletes.
//
// A request addresses it when its ns= is `[registry] name`, or when it has
// no ns= and no upstream is marked default. Writes need HTTP Basic
// credentials from `push_htpasswd` (pulls too with pull_auth = "htpasswd"),
// checked by PushAuth.
//
// Content of the own registry is content-addressed across its
// repositories: repositories scope tags, not bytes.
//
// Blobs no manifest references are removed after `gc_grace` (OwnGc).
//
// Ownership: owns the Uploads, the OwnGc and the PushAuth; borrows the Store, WriterBridge and
// CacheKeeper (the Service's), which outlive it. Loop thread only.
#pragma once

#include <uv.h>

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/store.h"
#include "config/config.h"
#include "peers/routing.h"
#include "peers/tag_table.h"
#include "push/manifest.h"
#include "src/http/server.h"
#include "src/io/env.h"
#include "src/io/lifetime.h"
#include "src/oci/router.h"
#include "src/registry/cache_keeper.h"
#include "src/registry/own_gc.h"
#include "src/registry/push_auth.h"
#include "src/registry/uploads.h"
#include "src/registry/writer_bridge.h"

namespace peering {
class Cluster;
}

namespace registry {

class OwnRegistry {
 public:
  OwnRegistry(io::Env env, const config::Config& cfg, cache::Store* store, WriterBridge* writer,
              CacheKeeper* keeper);
  ~OwnRegistry();
  OwnRegistry(const OwnRegistry&) = delete;
  OwnRegistry& operator=(const OwnRegistry&) = delete;

  // Loads the credentials and starts the upload sweep. Errors: from Htpasswd::Load.
  util::Status Start();
  // Drops uploads in progress; call before the loop ends.
  void Stop();

  bool enabled() const { return !name_.empty(); }
  const std::string& name() const { return name_; }
  // Whether `route` addresses the own registry.
  bool Addresses(const oci::Route& route) const {
    return enabled() && (route.ns ? *route.ns == name_ : !default_upstream_marked_);
  }
  // REQUIRES: Addresses(route), route.kind is not kError or kHealth.
  // `hop`: a peer's request (not kClient) was authenticated by the cluster.
  void Handle(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex, peers::Hop hop);
  // Blob GET/HEAD go to the service's fills (cache, then holders and
  // peers). REQUIRES: set before the first request.
  using BlobHandler =
      std::function<void(const oci::Route&, const std::shared_ptr<http::Exchange>&, peers::Hop)>;
  void SetBlobHandler(BlobHandler fn) { blob_handler_ = std::move(fn); }
  // Makes a blob own content here, fetched from `holders` if missing
  // (the service's fills); `done` once, later.
  using BlobHolder =
      std::function<void(const util::Digest&, const std::string& repo,
                         std::vector<std::string> holders, std::function<void(util::Status)> done)>;
  void SetBlobHolder(BlobHolder fn) { blob_holder_ = std::move(fn); }
  // With a cluster: tags gossip (with their holders), fleet state kept
  // across restarts is restored into it, and content missing here is asked
  // of the nodes that hold it. Errors: from the store (reading fleet state).
  util::Status SetCluster(peering::Cluster* cluster);
  // An own-registry tag update learned from a peer: stored (or, a
  // tombstone, deleted), kept across restarts, its holders noted, and its
  // manifest fetched from them so pulls here do not wait for it.
  void ApplyGossipedTag(const peers::TagUpdate& u);
  // A peer (`sender`) asks us to keep a copy of a manifest it took a push
  // of (/v2/<repo>/manifests/<digest>?ns=) and all it references: answered
  // 200 once all of it is stored here as own content, fetched from it.
  void ServeHold(const std::shared_ptr<http::Exchange>& ex, const std::string& oci_target,
                 const std::string& sender);
  // Makes `digest` (a manifest of `repo`) and everything under it own
  // content here, fetched from `holders` where missing (the nearest first,
  // then whoever the fleet's routing finds): child manifests always, blobs
  // only where `want_blob` says so (null: all). `done` once, later, with the
  // first error (NotFound: no holder to fetch from; the store's errors).
  using BlobFilter = std::function<bool(const util::Digest&)>;
  void Sync(const std::string& repo, const util::Digest& digest, std::vector<std::string> holders,
            BlobFilter want_blob, std::function<void(util::Status)> done);
  // Calls `then` (now or later) when the request may read (`write` false:
  // under pull_auth) or write the registry; otherwise answers it 401/429.
  void Authorize(const std::shared_ptr<http::Exchange>& ex, bool write, std::function<void()> then);
  // Whether a fleet record belongs to this registry: its tags, its
  // replications and its nodes' sync reports (push/replication.h).
  bool OwnsRecord(const peers::TagKey& key) const;
  // Keeps a fleet record across restarts (the fleet database); `done` once, later.
  void PersistTag(const peers::TagUpdate& u, std::function<void(util::Status)> done);
  // The nodes known to hold `digest` (pushed there, or replicas), nearest
  // not sorted; empty when unknown.
  std::vector<std::string> HoldersOf(const util::Digest& digest) const;
  // Learns that `digest` is held by `holders` (bounded; the oldest hints go).
  void NoteHolders(const util::Digest& digest, const std::vector<std::string>& holders);

  struct Stats {
    uint64_t blobs_pushed = 0, manifests_pushed = 0, mounts = 0;
    uint64_t digest_mismatches = 0;
  };
  const Stats& stats() const { return stats_; }
  const Uploads& uploads() const { return uploads_; }

 private:
  void Route(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex, peers::Hop hop);
  void GetManifest(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex,
                   peers::Hop hop);
  void PutManifest(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex);
  void StoreManifest(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex,
                     const std::string& body, bool fetched_missing = false);
  void DeleteManifest(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex);
  void DeleteBlob(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex);
  void StartUpload(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex);
  void PatchUpload(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex);
  void PutUpload(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex);
  void UploadStatus(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex);
  void FinishUpload(const oci::Route& route, const std::string& id,
                    const std::shared_ptr<http::Exchange>& ex);
  // Records a tag change with the fleet and keeps it across restarts;
  // `done` once it is synced (or failed).
  void RecordTag(const std::string& repo, const std::string& tag, const util::Digest& digest,
                 bool deleted, std::vector<std::string> holders,
                 std::function<void(util::Status)> done);
  // Writes the table's current version of `key` to the store's tags.
  void SyncTagToStore(const peers::TagKey& key);
  // Fetches a manifest this node lacks from peers (`target`: the OCI path
  // to ask, by digest or by tag), verifies it (against `want`, or the
  // answer's Docker-Content-Digest), stores it as own content and calls
  // `done` with it; NotFound when no peer had it.
  void FetchManifest(const std::string& target, std::optional<util::Digest> want,
                     std::vector<peers::PeerStep> steps,
                     std::function<void(util::Status, util::Digest, cache::Manifest)> done);
  void StoreFetched(const util::Digest& d, const cache::Manifest& m,
                    const std::vector<std::string>& holders,
                    std::function<void(util::Status)> done = nullptr);
  // Makes manifest `digest` and its tree own content here (Sync); `done`
  // once, later.
  void HoldManifest(const std::string& repo, const util::Digest& digest,
                    std::vector<std::string> holders, BlobFilter want_blob,
                    std::function<void(util::Status)> done);
  struct HoldRun;
  void HoldRound(const std::shared_ptr<HoldRun>& run);
  util::Result<push::PushedManifest> ReadOwn(const cache::ReadTxn& txn,
                                             const util::Digest& d) const;
  // Has `copies - 1` other nodes hold the pushed manifest; `done` with the
  // holders (us first) or Unavailable when too few could.
  void Replicate(const std::string& repo, const util::Digest& digest,
                 std::function<void(util::Status, std::vector<std::string>)> done);
  void TagsList(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex);
  void Referrers(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex);
  // "?ns=<name>" when the request carried one, so Location URLs stay in this registry.
  std::string NsQuery(const oci::Route& route, char sep = '?') const;
  void RespondUploadError(const std::shared_ptr<http::Exchange>& ex, const util::Status& st);

  io::Env env_;
  std::string name_;
  bool default_upstream_marked_;
  config::Registry cfg_;
  uint64_t max_manifest_bytes_;
  cache::Store* store_;
  WriterBridge* writer_;
  CacheKeeper* keeper_;
  Uploads uploads_;
  OwnGc gc_;
  PushAuth auth_;
  io::Lifetime life_;  // guards callbacks that may outlive this object
  Stats stats_;
  BlobHandler blob_handler_;
  BlobHolder blob_holder_;
  peering::Cluster* cluster_ = nullptr;
  size_t fetches_ = 0;  // manifest fetches from peers in flight (kMaxFetches)
  static constexpr size_t kMaxFetches = 64;
  // digest -> holders, with insertion order for a bound (kMaxHints).
  std::unordered_map<util::Digest, std::vector<std::string>, util::DigestHash> holders_;
  std::deque<util::Digest> holders_order_;
  static constexpr size_t kMaxHints = 1 << 16;
};

}  // namespace registry
