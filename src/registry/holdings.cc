#include "src/registry/holdings.h"

#include <algorithm>
#include <utility>

#include "push/manifest_tree.h"
#include "src/oci/media_types.h"
#include "src/oci/router.h"
#include "src/peering/fleet.h"
#include "src/registry/oci_errors.h"
#include "util/join.h"
#include "util/log.h"
#include "util/sha256.h"

namespace registry {

using util::Status;

namespace {

constexpr const char* kAcceptAll =
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

}  // namespace

struct Holdings::HoldRun {
  std::string repo;
  util::Digest top;
  std::vector<std::string> holders;
  BlobFilter want_blob;
  std::function<void(Status)> done;
  int round = 0;
};

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

Holdings::Holdings(io::Env env, const config::Config& cfg, cache::Store* store,
                   WriterBridge* writer, CacheKeeper* keeper, Fills* fills,
                   peers::HolderHints* hints, peering::Fleet* cluster)
    : env_(env),
      name_(cfg.registry.name),
      copies_(cfg.registry.copies),
      budget_(cfg.registry.max_size),
      max_manifest_bytes_(cfg.server.max_manifest_bytes),
      store_(store),
      writer_(writer),
      keeper_(keeper),
      fills_(fills),
      hints_(hints),
      cluster_(cluster) {}

void Holdings::HoldBlob(const util::Digest& d, const std::string& repo,
                        std::vector<std::string> holders, std::function<void(Status)> done) {
  hints_->Note(d, holders);
  // Once the blob is here: own content, never evicted.
  fills_->WhenHere(d, repo, life_.Guard([this, d, done] {
    const cache::BlobIndex::Entry* e = keeper_->index().Find(d);
    if (!e) return done(Status::NotFound("blob " + d.ToString() + " could not be fetched"));
    if (e->own) return done(Status::Ok());
    // A replica counts against the registry's budget like a push (it stays
    // here as ordinary, evictable cache when it does not fit).
    if (keeper_->own_bytes() + e->size > budget_)
      return done(
          Status::ResourceExhausted("[registry] max_size would be exceeded by " + d.ToString()));
    keeper_->AddOwn(d, e->size, env_.clock->WallMs());
    cache::Store* store = store_;
    writer_->Run([store, d] { return store->SetBlobOwn(d, true); }, done);
  }));
}

void Holdings::Sync(const std::string& repo, const util::Digest& digest,
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

Status Holdings::FetchManifest(const std::string& target, std::optional<util::Digest> want,
                               std::vector<peers::PeerStep> steps, FetchDone done) {
  if (fetches_ >= kMaxFetches)
    return Status::ResourceExhausted("too many manifest fetches from peers in flight");
  struct Attempt {
    std::vector<peers::PeerStep> steps;
    size_t next = 0;
    std::string body, media_type, answered_digest;
    int status = 0;
    std::shared_ptr<upstream::InFlight> fetch;
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
  return Status::Ok();
}

void Holdings::StoreFetched(const util::Digest& d, const cache::Manifest& m,
                            const std::vector<std::string>& holders) {
  auto parsed = push::ParsePushedManifest(m.media_type, m.bytes);
  if (!parsed.ok()) return;  // served, not kept: we could not tell what it references
  cache::OwnManifest own = OwnRecordOf(d, *parsed, m.bytes.size(), env_.clock->WallMs());
  std::vector<std::string> all = hints_->Of(d);
  all.insert(all.end(), holders.begin(), holders.end());
  for (const util::Digest& r : own.references) hints_->Note(r, all);
  cache::Store* store = store_;
  writer_->Run(
      [store, own, m, registry = name_] { return store->PutOwnManifest(own, m, registry, "", ""); },
      [d](Status st) {
        if (!st.ok())
          LOG_WARN("registry: could not keep manifest %s: %s", d.ToString().c_str(),
                   st.ToString().c_str());
      });
}

void Holdings::Replicate(const std::string& repo, const util::Digest& digest,
                         std::function<void(Status, std::vector<std::string>)> done) {
  struct Run {
    std::vector<peers::PeerStep> candidates;
    size_t next = 0, needed = 0, running = 0;
    std::vector<std::string> holders;
    std::string last_error;
    bool finished = false;
  };
  if (!cluster_ || copies_ <= 1) {
    env_.deferred->Post(
        [this, done] { done(Status::Ok(), {cluster_ ? cluster_->name() : std::string()}); });
    return;
  }
  auto run = std::make_shared<Run>();
  run->candidates = cluster_->ReplicaCandidates();
  run->needed = copies_ - 1;
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
                 run->holders.size(), (unsigned long long)copies_,
                 run->last_error.empty() ? "too few live members" : run->last_error.c_str());
      done(enough ? Status::Ok()
                  : Status::Unavailable("only " + std::to_string(run->holders.size()) + " of " +
                                        std::to_string(copies_) + " copies could be stored"),
           run->holders);
      *launch = nullptr;
    }
  });
  env_.deferred->Post([launch] {
    if (*launch) (*launch)();
  });
}

void Holdings::ServeHold(const std::shared_ptr<http::Exchange>& ex, const std::string& oci_target,
                         const std::string& sender) {
  oci::Route r = oci::RouteRequest("GET", oci_target);
  if (name_.empty() || r.kind != oci::RouteKind::kManifest || !r.digest || !r.ns ||
      *r.ns != name_) {
    RespondOciError(ex, 400, "UNSUPPORTED",
                    "a hold names a manifest of the own registry by digest");
    return;
  }
  uint64_t start = env_.clock->NowMs();
  Sync(r.name, *r.digest, {sender}, nullptr, [this, ex, r, sender, start](Status st) {
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
util::Result<push::PushedManifest> Holdings::ReadOwn(const cache::ReadTxn& txn,
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

// One round: walk the tree as far as it is here; fetch the manifests it
// lacks (a level per round) and walk again; once none lack, hold its blobs.
void Holdings::HoldRound(const std::shared_ptr<HoldRun>& run) {
  push::ManifestTree tree;
  {
    auto txn = store_->BeginRead();
    if (!txn.ok()) return run->done(txn.status());
    tree =
        push::WalkManifestTree(run->top, [&](const util::Digest& d) { return ReadOwn(*txn, d); });
  }
  if (tree.too_deep) return run->done(Status::InvalidArgument("indexes nested too deep"));
  if (!tree.missing.empty()) {
    std::vector<peers::PeerStep> steps;
    for (const std::string& h : run->holders)
      if (auto s = cluster_ ? cluster_->StepTo(h) : std::nullopt) steps.push_back(*s);
    if (steps.empty()) return run->done(Status::NotFound("no holder to fetch from"));
    if (run->round++ > push::kMaxIndexDepth)  // every round brings a level
      return run->done(Status::Unavailable("the image's manifests could not all be fetched"));
    // The next round reads what this one fetched from the store: a no-op
    // writer job queued after their writes answers once they are committed
    // (one that failed is missing again, and fetched again), so a hold is
    // never answered before what it holds is on disk.
    auto join = util::Join::Make(life_.Guard([this, run](Status first, size_t, size_t) {
      if (!first.ok()) return run->done(first);
      writer_->Run([] { return Status::Ok(); },
                   life_.Guard([this, run](Status) { HoldRound(run); }));
    }));
    for (const util::Digest& m : tree.missing) {
      auto add = join->Add();
      Status st =
          FetchManifest("/v2/" + run->repo + "/manifests/" + m.ToString() + "?ns=" + name_, m,
                        steps, [add](Status st, util::Digest, cache::Manifest) { add(st); });
      if (!st.ok()) add(st);
    }
    join->Close();
    return;
  }
  // Every manifest is here: the blobs, all at once; the first error wins.
  auto join = util::Join::Make([run](Status first, size_t, size_t) { run->done(first); });
  for (const util::Digest& b : tree.blobs)
    if (!run->want_blob || run->want_blob(b)) HoldBlob(b, run->repo, run->holders, join->Add());
  join->Close();
}

}  // namespace registry
