#include "src/registry/fleet_tags.h"

#include <algorithm>
#include <utility>

#include "peers/message_codec.h"
#include "push/replication.h"
#include "push/tag_value.h"
#include "src/peering/fleet.h"
#include "util/log.h"

namespace registry {

using util::Status;

namespace {

std::string FleetKey(const peers::TagKey& k) {
  return k.registry + '\0' + k.repository + '\0' + k.tag;
}

}  // namespace

FleetTags::FleetTags(io::Env env, const config::Config& cfg, cache::Store* store,
                     WriterBridge* writer, peers::HolderHints* hints, Holdings* holdings,
                     peering::Fleet* cluster)
    : env_(env),
      name_(cfg.registry.name),
      store_(store),
      writer_(writer),
      hints_(hints),
      holdings_(holdings),
      cluster_(cluster) {}

const peers::TagVersion* FleetTags::Find(const peers::TagKey& key) const {
  return cluster_ ? cluster_->FindTag(key) : nullptr;
}

Status FleetTags::Restore() {
  if (name_.empty() || !cluster_) return Status::Ok();
  auto records = store_->ListFleetRecords();
  if (!records.ok()) return records.status();
  size_t restored = 0, unreadable = 0;
  std::string why;
  for (const auto& [key, value] : *records) {
    auto u = peers::DecodeTagUpdate(value);
    if (!u.ok()) {
      ++unreadable;
      why = u.status().message();
      continue;
    }
    if (!Owns(u->key)) continue;
    restored += cluster_->Restore(*u);
  }
  // A record this release cannot read (a newer one wrote it, before a
  // downgrade): left in place, and anti-entropy brings the fleet's state.
  if (unreadable)
    LOG_WARN("registry: %zu kept fleet record(s) not restored (last: %s)", unreadable, why.c_str());
  if (restored)
    LOG_INFO("registry: %zu tag version(s) of '%s' restored into the fleet state", restored,
             name_.c_str());
  return Status::Ok();
}

bool FleetTags::Owns(const peers::TagKey& key) const {
  if (name_.empty()) return false;
  if (key.registry == name_) return true;
  return (key.registry == push::kReplicationRecords || key.registry == push::kSyncReports ||
          key.registry == push::kDeletedContent) &&
         key.repository == name_;
}

void FleetTags::Persist(const peers::TagUpdate& u, std::function<void(Status)> done) {
  cache::Store* store = store_;
  std::string key = FleetKey(u.key), value = peers::EncodeTagUpdate(u);
  writer_->Run([store, key, value] { return store->PutFleetRecord(key, value); }, std::move(done));
}

void FleetTags::Record(const std::string& repo, const std::string& tag, const util::Digest& digest,
                       bool deleted, std::vector<std::string> holders,
                       std::function<void(Status)> done) {
  if (!cluster_) {
    env_.deferred->Post([done] { done(Status::Ok()); });
    return;
  }
  push::OwnTagValue v;
  v.deleted = deleted;
  if (!deleted) v.holders = holders.empty() ? std::vector<std::string>{cluster_->name()} : holders;
  peers::TagUpdate u = cluster_->RecordTag(name_, repo, tag, digest, push::EncodeTagValue(v));
  SyncToStore(u.key);
  KeepAndTell(u, std::move(done));
}

void FleetTags::KeepAndTell(const peers::TagUpdate& u, std::function<void(Status)> done) {
  Persist(u, life_.Guard([this, u, done](Status st) {
    if (!st.ok()) return done(st);
    cluster_->PushTag(u, [u, done](size_t told, size_t asked) {
      if (told < asked)
        LOG_WARN(
            "registry: %s %s:%s reached %zu of %zu region owner(s) directly; gossip brings it to "
            "the rest",
            u.key.registry.c_str(), u.key.repository.c_str(), u.key.tag.c_str(), told, asked);
      done(Status::Ok());
    });
  }));
}

void FleetTags::RecordDeletion(const util::Digest& digest, bool deleted,
                               std::function<void(Status)> done) {
  if (!cluster_) {
    env_.deferred->Post([done] { done(Status::Ok()); });
    return;
  }
  push::OwnTagValue v;
  v.deleted = deleted;
  KeepAndTell(cluster_->RecordTag(push::kDeletedContent, name_, digest.ToString(), digest,
                                  push::EncodeTagValue(v)),
              std::move(done));
}

bool FleetTags::Deleted(const util::Digest& digest) const {
  const peers::TagVersion* v = Find({push::kDeletedContent, name_, digest.ToString()});
  return v && push::ParseTagValue(v->value).deleted;
}

void FleetTags::SyncToStore(const peers::TagKey& key) {
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

void FleetTags::ApplyGossiped(const peers::TagUpdate& u) {
  push::OwnTagValue v = push::ParseTagValue(u.version.value);
  std::string repo = u.key.repository;
  bool deleted = v.deleted;
  Persist(u, [](Status st) {
    if (!st.ok()) LOG_WARN("registry: could not keep a gossiped tag: %s", st.ToString().c_str());
  });
  if (u.key.registry == push::kDeletedContent) return;
  SyncToStore(u.key);
  if (deleted) return;
  std::vector<std::string> holders = v.holders;
  holders.push_back(u.version.origin);
  hints_->Note(u.version.digest, holders);
  // Pre-fetch the manifest (an index's children follow when asked for).
  {
    auto txn = store_->BeginRead();
    cache::Manifest m;
    if (txn.ok() && store_->GetManifest(*txn, u.version.digest, &m).ok()) return;
  }
  auto steps = cluster_
                   ->Plan(u.version.digest, peers::Hop::kFleet, /*blob=*/false,
                          peers::Scope::kFleet, holders)
                   .steps;
  std::erase_if(steps, [&](const peers::PeerStep& s) {
    return std::find(holders.begin(), holders.end(), s.name) == holders.end();
  });
  if (steps.empty()) return;
  // Best effort: when too many fetches run, the first pull fetches it.
  Status st = holdings_->FetchManifest(
      "/v2/" + repo + "/manifests/" + u.version.digest.ToString() + "?ns=" + name_,
      u.version.digest, std::move(steps), [](Status, util::Digest, cache::Manifest) {});
  if (!st.ok())
    LOG_INFO("registry: %s; %s is fetched when pulled", st.message().c_str(),
             u.version.digest.ToString().c_str());
}

}  // namespace registry
