// OwnRegistry: the OCI distribution API of the fleet's own registry as
// this node serves it (docs/replication.md): blob uploads (monolithic,
// chunked, resumed, cancelled; cross-repository mounts), manifest PUT by
// tag or digest (with `subject`), manifest GET, tags/list with n/last
// pagination, the referrers API, and deletes.
//
// A request addresses it when its ns= is `[registry] name`, or when it has
// no ns= and no upstream is marked default. Writes need HTTP Basic
// credentials (PushAuth; pulls too with pull_auth = "htpasswd").
//
// It decides what the API answers and leaves the rest to the modules it is
// given: a blob GET or HEAD goes to the Fills; a manifest PUT has the
// Holdings fetch the blobs a HEAD found elsewhere in the fleet and make the
// durable copies, then the FleetTags record the tag, before its 201.
// Content is content-addressed across repositories: repositories scope
// tags, not bytes. A DELETE by digest is fleet-wide (FleetTags::
// RecordDeletion): every node answers 404 for that digest, blob or
// manifest, from then on, and drops its copies, until a push of the same
// digest brings it back. Blobs no manifest references are removed after
// `gc_grace` (OwnGc).
//
// Ownership: owns the Uploads and the OwnGc; borrows everything in Deps,
// which outlives it. Loop thread only.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cache/store.h"
#include "config/config.h"
#include "peers/holder_hints.h"
#include "peers/routing.h"
#include "push/manifest.h"
#include "src/http/server.h"
#include "src/io/env.h"
#include "src/io/lifetime.h"
#include "src/oci/router.h"
#include "src/registry/cache_keeper.h"
#include "src/registry/fills.h"
#include "src/registry/fleet_tags.h"
#include "src/registry/holdings.h"
#include "src/registry/own_gc.h"
#include "src/registry/push_auth.h"
#include "src/registry/uploads.h"
#include "src/registry/writer_bridge.h"

namespace peering {
class Fleet;
}

namespace registry {

class OwnRegistry {
 public:
  struct Deps {
    io::Env env;
    cache::Store* store;
    WriterBridge* writer;
    CacheKeeper* keeper;
    PushAuth* auth;
    Fills* fills;
    Holdings* holdings;
    FleetTags* tags;
    peers::HolderHints* hints;
    peering::Fleet* cluster;  // null: no cluster
  };
  OwnRegistry(Deps deps, const config::Config& cfg);
  ~OwnRegistry();
  OwnRegistry(const OwnRegistry&) = delete;
  OwnRegistry& operator=(const OwnRegistry&) = delete;

  // Starts the upload sweep and the garbage collection.
  void Start();
  // Collects unreferenced own blobs now (OwnGc::Run), as its timer does.
  void CollectGarbage() { gc_.Run(); }
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

  // Content deleted fleet-wide (FleetTags::Deleted, learned from a peer):
  // whatever copy of it this node keeps (own, cached, held) is dropped.
  void DropDeleted(const util::Digest& digest);

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
  // A manifest PUT's steps (own_registry.cc says what each does).
  void StoreManifest(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex,
                     const std::string& body, bool fetched_missing = false);
  // False (and answered) when something the manifest names is not here;
  // `adopt`: the cached blobs (in the index) it makes own content.
  bool FindReferences(const std::shared_ptr<http::Exchange>& ex, const push::PushedManifest& parsed,
                      std::vector<util::Digest>* adopt);
  void WriteManifest(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex,
                     const push::PushedManifest& parsed, const std::string& body,
                     const util::Digest& digest, const std::vector<util::Digest>& adopt);
  void ReleaseAdopted(const std::vector<util::Digest>& adopt);
  // `then` once, later: at once unless `d` was deleted fleet-wide, which a
  // push of it undoes first (FleetTags::RecordDeletion).
  void UndeleteThen(const util::Digest& d, std::function<void(util::Status)> then);
  void Acknowledge(const std::shared_ptr<http::Exchange>& ex, const cache::OwnManifest& own,
                   const std::string& repo, const std::string& tag, const std::string& ns);
  void DeleteManifest(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex);
  void DeleteBlob(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex);
  void StartUpload(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex);
  void PatchUpload(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex);
  void PutUpload(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex);
  void UploadStatus(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex);
  void FinishUpload(const oci::Route& route, const std::string& id,
                    const std::shared_ptr<http::Exchange>& ex);
  void TagsList(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex);
  void Referrers(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex);
  // "?ns=<name>" when the request carried one, so Location URLs stay in this registry.
  std::string NsQuery(const oci::Route& route, char sep = '?') const;
  void RespondUploadError(const std::shared_ptr<http::Exchange>& ex, const util::Status& st);

  Deps deps_;
  std::string name_;
  bool default_upstream_marked_;
  config::Registry cfg_;
  uint64_t max_manifest_bytes_;
  cache::Store* store_;
  WriterBridge* writer_;
  CacheKeeper* keeper_;
  Uploads uploads_;
  OwnGc gc_;
  Stats stats_;
  io::Lifetime life_;  // guards callbacks that may outlive this object
};

}  // namespace registry
