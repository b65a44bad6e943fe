// Holdings: which content of the fleet's own registry this node holds for
// the fleet, and how it comes to hold it (docs/replication.md).
//
// - HoldBlob: makes a blob own content here (never evicted, counted against
//   [registry] max_size), fetched first when missing (Fills::WhenHere).
// - Sync: makes a manifest and its tree (push/manifest_tree.h) own content
//   here: the manifests this node lacks are fetched from the holders, then
//   the blobs (all, or those `want_blob` selects).
// - Replicate: a manifest PUT's durable copies: asks `copies - 1` other
//   members (peers/placement.h, ReplicaCandidates) to hold the image, and
//   answers with the holders once enough did.
// - ServeHold: a peer's request to hold an image (the other side of
//   Replicate), answered once all of it is here.
// - FetchManifest: a manifest of the own registry fetched from peers,
//   verified, kept as own content.
//
// Ownership: borrows the store, writer, keeper, fills, hints and cluster
// (null without one), which outlive it. Loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
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
#include "src/registry/cache_keeper.h"
#include "src/registry/fills.h"
#include "src/registry/writer_bridge.h"
#include "util/status.h"

namespace peering {
class Fleet;
}

namespace registry {

// The own-manifest record of manifest `d` (`p` parsed from its `size`
// bytes), stored at `now_ms`.
cache::OwnManifest OwnRecordOf(const util::Digest& d, const push::PushedManifest& p, size_t size,
                               uint64_t now_ms);

class Holdings {
 public:
  Holdings(io::Env env, const config::Config& cfg, cache::Store* store, WriterBridge* writer,
           CacheKeeper* keeper, Fills* fills, peers::HolderHints* hints, peering::Fleet* cluster);
  Holdings(const Holdings&) = delete;
  Holdings& operator=(const Holdings&) = delete;

  // Makes blob `d` (of repository `repo`) own content here, fetched from
  // `holders` (then the usual owners) when missing. `done` once, later:
  // NotFound (no node had it), ResourceExhausted ([registry] max_size),
  // the store's errors.
  void HoldBlob(const util::Digest& d, const std::string& repo, std::vector<std::string> holders,
                std::function<void(util::Status)> done);
  // Makes manifest `digest` of `repo` and its tree own content here (see
  // above); `want_blob` null: every blob. `done` once, later: NotFound (no
  // holder to fetch from), InvalidArgument (indexes nested too deep),
  // Unavailable, the store's and HoldBlob's errors.
  using BlobFilter = std::function<bool(const util::Digest&)>;
  void Sync(const std::string& repo, const util::Digest& digest, std::vector<std::string> holders,
            BlobFilter want_blob, std::function<void(util::Status)> done);
  // Has `copies - 1` other members hold manifest `digest` of `repo`;
  // `done` once, later, with the holders (us first): Ok, or Unavailable
  // when too few could.
  void Replicate(const std::string& repo, const util::Digest& digest,
                 std::function<void(util::Status, std::vector<std::string>)> done);
  // POST /_georeg/v1/hold/v2/<repo>/manifests/<digest>?ns=<registry> of
  // an authenticated `sender`: answered 200 once the image is held here.
  void ServeHold(const std::shared_ptr<http::Exchange>& ex, const std::string& oci_target,
                 const std::string& sender);
  // Fetches the manifest at `target` (an OCI path, by digest or tag) from
  // `steps` in order, verifies it (against `want`, or the answer's
  // Docker-Content-Digest), keeps it as own content and calls `done` with
  // it, once, later; NotFound when no peer had it. The write is queued to
  // the writer before `done`: committed before any job queued after it. Errors (then `done` is
  // never called): ResourceExhausted when kMaxFetches run already.
  using FetchDone = std::function<void(util::Status, util::Digest, cache::Manifest)>;
  util::Status FetchManifest(const std::string& target, std::optional<util::Digest> want,
                             std::vector<peers::PeerStep> steps, FetchDone done);
  static constexpr size_t kMaxFetches = 64;

 private:
  struct HoldRun;
  void HoldRound(const std::shared_ptr<HoldRun>& run);
  // What own manifest `d` references; NotFound unless it is own content here.
  util::Result<push::PushedManifest> ReadOwn(const cache::ReadTxn& txn,
                                             const util::Digest& d) const;
  void StoreFetched(const util::Digest& d, const cache::Manifest& m,
                    const std::vector<std::string>& holders);

  io::Env env_;
  std::string name_;  // the own registry's
  uint64_t copies_;
  uint64_t budget_;  // [registry] max_size
  uint64_t max_manifest_bytes_;
  cache::Store* store_;
  WriterBridge* writer_;
  CacheKeeper* keeper_;
  Fills* fills_;
  peers::HolderHints* hints_;
  peering::Fleet* cluster_;
  size_t fetches_ = 0;  // manifest fetches in flight
  io::Lifetime life_;   // guards callbacks that may outlive this object
};

}  // namespace registry
