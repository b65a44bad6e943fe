// Replications of the fleet's own registry (docs/replication.md,
// "Replications"): what a replication record and a node's sync report say,
// how a region's provisioning state and status follow from them, and the
// resource as `georeg replication` prints it.
//
// Both travel as fleet records: peers::TagUpdate entries whose key names
// no registry (the registry field starts with '/', which no registry host
// can), ordered last-writer-wins like tags and kept across restarts:
//   {kReplicationRecords, <registry name>, <region>}  value: ReplicationRecord
//   {kSyncReports, <registry name>, <node name>}      value: SyncReport,
//                                                    taken only from that node
// Pure; never throws.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace push {

inline constexpr const char* kReplicationRecords = "/replication";
inline constexpr const char* kSyncReports = "/sync";

// A region name as clouds spell them: 1-63 lowercase letters, digits and
// '-', starting with a letter, not ending with '-' ("japaneast",
// "us-east-1", "europe-west4"). kRegionNameRule says so to a person.
bool ValidRegionName(std::string_view region);
inline constexpr const char* kRegionNameRule =
    "1-63 lowercase letters, digits and '-', starting with a letter and not ending with '-'";

struct ReplicationRecord {
  bool deleted = false;
  bool routing = true;  // false: other regions do not fetch from this one (drained)
  // Which creation this is ("<wall ms>@<node>", set by create, kept by
  // update): a report of having taken on an earlier one (before a delete)
  // does not count for this one.
  std::string created;
  uint64_t created_ms = 0;
  uint64_t updated_ms = 0;  // when it was last written: every write is a new version
};
std::string EncodeReplication(const ReplicationRecord& r);
// An unreadable value reads as a deleted record.
ReplicationRecord ParseReplication(const std::string& text);

// What a node of a replicated region reports about itself.
struct SyncReport {
  std::string region;
  std::string took_on;  // ReplicationRecord::created of the replication it serves; "" for none
  std::string error;    // why it cannot take the replication on ("" when it can)
  uint64_t tags_fingerprint = 0;   // OwnTagsFingerprint of the tags it has applied
  uint64_t tags = 0;               // live tags among them
  uint64_t manifests_missing = 0;  // manifests it still has to fetch under the policy
  uint64_t blobs_missing = 0;      // blobs (policy full) it still has to fetch
  bool operator==(const SyncReport&) const = default;
};
std::string EncodeSyncReport(const SyncReport& r);
// False for an unreadable value.
bool ParseSyncReport(const std::string& text, SyncReport* out);

// Folds one own tag into a fingerprint (XOR of per-tag hashes, so the order
// of tags does not matter): two nodes that applied the same winners agree.
uint64_t TagFingerprint(const std::string& repo, const std::string& tag, const std::string& digest,
                        bool deleted);

enum class Provisioning { kCreating, kSucceeded, kFailed };
enum class DisplayStatus { kSyncing, kReady, kUnavailable };
const char* ProvisioningName(Provisioning p);
const char* DisplayStatusName(DisplayStatus s);

struct RegionNode {
  std::string name;
  bool live = false;
  const SyncReport* report = nullptr;  // its latest report, if any
};

struct ReplicationState {
  Provisioning provisioning = Provisioning::kCreating;
  DisplayStatus status = DisplayStatus::kSyncing;
  std::string message;  // what is missing (Syncing), why (Failed, Unavailable); "" when Ready
};

// The state of replication `r` of `region`, from its nodes (every member
// of the region, dead ones too) and the fleet's tags as the viewer holds
// them: Creating until a live node took it on (Failed when the live nodes
// all reported an error instead); Unavailable with no live node; Syncing
// while a live node lags the fleet's tags or has content to fetch; Ready.
ReplicationState Evaluate(const ReplicationRecord& r, const std::string& region,
                          const std::vector<RegionNode>& nodes, uint64_t fleet_fingerprint,
                          uint64_t fleet_tags);

// "2018-08-15T20:22:09.275000+00:00" for a wall-clock time in ms.
std::string IsoTimestamp(uint64_t wall_ms);

// The resource `replication create|show|update` print and `list -o json`
// lists: id, location, name, provisioningState, regionEndpointEnabled,
// resourceGroup (null), status {displayStatus, message, timestamp}, tags,
// type.
nlohmann::json ReplicationResource(const std::string& registry, const std::string& region,
                                   const ReplicationRecord& r, const ReplicationState& s,
                                   uint64_t status_since_ms);

}  // namespace push
