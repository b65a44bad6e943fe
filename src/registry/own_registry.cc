#include "src/registry/own_registry.h"

#include <nlohmann/json.hpp>

#include "push/manifest.h"
#include "push/tag_value.h"
#include "src/peering/fleet.h"
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

}  // namespace

OwnRegistry::OwnRegistry(Deps deps, const config::Config& cfg)
    : deps_(deps),
      name_(cfg.registry.name),
      default_upstream_marked_(cfg.default_upstream_marked),
      cfg_(cfg.registry),
      max_manifest_bytes_(cfg.server.max_manifest_bytes),
      store_(deps.store),
      writer_(deps.writer),
      keeper_(deps.keeper),
      uploads_(deps.env,
               {cfg.registry.max_uploads, cfg.registry.upload_timeout_ms, cfg.registry.max_size},
               deps.store, deps.writer, deps.keeper),
      gc_(deps.env, cfg.registry, deps.store, deps.writer, deps.keeper) {}

OwnRegistry::~OwnRegistry() = default;

void OwnRegistry::Start() {
  if (!enabled()) return;
  uploads_.Start();
  gc_.Start();
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
  deps_.auth->Check(ex, [this, keep, ex, hop] { Route(keep, ex, hop); });
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
      // Deleted fleet-wide: never served, from here or from a peer's copy.
      if (deps_.tags->Deleted(*route.digest)) {
        RespondOciError(ex, 404, "BLOB_UNKNOWN", "blob unknown to registry (deleted)");
        return;
      }
      return deps_.fills->Serve(nullptr, route, ex, hop);
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
        !digest && deps_.cluster ? deps_.tags->Find({name_, route.name, route.tag}) : nullptr;
    if (v && push::ParseTagValue(v->value).deleted) {
      RespondOciError(ex, 404, "MANIFEST_UNKNOWN",
                      "manifest unknown: " + route.name + ":" + route.tag);
      return;
    }
    if (v) digest = v->digest;
    cache::TagInfo tag;
    if (!digest && store_->GetTag(*txn, name_, route.name, route.tag, &tag).ok())
      digest = tag.digest;
    // Deleted fleet-wide (a tag of another repository may still name it).
    if (digest && deps_.tags->Deleted(*digest)) {
      RespondOciError(ex, 404, "MANIFEST_UNKNOWN",
                      "manifest unknown: " + digest->ToString() + " (deleted)");
      return;
    }
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
  if (!deps_.cluster || hop == peers::Hop::kPeer) return unknown();
  std::vector<peers::PeerStep> steps;
  std::string target;
  if (digest) {
    // Its holders first, then the nodes the cluster would ask for any manifest.
    prefer = deps_.hints->Of(*digest);
    if (!route.digest) {
      if (const peers::TagVersion* v = deps_.tags->Find({name_, route.name, route.tag}))
        prefer.push_back(v->origin);
    }
    steps = deps_.cluster->Plan(*digest, hop, /*blob=*/false, peers::Scope::kFleet, prefer).steps;
    target = "/v2/" + route.name + "/manifests/" + digest->ToString() + "?ns=" + name_;
  } else if (hop == peers::Hop::kClient) {
    // A tag this node has not heard of: its keepers in our region were told
    // by the pushing node before the push was acknowledged (read your writes).
    steps = deps_.cluster->TagRegionOwners({name_, route.name, route.tag});
    target = "/v2/" + route.name + "/manifests/" + route.tag + "?ns=" + name_;
  } else {
    return unknown();
  }
  if (steps.empty()) return unknown();
  Status st =
      deps_.holdings->FetchManifest(target, digest, std::move(steps),
                                    [ex, unknown](Status st, util::Digest d, cache::Manifest m) {
                                      if (!ex->active()) return;
                                      if (!st.ok()) return unknown();
                                      ex->outcome().result = "peer";
                                      ex->outcome().source = "peer";
                                      ServeManifest(ex, d, m, "");
                                    });
  if (!st.ok()) unknown();
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

// A manifest PUT, step by step: StoreManifest checks the body and first
// fetches blobs the fleet has but this node lacks; FindReferences checks
// that everything it names is here; WriteManifest stores it; Acknowledge
// makes it durable (copies), records its tag, and answers 201.
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
  if (!missing.empty() && deps_.cluster && !fetched_missing) {
    // Whatever each fetch's outcome: FindReferences refuses what is still missing.
    auto join =
        util::Join::Make(life_.Guard([this, keep = route, ex, body](Status, size_t, size_t) {
          if (ex->active()) StoreManifest(keep, ex, body, /*fetched_missing=*/true);
        }));
    for (const util::Digest& b : missing)
      deps_.holdings->HoldBlob(b, route.name, deps_.hints->Of(b), join->Add());
    join->Close();
    return;
  }
  std::vector<util::Digest> adopt;
  if (!FindReferences(ex, *parsed, &adopt)) return;
  WriteManifest(route, ex, *parsed, body, digest, adopt);
}

bool OwnRegistry::FindReferences(const std::shared_ptr<http::Exchange>& ex,
                                 const push::PushedManifest& parsed,
                                 std::vector<util::Digest>* adopt) {
  auto txn = store_->BeginRead();
  if (!txn.ok()) {
    RespondOciError(ex, 503, "UNAVAILABLE", "cache unavailable");
    return false;
  }
  for (const util::Digest& b : parsed.blobs) {
    const cache::BlobIndex::Entry* e = keeper_->index().Find(b);
    if (!e) {
      RespondOciError(ex, 400, "MANIFEST_BLOB_UNKNOWN",
                      "blob unknown to registry: " + b.ToString());
      return false;
    }
    if (!e->own) adopt->push_back(b);
  }
  for (const util::Digest& c : parsed.manifests) {
    cache::Manifest m;
    if (!store_->GetManifest(*txn, c, &m).ok()) {
      RespondOciError(ex, 400, "MANIFEST_BLOB_UNKNOWN",
                      "manifest unknown to registry: " + c.ToString());
      return false;
    }
  }
  return true;
}

void OwnRegistry::WriteManifest(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex,
                                const push::PushedManifest& parsed, const std::string& body,
                                const util::Digest& digest,
                                const std::vector<util::Digest>& adopt) {
  cache::OwnManifest own = OwnRecordOf(digest, parsed, body.size(), deps_.env.clock->WallMs());
  // Own in the index at once, so no eviction takes them before the job
  // runs; a failed write gives them back (ReleaseAdopted).
  for (const util::Digest& b : adopt) {
    const cache::BlobIndex::Entry* e = keeper_->index().Find(b);
    keeper_->AddOwn(b, e ? e->size : 0, own.created_ms);
  }
  cache::Store* store = store_;
  std::string registry = name_, repo = route.name, tag = route.tag;
  cache::Manifest m{parsed.media_type, body};
  writer_->Run(
      [store, blobs = parsed.blobs, own, m, registry, repo, tag] {
        // Checked again here, in order with every other write: the garbage
        // collection may have deleted a blob since the index said it was
        // here (OwnGc decides and deletes in one writer job). Then the PUT
        // fails cleanly; a manifest is never stored without its blobs. The
        // store's own flags are decided here too, from the store itself:
        // every blob the manifest names becomes own content, whatever the
        // index said when the PUT was read.
        std::vector<util::Digest> cached;
        {
          auto txn = store->BeginRead();
          if (!txn.ok()) return txn.status();
          cache::BlobInfo info;
          for (const util::Digest& b : blobs) {
            if (!store->GetBlob(*txn, b, &info).ok())
              return Status::NotFound("blob unknown to registry: " + b.ToString());
            if (!info.own) cached.push_back(b);
          }
        }
        for (const util::Digest& b : cached)
          if (Status st = store->SetBlobOwn(b, true); !st.ok()) return st;
        return store->PutOwnManifest(own, m, registry, repo, tag);
      },
      life_.Guard([this, ex, own, repo, tag, adopt, ns = NsQuery(route)](Status st) {
        if (!st.ok()) ReleaseAdopted(adopt);
        if (st.IsNotFound()) {
          RespondOciError(ex, 400, "MANIFEST_BLOB_UNKNOWN", st.message());
          return;
        }
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
        Acknowledge(ex, own, repo, tag, ns);
      }));
}

// A PUT whose write failed: each blob it made own in the index is again
// what the store says it is: cached (evictable, in the cache's budget),
// still own (another manifest's, or marked before the write failed, which
// OwnGc collects once unreferenced), or gone.
void OwnRegistry::ReleaseAdopted(const std::vector<util::Digest>& adopt) {
  auto txn = store_->BeginRead();
  if (!txn.ok()) return;  // the index keeps them own until the next start rebuilds it
  for (const util::Digest& b : adopt) {
    cache::BlobInfo info;
    Status st = store_->GetBlob(*txn, b, &info);
    if (st.IsNotFound())
      keeper_->Forget(b, "unlisted (deleted while a push adopted it)");
    else if (st.ok() && !info.own)
      keeper_->Disown(b);
  }
}

void OwnRegistry::Acknowledge(const std::shared_ptr<http::Exchange>& ex,
                              const cache::OwnManifest& own, const std::string& repo,
                              const std::string& tag, const std::string& ns) {
  auto answer = life_.Guard([ex, own, repo, ns](Status st) {
    if (!ex->active()) return;
    if (!st.ok()) {
      RespondOciError(ex, 503, "UNAVAILABLE", "could not record the tag: " + st.message());
      return;
    }
    auto headers = BaseHeaders();
    headers.push_back({"Location", "/v2/" + repo + "/manifests/" + own.digest.ToString() + ns});
    headers.push_back({"Docker-Content-Digest", own.digest.ToString()});
    if (own.subject) headers.push_back({"OCI-Subject", own.subject->ToString()});
    ex->Respond(201, headers, "");
  });
  // Durable first (copies), then the tag with its holders.
  auto replicate = [this, answer, repo, tag, own] {
    deps_.holdings->Replicate(
        repo, own.digest,
        life_.Guard([this, answer, repo, tag, own](Status st, std::vector<std::string> holders) {
          if (!st.ok() || tag.empty()) return answer(st);
          for (const util::Digest& r : own.references) deps_.hints->Note(r, holders);
          deps_.hints->Note(own.digest, holders);
          deps_.tags->Record(repo, tag, own.digest, /*deleted=*/false, holders, answer);
        }));
  };
  // Deleted before: this push brings it back, fleet-wide, before the
  // replicas fetch it from here.
  UndeleteThen(own.digest, life_.Guard([answer, replicate](Status st) {
    if (!st.ok()) return answer(st);
    replicate();
  }));
}

void OwnRegistry::UndeleteThen(const util::Digest& d, std::function<void(Status)> then) {
  if (!deps_.tags->Deleted(d)) {
    deps_.env.deferred->Post([then] { then(Status::Ok()); });
    return;
  }
  LOG_INFO("registry: %s was deleted; pushed again", d.ToString().c_str());
  deps_.tags->RecordDeletion(d, /*deleted=*/false, std::move(then));
}

void OwnRegistry::DropDeleted(const util::Digest& d) {
  if (keeper_->index().Find(d)) keeper_->Remove(d, "deleted fleet-wide");
  cache::Store* store = store_;
  writer_->Run(
      [store, d] {
        Status st = store->DeleteManifest(d);
        return st.IsNotFound() ? Status::Ok() : st;
      },
      [d](Status st) {
        if (!st.ok())
          LOG_WARN("registry: could not drop deleted manifest %s: %s", d.ToString().c_str(),
                   st.ToString().c_str());
      });
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
                   deps_.tags->Record(repo, tag, was, /*deleted=*/true, {}, reply);
                 }));
    return;
  }
  util::Digest d = *route.digest;
  if (deps_.tags->Deleted(d)) return reply(Status::NotFound(""));
  cache::OwnManifest own;
  bool here = store_->GetOwnManifest(*txn, d, &own).ok();
  // Tags of this repository that point at it go too (Distribution does the same).
  auto tags = store_->ListTags(*txn, name_, repo, "", SIZE_MAX);
  std::vector<std::string> pointing;
  if (tags.ok()) {
    for (const std::string& t : *tags) {
      cache::TagInfo info;
      if (store_->GetTag(*txn, name_, repo, t, &info).ok() && info.digest == d)
        pointing.push_back(t);
    }
  }
  txn = cache::ReadTxn();
  // Deleted here, then recorded for the fleet: every node answers 404 for
  // it from then on and drops its copies (DropDeleted).
  auto remove = [this, store, registry, repo, pointing, d, reply] {
    writer_->Run(
        [store, registry, repo, pointing, d] {
          for (const std::string& t : pointing) {
            Status st = store->DeleteTag(registry, repo, t);
            if (!st.ok()) return st;
          }
          Status st = store->DeleteManifest(d);
          return st.IsNotFound() ? Status::Ok() : st;
        },
        life_.Guard([this, repo, pointing, d, reply](Status st) {
          if (!st.ok()) return reply(st);
          // The tags that pointed at it are gone fleet-wide too.
          for (const std::string& t : pointing)
            deps_.tags->Record(repo, t, d, /*deleted=*/true, {}, [](Status) {});
          deps_.tags->RecordDeletion(d, /*deleted=*/true, reply);
        }));
  };
  if (here) return remove();
  if (!deps_.cluster) return reply(Status::NotFound(""));
  // Not here: a DELETE at any node deletes what the fleet holds (a durable
  // copy elsewhere), once a holder shows it has it.
  std::vector<peers::PeerStep> steps =
      deps_.cluster
          ->Plan(d, peers::Hop::kClient, /*blob=*/false, peers::Scope::kFleet, deps_.hints->Of(d))
          .steps;
  if (steps.empty()) return reply(Status::NotFound(""));
  Status st = deps_.holdings->FetchManifest(
      "/v2/" + repo + "/manifests/" + d.ToString() + "?ns=" + name_, d, std::move(steps),
      life_.Guard([remove, reply](Status st, util::Digest, cache::Manifest) {
        if (!st.ok()) return reply(Status::NotFound(""));
        remove();
      }));
  if (!st.ok()) reply(Status::Unavailable(st.message()));
}

// ---- blobs ----

void OwnRegistry::DeleteBlob(const oci::Route& route, const std::shared_ptr<http::Exchange>& ex) {
  if (!cfg_.blob_delete) {
    RespondOciError(ex, 405, "UNSUPPORTED", "blob deletes are disabled ([registry] blob_delete)");
    return;
  }
  util::Digest d = *route.digest;
  // Deleted here, then recorded for the fleet: every node answers 404 for
  // it from then on and drops its copies (DropDeleted).
  auto remove = life_.Guard([this, ex, d](bool found) {
    if (!ex->active()) return;
    if (!found) return RespondOciError(ex, 404, "BLOB_UNKNOWN", "blob unknown to registry");
    if (keeper_->index().Find(d)) keeper_->Remove(d, "deleted (blob DELETE)");
    deps_.tags->RecordDeletion(d, /*deleted=*/true, life_.Guard([ex](Status st) {
      if (!ex->active()) return;
      if (!st.ok()) return RespondOciError(ex, 503, "UNAVAILABLE", "could not record the delete");
      ex->Respond(202, BaseHeaders(), "");
    }));
  });
  const cache::BlobIndex::Entry* e = keeper_->index().Find(d);
  if (deps_.tags->Deleted(d) || (e && !e->own) || (!e && !deps_.cluster)) return remove(false);
  if (e) return remove(true);
  // Not here: a DELETE at any node deletes what the fleet holds (a durable
  // copy elsewhere), once a HEAD finds it as a client's would.
  deps_.fills->Locate(route, remove);
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
    if (e && e->own && !deps_.tags->Deleted(*route.mount)) {
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
          UndeleteThen(pub.digest, life_.Guard([this, keep, ex, pub](Status st) {
            if (!ex->active()) return;
            if (!st.ok())
              return RespondOciError(ex, 503, "UNAVAILABLE",
                                     "could not record the push: " + st.message());
            auto headers = BaseHeaders();
            headers.push_back({"Location", "/v2/" + keep.name + "/blobs/" + pub.digest.ToString() +
                                               NsQuery(keep)});
            headers.push_back({"Docker-Content-Digest", pub.digest.ToString()});
            ex->Respond(201, headers, "");
          }));
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
