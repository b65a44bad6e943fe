#include "push/replication.h"

#include <ctime>

#include <nlohmann/json.hpp>

#include "util/sha256.h"

namespace push {

using nlohmann::json;

namespace {

constexpr size_t kMaxField = 256;

bool GetString(const json& j, const char* key, std::string* out) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string() || it->get_ref<const std::string&>().size() > kMaxField)
    return false;
  *out = it->get<std::string>();
  return true;
}

bool GetU64(const json& j, const char* key, uint64_t* out) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_unsigned()) return false;
  *out = it->get<uint64_t>();
  return true;
}

std::string Plural(uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

bool ValidRegionName(std::string_view r) {
  if (r.empty() || r.size() > 63 || !(r[0] >= 'a' && r[0] <= 'z') || r.back() == '-') return false;
  for (char c : r)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}

std::string EncodeReplication(const ReplicationRecord& r) {
  json j = json::object();
  if (r.deleted) {
    j["deleted"] = true;
    return j.dump();
  }
  j["routing"] = r.routing ? "enabled" : "disabled";
  j["created"] = r.created;
  j["created_ms"] = r.created_ms;
  j["updated_ms"] = r.updated_ms;
  return j.dump();
}

ReplicationRecord ParseReplication(const std::string& text) {
  ReplicationRecord r;
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  std::string routing;
  if (!j.is_object() || j.contains("deleted") || !GetString(j, "created", &r.created) ||
      r.created.empty() || !GetString(j, "routing", &routing) ||
      (routing != "enabled" && routing != "disabled")) {
    r = ReplicationRecord{};
    r.deleted = true;
    return r;
  }
  r.routing = routing == "enabled";
  GetU64(j, "created_ms", &r.created_ms);
  GetU64(j, "updated_ms", &r.updated_ms);
  return r;
}

std::string EncodeSyncReport(const SyncReport& r) {
  json j = {{"region", r.region},
            {"took_on", r.took_on},
            {"tags_fingerprint", r.tags_fingerprint},
            {"tags", r.tags},
            {"manifests_missing", r.manifests_missing},
            {"blobs_missing", r.blobs_missing}};
  if (!r.error.empty()) j["error"] = r.error;
  return j.dump();
}

bool ParseSyncReport(const std::string& text, SyncReport* out) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  SyncReport r;
  if (!j.is_object() || !GetString(j, "region", &r.region) ||
      !GetString(j, "took_on", &r.took_on) || !GetU64(j, "tags_fingerprint", &r.tags_fingerprint) ||
      !GetU64(j, "tags", &r.tags) || !GetU64(j, "manifests_missing", &r.manifests_missing) ||
      !GetU64(j, "blobs_missing", &r.blobs_missing))
    return false;
  if (j.contains("error") && !GetString(j, "error", &r.error)) return false;
  *out = std::move(r);
  return true;
}

uint64_t TagFingerprint(const std::string& repo, const std::string& tag, const std::string& digest,
                        bool deleted) {
  util::Sha256 h;
  h.Update(repo);
  h.Update(std::string_view("\0", 1));
  h.Update(tag);
  h.Update(std::string_view("\0", 1));
  h.Update(digest);
  h.Update(deleted ? std::string_view("\0d", 2) : std::string_view("\0l", 2));
  auto sum = h.Finish();
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | sum[i];
  return v;
}

const char* ProvisioningName(Provisioning p) {
  switch (p) {
    case Provisioning::kCreating:
      return "Creating";
    case Provisioning::kSucceeded:
      return "Succeeded";
    case Provisioning::kFailed:
      return "Failed";
  }
  return "?";
}

const char* DisplayStatusName(DisplayStatus s) {
  switch (s) {
    case DisplayStatus::kSyncing:
      return "Syncing";
    case DisplayStatus::kReady:
      return "Ready";
    case DisplayStatus::kUnavailable:
      return "Unavailable";
  }
  return "?";
}

ReplicationState Evaluate(const ReplicationRecord& r, const std::string& region,
                          const std::vector<RegionNode>& nodes, uint64_t fleet_fingerprint,
                          uint64_t fleet_tags) {
  ReplicationState s;
  auto serves = [&](const RegionNode& n) {
    return n.report && n.report->region == region && n.report->took_on == r.created;
  };
  bool took_on = false, any_live = false, all_failed = true;
  std::string failure;
  std::vector<std::string> lag;
  for (const RegionNode& n : nodes) {
    took_on = took_on || serves(n);
    if (!n.live) continue;
    any_live = true;
    const SyncReport* rep = n.report && n.report->region == region ? n.report : nullptr;
    if (rep && !rep->error.empty()) {
      if (failure.empty()) failure = "node " + n.name + ": " + rep->error;
      lag.push_back("node " + n.name + ": " + rep->error);
      continue;
    }
    all_failed = false;
    if (!serves(n)) {
      lag.push_back("node " + n.name + " has not taken the replication on yet");
    } else if (rep->tags_fingerprint != fleet_fingerprint) {
      lag.push_back("node " + n.name + " has applied " + std::to_string(rep->tags) + " of " +
                    Plural(fleet_tags, "tag", "tags"));
    } else if (rep->manifests_missing || rep->blobs_missing) {
      lag.push_back("node " + n.name + " has " +
                    Plural(rep->manifests_missing, "manifest", "manifests") + " and " +
                    Plural(rep->blobs_missing, "blob", "blobs") + " to fetch");
    }
  }
  if (took_on) {
    s.provisioning = Provisioning::kSucceeded;
  } else if (any_live && all_failed) {
    s.provisioning = Provisioning::kFailed;
  }
  if (!any_live) {
    s.status = DisplayStatus::kUnavailable;
    s.message = nodes.empty() ? "no node of the fleet is in region " + region
                              : "no node of region " + region + " is alive";
    return s;
  }
  if (s.provisioning == Provisioning::kFailed) {
    s.status = DisplayStatus::kSyncing;
    s.message = failure;
    return s;
  }
  if (lag.empty()) {
    s.status = DisplayStatus::kReady;
    return s;
  }
  s.status = DisplayStatus::kSyncing;
  for (size_t i = 0; i < lag.size(); ++i) s.message += (i ? "; " : "") + lag[i];
  return s;
}

std::string IsoTimestamp(uint64_t wall_ms) {
  time_t secs = static_cast<time_t>(wall_ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06u+00:00", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<unsigned>(wall_ms % 1000) * 1000);
  return buf;
}

json ReplicationResource(const std::string& registry, const std::string& region,
                         const ReplicationRecord& r, const ReplicationState& s,
                         uint64_t status_since_ms) {
  return {{"id", "/georeg/registries/" + registry + "/replications/" + region},
          {"location", region},
          {"name", region},
          {"provisioningState", ProvisioningName(s.provisioning)},
          {"regionEndpointEnabled", r.routing},
          {"resourceGroup", nullptr},
          {"status",
           {{"displayStatus", DisplayStatusName(s.status)},
            {"message", s.message.empty() ? json(nullptr) : json(s.message)},
            {"timestamp", IsoTimestamp(status_since_ms)}}},
          {"tags", json::object()},
          {"type", "georeg/registries/replications"}};
}

}  // namespace push
