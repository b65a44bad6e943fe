// Service: the OCI distribution pull API on top of the cache and upstreams.
//
// Routes GET/HEAD of /v2/, manifests (ManifestResolver) and blobs. Order for
// a blob: complete in the cache -> join the fill in flight -> start a fill
// from the upstream chosen by ?ns= (peers come in issue 5).
//
// Ownership: the Service owns the upstreams, the manifest resolver and the
// fills in flight; it borrows the Store and WriterBridge, which must outlive
// it. Loop thread only.
#pragma once

#include <uv.h>

#include <memory>
#include <unordered_map>

#include "cache/store.h"
#include "config/config.h"
#include "src/http/server.h"
#include "src/oci/router.h"
#include "src/registry/blob_fill.h"
#include "src/registry/cache_keeper.h"
#include "src/registry/scrubber.h"
#include "src/registry/manifests.h"
#include "src/registry/upstream_set.h"
#include "src/registry/writer_bridge.h"

namespace registry {

class Service {
 public:
  // Takes ownership of the upstreams.
  Service(uv_loop_t* loop, const config::Cache& cache_cfg, std::unique_ptr<UpstreamSet> upstreams,
          cache::Store* store, WriterBridge* writer);
  // Loads the cache index. Errors: from the store.
  util::Status Start();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  void Handle(const std::shared_ptr<http::Exchange>& ex);
  // Cancels fills and manifest fetches, closes upstream connections.
  void Shutdown();
  // The admin socket's routes (docs/operations.md, "Cache CLI").
  void HandleAdmin(const std::shared_ptr<http::Exchange>& ex);

 private:
  void HandleBlob(Upstream* up, const oci::Route& route, const std::shared_ptr<http::Exchange>& ex);

  cache::Store* store_;
  WriterBridge* writer_;
  std::unique_ptr<UpstreamSet> upstreams_;
  CacheKeeper keeper_;
  Scrubber scrubber_;
  ManifestResolver manifests_;
  std::unordered_map<util::Digest, std::shared_ptr<BlobFill>, util::DigestHash> fills_;
  bool shutting_down_ = false;
};

}  // namespace registry
