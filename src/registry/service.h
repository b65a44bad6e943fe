// Service: the OCI distribution pull API on top of the cache and upstreams.
//
// Handles GET/HEAD of /v2/, manifests (by tag or digest) and blobs. Order for
// a blob: complete in the cache -> join the fill in flight -> start a fill
// from the upstream chosen by ?ns= (peers come in issue 5). Manifests are
// fetched whole (at most 4 MiB), verified by SHA-256, stored, then served;
// concurrent requests for the same manifest share one upstream request.
//
// Ownership: the Service owns one upstream::Client per configured upstream
// and the fills in flight; it borrows the Store and WriterBridge, which must
// outlive it. Loop thread only.
#pragma once

#include <uv.h>

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/store.h"
#include "config/config.h"
#include "src/http/server.h"
#include "src/oci/router.h"
#include "src/registry/blob_fill.h"
#include "src/registry/writer_bridge.h"
#include "src/upstream/client.h"

namespace registry {

class Service {
 public:
  Service(uv_loop_t* loop, const config::Config& cfg, cache::Store* store, WriterBridge* writer);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  void Handle(const std::shared_ptr<http::Exchange>& ex);
  // Cancels fills and manifest fetches, closes upstream connections.
  void Shutdown();

 private:
  struct Upstream {
    config::Upstream config;
    std::unique_ptr<upstream::Client> client;
  };
  struct ManifestFetch;

  Upstream* SelectUpstream(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex);
  void HandleBlob(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex);
  void HandleManifest(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex);
  void FetchManifest(Upstream* up, const oci::Route& route, const std::shared_ptr<http::Exchange>& ex,
                     std::optional<cache::TagInfo> stale);
  void FinishManifestFetch(const std::string& key, util::Status st, int upstream_status, std::string media_type,
                           std::string body, const std::string* header_digest);
  void FinishManifestWaiters(const std::string& key, const std::function<void(const std::shared_ptr<http::Exchange>&)>& fn);

  uv_loop_t* loop_;
  cache::Store* store_;
  WriterBridge* writer_;
  std::vector<Upstream> upstreams_;  // [0] is the default
  std::unordered_map<util::Digest, std::shared_ptr<BlobFill>, util::DigestHash> fills_;
  std::map<std::string, std::unique_ptr<ManifestFetch>> manifest_fetches_;
  bool shutting_down_ = false;
};

// Sends a cached manifest, honouring HEAD and the client's Accept list.
void ServeManifest(const std::shared_ptr<http::Exchange>& ex, const util::Digest& digest, const cache::Manifest& m,
                   const std::string& stale_note);

// True if a client that sent `accept` (merged header value, may be empty)
// takes `media_type`.
bool AcceptsMediaType(const std::string* accept, const std::string& media_type);

}  // namespace registry
