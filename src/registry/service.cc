#include "src/registry/service.h"

#include <chrono>

#include <nlohmann/json.hpp>

#include "util/log.h"
#include "util/sha256.h"

namespace registry {

using util::Status;

namespace {

constexpr size_t kMaxManifestBytes = 4 << 20;

// Every manifest media type georeg mirrors; sent as Accept to upstreams.
constexpr const char* kManifestAccept =
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

uint64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

}  // namespace

bool AcceptsMediaType(const std::string* accept, const std::string& media_type) {
  if (!accept || Trim(*accept).empty() || media_type.empty()) return true;
  std::string_view rest = *accept;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    item = item.substr(0, item.find(';'));
    std::string t = Trim(item);
    if (t == "*/*" || t == media_type) return true;
  }
  return false;
}

void ServeManifest(const std::shared_ptr<http::Exchange>& ex, const util::Digest& digest, const cache::Manifest& m,
                   const std::string& stale_note) {
  if (!AcceptsMediaType(ex->request().Find("accept"), m.media_type)) {
    RespondOciError(ex, 404, "MANIFEST_UNKNOWN",
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

struct Service::ManifestFetch {
  Service::Upstream* upstream = nullptr;
  std::string name, tag;
  std::optional<util::Digest> digest;    // pulled by digest
  std::optional<cache::TagInfo> stale;   // the cached tag, if any (served when the upstream is down)
  std::vector<std::shared_ptr<http::Exchange>> waiters;
  std::shared_ptr<upstream::Fetch> fetch;
  int status = 0;
  std::string media_type;
  std::optional<std::string> header_digest;
  std::string body;
  bool too_large = false;
};

Service::Service(uv_loop_t* loop, const config::Config& cfg, cache::Store* store, WriterBridge* writer)
    : loop_(loop), store_(store), writer_(writer) {
  for (const config::Upstream& u : cfg.upstreams) {
    upstream::Endpoint ep;
    ep.scheme = u.scheme;
    ep.host = u.host;
    ep.port = u.port;
    ep.connect_timeout_ms = u.connect_timeout_ms;
    ep.response_timeout_ms = u.response_timeout_ms;
    upstreams_.push_back(Upstream{u, std::make_unique<upstream::Client>(loop, ep)});
  }
}

Service::~Service() = default;

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
      HandleBlob(route, ex);
      return;
    case oci::RouteKind::kManifest:
      HandleManifest(route, ex);
      return;
  }
}

Service::Upstream* Service::SelectUpstream(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex) {
  if (!route.ns) return &upstreams_[0];
  for (Upstream& u : upstreams_)
    if (u.config.registry == *route.ns) return &u;
  // Never used as an address: only configured upstreams are ever contacted.
  RespondOciError(ex, 404, "NAME_UNKNOWN", "registry '" + *route.ns + "' is not a configured upstream");
  return nullptr;
}

void Service::HandleBlob(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex) {
  Upstream* up = SelectUpstream(route, ex);
  if (!up) return;
  const util::Digest& digest = *route.digest;
  {
    auto txn = store_->BeginRead();
    if (!txn.ok()) {
      LOG_ERROR("cache: %s", txn.status().ToString().c_str());
      RespondOciError(ex, 503, "UNAVAILABLE", "cache unavailable");
      return;
    }
    cache::BlobInfo info;
    Status st = store_->GetBlob(*txn, digest, &info);
    if (st.ok()) {
      BlobStream::ServeCached(store_, digest, info, ex);
      return;
    }
    if (!st.IsNotFound()) {
      LOG_ERROR("cache: blob %s: %s", digest.ToString().c_str(), st.ToString().c_str());
      RespondOciError(ex, 500, "UNKNOWN", "cache error");
      return;
    }
  }
  if (auto it = fills_.find(digest); it != fills_.end()) {
    it->second->Join(ex);
    return;
  }
  if (shutting_down_) {
    RespondOciError(ex, 503, "UNAVAILABLE", "shutting down");
    return;
  }
  BlobFill::Env env{store_, writer_, [this](const util::Digest& d, BlobFill* fill) {
                      auto it = fills_.find(d);
                      if (it != fills_.end() && it->second.get() == fill) fills_.erase(it);
                    }};
  auto fill = std::make_shared<BlobFill>(std::move(env), digest, up->config.registry);
  fills_[digest] = fill;
  fill->Join(ex);
  fill->Start(up->client.get(), "/v2/" + route.name + "/blobs/" + digest.ToString());
}

void Service::HandleManifest(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex) {
  Upstream* up = SelectUpstream(route, ex);
  if (!up) return;
  auto txn = store_->BeginRead();
  if (!txn.ok()) {
    RespondOciError(ex, 503, "UNAVAILABLE", "cache unavailable");
    return;
  }
  cache::Manifest m;
  if (route.digest) {
    // Content-addressed: a cached copy is always right, whatever the upstream says now.
    if (store_->GetManifest(*txn, *route.digest, &m).ok()) {
      ServeManifest(ex, *route.digest, m, "");
      return;
    }
    FetchManifest(up, route, ex, std::nullopt);
    return;
  }
  cache::TagInfo tag;
  if (store_->GetTag(*txn, up->config.registry, route.name, route.tag, &tag).ok() &&
      store_->GetManifest(*txn, tag.digest, &m).ok()) {
    if (NowMs() - tag.confirmed_ms < up->config.tag_ttl_ms) {
      ServeManifest(ex, tag.digest, m, "");
      return;
    }
    FetchManifest(up, route, ex, tag);
    return;
  }
  FetchManifest(up, route, ex, std::nullopt);
}

void Service::FetchManifest(Upstream* up, const oci::Route& route, const std::shared_ptr<http::Exchange>& ex,
                            std::optional<cache::TagInfo> stale) {
  std::string reference = route.digest ? route.digest->ToString() : route.tag;
  std::string key = up->config.registry + " " + route.name + " " + reference;
  if (auto it = manifest_fetches_.find(key); it != manifest_fetches_.end()) {
    it->second->waiters.push_back(ex);
    return;
  }
  if (shutting_down_) {
    RespondOciError(ex, 503, "UNAVAILABLE", "shutting down");
    return;
  }
  auto mf = std::make_unique<ManifestFetch>();
  mf->upstream = up;
  mf->name = route.name;
  mf->tag = route.tag;
  mf->digest = route.digest;
  mf->stale = stale;
  mf->waiters.push_back(ex);
  ManifestFetch* raw = mf.get();
  manifest_fetches_[key] = std::move(mf);

  upstream::Callbacks cb;
  cb.on_head = [raw](const upstream::ResponseHead& h) {
    raw->status = h.status;
    if (const std::string* ct = h.Find("content-type")) raw->media_type = *ct;
    if (const std::string* dcd = h.Find("docker-content-digest")) raw->header_digest = *dcd;
    if (h.content_length && *h.content_length > kMaxManifestBytes) raw->too_large = true;
  };
  cb.on_body = [raw](const char* d, size_t n) {
    if (raw->too_large || raw->body.size() + n > kMaxManifestBytes) {
      raw->too_large = true;
      return;
    }
    raw->body.append(d, n);
  };
  cb.on_complete = [this, key](Status st) {
    auto it = manifest_fetches_.find(key);
    if (it == manifest_fetches_.end()) return;
    ManifestFetch* f = it->second.get();
    f->fetch.reset();
    FinishManifestFetch(key, std::move(st), f->status, std::move(f->media_type), std::move(f->body),
                        f->header_digest ? &*f->header_digest : nullptr);
  };
  std::string path = "/v2/" + route.name + "/manifests/" + reference;
  LOG_INFO("manifest: GET %s%s", up->config.registry.c_str(), path.c_str());
  raw->fetch = up->client->Start("GET", path, {{"Accept", kManifestAccept}}, std::move(cb));
}

void Service::FinishManifestWaiters(const std::string& key,
                                    const std::function<void(const std::shared_ptr<http::Exchange>&)>& fn) {
  auto it = manifest_fetches_.find(key);
  if (it == manifest_fetches_.end()) return;
  std::unique_ptr<ManifestFetch> f = std::move(it->second);
  manifest_fetches_.erase(it);
  for (auto& ex : f->waiters) fn(ex);
}

void Service::FinishManifestFetch(const std::string& key, Status st, int upstream_status, std::string media_type,
                                  std::string body, const std::string* header_digest) {
  ManifestFetch* f = manifest_fetches_.at(key).get();
  const std::string& registry = f->upstream->config.registry;
  std::string what = registry + "/" + f->name + ":" + (f->digest ? f->digest->ToString() : f->tag);

  bool upstream_down = !st.ok() || upstream_status >= 500 || upstream_status == 429;
  if (upstream_down || upstream_status == 401 || upstream_status == 403) {
    std::string why = st.ok() ? "answered " + std::to_string(upstream_status) : st.ToString();
    LOG_WARN("manifest: upstream %s for %s: %s", registry.c_str(), what.c_str(), why.c_str());
    // A tag we have seen is still served while it is younger than max_stale.
    if (f->stale) {
      uint64_t age_ms = NowMs() - f->stale->confirmed_ms;
      if (age_ms < f->upstream->config.max_stale_ms) {
        cache::Manifest m;
        auto txn = store_->BeginRead();
        if (txn.ok() && store_->GetManifest(*txn, f->stale->digest, &m).ok()) {
          util::Digest d = f->stale->digest;
          std::string note = "age=" + std::to_string(age_ms / 1000) + "s";
          FinishManifestWaiters(key, [&](const std::shared_ptr<http::Exchange>& ex) { ServeManifest(ex, d, m, note); });
          return;
        }
      }
    }
    FinishManifestWaiters(key, [&](const std::shared_ptr<http::Exchange>& ex) {
      RespondOciError(ex, 503, "UNAVAILABLE", "upstream " + registry + " " + why);
    });
    return;
  }
  if (upstream_status == 404) {
    FinishManifestWaiters(key, [&](const std::shared_ptr<http::Exchange>& ex) {
      RespondOciError(ex, 404, "MANIFEST_UNKNOWN", "manifest unknown to the upstream " + registry);
    });
    return;
  }
  auto fail = [&](const std::string& why) {
    LOG_ERROR("manifest: %s from %s: %s; nothing cached", what.c_str(), registry.c_str(), why.c_str());
    FinishManifestWaiters(key, [&](const std::shared_ptr<http::Exchange>& ex) {
      RespondOciError(ex, 502, "UPSTREAM_ERROR", why);
    });
  };
  if (upstream_status != 200) return fail("upstream answered " + std::to_string(upstream_status));
  if (f->too_large) return fail("manifest larger than 4 MiB");
  util::Digest digest = util::Digest::FromRaw(util::Sha256::Of(body).data());
  if (f->digest && digest != *f->digest) return fail("digest mismatch: the bytes hash to " + digest.ToString());
  if (header_digest) {
    auto hd = util::Digest::Parse(*header_digest);
    if (hd.ok() && *hd != digest) return fail("Docker-Content-Digest " + *header_digest + " does not match the bytes");
  }
  media_type = Trim(media_type.substr(0, media_type.find(';')));
  if (media_type.empty() || media_type == "application/json" || media_type == "application/octet-stream") {
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_object() && j.contains("mediaType") && j["mediaType"].is_string()) media_type = j["mediaType"];
  }
  auto m = std::make_shared<cache::Manifest>(cache::Manifest{media_type, std::move(body)});
  cache::Store* store = store_;
  std::string name = f->name, tag = f->tag;
  uint64_t now = NowMs();
  writer_->Run([store, digest, m, registry, name, tag, now] { return store->PutManifest(digest, *m, registry, name, tag, now); },
               [this, key, digest, m, what](Status st) {
                 if (st.ok()) {
                   LOG_INFO("manifest: cached %s as %s", what.c_str(), digest.ToString().c_str());
                 } else {
                   LOG_ERROR("manifest: could not store %s: %s", what.c_str(), st.ToString().c_str());
                 }
                 FinishManifestWaiters(key, [&](const std::shared_ptr<http::Exchange>& ex) {
                   ServeManifest(ex, digest, *m, "");
                 });
               });
}

void Service::Shutdown() {
  shutting_down_ = true;
  std::vector<std::shared_ptr<BlobFill>> fills;
  for (auto& [d, f] : fills_) fills.push_back(f);
  for (auto& f : fills) f->Cancel();
  fills_.clear();
  std::vector<std::string> keys;
  for (auto& [k, f] : manifest_fetches_) {
    if (f->fetch) {
      auto fetch = std::move(f->fetch);
      fetch->Cancel();
    }
    keys.push_back(k);
  }
  for (const std::string& k : keys) {
    FinishManifestWaiters(k, [](const std::shared_ptr<http::Exchange>& ex) {
      RespondOciError(ex, 503, "UNAVAILABLE", "shutting down");
    });
  }
  for (Upstream& u : upstreams_) u.client->Shutdown();
}

}  // namespace registry
