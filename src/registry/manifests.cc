#include "src/registry/manifests.h"

#include "src/oci/media_types.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "src/peering/fleet.h"
#include "src/registry/oci_errors.h"
#include "util/log.h"
#include "util/sha256.h"

namespace registry {

using util::Status;

namespace {

// Every manifest media type georeg mirrors; sent as Accept to upstreams.
constexpr const char* kManifestAccept =
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

// The upstream is in trouble (as opposed to answering "no such thing").
bool UpstreamDown(const Status& st, int status) {
  return !st.ok() || status >= 500 || status == 429 || status == 401 || status == 403;
}

// The key of a manifest conversation: concurrent requests for one reference share it.
std::string FetchKey(const std::string& registry, const std::string& name,
                     const std::string& reference) {
  return registry + " " + name + " " + reference;
}

}  // namespace

void ServeManifest(const std::shared_ptr<http::Exchange>& ex, const util::Digest& digest,
                   const cache::Manifest& m, const std::string& stale_note) {
  if (!oci::AcceptsMediaType(ex->request().Find("accept"), m.media_type)) {
    RespondOciError(
        ex, 404, "MANIFEST_UNKNOWN",
        "the manifest is " + m.media_type + ", which the request's Accept header does not list");
    return;
  }
  auto headers = BaseHeaders();
  headers.push_back({"Content-Type", m.media_type});
  headers.push_back({"Docker-Content-Digest", digest.ToString()});
  headers.push_back({"ETag", "\"" + digest.ToString() + "\""});
  if (!stale_note.empty()) headers.push_back({"X-Georeg-Stale", stale_note});
  ex->Respond(200, headers, m.bytes);
}

struct ManifestResolver::Fetch {
  Upstream* upstream = nullptr;
  std::string name;                      // as the upstream knows it
  std::string tag;                       // empty when pulled by digest
  std::optional<util::Digest> want;      // the digest the bytes must have, when known
  std::optional<cache::TagInfo> cached;  // the cached tag (revalidation, stale serving)
  uint64_t confirmed_ms = 0;             // a tag learned by gossip: when its origin saw it (0: now)
  ManifestResolver* resolver = nullptr;
  std::vector<peers::PeerStep> peer_steps;  // peers to ask for `want` before the upstream
  size_t peer_index = 0;
  std::vector<std::shared_ptr<http::Exchange>> waiters;
  // Started by Prefetch: peers only, and no client waits. A client that
  // joins turns it into an ordinary fetch (the upstream after the peers).
  bool prefetch = false;
  std::string origin;  // a prefetch: the node the tag came from
  std::shared_ptr<upstream::InFlight> request;
  std::shared_ptr<upstream::InFlight> peer_request;
  // The current upstream (or peer) response.
  int status = 0;
  std::string media_type;
  std::optional<std::string> header_digest;
  std::string body;
  bool too_large = false;
  uint64_t max_bytes = 0;
  // While revalidating a cached tag: when it fires, the stale tag is served
  // (the upstream is slow), counted from the first request.
  io::Handle<uv_timer_t> stale_timer;

  std::shared_ptr<InFlightBytes> in_flight;  // counts `body`
  uint64_t counted = 0;

  ~Fetch() {
    stale_timer.Close();
    Uncount();
  }
  void Uncount() {
    if (in_flight) in_flight->Sub(counted);
    counted = 0;
  }

  std::string What() const {
    return upstream->config.registry + "/" + name +
           (tag.empty() ? "@" + want->ToString() : ":" + tag);
  }
  std::string Key() const {
    return FetchKey(upstream->config.registry, name, tag.empty() ? want->ToString() : tag);
  }

  // Forgets the last response; callbacks that record the next one here
  // (status, type, digest header, body up to max_bytes), then call `done`.
  upstream::Callbacks Collect(std::function<void(Status)> done) {
    status = 0;
    media_type.clear();
    header_digest.reset();
    body.clear();
    Uncount();
    too_large = false;
    upstream::Callbacks cb;
    cb.on_head = [this](const upstream::ResponseHead& h) {
      status = h.status;
      if (const std::string* ct = h.Find("content-type")) media_type = *ct;
      if (const std::string* dcd = h.Find("docker-content-digest")) header_digest = *dcd;
      if (h.content_length && *h.content_length > max_bytes) too_large = true;
    };
    cb.on_body = [this](const char* d, size_t n) {
      if (too_large || body.size() + n > max_bytes) {
        too_large = true;
        return;
      }
      body.append(d, n);
      if (in_flight) in_flight->Add(n);
      counted += n;
    };
    cb.on_complete = std::move(done);
    return cb;
  }
};

ManifestResolver::ManifestResolver(io::Env env, cache::Store* store, WriterBridge* writer,
                                   uint64_t max_manifest_bytes,
                                   std::shared_ptr<InFlightBytes> in_flight,
                                   peering::Fleet* cluster)
    : env_(env),
      store_(store),
      writer_(writer),
      max_bytes_(max_manifest_bytes),
      in_flight_(std::move(in_flight)),
      cluster_(cluster) {}
ManifestResolver::~ManifestResolver() = default;

void ManifestResolver::Handle(Upstream* up, const std::string& name, const oci::Route& route,
                              const std::shared_ptr<http::Exchange>& ex, peers::Hop hop) {
  auto txn = store_->BeginRead();
  if (!txn.ok()) {
    RespondOciError(ex, 503, "UNAVAILABLE", "cache unavailable");
    return;
  }
  cache::Manifest m;
  std::optional<cache::TagInfo> cached;
  std::optional<util::Digest> want = route.digest;
  uint64_t confirmed_ms = 0;
  if (route.digest) {
    if (store_->GetManifest(*txn, *route.digest, &m).ok()) {
      ex->outcome().result = "hit";
      ex->outcome().source = "cache";
      ServeManifest(ex, *route.digest, m, "");
      return;
    }
  } else {
    cache::TagInfo tag;
    if (store_->GetTag(*txn, up->config.registry, name, route.tag, &tag).ok()) {
      uint64_t now = env_.clock->WallMs();
      bool fresh = now < tag.confirmed_ms + up->config.tag_ttl_ms;
      if (store_->GetManifest(*txn, tag.digest, &m).ok()) {
        if (fresh) {
          ex->outcome().result = "hit";
          ex->outcome().source = "cache";
          ServeManifest(ex, tag.digest, m, "");
          return;
        }
        cached = tag;
      } else if (fresh) {
        // A fresh tag without its manifest: learned by gossip. Fetch the
        // manifest by digest (peers first); the upstream is not asked about the tag.
        want = tag.digest;
        confirmed_ms = tag.confirmed_ms;
      }
    }
  }
  if (hop == peers::Hop::kPeer) {
    RespondOciError(ex, 404, "MANIFEST_UNKNOWN", "manifest not cached on this node");
    return;
  }
  std::string key =
      FetchKey(up->config.registry, name, route.digest ? route.digest->ToString() : route.tag);
  if (auto it = fetches_.find(key); it != fetches_.end()) {
    it->second->prefetch = false;
    ex->outcome().result = "coalesced";
    AddWaiter(it->second.get(), key, ex);
    return;
  }
  if (shutting_down_) {
    RespondOciError(ex, 503, "UNAVAILABLE", "shutting down");
    return;
  }
  if (in_flight_ && !in_flight_->Admit()) {
    RespondOciError(ex, 503, "UNAVAILABLE", "too many bytes in flight; retry shortly");
    return;
  }
  auto f = std::make_unique<Fetch>();
  f->in_flight = in_flight_;
  f->upstream = up;
  f->name = name;
  f->tag = route.tag;
  f->want = want;
  f->cached = cached;
  f->confirmed_ms = confirmed_ms;
  if (cluster_ && want) {
    std::string prefer =
        confirmed_ms ? cluster_->TagOrigin(up->config.registry, name, route.tag) : "";
    f->peer_steps =
        cluster_
            ->Plan(*want, hop, /*blob=*/false, peers::Scope::kRegion,
                   prefer.empty() ? std::vector<std::string>{} : std::vector<std::string>{prefer})
            .steps;
  }
  f->max_bytes = max_bytes_;
  f->resolver = this;
  Fetch* raw = f.get();
  fetches_[key] = std::move(f);
  AddWaiter(raw, key, ex);
  if (raw->cached) {
    // The staleness deadline counts from the request: a slow upstream gets
    // its response timeout, then the cached tag is served.
    // The timer closes with the Fetch, so it never fires for one that is gone.
    raw->stale_timer.Init(env_.loop, raw, uv_timer_init);
    uv_timer_start(
        raw->stale_timer.get(),
        [](uv_timer_t* t) {
          auto* f = static_cast<Fetch*>(t->data);
          ManifestResolver* self = f->resolver;
          self->CancelRequests(f);
          self->ServeStaleOrFail(
              f->Key(), "did not answer within " +
                            std::to_string(f->upstream->config.response_timeout_ms) + " ms");
        },
        up->config.response_timeout_ms, 0);
  }
  Start(raw);
}

void ManifestResolver::Start(Fetch* f) {
  if (f->cached) {
    StartRequest(f, "HEAD", f->tag);  // revalidate: has the tag moved?
  } else if (f->want) {
    StartPeerOrUpstream(f);
  } else {
    StartRequest(f, "GET", f->tag);
  }
}

void ManifestResolver::StartPeerOrUpstream(Fetch* f) {
  if (f->peer_index >= f->peer_steps.size() && f->prefetch) {
    LOG_INFO("manifest: prefetch of %s: no peer had it; the first pull fetches it",
             f->What().c_str());
    return FinishError(f->Key(), 404, "MANIFEST_UNKNOWN", "no peer had it");
  }
  if (f->peer_index >= f->peer_steps.size()) {
    StartRequest(f, "GET", f->want->ToString());
    return;
  }
  const peers::PeerStep& step = f->peer_steps[f->peer_index++];
  std::string key = f->Key();
  upstream::Callbacks cb =
      f->Collect([this, key](Status st) { OnPeerGetDone(key, std::move(st)); });
  std::string target = "/v2/" + f->name + "/manifests/" + f->want->ToString() +
                       "?ns=" + f->upstream->config.registry;
  LOG_INFO("manifest: GET %s from peer %s", f->want->ToString().c_str(), step.name.c_str());
  upstream::FetchOptions opts;
  opts.max_body = max_bytes_;
  auto fetch = cluster_->Send(step, "GET", target, {}, std::move(cb), opts);
  f->request.reset();
  f->peer_request = std::move(fetch);
}

void ManifestResolver::Prefetch(Upstream* up, const std::string& name, const util::Digest& digest,
                                const std::string& origin) {
  if (!cluster_ || shutting_down_) return;
  std::string key = FetchKey(up->config.registry, name, digest.ToString());
  if (fetches_.count(key)) return;
  {
    auto txn = store_->BeginRead();
    cache::Manifest m;
    if (!txn.ok() || store_->GetManifest(*txn, digest, &m).ok()) return;
  }
  size_t running = std::count_if(fetches_.begin(), fetches_.end(),
                                 [](const auto& kv) { return kv.second->prefetch; });
  if (running >= kMaxPrefetches || (in_flight_ && !in_flight_->Admit())) {
    unsigned long long count = 0;
    if (prefetch_log_.Note(env_.clock->NowMs(), &count))
      LOG_WARN(
          "manifest: %llu prefetch(es) of gossiped tags dropped in the last minute (%zu running); "
          "pulls fetch them",
          count, running);
    return;
  }
  auto f = std::make_unique<Fetch>();
  f->in_flight = in_flight_;
  f->upstream = up;
  f->name = name;
  f->want = digest;
  f->prefetch = true;
  f->origin = origin;
  f->max_bytes = max_bytes_;
  f->resolver = this;
  // Asked as a peer (cache only): a prefetch never makes another node fetch.
  for (peers::PeerStep step :
       cluster_->Plan(digest, peers::Hop::kClient, /*blob=*/false, peers::Scope::kRegion, {origin})
           .steps) {
    step.hop = peers::Hop::kPeer;
    if (step.name == origin) {
      f->peer_steps.insert(f->peer_steps.begin(), step);
    } else {
      f->peer_steps.push_back(step);
    }
  }
  Fetch* raw = f.get();
  fetches_[key] = std::move(f);
  StartPeerOrUpstream(raw);
}

void ManifestResolver::OnPeerGetDone(const std::string& key, Status st) {
  auto it = fetches_.find(key);
  if (it == fetches_.end()) return;
  Fetch* f = it->second.get();
  f->peer_request.reset();
  const peers::PeerStep& step = f->peer_steps[f->peer_index - 1];
  if (st.ok() && f->status == 200 && !f->too_large) {
    util::Digest digest = util::DigestOf(f->body);
    if (digest == *f->want) return StoreAndServe(key, digest, /*from_peer=*/true);
    ++stats_.bad_from_peer;
    cluster_->ReportFailure(step.name, "manifest bytes hash to " + digest.ToString(),
                            /*corrupt=*/true);
  } else {
    LOG_INFO("manifest: peer %s: %s", step.name.c_str(),
             st.ok() ? ("answered " + std::to_string(f->status)).c_str() : st.ToString().c_str());
  }
  StartPeerOrUpstream(f);
}

void ManifestResolver::StartRequest(Fetch* f, const char* method, const std::string& reference) {
  std::string key = f->Key();
  bool head = std::string_view(method) == "HEAD";
  Upstream* up = f->upstream;
  upstream::Callbacks cb = f->Collect([this, key, head](Status st) {
    if (head) {
      OnHeadDone(key, std::move(st));
    } else {
      OnGetDone(key, std::move(st));
    }
  });
  std::string path = "/v2/" + f->name + "/manifests/" + reference;
  LOG_INFO("manifest: %s %s%s", method, up->config.registry.c_str(), path.c_str());
  upstream::FetchOptions opts;
  opts.max_body = max_bytes_;
  // A manifest conversation (token and redirects included) is short: an
  // upstream that drips bytes is cut off here, not after request_deadline.
  opts.deadline_ms = up->config.connect_timeout_ms + 2 * up->config.response_timeout_ms;
  f->request = up->requester->Send(method, path, {{"Accept", kManifestAccept}}, f->name,
                                   std::move(cb), opts);
}

void ManifestResolver::OnHeadDone(const std::string& key, Status st) {
  auto it = fetches_.find(key);
  if (it == fetches_.end()) return;
  Fetch* f = it->second.get();
  f->request.reset();
  if (UpstreamDown(st, f->status)) {
    return ServeStaleOrFail(key, st.ok() ? "answered " + std::to_string(f->status) : st.ToString());
  }
  if (f->status == 404)
    return FinishError(key, 404, "MANIFEST_UNKNOWN", "manifest unknown to the upstream");
  if (f->status != 200) {
    return FinishError(key, 502, "UNKNOWN",
                       "upstream answered " + std::to_string(f->status) + " to HEAD");
  }
  std::optional<util::Digest> now;
  if (f->header_digest) {
    auto d = util::Digest::Parse(*f->header_digest);
    if (d.ok()) now = *d;
  }
  if (now && *now == f->cached->digest) {
    // Unchanged: record the confirmation and answer from the cache.
    cache::TagInfo confirmed{*now, env_.clock->WallMs()};
    cache::Store* store = store_;
    std::string registry = f->upstream->config.registry, name = f->name, tag = f->tag;
    writer_->Run([store, registry, name, tag,
                  confirmed] { return store->PutTag(registry, name, tag, confirmed); },
                 [](Status s) {
                   if (!s.ok())
                     LOG_WARN("manifest: could not record a tag confirmation: %s",
                              s.ToString().c_str());
                 });
    cache::Manifest m;
    auto txn = store_->BeginRead();
    if (txn.ok() && store_->GetManifest(*txn, *now, &m).ok()) {
      LOG_DEBUG("manifest: %s unchanged (%s)", f->What().c_str(), now->ToString().c_str());
      util::Digest d = *now;
      return Finish(
          key, [&](const std::shared_ptr<http::Exchange>& ex) { ServeManifest(ex, d, m, ""); },
          "hit", "cache");
    }
  }
  // Moved (or the upstream did not say): fetch it, by digest when we know
  // it, from a peer that may have it already.
  f->cached.reset();
  f->want = now;
  if (!now) return StartRequest(f, "GET", f->tag);
  if (cluster_)
    f->peer_steps =
        cluster_->Plan(*now, peers::Hop::kClient, /*blob=*/false, peers::Scope::kRegion).steps;
  StartPeerOrUpstream(f);
}

void ManifestResolver::OnGetDone(const std::string& key, Status st) {
  auto it = fetches_.find(key);
  if (it == fetches_.end()) return;
  Fetch* f = it->second.get();
  f->request.reset();
  const std::string& registry = f->upstream->config.registry;
  auto fail = [&](const std::string& why) {
    LOG_ERROR("manifest: %s: %s; nothing cached", f->What().c_str(), why.c_str());
    FinishError(key, 502, "UNKNOWN", why);
  };
  if (st.code() == util::Code::kInvalidArgument || f->too_large)
    return fail("manifest larger than " + std::to_string(max_bytes_) + " bytes");
  if (UpstreamDown(st, f->status)) {
    return ServeStaleOrFail(key, st.ok() ? "answered " + std::to_string(f->status) : st.ToString());
  }
  if (f->status == 404)
    return FinishError(key, 404, "MANIFEST_UNKNOWN",
                       "manifest unknown to the upstream " + registry);
  if (f->status != 200) return fail("upstream answered " + std::to_string(f->status));
  util::Digest digest = util::DigestOf(f->body);
  if (f->want && digest != *f->want) {
    ++stats_.bad_from_upstream;
    return fail("digest mismatch: the bytes hash to " + digest.ToString());
  }
  if (f->header_digest) {
    auto hd = util::Digest::Parse(*f->header_digest);
    if (hd.ok() && *hd != digest) {
      ++stats_.bad_from_upstream;
      return fail("Docker-Content-Digest " + *f->header_digest + " does not match the bytes");
    }
  }
  StoreAndServe(key, digest, /*from_peer=*/false);
}

void ManifestResolver::StoreAndServe(const std::string& key, const util::Digest& digest,
                                     bool from_peer) {
  Fetch* f = fetches_.at(key).get();
  const std::string& registry = f->upstream->config.registry;
  std::string media_type = oci::ManifestMediaType(f->media_type, f->body);
  auto m = std::make_shared<cache::Manifest>(cache::Manifest{media_type, std::move(f->body)});
  cache::Store* store = store_;
  std::string name = f->name, tag = f->tag, what = f->What();
  uint64_t now = f->confirmed_ms ? f->confirmed_ms : env_.clock->WallMs();
  // A tag answered by the upstream itself (not learned from a peer) is news for the fleet.
  if (cluster_ && !tag.empty() && !f->confirmed_ms)
    cluster_->RecordTag(registry, name, tag, digest);
  // A prefetched index: its platform manifests follow, from the same node.
  std::vector<util::Digest> children =
      f->prefetch ? oci::IndexChildren(media_type, m->bytes, kMaxPrefetches)
                  : std::vector<util::Digest>{};
  Upstream* up = f->upstream;
  std::string origin = f->origin;
  writer_->Run(
      [store, digest, m, registry, name, tag, now] {
        return store->PutManifest(digest, *m, registry, name, tag, now);
      },
      [this, key, digest, m, what, children, up, name, origin, from_peer](Status s) {
        if (s.ok()) {
          LOG_INFO("manifest: cached %s as %s", what.c_str(), digest.ToString().c_str());
        } else {
          LOG_ERROR("manifest: could not store %s: %s", what.c_str(), s.ToString().c_str());
        }
        Finish(
            key,
            [&](const std::shared_ptr<http::Exchange>& ex) { ServeManifest(ex, digest, *m, ""); },
            from_peer ? "peer" : "miss", from_peer ? "peer" : "upstream");
        if (s.ok())
          for (const util::Digest& child : children) Prefetch(up, name, child, origin);
      });
}

void ManifestResolver::ServeStaleOrFail(const std::string& key, const std::string& why) {
  Fetch* f = fetches_.at(key).get();
  const Upstream& up = *f->upstream;
  LOG_WARN("manifest: upstream %s for %s: %s", up.config.registry.c_str(), f->What().c_str(),
           why.c_str());
  if (!f->cached && !f->tag.empty()) {
    // A GET after a HEAD that said "moved" lost the cached tag; look again.
    auto txn = store_->BeginRead();
    cache::TagInfo tag;
    if (txn.ok() && store_->GetTag(*txn, up.config.registry, f->name, f->tag, &tag).ok())
      f->cached = tag;
  }
  if (f->cached) {
    uint64_t wall = env_.clock->WallMs();
    uint64_t age_ms = wall > f->cached->confirmed_ms ? wall - f->cached->confirmed_ms : 0;
    cache::Manifest m;
    auto txn = store_->BeginRead();
    if (age_ms < up.config.max_stale_ms && txn.ok() &&
        store_->GetManifest(*txn, f->cached->digest, &m).ok()) {
      util::Digest d = f->cached->digest;
      std::string note = "age=" + std::to_string(age_ms / 1000) + "s";
      return Finish(
          key, [&](const std::shared_ptr<http::Exchange>& ex) { ServeManifest(ex, d, m, note); },
          "stale", "cache");
    }
  }
  FinishError(key, 503, "UNAVAILABLE", "upstream " + up.config.registry + " " + why);
}

void ManifestResolver::Finish(const std::string& key,
                              const std::function<void(const std::shared_ptr<http::Exchange>&)>& fn,
                              std::string_view result, std::string_view source) {
  auto it = fetches_.find(key);
  if (it == fetches_.end()) return;
  std::unique_ptr<Fetch> f = std::move(it->second);
  fetches_.erase(it);
  CancelRequests(f.get());
  for (auto& ex : f->waiters) {
    ex->SetAbortCallback(nullptr);
    http::Outcome& o = ex->outcome();
    if (o.result.empty()) o.result = result;
    o.source = source;
    fn(ex);
  }
}

void ManifestResolver::AddWaiter(Fetch* f, const std::string& key,
                                 const std::shared_ptr<http::Exchange>& ex) {
  f->waiters.push_back(ex);
  http::Exchange* raw = ex.get();
  // A client that leaves stops waiting; the last one to leave ends the
  // conversation, so abandoned requests cost nothing.
  ex->SetAbortCallback([this, key, raw] {
    auto it = fetches_.find(key);
    if (it == fetches_.end()) return;
    Fetch* f = it->second.get();
    std::erase_if(f->waiters,
                  [raw](const std::shared_ptr<http::Exchange>& w) { return w.get() == raw; });
    if (!f->waiters.empty()) return;
    LOG_DEBUG("manifest: every client of %s left; cancelling", f->What().c_str());
    std::unique_ptr<Fetch> gone = std::move(it->second);
    fetches_.erase(it);
    CancelRequests(gone.get());
  });
}

void ManifestResolver::CancelRequests(Fetch* f) {
  if (f->request) {
    auto r = std::move(f->request);
    r->Cancel();
  }
  if (f->peer_request) {
    auto r = std::move(f->peer_request);
    r->Cancel();
  }
}

void ManifestResolver::FinishError(const std::string& key, int status, const char* code,
                                   const std::string& message) {
  Finish(key, [&](const std::shared_ptr<http::Exchange>& ex) {
    RespondOciError(ex, status, code, message);
  });
}

uint64_t ManifestResolver::coalesced_waiters() const {
  uint64_t n = 0;
  for (const auto& [key, f] : fetches_) n += f->waiters.empty() ? 0 : f->waiters.size() - 1;
  return n;
}

void ManifestResolver::Shutdown() {
  shutting_down_ = true;
  std::vector<std::string> keys;
  for (auto& [k, f] : fetches_) {
    CancelRequests(f.get());
    keys.push_back(k);
  }
  for (const std::string& k : keys) FinishError(k, 503, "UNAVAILABLE", "shutting down");
}

}  // namespace registry
