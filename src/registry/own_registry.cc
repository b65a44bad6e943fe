#include "src/registry/own_registry.h"

#include <map>

#include <nlohmann/json.hpp>

#include "peers/message_codec.h"
#include "push/manifest.h"
#include "push/manifest_tree.h"
#include "push/replication.h"
#include "push/tag_value.h"
#include "src/oci/media_types.h"
#include "src/peering/cluster.h"
#include "src/registry/manifests.h"
#include "src/registry/oci_errors.h"
#include "util/join.h"
#include "util/log.h"
#include "util/sha256.h"

namespace registry {

using util::Status;

namespace {

constexpr const char* kOciIndex = "application/vnd.oci.image.index.v1+json";

std::string RangeOf(uint64_t offset) { return "0-" + std::to_string(offset ? offset - 1 : 0); }

constexpr const char* kAcceptAll =
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

// The own-manifest record of a parsed manifest of `size` bytes stored at `now_ms`.
cache::OwnManifest OwnRecordOf(const util::Digest& d, const push::PushedManifest& p, size_t size,
                               uint64_t now_ms) {
  cache::OwnManifest own;
  own.digest = d;
  own.media_type = p.media_type;
  own.artifact_type = p.artifact_type;
  own.size = size;
  own.created_ms = now_ms;
  own.subject = p.subject;
  own.references = p.blobs;
  own.references.insert(own.references.end(), p.manifests.begin(), p.manifests.end());
  own.annotations_json = p.annotations_json;
  return own;
}

std::string FleetKey(const peers::TagKey& k) {
  return k.registry + '\0' + k.repository + '\0' + k.tag;
}

}  // namespace

OwnRegistry::OwnRegistry(io::Env env, const config::Config& cfg, cache::Store* store,
                         WriterBridge* writer, CacheKeeper* keeper)
    : env_(env),
      name_(cfg.registry.name),
      default_upstream_marked_(cfg.default_upstream_marked),
      cfg_(cfg.registry),
      max_manifest_bytes_(cfg.server.max_manifest_bytes),
      store_(store),
      writer_(writer),
      keeper_(keeper),
      uploads_(env,
               {cfg.registry.max_uploads, cfg.registry.upload_timeout_ms, cfg.registry.max_size},
               store, writer, keeper),
      gc_(env, cfg.registry, store, writer, keeper),
      auth_(env, cfg.registry.name, cfg.registry.auth_failures_per_minute) {}

OwnRegistry::~OwnRegistry() = default;

Status OwnRegistry::Start() {
  if (!enabled()) return Status::Ok();
  if (Status st = auth_.Load(cfg_.push_htpasswd); !st.ok())
    return Status::InvalidArgument("registry.push_htpasswd: " + st.message());
  uploads_.Start();
  gc_.Start();
  LOG_INFO("registry: serving own registry '%s' (%zu push user(s), pulls %s)", name_.c_str(),
           auth_.users(), cfg_.pull_requires_auth ? "authenticated" : "anonymous");
  return Status::Ok();
}

void OwnRegistry::Stop() {
  uploads_.Stop();
  gc_.Stop();
}

std::string OwnRegistry::NsQuery(const oci::Route& route, char sep) const {
  return route.ns ? std::string(1, sep) + "ns=" + *route.ns : "";
}

void OwnRegistry::Handle(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex,
                         peers::Hop hop) {
  if (hop != peers::Hop::kClient) {
    // A peer (signed by the cluster) reads content; it never writes through here.
    if (route.kind != oci::RouteKind::kBlob && route.kind != oci::RouteKind::kManifest) {
      RespondOciError(ex, 405, "UNSUPPORTED", "peers only read content");
      return;
    }
    Route(route, ex, hop);
    return;
  }
  bool needs_auth =
      oci::IsWrite(route.kind) || cfg_.pull_requires_auth || route.kind == oci::RouteKind::kBase;
  if (!needs_auth) {
    Route(route, ex, hop);
    return;
  }
  auto keep = route;
  auth_.Check(ex, [this, keep, ex, hop] { Route(keep, ex, hop); });
}

std::vector<std::string> OwnRegistry::HoldersOf(const util::Digest& digest) const {
  auto it = holders_.find(digest);
  return it == holders_.end() ? std::vector<std::string>{} : it->second;
}

void OwnRegistry::NoteHolders(const util::Digest& digest, const std::vector<std::string>& holders) {
  if (holders.empty()) return;
  auto [it, inserted] = holders_.try_emplace(digest);
  for (const std::string& h : holders)
    if (std::find(it->second.begin(), it->second.end(), h) == it->second.end())
      it->second.push_back(h);
  if (!inserted) return;
  holders_order_.push_back(digest);
  if (holders_order_.size() > kMaxHints) {
    holders_.erase(holders_order_.front());
    holders_order_.pop_front();
  }
}

void OwnRegistry::Route(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex,
                        peers::Hop hop) {
  using K = oci::RouteKind;
  switch (route.kind) {
    case K::kBase: {
      auto headers = BaseHeaders();
      headers.push_back({"Content-Type", "application/json"});
      ex->Respond(200, headers, "{}");
      return;
    }
    case K::kManifest:
      return GetManifest(route, ex, hop);
    case K::kManifestPut:
      return PutManifest(route, ex);
    case K::kManifestDelete:
      return DeleteManifest(route, ex);
    case K::kBlob:
      return blob_handler_(route, ex, hop);
    case K::kBlobDelete:
      return DeleteBlob(route, ex);
    case K::kUploadStart:
      return StartUpload(route, ex);
    case K::kUploadPatch:
      return PatchUpload(route, ex);
    case K::kUploadPut:
      return PutUpload(route, ex);
    case K::kUploadStatus:
      return UploadStatus(route, ex);
    case K::kUploadCancel:
      if (!uploads_.Find(route.upload_id, route.name) || !uploads_.Cancel(route.upload_id)) {
        RespondOciError(ex, 404, "BLOB_UPLOAD_UNKNOWN", "no such upload");
        return;
      }
      ex->Respond(204, BaseHeaders(), "");
      return;
    case K::kTagsList:
      return TagsList(route, ex);
    case K::kReferrers:
      return Referrers(route, ex);
    case K::kHealth:
    case K::kError:
      break;
  }
  RespondOciError(ex, 404, "UNSUPPORTED", "not found");
}

// ---- the fleet ----

Status OwnRegistry::SetCluster(peering::Cluster* cluster) {
  cluster_ = cluster;
  if (!enabled()) return Status::Ok();
  auto records = store_->ListFleetRecords();
  if (!records.ok()) return records.status();
  size_t restored = 0;
  for (const auto& [key, value] : *records) {
    auto u = peers::DecodeTagUpdate(value);
    if (!u.ok() || !OwnsRecord(u->key)) continue;
    restored += cluster_->Restore(*u);
  }
  if (restored)
    LOG_INFO("registry: %zu tag version(s) of '%s' restored into the fleet state", restored,
             name_.c_str());
  return Status::Ok();
}

bool OwnRegistry::OwnsRecord(const peers::TagKey& key) const {
  if (!enabled()) return false;
  if (key.registry == name_) return true;
  return (key.registry == push::kReplicationRecords || key.registry == push::kSyncReports) &&
         key.repository == name_;
}

void OwnRegistry::Authorize(const std::shared_ptr<http::Exchange>& ex, bool write,
                            std::function<void()> then) {
  if (!write && !cfg_.pull_requires_auth) return then();
  auth_.Check(ex, std::move(then));
}

void OwnRegistry::Sync(const std::string& repo, const util::Digest& digest,
                       std::vector<std::string> holders, BlobFilter want_blob,
                       std::function<void(Status)> done) {
  HoldManifest(repo, digest, std::move(holders), std::move(want_blob), std::move(done));
}

void OwnRegistry::PersistTag(const peers::TagUpdate& u, std::function<void(Status)> done) {
  cache::Store* store = store_;
  std::string key = FleetKey(u.key), value = peers::EncodeTagUpdate(u);
  writer_->Run([store, key, value] { return store->PutFleetRecord(key, value); }, std::move(done));
}

void OwnRegistry::RecordTag(const std::string& repo, const std::string& tag,
                            const util::Digest& digest, bool deleted,
                            std::vector<std::string> holders, std::function<void(Status)> done) {
  if (!cluster_) {
    env_.deferred->Post([done] { done(Status::Ok()); });
    return;
  }
  push::OwnTagValue v;
  v.deleted = deleted;
  if (!deleted) v.holders = holders.empty() ? std::vector<std::string>{cluster_->name()} : holders;
  peers::TagUpdate u = cluster_->RecordTag(name_, repo, tag, digest, push::EncodeTagValue(v));
  SyncTagToStore(u.key);
  // Kept, then told to the tag's owner in every region before the push is
  // acknowledged: a miss of this tag anywhere asks that owner.
  PersistTag(u, life_.Guard([this, u, done](Status st) {
    if (!st.ok()) return done(st);
    cluster_->PushTag(u, [u, done](size_t told, size_t asked) {
      if (told < asked)
        LOG_WARN(
            "registry: tag %s:%s reached %zu of %zu region owner(s) directly; gossip brings it to "
            "the rest",
            u.key.repository.c_str(), u.key.tag.c_str(), told, asked);
      done(Status::Ok());
    });
  }));
}

void OwnRegistry::SyncTagToStore(const peers::TagKey& key) {
  const peers::TagVersion* v = cluster_ ? cluster_->FindTag(key) : nullptr;
  if (!v) return;
  // Queued after every earlier write of this tag (the writer keeps order),
  // with the winner as the table holds it now: the store ends where the
  // table is, whatever order pushes and gossip came in.
  bool deleted = push::ParseTagValue(v->value).deleted;
  cache::TagInfo info{v->digest, env_.clock->WallMs()};
  cache::Store* store = store_;
  writer_->Run(
      [store, key, info, deleted] {
        return deleted ? store->DeleteTag(key.registry, key.repository, key.tag)
                       : store->PutTag(key.registry, key.repository, key.tag, info);
      },
      [](Status st) {
        if (!st.ok()) LOG_WARN("registry: could not write a tag: %s", st.ToString().c_str());
      });
}

void OwnRegistry::ApplyGossipedTag(const peers::TagUpdate& u) {
  push::OwnTagValue v = push::ParseTagValue(u.version.value);
  std::string repo = u.key.repository;
  bool deleted = v.deleted;
  PersistTag(u, [](Status st) {
    if (!st.ok()) LOG_WARN("registry: could not keep a gossiped tag: %s", st.ToString().c_str());
  });
  SyncTagToStore(u.key);
  if (deleted) return;
  std::vector<std::string> holders = v.holders;
  holders.push_back(u.version.origin);
  NoteHolders(u.version.digest, holders);
  // Pre-fetch the manifest (an index's children follow when asked for).
  {
    auto txn = store_->BeginRead();
    cache::Manifest m;
    if (txn.ok() && store_->GetManifest(*txn, u.version.digest, &m).ok()) return;
  }
  if (fetches_ >= kMaxFetches) return;
  auto steps = cluster_
                   ->Plan(u.version.digest, peers::Hop::kFleet, /*blob=*/false,
                          peers::Scope::kFleet, holders)
                   .steps;
  std::erase_if(steps, [&](const peers::PeerStep& s) {
    return std::find(holders.begin(), holders.end(), s.name) == holders.end();
  });
  if (steps.empty()) return;
  FetchManifest("/v2/" + repo + "/manifests/" + u.version.digest.ToString() + "?ns=" + name_,
                u.version.digest, std::move(steps), [](Status, util::Digest, cache::Manifest) {});
}

// ---- manifests ----

void OwnRegistry::GetManifest(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex,
                              peers::Hop hop) {
  std::optional<util::Digest> digest = route.digest;
  std::vector<std::string> prefer;
  cache::Manifest m;
  {
    auto txn = store_->BeginRead();
    if (!txn.ok()) {
      RespondOciError(ex, 503, "UNAVAILABLE", "cache unavailable");
      return;
    }
    // The fleet's table decides (the store follows it on the writer, a
    // little later); without a cluster, the store.
    const peers::TagVersion* v =
        !digest && cluster_ ? cluster_->FindTag({name_, route.name, route.tag}) : nullptr;
    if (v && push::ParseTagValue(v->value).deleted) {
      RespondOciError(ex, 404, "MANIFEST_UNKNOWN",
                      "manifest unknown: " + route.name + ":" + route.tag);
      return;
    }
    if (v) digest = v->digest;
    cache::TagInfo tag;
    if (!digest && store_->GetTag(*txn, name_, route.name, route.tag, &tag).ok())
      digest = tag.digest;
    if (digest && store_->GetManifest(*txn, *digest, &m).ok()) {
      txn = cache::ReadTxn();
      ex->outcome().result = "hit";
      ex->outcome().source = "cache";
      ServeManifest(ex, *digest, m, "");
      return;
    }
  }
  auto unknown = [ex, what = digest ? digest->ToString() : route.name + ":" + route.tag] {
    RespondOciError(ex, 404, "MANIFEST_UNKNOWN", "manifest unknown: " + what);
  };
  if (!cluster_ || hop == peers::Hop::kPeer) return unknown();
  std::vector<peers::PeerStep> steps;
  std::string target;
  if (digest) {
    // Its holders first, then the nodes the cluster would ask for any manifest.
    prefer = HoldersOf(*digest);
    if (!route.digest) {
      if (const peers::TagVersion* v = cluster_->FindTag({name_, route.name, route.tag}))
        prefer.push_back(v->origin);
    }
    steps = cluster_->Plan(*digest, hop, /*blob=*/false, peers::Scope::kFleet, prefer).steps;
    target = "/v2/" + route.name + "/manifests/" + digest->ToString() + "?ns=" + name_;
  } else if (hop == peers::Hop::kClient) {
    // A tag this node has not heard of: its keepers in our region were told
    // by the pushing node before the push was acknowledged (read your writes).
    steps = cluster_->TagRegionOwners({name_, route.name, route.tag});
    target = "/v2/" + route.name + "/manifests/" + route.tag + "?ns=" + name_;
  } else {
    return unknown();
  }
  if (steps.empty() || fetches_ >= kMaxFetches) return unknown();
  FetchManifest(target, digest, std::move(steps),
                [ex, unknown](Status st, util::Digest d, cache::Manifest m) {
                  if (!ex->active()) return;
                  if (!st.ok()) return unknown();
                  ex->outcome().result = "peer";
                  ex->outcome().source = "peer";
                  ServeManifest(ex, d, m, "");
                });
}

void OwnRegistry::FetchManifest(const std::string& target, std::optional<util::Digest> want,
                                std::vector<peers::PeerStep> steps,
                                std::function<void(Status, util::Digest, cache::Manifest)> done) {
  struct Attempt {
    std::vector<peers::PeerStep> steps;
    size_t next = 0;
    std::string body, media_type, answered_digest;
    int status = 0;
    std::shared_ptr<upstream::Fetch> fetch;
  };
  ++fetches_;
  auto at = std::make_shared<Attempt>();
  at->steps = std::move(steps);
  auto try_next = std::make_shared<std::function<void()>>();
  *try_next = life_.Guard([this, at, target, want, done, try_next] {
    if (at->next >= at->steps.size()) {
      --fetches_;
      done(Status::NotFound("no peer had it"), {}, {});
      *try_next = nullptr;  // breaks the cycle through the closure
      return;
    }
    const peers::PeerStep step = at->steps[at->next++];
    at->body.clear();
    at->status = 0;
    upstream::Callbacks cb;
    cb.on_head = [at](const upstream::ResponseHead& h) {
      at->status = h.status;
      const std::string* ct = h.Find("content-type");
      const std::string* dcd = h.Find("docker-content-digest");
      at->media_type = ct ? *ct : "";
      at->answered_digest = dcd ? *dcd : "";
    };
    cb.on_body = [at](const char* data, size_t len) { at->body.append(data, len); };
    cb.on_complete = life_.Guard([this, at, step, want, done, try_next](Status st) {
      util::Digest got = util::DigestOf(at->body);
      auto claimed = util::Digest::Parse(at->answered_digest);
      bool verified =
          st.ok() && at->status == 200 && (want ? got == *want : claimed.ok() && *claimed == got);
      if (!verified) {
        if (st.ok() && at->status == 200)
          cluster_->ReportFailure(step.name, "manifest failing its digest", true);
        (*try_next)();
        return;
      }
      --fetches_;
      cache::Manifest m{oci::ManifestMediaType(at->media_type, at->body), at->body};
      StoreFetched(got, m, {step.name});
      done(Status::Ok(), got, m);
      *try_next = nullptr;
    });
    upstream::FetchOptions opts;
    opts.max_body = max_manifest_bytes_;
    at->fetch = cluster_->Send(step, "GET", target, {{"Accept", kAcceptAll}}, std::move(cb), opts);
    if (!at->fetch) (*try_next)();
  });
  // Never inside the caller's call.
  env_.deferred->Post([try_next] {
    if (*try_next) (*try_next)();
  });
}

void OwnRegistry::StoreFetched(const util::Digest& d, const cache::Manifest& m,
                               const std::vector<std::string>& holders,
                               std::function<void(Status)> done) {
  auto parsed = push::ParsePushedManifest(m.media_type, m.bytes);
  if (!parsed.ok()) {  // served, not kept: we could not tell what it references
    if (done) env_.deferred->Post([done, st = parsed.status()] { done(st); });
    return;
  }
  cache::OwnManifest own = OwnRecordOf(d, *parsed, m.bytes.size(), env_.clock->WallMs());
  std::vector<std::string> all = HoldersOf(d);
  all.insert(all.end(), holders.begin(), holders.end());
  for (const util::Digest& r : own.references) NoteHolders(r, all);
  cache::Store* store = store_;
  writer_->Run(
      [store, own, m, registry = name_] { return store->PutOwnManifest(own, m, registry, "", ""); },
      [d, done](Status st) {
        if (!st.ok())
          LOG_WARN("registry: could not keep manifest %s: %s", d.ToString().c_str(),
                   st.ToString().c_str());
        if (done) done(st);
      });
}

void OwnRegistry::Replicate(const std::string& repo, const util::Digest& digest,
                            std::function<void(Status, std::vector<std::string>)> done) {
  struct Run {
    std::vector<peers::PeerStep> candidates;
    size_t next = 0, needed = 0, running = 0;
    std::vector<std::string> holders;
    std::string last_error;
    bool finished = false;
  };
  if (!cluster_ || cfg_.copies <= 1) {
    env_.deferred->Post(
        [this, done] { done(Status::Ok(), {cluster_ ? cluster_->name() : std::string()}); });
    return;
  }
  auto run = std::make_shared<Run>();
  run->candidates = cluster_->ReplicaCandidates();
  run->needed = cfg_.copies - 1;
  run->holders = {cluster_->name()};
  std::string target = "/v2/" + repo + "/manifests/" + digest.ToString() + "?ns=" + name_;
  auto launch = std::make_shared<std::function<void()>>();
  *launch = life_.Guard([this, run, target, done, launch, digest] {
    if (run->finished) return;
    while (run->running + run->holders.size() - 1 < run->needed &&
           run->next < run->candidates.size()) {
      peers::PeerStep step = run->candidates[run->next++];
      ++run->running;
      cluster_->Hold(step, target, life_.Guard([run, step, launch](Status st) {
        --run->running;
        if (st.ok()) {
          run->holders.push_back(step.name);
        } else {
          run->last_error = step.name + ": " + st.message();
        }
        (*launch)();
      }));
    }
    if (run->holders.size() - 1 >= run->needed ||
        (run->running == 0 && run->next >= run->candidates.size())) {
      run->finished = true;
      bool enough = run->holders.size() - 1 >= run->needed;
      if (!enough)
        LOG_WARN("registry: %s is held by %zu node(s), %llu wanted (%s)", digest.ToString().c_str(),
                 run->holders.size(), (unsigned long long)cfg_.copies,
                 run->last_error.empty() ? "too few live members" : run->last_error.c_str());
      done(enough ? Status::Ok()
                  : Status::Unavailable("only " + std::to_string(run->holders.size()) + " of " +
                                        std::to_string(cfg_.copies) + " copies could be stored"),
           run->holders);
      *launch = nullptr;
    }
  });
  env_.deferred->Post([launch] {
    if (*launch) (*launch)();
  });
}

void OwnRegistry::ServeHold(const std::shared_ptr<http::Exchange>& ex,
                            const std::string& oci_target, const std::string& sender) {
  oci::Route r = oci::RouteRequest("GET", oci_target);
  if (!enabled() || r.kind != oci::RouteKind::kManifest || !r.digest || !r.ns || *r.ns != name_) {
    RespondOciError(ex, 400, "UNSUPPORTED",
                    "a hold names a manifest of the own registry by digest");
    return;
  }
  uint64_t start = env_.clock->NowMs();
  HoldManifest(r.name, *r.digest, {sender}, nullptr, [this, ex, r, sender, start](Status st) {
    if (!ex->active()) return;
    if (!st.ok()) {
      LOG_WARN("registry: could not hold %s for %s: %s", r.digest->ToString().c_str(),
               sender.c_str(), st.ToString().c_str());
      RespondOciError(ex, 503, "UNAVAILABLE", st.message());
      return;
    }
    LOG_INFO("registry: holding %s (%s) for %s, in %llu ms", r.digest->ToString().c_str(),
             r.name.c_str(), sender.c_str(), (unsigned long long)(env_.clock->NowMs() - start));
    ex->Respond(200, BaseHeaders(), "");
  });
}

// What a manifest held here references; one that no longer parses (a
// stricter parser than the one that stored it) falls back to its record's
// references. NotFound unless it is own content here.
util::Result<push::PushedManifest> OwnRegistry::ReadOwn(const cache::ReadTxn& txn,
                                                        const util::Digest& d) const {
  cache::OwnManifest own;
  cache::Manifest m;
  if (!store_->GetOwnManifest(txn, d, &own).ok() || !store_->GetManifest(txn, d, &m).ok())
    return Status::NotFound("manifest " + d.ToString() + " is not held here");
  auto parsed = push::ParsePushedManifest(m.media_type, m.bytes);
  if (parsed.ok()) return parsed;
  push::PushedManifest refs;
  refs.blobs = own.references;
  return refs;
}

struct OwnRegistry::HoldRun {
  std::string repo;
  util::Digest top;
  std::vector<std::string> holders;
  BlobFilter want_blob;
  std::function<void(Status)> done;
  // Fetched from holders in earlier rounds: stored by the writer a little
  // later, so read from here meanwhile.
  std::map<util::Digest, cache::Manifest> fetched;
  int round = 0;
};

void OwnRegistry::HoldManifest(const std::string& repo, const util::Digest& digest,
                               std::vector<std::string> holders, BlobFilter want_blob,
                               std::function<void(Status)> done) {
  auto run = std::make_shared<HoldRun>();
  run->repo = repo;
  run->top = digest;
  run->holders = std::move(holders);
  run->want_blob = std::move(want_blob);
  run->done = std::move(done);
  // Never from inside the caller's call.
  env_.deferred->Post(life_.weak(), [this, run] { HoldRound(run); });
}

// One round: walk the tree as far as it is here; fetch the manifests it
// lacks (a level per round) and walk again; once none lack, hold its blobs.
void OwnRegistry::HoldRound(const std::shared_ptr<HoldRun>& run) {
  push::ManifestTree tree;
  {
    auto txn = store_->BeginRead();
    if (!txn.ok()) return run->done(txn.status());
    tree = push::WalkManifestTree(run->top, [&](const util::Digest& d) {
      auto f = run->fetched.find(d);
      if (f == run->fetched.end()) return ReadOwn(*txn, d);
      return push::ParsePushedManifest(f->second.media_type, f->second.bytes);
    });
  }
  if (tree.too_deep) return run->done(Status::InvalidArgument("indexes nested too deep"));
  if (!tree.missing.empty()) {
    std::vector<peers::PeerStep> steps;
    for (const std::string& h : run->holders)
      if (auto s = cluster_ ? cluster_->StepTo(h) : std::nullopt) steps.push_back(*s);
    if (steps.empty()) return run->done(Status::NotFound("no holder to fetch from"));
    if (run->round++ > push::kMaxIndexDepth)  // every round brings a level
      return run->done(Status::Unavailable("the image's manifests could not all be fetched"));
    auto join = util::Join::Make(life_.Guard([this, run](Status first, size_t, size_t) {
      if (!first.ok()) return run->done(first);
      HoldRound(run);
    }));
    for (const util::Digest& m : tree.missing) {
      FetchManifest("/v2/" + run->repo + "/manifests/" + m.ToString() + "?ns=" + name_, m, steps,
                    [run, add = join->Add()](Status st, util::Digest d, cache::Manifest fetched) {
                      if (st.ok()) run->fetched[d] = std::move(fetched);
                      add(st);
                    });
    }
    join->Close();
    return;
  }
  // Every manifest is here: the blobs, all at once; the first error wins.
  auto join = util::Join::Make([run](Status first, size_t, size_t) { run->done(first); });
  for (const util::Digest& b : tree.blobs)
    if (!run->want_blob || run->want_blob(b)) blob_holder_(b, run->repo, run->holders, join->Add());
  join->Close();
}

void OwnRegistry::PutManifest(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex) {
  auto keep = route;
  int rc = ex->ReadBody(max_manifest_bytes_,
                        [this, keep, ex](std::string body) { StoreManifest(keep, ex, body); });
  if (rc == 413) {
    RespondOciError(ex, 413, "SIZE_INVALID",
                    "manifest larger than " + std::to_string(max_manifest_bytes_) + " bytes");
  } else if (rc != 0) {
    RespondOciError(ex, rc, "MANIFEST_INVALID", "manifest body refused");
  }
}

void OwnRegistry::StoreManifest(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex,
                                const std::string& body, bool fetched_missing) {
  const std::string* ct = ex->request().Find("content-type");
  auto parsed = push::ParsePushedManifest(ct ? *ct : "", body);
  if (!parsed.ok()) {
    RespondOciError(ex, 400, "MANIFEST_INVALID", parsed.status().message());
    return;
  }
  util::Digest digest = util::DigestOf(body);
  if (route.digest && *route.digest != digest) {
    RespondOciError(ex, 400, "DIGEST_INVALID", "the manifest's digest is " + digest.ToString());
    return;
  }
  // A blob the client did not upload because a HEAD here found it in the
  // fleet (at another node) is fetched first: the push holds its own copy.
  std::vector<util::Digest> missing;
  for (const util::Digest& b : parsed->blobs)
    if (!keeper_->index().Find(b)) missing.push_back(b);
  if (!missing.empty() && cluster_ && !fetched_missing) {
    // Whatever each fetch's outcome: the store below refuses what is still missing.
    auto join =
        util::Join::Make(life_.Guard([this, keep = route, ex, body](Status, size_t, size_t) {
          if (ex->active()) StoreManifest(keep, ex, body, /*fetched_missing=*/true);
        }));
    for (const util::Digest& b : missing) blob_holder_(b, route.name, HoldersOf(b), join->Add());
    join->Close();
    return;
  }
  std::vector<util::Digest> adopt;  // cached blobs this manifest makes own content
  {
    auto txn = store_->BeginRead();
    if (!txn.ok()) {
      RespondOciError(ex, 503, "UNAVAILABLE", "cache unavailable");
      return;
    }
    for (const util::Digest& b : parsed->blobs) {
      const cache::BlobIndex::Entry* e = keeper_->index().Find(b);
      if (!e) {
        RespondOciError(ex, 400, "MANIFEST_BLOB_UNKNOWN",
                        "blob unknown to registry: " + b.ToString());
        return;
      }
      if (!e->own) adopt.push_back(b);
    }
    for (const util::Digest& c : parsed->manifests) {
      cache::Manifest m;
      if (!store_->GetManifest(*txn, c, &m).ok()) {
        RespondOciError(ex, 400, "MANIFEST_BLOB_UNKNOWN",
                        "manifest unknown to registry: " + c.ToString());
        return;
      }
    }
  }
  cache::OwnManifest own = OwnRecordOf(digest, *parsed, body.size(), env_.clock->WallMs());
  for (const util::Digest& b : adopt) {
    const cache::BlobIndex::Entry* e = keeper_->index().Find(b);
    keeper_->AddOwn(b, e ? e->size : 0, own.created_ms);
  }
  cache::Store* store = store_;
  std::string registry = name_, repo = route.name, tag = route.tag;
  cache::Manifest m{parsed->media_type, body};
  writer_->Run(
      [store, adopt, own, m, registry, repo, tag] {
        for (const util::Digest& b : adopt) {
          Status st = store->SetBlobOwn(b, true);
          if (!st.ok() && !st.IsNotFound()) return st;
        }
        return store->PutOwnManifest(own, m, registry, repo, tag);
      },
      life_.Guard([this, ex, own, repo, tag, ns = NsQuery(route)](Status st) {
        if (!st.ok()) {
          LOG_ERROR("registry: could not store manifest %s: %s", own.digest.ToString().c_str(),
                    st.ToString().c_str());
          RespondOciError(ex, 503, "UNAVAILABLE", "could not store the manifest");
          return;
        }
        ++stats_.manifests_pushed;
        LOG_INFO("registry: pushed %s%s%s (%s)", repo.c_str(), tag.empty() ? "@" : ":",
                 tag.empty() ? own.digest.ToString().c_str() : tag.c_str(),
                 own.digest.ToString().c_str());
        auto answer = life_.Guard([ex, own, repo, ns](Status st) {
          if (!ex->active()) return;
          if (!st.ok()) {
            RespondOciError(ex, 503, "UNAVAILABLE", "could not record the tag: " + st.message());
            return;
          }
          auto headers = BaseHeaders();
          headers.push_back(
              {"Location", "/v2/" + repo + "/manifests/" + own.digest.ToString() + ns});
          headers.push_back({"Docker-Content-Digest", own.digest.ToString()});
          if (own.subject) headers.push_back({"OCI-Subject", own.subject->ToString()});
          ex->Respond(201, headers, "");
        });
        // Durable first (copies), then the tag with its holders.
        Replicate(repo, own.digest,
                  life_.Guard(
                      [this, answer, repo, tag, own](Status st, std::vector<std::string> holders) {
                        if (!st.ok() || tag.empty()) return answer(st);
                        for (const util::Digest& r : own.references) NoteHolders(r, holders);
                        NoteHolders(own.digest, holders);
                        RecordTag(repo, tag, own.digest, /*deleted=*/false, holders, answer);
                      }));
      }));
}

void OwnRegistry::DeleteManifest(const oci::Route& route,
                                 const std::shared_ptr<http::Exchange>& ex) {
  cache::Store* store = store_;
  std::string registry = name_, repo = route.name;
  auto reply = life_.Guard([ex](Status st) {
    if (!ex->active()) return;
    if (st.IsNotFound()) {
      RespondOciError(ex, 404, "MANIFEST_UNKNOWN", "manifest unknown");
    } else if (!st.ok()) {
      RespondOciError(ex, 503, "UNAVAILABLE", "could not delete");
    } else {
      ex->Respond(202, BaseHeaders(), "");
    }
  });
  auto txn = store_->BeginRead();
  if (!txn.ok()) return reply(txn.status());
  if (!route.digest) {
    cache::TagInfo info;
    if (!store_->GetTag(*txn, name_, repo, route.tag, &info).ok())
      return reply(Status::NotFound(""));
    txn = cache::ReadTxn();
    std::string tag = route.tag;
    util::Digest was = info.digest;
    writer_->Run([store, registry, repo, tag] { return store->DeleteTag(registry, repo, tag); },
                 life_.Guard([this, repo, tag, was, reply](Status st) {
                   if (!st.ok()) return reply(st);
                   RecordTag(repo, tag, was, /*deleted=*/true, {}, reply);
                 }));
    return;
  }
  cache::OwnManifest own;
  if (!store_->GetOwnManifest(*txn, *route.digest, &own).ok()) return reply(Status::NotFound(""));
  // Tags of this repository that point at it go too (Distribution does the same).
  auto tags = store_->ListTags(*txn, name_, repo, "", SIZE_MAX);
  std::vector<std::string> pointing;
  if (tags.ok()) {
    for (const std::string& t : *tags) {
      cache::TagInfo info;
      if (store_->GetTag(*txn, name_, repo, t, &info).ok() && info.digest == *route.digest)
        pointing.push_back(t);
    }
  }
  txn = cache::ReadTxn();
  util::Digest d = *route.digest;
  writer_->Run(
      [store, registry, repo, pointing, d] {
        for (const std::string& t : pointing) {
          Status st = store->DeleteTag(registry, repo, t);
          if (!st.ok()) return st;
        }
        return store->DeleteManifest(d);
      },
      life_.Guard([this, repo, pointing, d, reply](Status st) {
        if (!st.ok()) return reply(st);
        // The tags that pointed at it are gone fleet-wide too.
        for (const std::string& t : pointing)
          RecordTag(repo, t, d, /*deleted=*/true, {}, [](Status) {});
        reply(st);
      }));
}

// ---- blobs ----

void OwnRegistry::DeleteBlob(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex) {
  if (!cfg_.blob_delete) {
    RespondOciError(ex, 405, "UNSUPPORTED", "blob deletes are disabled ([registry] blob_delete)");
    return;
  }
  const cache::BlobIndex::Entry* e = keeper_->index().Find(*route.digest);
  if (!e || !e->own) {
    RespondOciError(ex, 404, "BLOB_UNKNOWN", "blob unknown to registry");
    return;
  }
  keeper_->Remove(*route.digest, "deleted (blob DELETE)");
  ex->Respond(202, BaseHeaders(), "");
}

// ---- uploads ----

void OwnRegistry::RespondUploadError(const std::shared_ptr<http::Exchange>& ex, const Status& st) {
  if (!ex->active()) return;
  if (st.IsNotFound()) {
    RespondOciError(ex, 404, "BLOB_UPLOAD_UNKNOWN", "no such upload");
  } else if (st.code() == util::Code::kUnavailable) {
    RespondOciError(ex, 416, "BLOB_UPLOAD_INVALID", st.message());
  } else if (st.code() == util::Code::kPermissionDenied) {
    RespondOciError(ex, 403, "DENIED", st.message());
  } else if (st.code() == util::Code::kInvalidArgument) {
    RespondOciError(ex, 400, "DIGEST_INVALID", st.message());
  } else if (st.code() == util::Code::kResourceExhausted) {
    RespondOciError(ex, 429, "TOOMANYREQUESTS", st.message());
  } else if (st.code() != util::Code::kAborted) {
    RespondOciError(ex, 503, "UNAVAILABLE", "could not store the upload: " + st.message());
  }
}

void OwnRegistry::StartUpload(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex) {
  if (route.mount) {
    const cache::BlobIndex::Entry* e = keeper_->index().Find(*route.mount);
    if (e && e->own) {
      ++stats_.mounts;
      auto headers = BaseHeaders();
      headers.push_back(
          {"Location", "/v2/" + route.name + "/blobs/" + route.mount->ToString() + NsQuery(route)});
      headers.push_back({"Docker-Content-Digest", route.mount->ToString()});
      ex->Respond(201, headers, "");
      return;
    }
    // Not in this registry: an ordinary upload session instead (the spec's fallback).
  }
  auto id = uploads_.Create(route.name);
  if (!id.ok()) {
    RespondUploadError(ex, id.status());
    return;
  }
  if (route.query_digest) {  // monolithic: POST ?digest= with the blob as body
    FinishUpload(route, *id, ex);
    return;
  }
  auto headers = BaseHeaders();
  headers.push_back({"Location", "/v2/" + route.name + "/blobs/uploads/" + *id + NsQuery(route)});
  headers.push_back({"Range", "0-0"});
  headers.push_back({"Docker-Upload-UUID", *id});
  ex->Respond(202, headers, "");
}

void OwnRegistry::PatchUpload(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex) {
  auto view = uploads_.Find(route.upload_id, route.name);
  if (!view) {
    RespondOciError(ex, 404, "BLOB_UPLOAD_UNKNOWN", "no such upload");
    return;
  }
  auto range_headers = [location = "/v2/" + route.name + "/blobs/uploads/" + route.upload_id +
                                   NsQuery(route),
                        id = route.upload_id](uint64_t offset) {
    auto headers = BaseHeaders();
    headers.push_back({"Location", location});
    headers.push_back({"Range", RangeOf(offset)});
    headers.push_back({"Docker-Upload-UUID", id});
    return headers;
  };
  if (const std::string* cr = ex->request().Find("content-range")) {
    // "<start>-<end>": a chunk must start where the upload is.
    uint64_t start = 0;
    size_t dash = cr->find('-');
    bool ok = dash != std::string::npos && dash > 0;
    for (size_t i = 0; ok && i < dash; ++i) ok = (*cr)[i] >= '0' && (*cr)[i] <= '9';
    if (ok) start = std::strtoull(cr->c_str(), nullptr, 10);
    if (!ok || start != view->offset) {
      auto headers = range_headers(view->offset);
      headers.push_back({"Content-Type", "application/json"});
      ex->Respond(416, headers,
                  OciErrorBody("BLOB_UPLOAD_INVALID",
                               "a chunk must start at byte " + std::to_string(view->offset)));
      return;
    }
  }
  std::string id = route.upload_id;
  auto keep = route;
  Status st =
      uploads_.Append(id, ex, cfg_.max_size, [this, keep, id, ex, range_headers](Status st) {
        if (!st.ok()) {
          RespondUploadError(ex, st);
          return;
        }
        auto v = uploads_.Find(id, keep.name);
        if (!ex->active()) return;
        ex->Respond(202, range_headers(v ? v->offset : 0), "");
      });
  if (!st.ok()) RespondUploadError(ex, st);
}

void OwnRegistry::PutUpload(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex) {
  if (!route.query_digest) {
    RespondOciError(ex, 400, "DIGEST_INVALID", "PUT needs ?digest=");
    return;
  }
  if (!uploads_.Find(route.upload_id, route.name)) {
    RespondOciError(ex, 404, "BLOB_UPLOAD_UNKNOWN", "no such upload");
    return;
  }
  FinishUpload(route, route.upload_id, ex);
}

// The request's body (if any) is the last piece; then the digest decides.
void OwnRegistry::FinishUpload(const oci::Route& route, const std::string& id,
                               const std::shared_ptr<http::Exchange>& ex) {
  auto keep = route;
  auto finish = [this, keep, id, ex] {
    Status st = uploads_.Finish(
        id, *keep.query_digest, [this, keep, ex](Status st, Uploads::Published pub) {
          if (!st.ok()) {
            if (st.code() == util::Code::kInvalidArgument) ++stats_.digest_mismatches;
            RespondUploadError(ex, st);
            return;
          }
          ++stats_.blobs_pushed;
          if (!ex->active()) return;
          auto headers = BaseHeaders();
          headers.push_back(
              {"Location", "/v2/" + keep.name + "/blobs/" + pub.digest.ToString() + NsQuery(keep)});
          headers.push_back({"Docker-Content-Digest", pub.digest.ToString()});
          ex->Respond(201, headers, "");
        });
    if (!st.ok()) RespondUploadError(ex, st);
  };
  if (!ex->request().has_body) {
    finish();
    return;
  }
  Status st = uploads_.Append(id, ex, cfg_.max_size, [this, id, ex, finish](Status st) {
    if (!st.ok()) {
      if (st.code() != util::Code::kAborted) uploads_.Cancel(id);
      RespondUploadError(ex, st);
      return;
    }
    finish();
  });
  if (!st.ok()) {
    uploads_.Cancel(id);
    RespondUploadError(ex, st);
  }
}

void OwnRegistry::UploadStatus(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex) {
  auto view = uploads_.Find(route.upload_id, route.name);
  if (!view) {
    RespondOciError(ex, 404, "BLOB_UPLOAD_UNKNOWN", "no such upload");
    return;
  }
  auto headers = BaseHeaders();
  headers.push_back(
      {"Location", "/v2/" + route.name + "/blobs/uploads/" + route.upload_id + NsQuery(route)});
  headers.push_back({"Range", RangeOf(view->offset)});
  headers.push_back({"Docker-Upload-UUID", route.upload_id});
  ex->Respond(204, headers, "");
}

// ---- discovery ----

void OwnRegistry::TagsList(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex) {
  constexpr size_t kMaxPage = 10000;
  size_t n = route.n ? std::min<uint64_t>(*route.n, kMaxPage) : kMaxPage;
  auto txn = store_->BeginRead();
  auto tags = txn.ok() ? store_->ListTags(*txn, name_, route.name, route.last, n) : txn.status();
  if (!tags.ok()) {
    RespondOciError(ex, 503, "UNAVAILABLE", "cache unavailable");
    return;
  }
  if (tags->empty() && route.last.empty() && n > 0) {
    RespondOciError(ex, 404, "NAME_UNKNOWN", "repository name not known to registry");
    return;
  }
  nlohmann::json j = {{"name", route.name}, {"tags", *tags}};
  auto headers = BaseHeaders();
  headers.push_back({"Content-Type", "application/json"});
  if (!tags->empty() && tags->size() == n) {
    headers.push_back({"Link", "</v2/" + route.name + "/tags/list?n=" + std::to_string(n) +
                                   "&last=" + tags->back() + NsQuery(route, '&') +
                                   ">; rel=\"next\""});
  }
  ex->Respond(200, headers, j.dump());
}

void OwnRegistry::Referrers(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex) {
  auto txn = store_->BeginRead();
  auto refs = txn.ok() ? store_->ListReferrers(*txn, *route.digest) : txn.status();
  if (!refs.ok()) {
    RespondOciError(ex, 503, "UNAVAILABLE", "cache unavailable");
    return;
  }
  nlohmann::json manifests = nlohmann::json::array();
  for (const cache::OwnManifest& m : *refs) {
    if (!route.artifact_type.empty() && m.artifact_type != route.artifact_type) continue;
    nlohmann::json d = {
        {"mediaType", m.media_type}, {"digest", m.digest.ToString()}, {"size", m.size}};
    if (!m.artifact_type.empty()) d["artifactType"] = m.artifact_type;
    if (!m.annotations_json.empty()) {
      nlohmann::json a = nlohmann::json::parse(m.annotations_json, nullptr, false);
      if (!a.is_discarded()) d["annotations"] = a;
    }
    manifests.push_back(std::move(d));
  }
  nlohmann::json index = {{"schemaVersion", 2}, {"mediaType", kOciIndex}, {"manifests", manifests}};
  auto headers = BaseHeaders();
  headers.push_back({"Content-Type", kOciIndex});
  if (!route.artifact_type.empty()) headers.push_back({"OCI-Filters-Applied", "artifactType"});
  ex->Respond(200, headers, index.dump());
}

}  // namespace registry
