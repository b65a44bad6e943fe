#include "src/registry/service.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "util/log.h"

namespace registry {

using util::Status;

namespace {

std::vector<http::Header> RangeFrom(uint64_t offset) {
  if (offset == 0) return {};
  return {{"Range", "bytes=" + std::to_string(offset) + "-"}};
}

}  // namespace

Service::Service(io::Env env, const config::Config& cfg, std::unique_ptr<UpstreamSet> upstreams,
                 cache::Store* store, WriterBridge* writer)
    : env_(env),
      max_fills_(cfg.server.max_fills),
      own_budget_(cfg.registry.max_size),
      in_flight_(std::make_shared<InFlightBytes>(cfg.server.max_bytes_in_flight)),
      store_(store),
      writer_(writer),
      upstreams_(std::move(upstreams)),
      keeper_(env, cfg.cache, store, writer),
      scrubber_(env.loop, store, &keeper_, cfg.cache.scrub_rate),
      manifests_(env, store, writer, cfg.server.max_manifest_bytes, in_flight_),
      own_(env, cfg, store, writer, &keeper_),
      replicator_(env, cfg, store, &own_) {
  own_.SetBlobHandler([this](const oci::Route& route, const std::shared_ptr<http::Exchange>& ex,
                             peers::Hop hop) { HandleBlob(nullptr, route, ex, hop); });
  own_.SetBlobHolder([this](const util::Digest& d, const std::string& repo,
                            std::vector<std::string> holders, std::function<void(Status)> done) {
    HoldBlob(d, repo, std::move(holders), std::move(done));
  });
}

void Service::HoldBlob(const util::Digest& d, const std::string& repo,
                       std::vector<std::string> holders, std::function<void(Status)> done) {
  // Once the blob is here: own content, never evicted.
  auto adopt = [this, d, done] {
    const cache::BlobIndex::Entry* e = keeper_.index().Find(d);
    if (!e) return done(Status::NotFound("blob " + d.ToString() + " could not be fetched"));
    if (e->own) return done(Status::Ok());
    // A replica counts against the registry's budget like a push (it stays
    // here as ordinary, evictable cache when it does not fit).
    if (keeper_.own_bytes() + e->size > own_budget_)
      return done(
          Status::ResourceExhausted("[registry] max_size would be exceeded by " + d.ToString()));
    keeper_.AddOwn(d, e->size, env_.clock->WallMs());
    cache::Store* store = store_;
    writer_->Run([store, d] { return store->SetBlobOwn(d, true); }, done);
  };
  if (keeper_.Has(d)) {
    env_.deferred->Post(adopt);
    return;
  }
  own_.NoteHolders(d, holders);
  fill_waiters_[d].push_back(adopt);
  auto existing = fills_.find(d);
  if (existing != fills_.end() && existing->second.fill->joinable())
    return;  // its end calls the waiters
  if (shutting_down_ || !cluster_) {
    env_.deferred->Post([this, d] { WakeFillWaiters(d); });
    return;
  }
  oci::Route route;
  route.kind = oci::RouteKind::kBlob;
  route.name = repo;
  route.digest = d;
  // Planned as a client's request here: the holders first, then the owners
  // a client's HEAD or GET would ask (a push whose blobs a HEAD found on a
  // peer, as mirror cache, finds them the same way at its manifest PUT).
  peers::RoutePlan plan = PlanBlob(nullptr, d, peers::Hop::kClient);
  if (plan.steps.empty()) {
    env_.deferred->Post([this, d] { WakeFillWaiters(d); });
    return;
  }
  auto fill = std::make_shared<BlobFill>(FillEnv(), d, /*may_store=*/true);
  fills_[d] = {fill, plan.role};
  fill->Start(BlobSources(nullptr, route, plan));
}

void Service::WakeFillWaiters(const util::Digest& d) {
  auto it = fill_waiters_.find(d);
  if (it == fill_waiters_.end()) return;
  auto waiters = std::move(it->second);
  fill_waiters_.erase(it);
  for (auto& w : waiters) w();
}

BlobFill::Env Service::FillEnv() {
  return BlobFill::Env{env_.clock,
                       store_,
                       writer_,
                       &keeper_,
                       in_flight_,
                       [this](const util::Digest& d, BlobFill* fill) {
                         auto it = fills_.find(d);
                         if (it != fills_.end() && it->second.fill.get() == fill) fills_.erase(it);
                         // Not from inside the fill: on a later turn.
                         if (fill_waiters_.count(d))
                           env_.deferred->Post([this, d] { WakeFillWaiters(d); });
                       },
                       [this](const std::string& peer, const std::string& why, bool corrupt) {
                         if (cluster_) cluster_->ReportFailure(peer, why, corrupt);
                       },
                       [this] { ++stats_.fills_resumed; },
                       [this](bool from_peer) {
                         ++(from_peer ? stats_.bad_blobs_peer : stats_.bad_blobs_upstream);
                       }};
}

util::Status Service::Start() {
  util::Status st = keeper_.Start();
  if (st.ok()) st = own_.Start();
  if (st.ok()) scrubber_.Start();
  return st;
}

void Service::AttachCluster(peering::Cluster* cluster) {
  cluster_ = cluster;
  manifests_.SetCluster(cluster);
  if (util::Status st = own_.SetCluster(cluster); !st.ok())
    LOG_ERROR("registry: could not restore the fleet state: %s", st.ToString().c_str());
  cluster->SetHoldHandler(
      [this](const std::shared_ptr<http::Exchange>& ex, const std::string& target,
             const std::string& sender) { own_.ServeHold(ex, target, sender); });
  replicator_.Attach(cluster);
  cluster->SetTagListener([this](const peers::TagUpdate& u) {
    if (own_.OwnsRecord(u.key)) {
      if (u.key.registry != own_.name()) return replicator_.Apply(u);
      LOG_INFO("cluster: own tag %s:%s -> %s (from %s)", u.key.repository.c_str(),
               u.key.tag.c_str(), u.version.digest.ToString().c_str(), u.version.origin.c_str());
      own_.ApplyGossipedTag(u);
      return;
    }
    // Fleet records of another registry (a node configured differently) are not ours to store.
    if (u.key.registry.rfind('/', 0) == 0) return;
    LOG_INFO("cluster: tag %s/%s:%s -> %s (from %s)", u.key.registry.c_str(),
             u.key.repository.c_str(), u.key.tag.c_str(), u.version.digest.ToString().c_str(),
             u.version.origin.c_str());
    // The origin node confirmed the tag at its HLC time: that is how fresh it is here too.
    WriteGossipedTag(u, std::min(env_.clock->WallMs(), u.version.hlc.wall_ms));
    if (Upstream* up = upstreams_->Select(u.key.registry))
      manifests_.Prefetch(up, u.key.repository, u.version.digest, u.version.origin);
  });
  cluster->SetWithdrawListener([this](const peers::TagUpdate& u) {
    if (u.key.registry.rfind('/', 0) == 0)
      return;  // replication records and reports: fleet state, kept
    if (own_.enabled() && u.key.registry == own_.name()) {
      // A pushed image is not the pusher's to take back: the tag stays
      // stored here (docs/replication.md).
      LOG_WARN("cluster: own tag %s:%s was set by removed node %s; kept", u.key.repository.c_str(),
               u.key.tag.c_str(), u.version.origin.c_str());
      return;
    }
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
  writer_->Run(
      [store, u, info] { return store->PutTag(u.key.registry, u.key.repository, u.key.tag, info); },
      [](Status st) {
        if (!st.ok())
          LOG_WARN("cluster: could not record a gossiped tag: %s", st.ToString().c_str());
      });
}

void Service::Handle(const std::shared_ptr<http::Exchange>& ex) {
  const http::Request& req = ex->request();
  if (req.target.rfind(Replicator::kPrefix, 0) == 0) {
    ex->outcome().kind = "api";
    replicator_.Handle(ex);
    return;
  }
  if (req.target.rfind("/_georeg/", 0) == 0) {
    ex->outcome().kind = "gossip";  // messages, summaries, holds; content requests below
    if (!cluster_) {
      RespondOciError(ex, 404, "UNSUPPORTED", "this node is not in a cluster");
      return;
    }
    cluster_->Handle(ex, [this](const std::shared_ptr<http::Exchange>& ex,
                                const std::string& target, peers::Hop hop) {
      ex->outcome().kind = "peer";
      HandleRoute(oci::RouteRequest(ex->request().method, target), ex, hop);
    });
    return;
  }
  // A path prefix may name the registry (runtimes that send no ns=).
  HandleRoute(
      oci::RouteRequest(req.method, req.target,
                        [this](std::string_view component) { return RegistryNamed(component); }),
      ex, peers::Hop::kClient);
}

std::optional<std::string> Service::RegistryNamed(std::string_view component) {
  std::string name(component);
  if (own_.enabled() && util::RegistryPathComponent(own_.name()) == name) return own_.name();
  // As written, then (a port) with the last '_' as the ':' it stands for.
  std::vector<std::string> candidates = {name};
  if (size_t u = name.rfind('_'); u != std::string::npos)
    candidates.push_back(name.substr(0, u) + ":" + name.substr(u + 1));
  for (const std::string& c : candidates) {
    if (c.find('_') != std::string::npos) continue;  // never a host name
    if (Upstream* up = upstreams_->Select(std::optional<std::string>(c)))
      return up->config.registry;
  }
  return std::nullopt;
}

void Service::HandleRoute(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex,
                          peers::Hop hop) {
  if (hop == peers::Hop::kClient) ex->outcome().kind = oci::KindLabel(route.kind);
  if (route.kind == oci::RouteKind::kHealth) {
    ex->Respond(200, {{"Content-Type", "text/plain"}}, "ok\n");
    return;
  }
  if (route.kind == oci::RouteKind::kError) {
    RespondOciError(ex, route.status, oci::ErrorCodeName(route.error), route.message);
    return;
  }
  if (own_.Addresses(route)) {
    own_.Handle(route, ex, hop);
    return;
  }
  if (route.kind == oci::RouteKind::kBase) {
    auto headers = BaseHeaders();
    headers.push_back({"Content-Type", "application/json"});
    ex->Respond(200, headers, "{}");
    return;
  }
  Upstream* up = upstreams_->Select(route.ns);
  if (!up) {
    // Never used as an address: only configured upstreams are ever contacted.
    RespondOciError(ex, 404, "NAME_UNKNOWN",
                    route.ns ? "registry '" + *route.ns + "' is not a configured upstream"
                             : "no default upstream: name the registry with ?ns=");
    return;
  }
  if (oci::IsWrite(route.kind)) {
    RespondOciError(ex, 405, "UNSUPPORTED",
                    "'" + up->config.registry + "' is a mirrored upstream: it is read-only here" +
                        (own_.enabled() ? "; push to '" + own_.name() + "'" : std::string()));
    return;
  }
  if (route.kind == oci::RouteKind::kTagsList) return ProxyTagsList(up, route, ex);
  if (route.kind == oci::RouteKind::kReferrers) {
    RespondOciError(ex, 404, "UNSUPPORTED", "referrers are not served for mirrored upstreams yet");
    return;
  }
  if (route.kind == oci::RouteKind::kManifest) {
    manifests_.Handle(up, UpstreamSet::UpstreamName(*up, route.name), route, ex, hop);
  } else {
    HandleBlob(up, route, ex, hop);
  }
}

peers::RoutePlan Service::PlanBlob(Upstream* up, const util::Digest& digest, peers::Hop hop) const {
  peers::RoutePlan plan;
  if (cluster_) {
    // The own registry's blobs: its holders first (they have it), then the
    // owners, as for any blob, but never an upstream.
    plan = cluster_->Plan(
        digest, hop, /*blob=*/true,
        !up || up->config.fleet_single_flight ? peers::Scope::kFleet : peers::Scope::kRegion,
        up ? std::vector<std::string>{} : own_.HoldersOf(digest));
  } else {
    plan.role = hop;
    plan.upstream = hop != peers::Hop::kPeer;
  }
  plan.upstream = plan.upstream && up != nullptr;
  return plan;
}

std::vector<FillSource> Service::BlobSources(Upstream* up, const oci::Route& route,
                                             const peers::RoutePlan& plan) {
  std::vector<FillSource> sources;
  const util::Digest& digest = *route.digest;
  std::string name = up ? UpstreamSet::UpstreamName(*up, route.name) : route.name;
  std::string target = "/v2/" + name + "/blobs/" + digest.ToString() +
                       "?ns=" + (up ? up->config.registry : own_.name());
  for (const peers::PeerStep& step : plan.steps) {
    peering::Cluster* cluster = cluster_;
    sources.push_back({"peer " + step.name, step.name,
                       [cluster, step, target](const SourceRequest& r, upstream::Callbacks cb) {
                         return std::shared_ptr<upstream::InFlight>(cluster->Send(
                             step, r.method, target, RangeFrom(r.offset), std::move(cb)));
                       }});
  }
  if (plan.upstream && up) {
    upstream::Requester* requester = up->requester;
    std::string path = "/v2/" + name + "/blobs/" + digest.ToString();
    ContentStats* stats = &stats_;
    sources.push_back(
        {"upstream " + up->config.registry, "",
         [requester, path, name, stats](const SourceRequest& r, upstream::Callbacks cb) {
           ++(std::string_view(r.method) == "HEAD" ? stats->upstream_blob_heads
                                                   : stats->upstream_blob_gets);
           return requester->Send(r.method, path, RangeFrom(r.offset), name, std::move(cb), {});
         }});
  }
  return sources;
}

void Service::HandleBlob(Upstream* up, const oci::Route& route,
                         const std::shared_ptr<http::Exchange>& ex, peers::Hop hop) {
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
      ex->outcome().result = "hit";
      ex->outcome().source = "cache";
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
  if (existing != fills_.end() && existing->second.fill->joinable()) {
    // A fill joins only requests that sit no higher in the hop order than
    // its own role (peers/routing.h): waits then only go up, and two nodes
    // that disagree about an owner answer each other 404 instead of
    // waiting on each other.
    if (hop > existing->second.role) {
      RespondOciError(ex, 404, "BLOB_UNKNOWN",
                      "blob not cached on this node (it is filling it as a client)");
      return;
    }
    ++stats_.fills_joined;
    ex->outcome().result = "coalesced";
    existing->second.fill->Join(ex);
    return;
  }
  if (shutting_down_) {
    RespondOciError(ex, 503, "UNAVAILABLE", "shutting down");
    return;
  }
  peers::RoutePlan plan = PlanBlob(up, digest, hop);
  if (plan.steps.empty() &&
      !plan.upstream) {  // a peer asked and we do not have it, or no node has it
    RespondOciError(ex, 404, "BLOB_UNKNOWN",
                    up ? "blob not cached on this node" : "blob unknown to registry");
    return;
  }
  if (fills_.size() + probes_.size() >= max_fills_) {
    unsigned long long count = 0;
    if (fills_log_.Note(env_.clock->NowMs(), &count))
      LOG_WARN(
          "fill: %llu miss(es) refused in the last minute: %zu fills and %zu HEAD probes running "
          "(server.max_fills)",
          count, fills_.size(), probes_.size());
    RespondOciError(ex, 503, "UNAVAILABLE", "too many blob fills in progress; retry shortly");
    return;
  }
  ex->outcome().result = "miss";
  if (ex->is_head()) return Probe(up, route, ex, plan);
  if (!in_flight_->Admit()) {
    unsigned long long count = 0;
    if (busy_log_.Note(env_.clock->NowMs(), &count))
      LOG_WARN(
          "fill: %llu miss(es) refused in the last minute: %llu bytes in flight "
          "(server.max_bytes_in_flight %llu)",
          count, (unsigned long long)in_flight_->held(), (unsigned long long)in_flight_->limit());
    RespondOciError(ex, 503, "UNAVAILABLE", "too many bytes in flight; retry shortly");
    return;
  }
  BlobFill::Env env = FillEnv();
  // A fill of this digest that stopped storing takes no new clients, and may
  // still have chunks to discard: this client gets a fetch of its own that
  // never writes.
  bool may_store = existing == fills_.end();
  auto fill = std::make_shared<BlobFill>(std::move(env), digest, may_store);
  if (may_store) fills_[digest] = {fill, plan.role};
  fill->Join(ex);
  fill->Start(BlobSources(up, route, plan));
}

void Service::Probe(Upstream* up, const oci::Route& route,
                    const std::shared_ptr<http::Exchange>& ex, const peers::RoutePlan& plan) {
  // Keyed by role as well: a probe waits only on requests of a higher hop,
  // which join probes of a higher role (the argument for fills, above).
  std::string key = route.digest->ToString() + " " + peers::HopName(plan.role);
  auto it = probes_.find(key);
  if (it == probes_.end()) {
    auto probe = std::make_shared<BlobProbe>(*route.digest, [this, key](BlobProbe* p) {
      auto it = probes_.find(key);
      if (it != probes_.end() && it->second.get() == p) probes_.erase(it);
    });
    it = probes_.emplace(key, probe).first;
    probe->Join(ex);
    probe->Start(BlobSources(up, route, plan));
    return;
  }
  it->second->Join(ex);
}

nlohmann::json Service::ContentStatsJson() const {
  return {{"upstream_blob_gets", stats_.upstream_blob_gets},
          {"upstream_blob_heads", stats_.upstream_blob_heads},
          {"fills_joined", stats_.fills_joined},
          {"fills_resumed", stats_.fills_resumed}};
}

nlohmann::json Service::StatusJson() {
  const cache::BlobIndex& index = keeper_.index();
  cache::Store::MapUse map = store_->Map();
  // Counts and bytes of the same sets: the cache's (evictable) blobs, and
  // the own registry's apart.
  nlohmann::json cache = {{"blobs", index.cached_count()},    {"bytes", index.stored_bytes()},
                          {"budget", keeper_.budget()},       {"hits", keeper_.hits()},
                          {"misses", keeper_.misses()},       {"evictions", keeper_.evictions()},
                          {"fills_in_flight", fills_.size()}, {"map_used", map.used_bytes},
                          {"map_size", map.map_size}};
  if (own_.enabled()) {
    cache["registry"] = own_.name();
    cache["registry_bytes"] = keeper_.own_bytes();
    cache["registry_blobs"] = index.own_count();
    cache["registry_budget"] = own_budget_;
  }
  return {{"cache", cache},
          {"upstreams", upstreams_->StatusJson()},
          {"replications", replicator_.ListJson()}};
}

void Service::Describe(util::Exposition* out) {
  using T = util::Exposition::Type;
  uint64_t waiters = manifests_.coalesced_waiters();
  for (const auto& [d, f] : fills_) waiters += f.fill->clients() > 0 ? f.fill->clients() - 1 : 0;
  out->Family("georeg_fills_in_flight", T::kGauge,
              "Blob fills running (each one fetch from a peer or an upstream).");
  out->Sample(double(fills_.size()));
  out->Family("georeg_probes_in_flight", T::kGauge, "HEAD probes of blobs not held, running.");
  out->Sample(double(probes_.size()));
  out->Family("georeg_coalesced_waiters", T::kGauge,
              "Requests waiting on a blob fill or manifest fetch another request started.");
  out->Sample(double(waiters));
  out->Family("georeg_fills_resumed_total", T::kCounter,
              "Fills another source took over mid-body.");
  out->Sample(double(stats_.fills_resumed));
  out->Family("georeg_bytes_in_flight", T::kGauge,
              "Fill chunks and manifest bodies held in memory.");
  out->Sample(double(in_flight_->held()));
  out->Family("georeg_bytes_in_flight_limit", T::kGauge, "[server] max_bytes_in_flight.");
  out->Sample(double(in_flight_->limit()));
  const ManifestResolver::Stats& ms = manifests_.stats();
  out->Family(
      "georeg_verification_failures_total", T::kCounter,
      "Blobs and manifests whose bytes failed their digest, by source (peer, upstream, or cache: "
      "found corrupt on disk by a read or the scrubber).");
  out->Sample({{"source", "cache"}}, double(keeper_.corruptions()));
  out->Sample({{"source", "peer"}}, double(stats_.bad_blobs_peer + ms.bad_from_peer));
  out->Sample({{"source", "upstream"}}, double(stats_.bad_blobs_upstream + ms.bad_from_upstream));
  const cache::BlobIndex& index = keeper_.index();
  out->Family("georeg_cache_bytes", T::kGauge, "Bytes of cached (evictable) blobs.");
  out->Sample(double(index.stored_bytes()));
  out->Family("georeg_cache_reserved_bytes", T::kGauge,
              "Bytes reserved by fills in flight against the budget.");
  out->Sample(double(index.committed_bytes() - index.stored_bytes()));
  out->Family("georeg_cache_budget_bytes", T::kGauge, "[cache] max_size: the cache's budget.");
  out->Sample(double(keeper_.budget()));
  out->Family("georeg_cache_blobs", T::kGauge, "Blobs held (cached and own).");
  out->Sample(double(index.count()));
  out->Family("georeg_cache_evictions_total", T::kCounter,
              "Blobs evicted to keep the cache within its budget.");
  out->Sample(double(keeper_.evictions()));
  out->Family("georeg_cache_lookups_total", T::kCounter, "Blob lookups in the cache, by result.");
  out->Sample({{"result", "hit"}}, double(keeper_.hits()));
  out->Sample({{"result", "miss"}}, double(keeper_.misses()));
  cache::Store::MapUse map = store_->Map();
  out->Family("georeg_lmdb_map_size_bytes", T::kGauge, "The LMDB map's size.");
  out->Sample(double(map.map_size));
  out->Family("georeg_lmdb_map_used_bytes", T::kGauge,
              "Bytes of the LMDB map in use (up to its last page).");
  out->Sample(double(map.used_bytes));
  if (own_.enabled()) {
    const OwnRegistry::Stats& ps = own_.stats();
    out->Family("georeg_registry_bytes", T::kGauge,
                "Bytes of the own registry's content held here (never evicted).");
    out->Sample(double(keeper_.own_bytes()));
    out->Family("georeg_registry_budget_bytes", T::kGauge, "[registry] max_size.");
    out->Sample(double(own_budget_));
    out->Family("georeg_pushes_total", T::kCounter,
                "Pushes to the own registry accepted here, by what was pushed.");
    out->Sample({{"kind", "blob"}}, double(ps.blobs_pushed));
    out->Sample({{"kind", "manifest"}}, double(ps.manifests_pushed));
    out->Sample({{"kind", "mount"}}, double(ps.mounts));
    out->Family("georeg_push_digest_mismatches_total", T::kCounter,
                "Pushed blobs whose bytes did not match the digest the client named (refused).");
    out->Sample(double(ps.digest_mismatches));
    out->Family("georeg_uploads_open", T::kGauge, "Blob uploads in progress on this node.");
    out->Sample(double(own_.uploads().open()));
  }
  upstreams_->Describe(out);
  replicator_.Describe(out);
}

void Service::Shutdown() {
  shutting_down_ = true;
  std::vector<std::shared_ptr<BlobFill>> fills;
  for (auto& [d, f] : fills_) fills.push_back(f.fill);
  for (auto& f : fills) f->Cancel();
  fills_.clear();
  std::vector<std::shared_ptr<BlobProbe>> probes;
  for (auto& [k, p] : probes_) probes.push_back(p);
  for (auto& p : probes) p->Cancel();
  probes_.clear();
  manifests_.Shutdown();
  own_.Stop();
  replicator_.Stop();
  upstreams_->Shutdown();
  scrubber_.Stop();
  keeper_.Stop();
}

void Service::ProxyTagsList(Upstream* up, const oci::Route& route,
                            const std::shared_ptr<http::Exchange>& ex) {
  if (proxied_ >= kMaxProxied) {
    RespondOciError(ex, 503, "TOOMANYREQUESTS", "too many tag listings in flight; retry");
    return;
  }
  std::string name = UpstreamSet::UpstreamName(*up, route.name);
  std::string query;
  if (route.n) query += "n=" + std::to_string(*route.n);
  if (!route.last.empty()) query += std::string(query.empty() ? "" : "&") + "last=" + route.last;
  std::string path = "/v2/" + name + "/tags/list" + (query.empty() ? "" : "?" + query);
  struct Answer {
    int status = 0;
    std::string body;
    bool next = false;
    std::shared_ptr<upstream::InFlight> request;  // kept until it completes (dropping it cancels)
  };
  auto a = std::make_shared<Answer>();
  upstream::Callbacks cb;
  cb.on_head = [a](const upstream::ResponseHead& h) {
    a->status = h.status;
    const std::string* link = h.Find("link");
    a->next = link && link->find("rel=\"next\"") != std::string::npos;
  };
  cb.on_body = [a](const char* d, size_t n) { a->body.append(d, n); };
  ++proxied_;
  std::string registry = up->config.registry;
  auto keep = route;
  cb.on_complete = life_.Guard([this, a, ex, keep, registry](util::Status st) {
    --proxied_;
    a->request.reset();  // the callback no longer needs it: breaks the cycle
    if (!ex->active()) return;
    if (!st.ok()) {
      RespondOciError(ex, 502, "UNAVAILABLE", "upstream " + registry + ": " + st.message());
      return;
    }
    auto j = nlohmann::json::parse(a->body, nullptr, /*allow_exceptions=*/false);
    if (a->status != 200 || !j.is_object()) {
      bool oci_error = j.is_object() && j.contains("errors");
      if (oci_error && a->status >= 400 && a->status < 500) {
        ex->Respond(a->status, {{"Content-Type", "application/json"}}, a->body);
      } else {
        RespondOciError(ex, 502, "UNAVAILABLE",
                        "upstream " + registry + " answered " + std::to_string(a->status) +
                            " for the tag list");
      }
      return;
    }
    std::vector<http::Header> headers = BaseHeaders();
    headers.push_back({"Content-Type", "application/json"});
    // The next page, in this mirror's terms (the client's name, our ns=).
    auto tags = j.find("tags");
    if (a->next && tags != j.end() && tags->is_array() && !tags->empty() &&
        tags->back().is_string()) {
      std::string n = keep.n ? "n=" + std::to_string(*keep.n) + "&" : "";
      headers.push_back({"Link", "</v2/" + keep.name + "/tags/list?" + n +
                                     "last=" + tags->back().get<std::string>() + "&ns=" + registry +
                                     ">; rel=\"next\""});
    }
    ex->Respond(200, headers, a->body);
  });
  upstream::FetchOptions opts;
  opts.max_body = kMaxTagListBytes;
  opts.deadline_ms = 30'000;
  a->request =
      up->requester->Send("GET", path, {{"Accept", "application/json"}}, name, std::move(cb), opts);
}

}  // namespace registry
