#include "src/registry/replicator.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "peers/rendezvous.h"
#include "push/manifest.h"
#include "push/manifest_tree.h"
#include "push/tag_value.h"
#include "src/http/json_response.h"
#include "src/peering/fleet.h"
#include "src/registry/oci_errors.h"
#include "util/join.h"
#include "util/sha256.h"

namespace registry {

using nlohmann::json;
using util::Status;

namespace {

constexpr size_t kMaxHolders = 8;
constexpr uint64_t kMaxBodyBytes = 4096;

std::string CommaList(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
  return out;
}

}  // namespace

Replicator::Replicator(io::Env env, const config::Config& cfg, cache::Store* store,
                       Holdings* holdings, FleetTags* tags, PushAuth* auth, peering::Fleet* cluster)
    : env_(env),
      cfg_(cfg.registry),
      store_(store),
      name_(cfg.registry.name),
      holdings_(holdings),
      tags_(tags),
      auth_(auth),
      cluster_(cluster),
      pacer_(cfg.registry.prefetch_rate) {}

Replicator::~Replicator() = default;

void Replicator::Start() {
  if (name_.empty() || !cluster_) return;
  timer_.Init(env_.loop, this, uv_timer_init);
  uv_timer_start(timer_.get(), OnTimer, 1000, 1000);
  uv_unref(timer_.base());
}

void Replicator::Stop() {
  timer_.Close();
  jobs_.clear();
}

void Replicator::OnTimer(uv_timer_t* t) { static_cast<Replicator*>(t->data)->Tick(); }

// ---- fleet state ----

void Replicator::Record(const std::string& kind, const std::string& key, const std::string& value) {
  peers::TagUpdate u = cluster_->RecordTag(kind, name_, key, util::DigestOf(value), value);
  tags_->Persist(u, [](Status st) {
    if (!st.ok()) LOG_WARN("replication: could not keep a fleet record: %s", st.ToString().c_str());
  });
}

void Replicator::Apply(const peers::TagUpdate& u) {
  tags_->Persist(u, [](Status st) {
    if (!st.ok())
      LOG_WARN("replication: could not keep a gossiped fleet record: %s", st.ToString().c_str());
  });
  if (u.key.registry == push::kReplicationRecords) {
    push::ReplicationRecord r = push::ParseReplication(u.version.value);
    LOG_INFO("replication: %s of %s %s (from %s)", u.key.tag.c_str(), name_.c_str(),
             r.deleted   ? "deleted"
             : r.routing ? "set, routing enabled"
                         : "set, routing disabled",
             u.version.origin.c_str());
    dirty_ = true;
  }
}

std::map<std::string, push::SyncReport> Replicator::Reports() const {
  std::map<std::string, push::SyncReport> out;
  for (const peers::TagUpdate& u : cluster_->FleetEntries(push::kSyncReports)) {
    // A node speaks only for itself.
    if (u.key.repository != name_ || u.version.origin != u.key.tag) continue;
    push::SyncReport r;
    if (push::ParseSyncReport(u.version.value, &r)) out[u.key.tag] = std::move(r);
  }
  return out;
}

void Replicator::OwnTags(std::vector<peers::TagUpdate>* live, uint64_t* fingerprint,
                         uint64_t* count) const {
  *fingerprint = 0;
  *count = 0;
  for (peers::TagUpdate& u : cluster_->FleetEntries(name_)) {
    bool deleted = push::ParseTagValue(u.version.value).deleted;
    *fingerprint ^=
        push::TagFingerprint(u.key.repository, u.key.tag, u.version.digest.ToString(), deleted);
    if (deleted) continue;
    ++*count;
    if (live && Wanted(u.key.repository)) live->push_back(std::move(u));
  }
}

std::map<std::string, Replicator::Replication> Replicator::Replications() {
  std::map<std::string, Replication> out;
  if (!cluster_) return out;
  std::map<std::string, push::SyncReport> reports = Reports();
  uint64_t fingerprint, count;
  OwnTags(nullptr, &fingerprint, &count);
  std::vector<peering::Fleet::NodeInfo> nodes = cluster_->Nodes();
  uint64_t now = env_.clock->WallMs();
  for (const peers::TagUpdate& u : cluster_->FleetEntries(push::kReplicationRecords)) {
    if (u.key.repository != name_) continue;
    Replication r;
    r.record = push::ParseReplication(u.version.value);
    if (r.record.deleted) continue;
    const std::string& region = u.key.tag;
    std::vector<push::RegionNode> members;
    for (const auto& n : nodes) {
      if (n.region != region) continue;
      auto it = reports.find(n.name);
      members.push_back({n.name, n.live, it == reports.end() ? nullptr : &it->second});
    }
    r.state = push::Evaluate(r.record, region, members, fingerprint, count);
    // Since when: a replication first seen here is in its first status
    // since it was created; after that, since this node saw it change.
    Since& since = status_since_[region];
    if (since.created != r.record.created) {
      since = {r.record.created, r.state.status,
               r.record.created_ms && r.record.created_ms <= now ? r.record.created_ms : now};
    } else if (since.status != r.state.status) {
      since.status = r.state.status;
      since.ms = now;
    }
    r.since_ms = since.ms;
    out[region] = std::move(r);
  }
  return out;
}

void Replicator::Describe(util::Exposition* out) {
  using T = util::Exposition::Type;
  if (!cluster_) return;
  std::map<std::string, Replication> reps = Replications();
  out->Family("georeg_replication_status", T::kGauge,
              "The own registry's replications: 1 for the status each region's replication is in, "
              "0 for the others.");
  for (const auto& [region, r] : reps) {
    for (push::DisplayStatus s : {push::DisplayStatus::kSyncing, push::DisplayStatus::kReady,
                                  push::DisplayStatus::kUnavailable})
      out->Sample({{"region", region}, {"status", push::DisplayStatusName(s)}},
                  r.state.status == s ? 1 : 0);
  }
  out->Family("georeg_replication_status_seconds", T::kGauge,
              "How long each region's replication has been in its current status, as this node saw "
              "it change.");
  uint64_t now = env_.clock->WallMs();
  for (const auto& [region, r] : reps)
    out->Sample({{"region", region}},
                r.since_ms && r.since_ms <= now ? double(now - r.since_ms) / 1000.0 : 0.0);
}

json Replicator::Resource(const std::string& region, const Replication& r) const {
  return push::ReplicationResource(name_, region, r.record, r.state, r.since_ms);
}

// ---- the once-a-second work ----

bool Replicator::Wanted(const std::string& repo) const {
  if (cfg_.prefixes.empty()) return true;
  return std::any_of(cfg_.prefixes.begin(), cfg_.prefixes.end(),
                     [&](const std::string& p) { return repo.rfind(p, 0) == 0; });
}

std::vector<std::string> Replicator::LiveRegionNodes() const {
  std::vector<std::string> out;
  for (const auto& n : cluster_->Nodes())
    if (n.live && n.region == cluster_->region()) out.push_back(n.name);
  return out;
}

bool Replicator::Mine(const util::Digest& d, const std::vector<std::string>& region_nodes) const {
  int i = peers::RendezvousOwner(d, region_nodes);
  return i >= 0 && region_nodes[i] == cluster_->name();
}

bool Replicator::Check(const cache::ReadTxn& txn, const peers::TagUpdate& u,
                       const std::vector<std::string>& region_nodes, uint64_t* manifests,
                       uint64_t* blobs) const {
  // A manifest is here once it is own content (its record kept beside it).
  push::ManifestTree tree = push::WalkManifestTree(u.version.digest, [&](const util::Digest& d) {
    cache::Manifest m;
    cache::OwnManifest own;
    if (!store_->GetManifest(txn, d, &m).ok() || !store_->GetOwnManifest(txn, d, &own).ok())
      return util::Result<push::PushedManifest>(Status::NotFound("not held"));
    return push::ParsePushedManifest(m.media_type, m.bytes);
  });
  *manifests += tree.missing.size();
  bool missing = !tree.missing.empty();
  if (!cfg_.full_policy) return missing;
  for (const util::Digest& b : tree.blobs) {
    cache::BlobInfo info;
    if (Mine(b, region_nodes) && !(store_->GetBlob(txn, b, &info).ok() && info.own)) {
      ++*blobs;
      missing = true;
    }
  }
  return missing;
}

void Replicator::Tick() {
  if (!cluster_) return;
  std::map<std::string, Replication> reps = Replications();
  std::set<std::string> replicated, drained;
  for (const auto& [region, r] : reps) {
    replicated.insert(region);
    if (!r.record.routing) drained.insert(region);
  }
  cluster_->SetRegionPolicy(replicated, std::move(drained));

  if (reps.empty()) AdoptHome();
  auto mine = reps.find(cluster_->region());
  if (mine == reps.end()) {
    // Not (or no longer) a replicated region: nothing to pre-fetch.
    jobs_.clear();
    pass_active_ = false;
    if (reported_once_ && !reported_.took_on.empty()) Report("");
    return;
  }
  const std::string& created = mine->second.record.created;
  uint64_t now = env_.clock->NowMs();
  uint64_t fingerprint, count;
  OwnTags(nullptr, &fingerprint, &count);
  // Under `full`, who holds which blob follows the region's live nodes.
  std::vector<std::string> region_nodes = LiveRegionNodes();
  std::sort(region_nodes.begin(), region_nodes.end());
  if (fingerprint != pass_fingerprint_ || created != pass_for_ ||
      (cfg_.full_policy && region_nodes != pass_nodes_))
    dirty_ = true;
  if (!pass_active_ && jobs_.empty() && in_flight_ == 0 &&
      (dirty_ || now - last_pass_ms_ >= kRecheckMs || !reported_once_)) {
    pass_.clear();
    OwnTags(&pass_, &pass_fingerprint_, &pass_tags_);
    pass_next_ = 0;
    pass_active_ = true;
    pass_for_ = created;
    pass_nodes_ = region_nodes;
    pass_manifests_ = pass_blobs_ = 0;
    dirty_ = false;
    jobs_failed_ = false;
  }
  if (pass_active_) {
    auto txn = store_->BeginRead();
    if (txn.ok()) {
      for (size_t n = 0; n < kCheckPerTick && pass_next_ < pass_.size(); ++n) {
        const peers::TagUpdate& u = pass_[pass_next_++];
        if (!Check(*txn, u, region_nodes, &pass_manifests_, &pass_blobs_)) continue;
        Job job{u.key.repository, u.version.digest, {}};
        std::vector<std::string> holders = push::ParseTagValue(u.version.value).holders;
        holders.push_back(u.version.origin);
        // Then the nodes of other replicated regions (they pre-fetch too).
        for (const auto& node : cluster_->Nodes())
          if (node.live && node.region != cluster_->region() && replicated.count(node.region))
            holders.push_back(node.name);
        for (const std::string& h : holders) {
          auto step = cluster_->StepTo(h);
          if (job.holders.size() < kMaxHolders && step && cluster_->Routable(step->region) &&
              std::find(job.holders.begin(), job.holders.end(), h) == job.holders.end())
            job.holders.push_back(h);
        }
        jobs_.push_back(std::move(job));
      }
    }
    if (pass_next_ >= pass_.size()) {
      pass_active_ = false;
      last_pass_ms_ = now;
      current_.took_on = pass_for_;
      current_.tags_fingerprint = pass_fingerprint_;
      current_.tags = pass_tags_;
      current_.manifests_missing = pass_manifests_;
      current_.blobs_missing = pass_blobs_;
      if (jobs_.empty()) {
        error_.clear();
        if (pass_manifests_ == 0 && pass_blobs_ == 0) synced_for_ = pass_for_;
      }
    }
  }
  Pump();
  if (current_.took_on.empty()) return;
  // A node that cannot hold the replica before it ever caught up has not
  // taken it on (Failed, if no node of the region could); once it had, it
  // stays taken on and reports what is wrong (Syncing, with the reason).
  bool failed = !error_.empty() && synced_for_ != current_.took_on;
  Report(failed ? "" : current_.took_on);
}

void Replicator::Pump() {
  uint64_t now = env_.clock->NowMs();
  while (in_flight_ < kInFlight && !jobs_.empty() && pacer_.Ready(now)) {
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    ++in_flight_;
    std::vector<std::string> region_nodes = LiveRegionNodes();
    Holdings::BlobFilter want;
    if (cfg_.full_policy) {
      want = [this, region_nodes](const util::Digest& b) { return Mine(b, region_nodes); };
    } else {
      want = [](const util::Digest&) { return false; };
    }
    // What it fetched is charged to the pacer when done: the top manifest
    // and the wanted blobs that were not here before.
    auto held = std::make_shared<std::set<util::Digest>>(HeldBlobs(job.digest, want));
    holdings_->Sync(
        job.repo, job.digest, job.holders, want, life_.Guard([this, job, want, held](Status st) {
          --in_flight_;
          uint64_t bytes = 0;
          if (auto txn = store_->BeginRead(); txn.ok()) {
            cache::Manifest m;
            if (store_->GetManifest(*txn, job.digest, &m).ok()) bytes += m.bytes.size();
            for (const util::Digest& b : HeldBlobs(job.digest, want)) {
              cache::BlobInfo info;
              if (!held->count(b) && store_->GetBlob(*txn, b, &info).ok()) bytes += info.size;
            }
          }
          pacer_.Charge(bytes, env_.clock->NowMs());
          if (!st.ok()) {
            jobs_failed_ = true;
            error_ = st.code() == util::Code::kResourceExhausted
                         ? "[registry] max_size is too small to hold the replica"
                         : "";
            unsigned long long n;
            if (fail_log_.Note(env_.clock->NowMs(), &n))
              LOG_WARN("replication: could not pre-fetch %s:%s (%s)%s", job.repo.c_str(),
                       job.digest.ToString().c_str(), st.ToString().c_str(),
                       n > 1 ? (" and " + std::to_string(n - 1) + " more").c_str() : "");
          }
          // Checked again once the queue is done; a failure waits for the next periodic
          // check.
          if (jobs_.empty() && in_flight_ == 0 && !jobs_failed_) dirty_ = true;
          Pump();
        }));
  }
}

std::set<util::Digest> Replicator::HeldBlobs(const util::Digest& manifest,
                                             const Holdings::BlobFilter& want) const {
  std::set<util::Digest> out;
  auto txn = store_->BeginRead();
  cache::Manifest m;
  if (!txn.ok() || !store_->GetManifest(*txn, manifest, &m).ok()) return out;
  auto parsed = push::ParsePushedManifest(m.media_type, m.bytes);
  if (!parsed.ok()) return out;
  for (const util::Digest& b : parsed->blobs) {
    cache::BlobInfo info;
    if (want(b) && store_->GetBlob(*txn, b, &info).ok() && info.own) out.insert(b);
  }
  return out;
}

void Replicator::Report(const std::string& took_on) {
  push::SyncReport r = current_;
  r.region = cluster_->region();
  r.took_on = took_on;
  r.error = error_;
  if (took_on.empty() && r.error.empty()) r.manifests_missing = r.blobs_missing = 0;
  uint64_t now = env_.clock->NowMs();
  if (reported_once_ && r == reported_) return;
  if (reported_once_ && now - last_report_ms_ < 1000) return;
  reported_ = r;
  reported_once_ = true;
  last_report_ms_ = now;
  Record(push::kSyncReports, cluster_->name(), push::EncodeSyncReport(r));
}

void Replicator::AdoptHome() {
  // A registry that was never replicated anywhere (no record, not even a
  // deleted one) gets its first replication where it was first written.
  for (const peers::TagUpdate& u : cluster_->FleetEntries(push::kReplicationRecords))
    if (u.key.repository == name_) return;
  bool pushed_here = false;
  for (const peers::TagUpdate& u : cluster_->FleetEntries(name_))
    pushed_here = pushed_here || u.version.origin == cluster_->name();
  if (!pushed_here) return;
  push::ReplicationRecord r;
  r.created_ms = env_.clock->WallMs();
  r.created = std::to_string(r.created_ms) + "@" + cluster_->name();
  r.updated_ms = r.created_ms;
  Record(push::kReplicationRecords, cluster_->region(), push::EncodeReplication(r));
  LOG_INFO("replication: %s of %s created here (the registry's first push)",
           cluster_->region().c_str(), name_.c_str());
}

// ---- the management API ----

void Replicator::Handle(const std::shared_ptr<http::Exchange>& ex) {
  const http::Request& req = ex->request();
  std::string target = req.target.substr(std::string(kPrefix).size());
  std::string query;
  if (size_t q = target.find('?'); q != std::string::npos) {
    query = target.substr(q + 1);
    target.resize(q);
  }
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    size_t slash = target.find('/', start);
    parts.push_back(
        target.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  if (parts.size() < 2 || parts.size() > 3 ||
      (parts[1] != "replications" && parts[1] != "image-status") ||
      (parts[1] == "image-status" && parts.size() != 2)) {
    http::RespondJsonError(ex, 404, "no such route");
    return;
  }
  if (name_.empty()) {
    http::RespondJsonError(ex, 404,
                           "this node serves no registry of its own ([registry] name is not set)");
    return;
  }
  if (parts[0] != name_) {
    http::RespondJsonError(
        ex, 404, "unknown registry '" + parts[0] + "': this fleet's registry is '" + name_ + "'");
    return;
  }
  if (!cluster_) {
    http::RespondJsonError(ex, 503, "this node is not in a cluster: replications need [cluster]");
    return;
  }
  const std::string& method = req.method;
  bool write = method != "GET" && method != "HEAD";
  if (parts[1] == "image-status") {
    if (write) return http::RespondJsonError(ex, 405, "image-status is read-only");
    std::string image;
    if (query.rfind("image=", 0) == 0) image = query.substr(6);
    auth_->Authorize(ex, false, life_.Guard([this, ex, image] { ImageStatus(ex, image, false); }));
    return;
  }
  std::string region = parts.size() == 3 ? parts[2] : "";
  if (parts.size() == 2 && method != "GET")
    return http::RespondJsonError(ex, 405, "use GET to list replications");
  if (parts.size() == 3 && method != "GET" && method != "PUT" && method != "PATCH" &&
      method != "DELETE")
    return http::RespondJsonError(ex, 405, "use GET, PUT, PATCH or DELETE");
  auth_->Authorize(ex, write, life_.Guard([this, ex, region, method] {
    if (region.empty()) return List(ex);
    if (!push::ValidRegionName(region))
      return http::RespondJsonError(
          ex, 400, "invalid region name '" + region + "': " + push::kRegionNameRule);
    if (method == "GET") return Show(ex, region);
    if (method == "PUT") return Create(ex, region);
    if (method == "DELETE") return Delete(ex, region);
    int rc = ex->ReadBody(kMaxBodyBytes, life_.Guard([this, ex, region](std::string body) {
      Update(ex, region, body);
    }));
    if (rc != 0) http::RespondJsonError(ex, rc, "the body must be a JSON object under 4 KiB");
  }));
}

json Replicator::ListJson() {
  json out = json::array();
  for (const auto& [region, r] : Replications()) out.push_back(Resource(region, r));
  return out;
}

void Replicator::List(const std::shared_ptr<http::Exchange>& ex) {
  http::RespondJson(ex, 200, ListJson());
}

void Replicator::Show(const std::shared_ptr<http::Exchange>& ex, const std::string& region) {
  auto reps = Replications();
  auto it = reps.find(region);
  if (it == reps.end())
    return http::RespondJsonError(ex, 404,
                                  "registry '" + name_ + "' has no replication in " + region);
  http::RespondJson(ex, 200, Resource(region, it->second));
}

void Replicator::Create(const std::shared_ptr<http::Exchange>& ex, const std::string& region) {
  auto reps = Replications();
  if (auto it = reps.find(region); it != reps.end()) {
    // Idempotent, yet written again (same creation, newer version): a
    // delete made elsewhere just before, not arrived here yet, must not
    // win over this later create.
    push::ReplicationRecord again = it->second.record;
    again.updated_ms = env_.clock->WallMs();
    Record(push::kReplicationRecords, region, push::EncodeReplication(again));
    return http::RespondJson(ex, 200, Resource(region, it->second));
  }
  std::set<std::string> regions;
  for (const auto& n : cluster_->Nodes()) regions.insert(n.region);
  if (!regions.count(region))
    return http::RespondJsonError(ex, 400,
                                  "no node of the fleet is in region '" + region + "' (regions: " +
                                      CommaList({regions.begin(), regions.end()}) + ")");
  push::ReplicationRecord r;
  r.created_ms = env_.clock->WallMs();
  r.created = std::to_string(r.created_ms) + "@" + cluster_->name();
  r.updated_ms = r.created_ms;
  Record(push::kReplicationRecords, region, push::EncodeReplication(r));
  LOG_INFO("replication: %s of %s created here", region.c_str(), name_.c_str());
  dirty_ = true;
  reps = Replications();
  http::RespondJson(ex, 201, Resource(region, reps.at(region)));
}

void Replicator::Update(const std::shared_ptr<http::Exchange>& ex, const std::string& region,
                        const std::string& body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  auto routing = j.is_object() ? j.find("routing") : j.end();
  if (!j.is_object() || routing == j.end() || !routing->is_string() ||
      (*routing != "enabled" && *routing != "disabled"))
    return http::RespondJsonError(
        ex, 400, "the body must be {\"routing\": \"enabled\"} or {\"routing\": \"disabled\"}");
  auto reps = Replications();
  auto it = reps.find(region);
  if (it == reps.end())
    return http::RespondJsonError(ex, 404,
                                  "registry '" + name_ + "' has no replication in " + region);
  push::ReplicationRecord r = it->second.record;
  bool enabled = *routing == "enabled";
  if (r.routing != enabled) {
    r.routing = enabled;
    r.updated_ms = env_.clock->WallMs();
    Record(push::kReplicationRecords, region, push::EncodeReplication(r));
    LOG_INFO("replication: routing to %s of %s %s here", region.c_str(), name_.c_str(),
             enabled ? "enabled" : "disabled");
    reps = Replications();
    Tick();  // the routing change applies here at once
  }
  http::RespondJson(ex, 200, Resource(region, reps.at(region)));
}

void Replicator::Delete(const std::shared_ptr<http::Exchange>& ex, const std::string& region) {
  auto reps = Replications();
  if (!reps.count(region))
    return http::RespondJsonError(ex, 404,
                                  "registry '" + name_ + "' has no replication in " + region);
  if (reps.size() == 1)
    return http::RespondJsonError(ex, 409,
                                  "the last replication of '" + name_ + "' cannot be deleted");
  push::ReplicationRecord r;
  r.deleted = true;
  Record(push::kReplicationRecords, region, push::EncodeReplication(r));
  LOG_INFO("replication: %s of %s deleted here", region.c_str(), name_.c_str());
  Tick();
  ex->Respond(204, {}, "");
}

// ---- image status ----

void Replicator::ImageStatus(const std::shared_ptr<http::Exchange>& ex, const std::string& image,
                             bool fetched) {
  size_t colon = image.rfind(':');
  if (image.empty() || colon == std::string::npos || colon == 0 || colon + 1 == image.size() ||
      image.find('/', colon) != std::string::npos)
    return http::RespondJsonError(ex, 400, "name the image as REPOSITORY:TAG");
  std::string repo = image.substr(0, colon), tag = image.substr(colon + 1);
  const peers::TagVersion* v = cluster_->FindTag({name_, repo, tag});
  if (!v || push::ParseTagValue(v->value).deleted)
    return http::RespondJsonError(ex, 404, "registry '" + name_ + "' has no tag " + image);
  util::Digest top = v->digest;
  // What the image is: its manifests (an index and its children) and blobs.
  push::ManifestTree tree;
  {
    auto txn = store_->BeginRead();
    if (!txn.ok()) return http::RespondJsonError(ex, 503, "cache unavailable");
    tree = push::WalkManifestTree(
        top,
        [&](const util::Digest& d) {
          cache::Manifest m;
          if (!store_->GetManifest(*txn, d, &m).ok())
            return util::Result<push::PushedManifest>(Status::NotFound("not here"));
          return push::ParsePushedManifest(m.media_type, m.bytes);
        },
        kMaxImageItems);
  }
  if (!tree.missing.empty() && !fetched) {
    // This node lacks a manifest: fetch the manifests (not the blobs) first.
    std::vector<std::string> holders = push::ParseTagValue(v->value).holders;
    holders.push_back(v->origin);
    holdings_->Sync(
        repo, top, holders, [](const util::Digest&) { return false; },
        life_.Guard([this, ex, image](Status) {
          if (ex->active()) ImageStatus(ex, image, true);
        }));
    return;
  }
  json head = {{"registry", name_},
               {"image", image},
               {"digest", top.ToString()},
               {"policy", cfg_.full_policy ? "full" : "manifests"}};
  SurveyRegions(ex, repo, std::move(head), tree.manifests, tree.blobs);
}

namespace {

// What image status found in one region.
struct RegionSurvey {
  bool replicated = false;
  size_t live = 0;
  std::vector<bool> have;  // the manifests, then the blobs
};

json RegionsJson(const std::map<std::string, RegionSurvey>& regions, size_t manifests, size_t blobs,
                 bool full) {
  json out = json::array();
  for (const auto& [name, r] : regions) {
    size_t m = std::count(r.have.begin(), r.have.begin() + manifests, true);
    size_t b = std::count(r.have.begin() + manifests, r.have.end(), true);
    bool present = m == manifests && (!full || b == blobs);
    out.push_back({{"region", name},
                   {"replicated", r.replicated},
                   {"live_nodes", r.live},
                   {"manifests", {{"present", m}, {"total", manifests}}},
                   {"blobs", {{"present", b}, {"total", blobs}}},
                   {"present", present}});
  }
  return out;
}

}  // namespace

// Per region, which items some live node has: ours from the store, the
// others by HEAD (answered from their caches only), at most
// kNodesAskedPerRegion nodes per region.
void Replicator::SurveyRegions(const std::shared_ptr<http::Exchange>& ex, const std::string& repo,
                               json head, const std::vector<util::Digest>& manifests,
                               const std::vector<util::Digest>& blobs) {
  struct Survey {
    std::map<std::string, RegionSurvey> regions;
  };
  auto s = std::make_shared<Survey>();
  size_t items = manifests.size() + blobs.size();
  auto target = [&](size_t i) {
    return "/v2/" + repo +
           (i < manifests.size() ? "/manifests/" + manifests[i].ToString()
                                 : "/blobs/" + blobs[i - manifests.size()].ToString()) +
           "?ns=" + name_;
  };
  // Answered once every node asked has answered (or failed).
  auto join = util::Join::Make([s, ex, head = std::move(head), m = manifests.size(),
                                b = blobs.size(), full = cfg_.full_policy](Status, size_t, size_t) {
    if (!ex->active()) return;
    json out = head;
    out["regions"] = RegionsJson(s->regions, m, b, full);
    http::RespondJson(ex, 200, out);
  });
  std::map<std::string, Replication> reps = Replications();
  std::map<std::string, size_t> asked;  // remote nodes asked, by region
  for (const auto& n : cluster_->Nodes()) {
    RegionSurvey& r = s->regions[n.region];
    r.replicated = reps.count(n.region) > 0;
    r.have.resize(items, false);
    if (!n.live) continue;
    ++r.live;
    if (n.name == cluster_->name()) {
      auto txn = store_->BeginRead();
      if (!txn.ok()) continue;
      for (size_t i = 0; i < items; ++i) {
        cache::Manifest m;
        cache::BlobInfo info;
        if (i < manifests.size() ? store_->GetManifest(*txn, manifests[i], &m).ok()
                                 : store_->GetBlob(*txn, blobs[i - manifests.size()], &info).ok())
          r.have[i] = true;
      }
      continue;
    }
    auto step = cluster_->StepTo(n.name);
    if (!step || ++asked[n.region] > kNodesAskedPerRegion) continue;
    for (size_t i = 0; i < items; ++i) {
      auto answered = join->Add();
      auto status = std::make_shared<int>(0);
      upstream::Callbacks cb;
      cb.on_head = [status](const upstream::ResponseHead& h) { *status = h.status; };
      cb.on_body = [](const char*, size_t) {};
      cb.on_complete = [s, status, region = n.region, i, answered](Status st) {
        if (st.ok() && *status == 200) s->regions[region].have[i] = true;
        answered(Status::Ok());
      };
      if (!cluster_->Send(*step, "HEAD", target(i), {}, std::move(cb))) answered(Status::Ok());
    }
  }
  join->Close();
}

}  // namespace registry
