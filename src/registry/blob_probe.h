// BlobProbe: the answer to HEAD of a blob this node neither holds nor is
// filling. It asks the same sources a fill would (peers per the cluster's
// plan, then the upstream) with HEAD, never GET, and answers every waiting
// client with the size and digest of the first source that has the blob:
// 200 with Content-Length and Docker-Content-Digest, no body. Nothing is
// stored. A source that answers another digest, no Content-Length, an
// error or nothing in time is skipped; when none is left the clients get
// 503 if the upstream failed, else 404 BLOB_UNKNOWN: a peer that fails
// (refused, dead, shutting down) is a node that does not hold the blob for
// us now, so a member's death never turns "unknown" into "retry".
//
// Ownership: the Service keeps running probes in a map and removes one in
// `on_done`; the callbacks of the request in flight hold a shared_ptr.
// Loop thread only.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "src/http/server.h"
#include "src/registry/blob_fill.h"
#include "util/digest.h"

namespace registry {

class BlobProbe : public std::enable_shared_from_this<BlobProbe> {
 public:
  BlobProbe(util::Digest digest, std::function<void(BlobProbe*)> on_done)
      : digest_(digest), on_done_(std::move(on_done)) {}

  // REQUIRES: at least one source.
  void Start(std::vector<FillSource> sources);
  void Join(std::shared_ptr<http::Exchange> exchange) { waiting_.push_back(std::move(exchange)); }
  // A caller that only wants to know: `found` once, later, with whether a
  // source has the blob.
  void Ask(std::function<void(bool found)> found) { asking_.push_back(std::move(found)); }
  // Shutdown: 503 to the waiting clients.
  void Cancel();

 private:
  void Next();
  void OnHead(const upstream::ResponseHead& head);
  void OnComplete(util::Status st);
  // `unknown`: what the source said leaves the blob unknown (404, or a
  // peer that failed); false when the upstream failed.
  void Skip(const std::string& why, bool unknown);
  void Finish(int status, uint64_t size, const char* code, const std::string& message);

  util::Digest digest_;
  std::function<void(BlobProbe*)> on_done_;
  std::vector<FillSource> sources_;
  size_t source_ = 0;
  std::shared_ptr<upstream::InFlight> request_;
  std::vector<std::shared_ptr<http::Exchange>> waiting_;
  std::vector<std::function<void(bool)>> asking_;
  bool upstream_failed_ = false;  // the upstream answered neither the blob nor 404
  bool done_ = false;
};

}  // namespace registry
