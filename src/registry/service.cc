#include "src/registry/service.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "src/peering/cluster.h"
#include "src/registry/oci_errors.h"
#include "util/log.h"

namespace registry {

using util::Status;

Service::Service(io::Env env, const config::Config& cfg, std::unique_ptr<UpstreamSet> upstreams,
                 cache::Store* store, WriterBridge* writer, CacheKeeper* keeper,
                 peering::Cluster* cluster)
    : env_(env),
      own_budget_(cfg.registry.max_size),
      htpasswd_(cfg.registry.push_htpasswd),
      in_flight_(std::make_shared<InFlightBytes>(cfg.server.max_bytes_in_flight)),
      store_(store),
      writer_(writer),
      keeper_(keeper),
      cluster_(cluster),
      upstreams_(std::move(upstreams)),
      scrubber_(env.loop, store, keeper, cfg.cache.scrub_rate),
      manifests_(env, store, writer, cfg.server.max_manifest_bytes, in_flight_, cluster),
      parts_(env, cfg, store, writer, keeper, in_flight_, cluster) {}

util::Status Service::Start() {
  if (parts_.own.enabled()) {
    if (util::Status st = parts_.auth.Load(htpasswd_); !st.ok())
      return Status::InvalidArgument("registry.push_htpasswd: " + st.message());
    LOG_INFO("registry: serving own registry '%s' (%zu push user(s), pulls %s)",
             parts_.own.name().c_str(), parts_.auth.users(),
             parts_.auth.pull_requires_auth() ? "authenticated" : "anonymous");
  }
  if (util::Status st = parts_.tags.Restore(); !st.ok())
    LOG_ERROR("registry: could not restore the fleet state: %s", st.ToString().c_str());
  parts_.own.Start();
  parts_.replicator.Start();
  scrubber_.Start();
  return Status::Ok();
}

void Service::Learn(const peers::GossipNode::Learned& learned) {
  for (const peers::TagUpdate& u : learned.tags) LearnTag(u);
  for (const peers::TagUpdate& u : learned.withdrawn) Withdraw(u);
}

void Service::LearnTag(const peers::TagUpdate& u) {
  if (parts_.Learn(u)) return;
  // Fleet records of another registry (a node configured differently) are not ours to store.
  if (u.key.registry.rfind('/', 0) == 0) return;
  LOG_INFO("cluster: tag %s/%s:%s -> %s (from %s)", u.key.registry.c_str(),
           u.key.repository.c_str(), u.key.tag.c_str(), u.version.digest.ToString().c_str(),
           u.version.origin.c_str());
  // The origin node confirmed the tag at its HLC time: that is how fresh it is here too.
  WriteGossipedTag(u, std::min(env_.clock->WallMs(), u.version.hlc.wall_ms));
  if (Upstream* up = upstreams_->Select(u.key.registry))
    manifests_.Prefetch(up, u.key.repository, u.version.digest, u.version.origin);
}

void Service::Withdraw(const peers::TagUpdate& u) {
  if (u.key.registry.rfind('/', 0) == 0)
    return;  // replication records and reports: fleet state, kept
  if (parts_.own.enabled() && u.key.registry == parts_.own.name()) {
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
  // A path prefix may name the registry (runtimes that send no ns=).
  HandleRoute(
      oci::RouteRequest(req.method, req.target,
                        [this](std::string_view component) { return RegistryNamed(component); }),
      ex, peers::Hop::kClient);
}

void Service::HandlePeerContent(const std::shared_ptr<http::Exchange>& ex,
                                const std::string& oci_target, peers::Hop hop) {
  HandleRoute(oci::RouteRequest(ex->request().method, oci_target), ex, hop);
}

std::optional<std::string> Service::RegistryNamed(std::string_view component) {
  std::string name(component);
  if (parts_.own.enabled() && util::RegistryPathComponent(parts_.own.name()) == name)
    return parts_.own.name();
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
  if (parts_.own.Addresses(route)) {
    parts_.own.Handle(route, ex, hop);
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
    RespondOciError(
        ex, 405, "UNSUPPORTED",
        "'" + up->config.registry + "' is a mirrored upstream: it is read-only here" +
            (parts_.own.enabled() ? "; push to '" + parts_.own.name() + "'" : std::string()));
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
    parts_.fills.Serve(up, route, ex, hop);
  }
}

nlohmann::json Service::ContentStatsJson() const {
  const Fills::Stats& fs = parts_.fills.stats();
  return {{"upstream_blob_gets", fs.upstream_blob_gets},
          {"upstream_blob_heads", fs.upstream_blob_heads},
          {"fills_joined", fs.fills_joined},
          {"fills_resumed", fs.fills_resumed}};
}

nlohmann::json Service::StatusJson() {
  const cache::BlobIndex& index = keeper_->index();
  cache::Store::MapUse map = store_->Map();
  // Counts and bytes of the same sets: the cache's (evictable) blobs, and
  // the own registry's apart.
  nlohmann::json cache = {{"blobs", index.cached_count()},
                          {"bytes", index.stored_bytes()},
                          {"budget", keeper_->budget()},
                          {"hits", keeper_->hits()},
                          {"misses", keeper_->misses()},
                          {"evictions", keeper_->evictions()},
                          {"fills_in_flight", parts_.fills.running()},
                          {"map_used", map.used_bytes},
                          {"map_size", map.map_size}};
  if (parts_.own.enabled()) {
    cache["registry"] = parts_.own.name();
    cache["registry_bytes"] = keeper_->own_bytes();
    cache["registry_blobs"] = index.own_count();
    cache["registry_budget"] = own_budget_;
  }
  return {{"cache", cache},
          {"upstreams", upstreams_->StatusJson()},
          {"replications", parts_.replicator.ListJson()}};
}

void Service::Describe(util::Exposition* out) {
  using T = util::Exposition::Type;
  uint64_t waiters = manifests_.coalesced_waiters() + parts_.fills.waiters();
  const Fills::Stats& fs = parts_.fills.stats();
  out->Family("georeg_fills_in_flight", T::kGauge,
              "Blob fills running (each one fetch from a peer or an upstream).");
  out->Sample(double(parts_.fills.running()));
  out->Family("georeg_probes_in_flight", T::kGauge, "HEAD probes of blobs not held, running.");
  out->Sample(double(parts_.fills.probes()));
  out->Family("georeg_coalesced_waiters", T::kGauge,
              "Requests waiting on a blob fill or manifest fetch another request started.");
  out->Sample(double(waiters));
  out->Family("georeg_fills_resumed_total", T::kCounter,
              "Fills another source took over mid-body.");
  out->Sample(double(fs.fills_resumed));
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
  out->Sample({{"source", "cache"}}, double(keeper_->corruptions()));
  out->Sample({{"source", "peer"}}, double(fs.bad_blobs_peer + ms.bad_from_peer));
  out->Sample({{"source", "upstream"}}, double(fs.bad_blobs_upstream + ms.bad_from_upstream));
  const cache::BlobIndex& index = keeper_->index();
  out->Family("georeg_cache_bytes", T::kGauge, "Bytes of cached (evictable) blobs.");
  out->Sample(double(index.stored_bytes()));
  out->Family("georeg_cache_reserved_bytes", T::kGauge,
              "Bytes reserved by fills in flight against the budget.");
  out->Sample(double(index.committed_bytes() - index.stored_bytes()));
  out->Family("georeg_cache_budget_bytes", T::kGauge, "[cache] max_size: the cache's budget.");
  out->Sample(double(keeper_->budget()));
  out->Family("georeg_cache_blobs", T::kGauge, "Blobs held (cached and own).");
  out->Sample(double(index.count()));
  out->Family("georeg_cache_evictions_total", T::kCounter,
              "Blobs evicted to keep the cache within its budget.");
  out->Sample(double(keeper_->evictions()));
  out->Family("georeg_cache_lookups_total", T::kCounter, "Blob lookups in the cache, by result.");
  out->Sample({{"result", "hit"}}, double(keeper_->hits()));
  out->Sample({{"result", "miss"}}, double(keeper_->misses()));
  cache::Store::MapUse map = store_->Map();
  out->Family("georeg_lmdb_map_size_bytes", T::kGauge, "The LMDB map's size.");
  out->Sample(double(map.map_size));
  out->Family("georeg_lmdb_map_used_bytes", T::kGauge,
              "Bytes of the LMDB map in use (up to its last page).");
  out->Sample(double(map.used_bytes));
  if (parts_.own.enabled()) {
    const OwnRegistry::Stats& ps = parts_.own.stats();
    out->Family("georeg_registry_bytes", T::kGauge,
                "Bytes of the own registry's content held here (never evicted).");
    out->Sample(double(keeper_->own_bytes()));
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
    out->Sample(double(parts_.own.uploads().open()));
  }
  upstreams_->Describe(out);
  parts_.replicator.Describe(out);
}

void Service::Shutdown() {
  manifests_.Shutdown();
  parts_.Stop();
  upstreams_->Shutdown();
  scrubber_.Stop();
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
