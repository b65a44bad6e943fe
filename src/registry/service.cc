#include "src/registry/service.h"

#include <algorithm>

#include "util/log.h"

namespace registry {

using util::Status;

Service::Service(io::Env env, const config::Config& cfg, std::unique_ptr<UpstreamSet> upstreams, cache::Store* store,
                 WriterBridge* writer)
    : env_(env),
      max_fills_(cfg.server.max_fills),
      in_flight_(std::make_shared<InFlightBytes>(cfg.server.max_bytes_in_flight)),
      store_(store),
      writer_(writer),
      upstreams_(std::move(upstreams)),
      keeper_(env, cfg.cache, store, writer),
      scrubber_(env.loop, store, &keeper_, cfg.cache.scrub_rate),
      manifests_(env, store, writer, cfg.server.max_manifest_bytes, in_flight_) {}

util::Status Service::Start() {
  util::Status st = keeper_.Start();
  if (st.ok()) scrubber_.Start();
  return st;
}

void Service::AttachCluster(peering::Cluster* cluster) {
  cluster_ = cluster;
  manifests_.SetCluster(cluster);
  cluster->SetTagListener([this](const peers::TagUpdate& u) {
    LOG_INFO("cluster: tag %s/%s:%s -> %s (from %s)", u.key.registry.c_str(), u.key.repository.c_str(),
             u.key.tag.c_str(), u.version.digest.ToString().c_str(), u.version.origin.c_str());
    // The origin node confirmed the tag at its HLC time: that is how fresh it is here too.
    WriteGossipedTag(u, std::min(env_.clock->WallMs(), u.version.hlc.wall_ms));
  });
  cluster->SetWithdrawListener([this](const peers::TagUpdate& u) {
    LOG_WARN("cluster: tag %s/%s:%s withdrawn (its origin %s was removed)", u.key.registry.c_str(),
             u.key.repository.c_str(), u.key.tag.c_str(), u.version.origin.c_str());
    // Confirmed at time 0: no longer believed, so the next pull revalidates
    // it at the upstream (and it is never served stale).
    WriteGossipedTag(u, 0);
  });
}

void Service::WriteGossipedTag(const peers::TagUpdate& u, uint64_t confirmed_ms) {
  cache::TagInfo info{u.version.digest, confirmed_ms};
  cache::Store* store = store_;
  writer_->Run([store, u, info] { return store->PutTag(u.key.registry, u.key.repository, u.key.tag, info); },
               [](Status st) {
                 if (!st.ok()) LOG_WARN("cluster: could not record a gossiped tag: %s", st.ToString().c_str());
               });
}

void Service::Handle(const std::shared_ptr<http::Exchange>& ex) {
  const http::Request& req = ex->request();
  if (req.target.rfind("/_georeg/", 0) == 0) {
    if (!cluster_) {
      RespondOciError(ex, 404, "UNSUPPORTED", "this node is not in a cluster");
      return;
    }
    cluster_->Handle(ex, [this](const std::shared_ptr<http::Exchange>& ex, const std::string& target, peers::Hop hop) {
      HandleRoute(oci::RouteRequest(ex->request().method, target), ex, hop);
    });
    return;
  }
  HandleRoute(oci::RouteRequest(req.method, req.target), ex, peers::Hop::kClient);
}

void Service::HandleRoute(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex, peers::Hop hop) {
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
    manifests_.Handle(up, UpstreamSet::UpstreamName(*up, route.name), route, ex, hop);
  } else {
    HandleBlob(up, route, ex, hop);
  }
}

std::vector<FillSource> Service::BlobSources(Upstream* up, const oci::Route& route, peers::Hop hop) {
  std::vector<FillSource> sources;
  const util::Digest& digest = *route.digest;
  std::string name = UpstreamSet::UpstreamName(*up, route.name);
  if (cluster_) {
    std::string target = "/v2/" + name + "/blobs/" + digest.ToString() + "?ns=" + up->config.registry;
    for (const peers::PeerStep& step : cluster_->Plan(digest, hop, /*blob=*/true)) {
      peering::Cluster* cluster = cluster_;
      sources.push_back({"peer " + step.name, step.name, [cluster, step, target](upstream::Callbacks cb) {
                           return std::shared_ptr<upstream::InFlight>(cluster->Get(step, target, std::move(cb)));
                         }});
    }
  }
  if (hop != peers::Hop::kPeer) {
    upstream::Requester* requester = up->requester;
    std::string path = "/v2/" + name + "/blobs/" + digest.ToString();
    sources.push_back({"upstream " + up->config.registry, "", [requester, path, name](upstream::Callbacks cb) {
                         return requester->Send("GET", path, {}, name, std::move(cb), {});
                       }});
  }
  return sources;
}

void Service::HandleBlob(Upstream* up, const oci::Route& route, const std::shared_ptr<http::Exchange>& ex,
                         peers::Hop hop) {
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
      BlobStream::ServeCached(store_, &keeper_, digest, info, ex, env_.clock->WallMs());
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
  if (fills_.size() >= max_fills_) {
    unsigned long long count = 0;
    if (fills_log_.Note(env_.clock->NowMs(), &count))
      LOG_WARN("fill: %llu miss(es) refused in the last minute: %zu fills running (server.max_fills)", count,
               fills_.size());
    RespondOciError(ex, 503, "UNAVAILABLE", "too many blob fills in progress; retry shortly");
    return;
  }
  if (!in_flight_->Admit()) {
    unsigned long long count = 0;
    if (busy_log_.Note(env_.clock->NowMs(), &count))
      LOG_WARN("fill: %llu miss(es) refused in the last minute: %llu bytes in flight (server.max_bytes_in_flight %llu)",
               count, (unsigned long long)in_flight_->held(), (unsigned long long)in_flight_->limit());
    RespondOciError(ex, 503, "UNAVAILABLE", "too many bytes in flight; retry shortly");
    return;
  }
  std::vector<FillSource> sources = BlobSources(up, route, hop);
  if (sources.empty()) {  // a peer asked, and we do not have it
    RespondOciError(ex, 404, "BLOB_UNKNOWN", "blob not cached on this node");
    return;
  }
  BlobFill::Env env{env_.clock, store_, writer_, &keeper_, in_flight_,
                    [this](const util::Digest& d, BlobFill* fill) {
                      auto it = fills_.find(d);
                      if (it != fills_.end() && it->second.get() == fill) fills_.erase(it);
                    },
                    [this](const std::string& peer, const std::string& why, bool corrupt) {
                      if (cluster_) cluster_->ReportFailure(peer, why, corrupt);
                    }};
  // A fill of this digest that stopped storing takes no new clients, and may
  // still have chunks to discard: this client gets a fetch of its own that
  // never writes.
  bool may_store = existing == fills_.end();
  auto fill = std::make_shared<BlobFill>(std::move(env), digest, may_store);
  if (may_store) fills_[digest] = fill;
  fill->Join(ex);
  fill->Start(std::move(sources));
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
