#include "src/registry/fills.h"

#include <string_view>
#include <utility>

#include "src/peering/fleet.h"
#include "src/registry/blob_stream.h"
#include "src/registry/oci_errors.h"

namespace registry {

using util::Status;

namespace {

std::vector<http::Header> RangeFrom(uint64_t offset) {
  if (offset == 0) return {};
  return {{"Range", "bytes=" + std::to_string(offset) + "-"}};
}

}  // namespace

Fills::Fills(Deps deps, std::string own_registry, uint64_t max_fills)
    : deps_(std::move(deps)), own_registry_(std::move(own_registry)), max_fills_(max_fills) {}

void Fills::Serve(Upstream* up, const oci::Route& route, const std::shared_ptr<http::Exchange>& ex,
                  peers::Hop hop) {
  const util::Digest& digest = *route.digest;
  {
    auto txn = deps_.store->BeginRead();
    if (!txn.ok()) {
      LOG_ERROR("cache: %s", txn.status().ToString().c_str());
      RespondOciError(ex, 503, "UNAVAILABLE", "cache unavailable");
      return;
    }
    // The index, not the store, says what may be served: a blob chosen for
    // eviction leaves the index at once, before the writer deletes it.
    cache::BlobInfo info;
    Status st = deps_.keeper->Has(digest) ? deps_.store->GetBlob(*txn, digest, &info)
                                          : Status::NotFound("");
    if (st.ok()) {
      deps_.keeper->CountHit();
      ex->outcome().result = "hit";
      ex->outcome().source = "cache";
      BlobStream::ServeCached(deps_.store, deps_.keeper, digest, info, ex,
                              deps_.env.clock->WallMs());
      return;
    }
    if (!st.IsNotFound()) {
      LOG_ERROR("cache: blob %s: %s", digest.ToString().c_str(), st.ToString().c_str());
      RespondOciError(ex, 500, "UNKNOWN", "cache error");
      return;
    }
  }
  deps_.keeper->CountMiss();
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
  peers::RoutePlan plan = Plan(up, digest, hop);
  if (plan.steps.empty() &&
      !plan.upstream) {  // a peer asked and we do not have it, or no node has it
    RespondOciError(ex, 404, "BLOB_UNKNOWN",
                    up ? "blob not cached on this node" : "blob unknown to registry");
    return;
  }
  if (fills_.size() + probes_.size() >= max_fills_) {
    unsigned long long count = 0;
    if (fills_log_.Note(deps_.env.clock->NowMs(), &count))
      LOG_WARN(
          "fill: %llu miss(es) refused in the last minute: %zu fills and %zu HEAD probes running "
          "(server.max_fills)",
          count, fills_.size(), probes_.size());
    RespondOciError(ex, 503, "UNAVAILABLE", "too many blob fills in progress; retry shortly");
    return;
  }
  ex->outcome().result = "miss";
  if (ex->is_head()) return Probe(up, route, plan, [&ex](BlobProbe* p) { p->Join(ex); });
  if (!deps_.in_flight->Admit()) {
    unsigned long long count = 0;
    if (busy_log_.Note(deps_.env.clock->NowMs(), &count))
      LOG_WARN(
          "fill: %llu miss(es) refused in the last minute: %llu bytes in flight "
          "(server.max_bytes_in_flight %llu)",
          count, (unsigned long long)deps_.in_flight->held(),
          (unsigned long long)deps_.in_flight->limit());
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
  fill->Start(Sources(up, route, plan));
}

void Fills::Probe(Upstream* up, const oci::Route& route, const peers::RoutePlan& plan,
                  const std::function<void(BlobProbe*)>& join) {
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
    join(probe.get());
    probe->Start(Sources(up, route, plan));
    return;
  }
  join(it->second.get());
}

void Fills::Locate(const oci::Route& route, std::function<void(bool found)> found) {
  const util::Digest& d = *route.digest;
  peers::RoutePlan plan = Plan(nullptr, d, peers::Hop::kClient);
  if (deps_.keeper->Has(d) || plan.steps.empty() || shutting_down_) {
    deps_.env.deferred->Post([found, here = deps_.keeper->Has(d)] { found(here); });
    return;
  }
  Probe(nullptr, route, plan, [&found](BlobProbe* p) { p->Ask(std::move(found)); });
}

peers::RoutePlan Fills::Plan(Upstream* up, const util::Digest& digest, peers::Hop hop) const {
  peers::RoutePlan plan;
  if (deps_.cluster) {
    // The own registry's blobs: its holders first (they have it), then the
    // owners, as for any blob, but never an upstream.
    plan = deps_.cluster->Plan(
        digest, hop, /*blob=*/true,
        !up || up->config.fleet_single_flight ? peers::Scope::kFleet : peers::Scope::kRegion,
        up ? std::vector<std::string>{} : deps_.hints->Of(digest));
  } else {
    plan.role = hop;
    plan.upstream = hop != peers::Hop::kPeer;
  }
  plan.upstream = plan.upstream && up != nullptr;
  return plan;
}

std::vector<FillSource> Fills::Sources(Upstream* up, const oci::Route& route,
                                       const peers::RoutePlan& plan) {
  std::vector<FillSource> sources;
  const util::Digest& digest = *route.digest;
  std::string name = up ? UpstreamSet::UpstreamName(*up, route.name) : route.name;
  std::string target = "/v2/" + name + "/blobs/" + digest.ToString() +
                       "?ns=" + (up ? up->config.registry : own_registry_);
  for (const peers::PeerStep& step : plan.steps) {
    peering::Fleet* cluster = deps_.cluster;
    sources.push_back({"peer " + step.name, step.name,
                       [cluster, step, target](const SourceRequest& r, upstream::Callbacks cb) {
                         return std::shared_ptr<upstream::InFlight>(cluster->Send(
                             step, r.method, target, RangeFrom(r.offset), std::move(cb)));
                       }});
  }
  if (plan.upstream && up) {
    upstream::Requester* requester = up->requester;
    std::string path = "/v2/" + name + "/blobs/" + digest.ToString();
    Stats* stats = &stats_;
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

BlobFill::Env Fills::FillEnv() {
  return BlobFill::Env{deps_.env.clock,
                       deps_.store,
                       deps_.writer,
                       deps_.keeper,
                       deps_.in_flight,
                       [this](const util::Digest& d, BlobFill* fill) {
                         auto it = fills_.find(d);
                         if (it != fills_.end() && it->second.fill.get() == fill) fills_.erase(it);
                         // Not from inside the fill: on a later turn.
                         if (waiters_.count(d))
                           deps_.env.deferred->Post([this, d] { WakeWaiters(d); });
                       },
                       [this](const std::string& peer, const std::string& why, bool corrupt) {
                         if (deps_.cluster) deps_.cluster->ReportFailure(peer, why, corrupt);
                       },
                       [this] { ++stats_.fills_resumed; },
                       [this](bool from_peer) {
                         ++(from_peer ? stats_.bad_blobs_peer : stats_.bad_blobs_upstream);
                       }};
}

void Fills::WakeWaiters(const util::Digest& d) {
  auto it = waiters_.find(d);
  if (it == waiters_.end()) return;
  auto waiters = std::move(it->second);
  waiters_.erase(it);
  for (auto& w : waiters) w();
}

void Fills::WhenHere(const util::Digest& d, const std::string& repo, std::function<void()> then) {
  if (deps_.keeper->Has(d)) {
    deps_.env.deferred->Post(std::move(then));
    return;
  }
  waiters_[d].push_back(std::move(then));
  auto existing = fills_.find(d);
  if (existing != fills_.end() && existing->second.fill->joinable())
    return;  // its end calls the waiters
  if (shutting_down_ || !deps_.cluster) {
    deps_.env.deferred->Post([this, d] { WakeWaiters(d); });
    return;
  }
  oci::Route route;
  route.kind = oci::RouteKind::kBlob;
  route.name = repo;
  route.digest = d;
  // Planned as a client's request here: the holders first, then the owners
  // a client's HEAD or GET would ask (a push whose blobs a HEAD found on a
  // peer, as mirror cache, finds them the same way at its manifest PUT).
  peers::RoutePlan plan = Plan(nullptr, d, peers::Hop::kClient);
  if (plan.steps.empty()) {
    deps_.env.deferred->Post([this, d] { WakeWaiters(d); });
    return;
  }
  auto fill = std::make_shared<BlobFill>(FillEnv(), d, /*may_store=*/true);
  fills_[d] = {fill, plan.role};
  fill->Start(Sources(nullptr, route, plan));
}

uint64_t Fills::waiters() const {
  uint64_t n = 0;
  for (const auto& [d, f] : fills_) n += f.fill->clients() > 0 ? f.fill->clients() - 1 : 0;
  return n;
}

void Fills::Shutdown() {
  shutting_down_ = true;
  std::vector<std::shared_ptr<BlobFill>> fills;
  for (auto& [d, f] : fills_) fills.push_back(f.fill);
  for (auto& f : fills) f->Cancel();
  fills_.clear();
  std::vector<std::shared_ptr<BlobProbe>> probes;
  for (auto& [k, p] : probes_) probes.push_back(p);
  for (auto& p : probes) p->Cancel();
  probes_.clear();
}

}  // namespace registry
