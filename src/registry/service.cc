#include "src/registry/service.h"

#include "util/log.h"

namespace registry {

using util::Status;

Service::Service(uv_loop_t* loop, const config::Cache& cache_cfg, std::unique_ptr<UpstreamSet> upstreams,
                 cache::Store* store, WriterBridge* writer)
    : store_(store),
      writer_(writer),
      upstreams_(std::move(upstreams)),
      keeper_(loop, cache_cfg, store, writer),
      scrubber_(loop, store, &keeper_, cache_cfg.scrub_rate),
      manifests_(store, writer) {}

util::Status Service::Start() {
  util::Status st = keeper_.Start();
  if (st.ok()) scrubber_.Start();
  return st;
}

void Service::Handle(const std::shared_ptr<http::Exchange>& ex) {
  const http::Request& req = ex->request();
  oci::Route route = oci::RouteRequest(req.method, req.target);
  switch (route.kind) {
    case oci::RouteKind::kHealth:
      ex->Respond(200, {{"Content-Type", "text/plain"}}, "ok\n");
      return;
    case oci::RouteKind::kError:
      RespondOciError(ex, route.status, oci::ErrorCodeName(route.error), route.message);
      return;
    case oci::RouteKind::kBase: {
      auto headers = BaseHeaders();
      headers.push_back({"Content-Type", "application/json"});
      ex->Respond(200, headers, "{}");
      return;
    }
    case oci::RouteKind::kBlob:
    case oci::RouteKind::kManifest:
      break;
  }
  Upstream* up = upstreams_->Select(route.ns);
  if (!up) {
    // Never used as an address: only configured upstreams are ever contacted.
    RespondOciError(ex, 404, "NAME_UNKNOWN", "registry '" + *route.ns + "' is not a configured upstream");
    return;
  }
  if (route.kind == oci::RouteKind::kManifest) {
    manifests_.Handle(up, UpstreamSet::UpstreamName(*up, route.name), route, ex);
  } else {
    HandleBlob(up, route, ex);
  }
}

void Service::HandleBlob(Upstream* up, const oci::Route& route, const std::shared_ptr<http::Exchange>& ex) {
  const util::Digest& digest = *route.digest;
  {
    auto txn = store_->BeginRead();
    if (!txn.ok()) {
      LOG_ERROR("cache: %s", txn.status().ToString().c_str());
      RespondOciError(ex, 503, "UNAVAILABLE", "cache unavailable");
      return;
    }
    // The index, not the store, says what may be served: a blob chosen for
    // eviction leaves the index at once, before the writer deletes it.
    cache::BlobInfo info;
    Status st = keeper_.Has(digest) ? store_->GetBlob(*txn, digest, &info) : Status::NotFound("");
    if (st.ok()) {
      keeper_.CountHit();
      BlobStream::ServeCached(store_, &keeper_, digest, info, ex);
      return;
    }
    if (!st.IsNotFound()) {
      LOG_ERROR("cache: blob %s: %s", digest.ToString().c_str(), st.ToString().c_str());
      RespondOciError(ex, 500, "UNKNOWN", "cache error");
      return;
    }
  }
  keeper_.CountMiss();
  auto existing = fills_.find(digest);
  if (existing != fills_.end() && existing->second->joinable()) {
    existing->second->Join(ex);
    return;
  }
  if (shutting_down_) {
    RespondOciError(ex, 503, "UNAVAILABLE", "shutting down");
    return;
  }
  BlobFill::Env env{store_, writer_, &keeper_, [this](const util::Digest& d, BlobFill* fill) {
                      auto it = fills_.find(d);
                      if (it != fills_.end() && it->second.get() == fill) fills_.erase(it);
                    }};
  // A fill of this digest that stopped storing takes no new clients, and may
  // still have chunks to discard: this client gets a fetch of its own that
  // never writes.
  bool may_store = existing == fills_.end();
  auto fill = std::make_shared<BlobFill>(std::move(env), digest, up->config.registry, may_store);
  if (may_store) fills_[digest] = fill;
  fill->Join(ex);
  std::string name = UpstreamSet::UpstreamName(*up, route.name);
  fill->Start(up->session.get(), "/v2/" + name + "/blobs/" + digest.ToString(), name);
}

void Service::Shutdown() {
  shutting_down_ = true;
  std::vector<std::shared_ptr<BlobFill>> fills;
  for (auto& [d, f] : fills_) fills.push_back(f);
  for (auto& f : fills) f->Cancel();
  fills_.clear();
  manifests_.Shutdown();
  upstreams_->Shutdown();
  scrubber_.Stop();
  keeper_.Stop();
}

}  // namespace registry
