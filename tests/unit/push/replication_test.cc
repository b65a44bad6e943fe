// Replications' pure logic (push/replication.h): region names, the records
// and reports as they travel, how a region's state follows from its nodes,
// and the resource `georeg replication` prints.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "push/replication.h"

using push::DisplayStatus;
using push::Provisioning;

TEST_CASE("replication: region names as clouds spell them") {
  for (const char* ok : {"japaneast", "us-east-1", "europe-west4", "a", "eu2"})
    CHECK(push::ValidRegionName(ok));
  for (const char* bad :
       {"", "Japan East", "JapanEast", "-eu", "eu-", "1eu", "eu_west", "eu/west", "eu?x"})
    CHECK_FALSE(push::ValidRegionName(bad));
  CHECK_FALSE(push::ValidRegionName(std::string(64, 'a')));
  CHECK(push::ValidRegionName(std::string(63, 'a')));
}

TEST_CASE("replication: records and reports round-trip; garbage reads as deleted or is refused") {
  push::ReplicationRecord r;
  r.created = "1700000000000@n1";
  r.created_ms = 1700000000000;
  r.routing = false;
  push::ReplicationRecord back = push::ParseReplication(push::EncodeReplication(r));
  CHECK_FALSE(back.deleted);
  CHECK_FALSE(back.routing);
  CHECK(back.created == r.created);
  CHECK(back.created_ms == r.created_ms);
  push::ReplicationRecord tomb;
  tomb.deleted = true;
  CHECK(push::ParseReplication(push::EncodeReplication(tomb)).deleted);
  for (const char* bad :
       {"", "null", "[]", "{\"routing\":\"enabled\"}", "{\"created\":\"x\",\"routing\":\"maybe\"}",
        "{\"created\":7,\"routing\":\"enabled\"}"})
    CHECK(push::ParseReplication(bad).deleted);

  push::SyncReport s{"eu", "1@n1", "", 42, 3, 1, 2};
  push::SyncReport got;
  REQUIRE(push::ParseSyncReport(push::EncodeSyncReport(s), &got));
  CHECK(got == s);
  s.error = "full";
  REQUIRE(push::ParseSyncReport(push::EncodeSyncReport(s), &got));
  CHECK(got.error == "full");
  for (const char* bad : {"", "{}", "{\"region\":\"eu\"}",
                          "{\"region\":1,\"took_on\":\"\",\"tags_fingerprint\":0,"
                          "\"tags\":0,\"manifests_missing\":0,\"blobs_missing\":0}",
                          "{\"region\":\"eu\",\"took_on\":\"\",\"tags_fingerprint\":-1,\"tags\":0,"
                          "\"manifests_missing\":0,\"blobs_missing\":0}"})
    CHECK_FALSE(push::ParseSyncReport(bad, &got));
}

TEST_CASE("replication: the tag fingerprint ignores order and sees every difference") {
  uint64_t a = push::TagFingerprint("app", "1", "sha256:aa", false);
  uint64_t b = push::TagFingerprint("app", "2", "sha256:bb", false);
  CHECK((a ^ b) == (b ^ a));
  CHECK(a != push::TagFingerprint("app", "1", "sha256:aa", true));
  CHECK(a != push::TagFingerprint("app", "1", "sha256:ab", false));
  CHECK(a != push::TagFingerprint("ap", "p1", "sha256:aa", false));  // fields are separated
}

TEST_CASE("replication: provisioning state and status from the region's nodes") {
  push::ReplicationRecord r;
  r.created = "5@n1";
  const uint64_t fp = 99, tags = 4;
  push::SyncReport ready{"ap", "5@n1", "", fp, tags, 0, 0};

  SECTION("no node took it on yet: Creating, Syncing") {
    push::SyncReport other{"ap", "", "", fp, tags, 0, 0};
    auto s = push::Evaluate(r, "ap", {{"n3", true, &other}, {"n4", true, nullptr}}, fp, tags);
    CHECK(s.provisioning == Provisioning::kCreating);
    CHECK(s.status == DisplayStatus::kSyncing);
    CHECK(s.message.find("n3 has not taken the replication on") != std::string::npos);
  }
  SECTION("one took it on, the other lags: Succeeded, Syncing, saying what is missing") {
    push::SyncReport lag{"ap", "5@n1", "", fp, tags, 2, 7};
    auto s = push::Evaluate(r, "ap", {{"n3", true, &ready}, {"n4", true, &lag}}, fp, tags);
    CHECK(s.provisioning == Provisioning::kSucceeded);
    CHECK(s.status == DisplayStatus::kSyncing);
    CHECK(s.message == "node n4 has 2 manifests and 7 blobs to fetch");
  }
  SECTION("tags not applied yet: Syncing") {
    push::SyncReport behind{"ap", "5@n1", "", 12, 3, 0, 0};
    auto s = push::Evaluate(r, "ap", {{"n3", true, &behind}}, fp, tags);
    CHECK(s.status == DisplayStatus::kSyncing);
    CHECK(s.message == "node n3 has applied 3 of 4 tags");
  }
  SECTION("all live nodes caught up: Ready; dead ones do not hold it back") {
    push::SyncReport lag{"ap", "5@n1", "", 1, 0, 9, 9};
    auto s = push::Evaluate(r, "ap", {{"n3", true, &ready}, {"n4", false, &lag}}, fp, tags);
    CHECK(s.provisioning == Provisioning::kSucceeded);
    CHECK(s.status == DisplayStatus::kReady);
    CHECK(s.message.empty());
  }
  SECTION("no live node: Unavailable, and provisioning stays as it was") {
    auto s = push::Evaluate(r, "ap", {{"n3", false, &ready}}, fp, tags);
    CHECK(s.provisioning == Provisioning::kSucceeded);
    CHECK(s.status == DisplayStatus::kUnavailable);
    CHECK(s.message == "no node of region ap is alive");
    CHECK(push::Evaluate(r, "ap", {}, fp, tags).status == DisplayStatus::kUnavailable);
  }
  SECTION("a report of an earlier creation (before a delete) does not count") {
    push::SyncReport old{"ap", "1@n2", "", fp, tags, 0, 0};
    auto s = push::Evaluate(r, "ap", {{"n3", true, &old}}, fp, tags);
    CHECK(s.provisioning == Provisioning::kCreating);
    CHECK(s.status == DisplayStatus::kSyncing);
  }
  SECTION("every live node failed to take it on: Failed, with the reason") {
    push::SyncReport failed{"ap", "", "[registry] max_size is too small", fp, tags, 0, 0};
    auto s = push::Evaluate(r, "ap", {{"n3", true, &failed}}, fp, tags);
    CHECK(s.provisioning == Provisioning::kFailed);
    CHECK(s.message == "node n3: [registry] max_size is too small");
  }
}

TEST_CASE("replication: the resource has the managed registry's fields") {
  push::ReplicationRecord r;
  r.created = "5@n1";
  push::ReplicationState s;
  s.provisioning = Provisioning::kSucceeded;
  s.status = DisplayStatus::kReady;
  nlohmann::json j = push::ReplicationResource("acme", "japaneast", r, s, 1534364529275);
  CHECK(j["id"] == "/georeg/registries/acme/replications/japaneast");
  CHECK(j["name"] == "japaneast");
  CHECK(j["location"] == "japaneast");
  CHECK(j["provisioningState"] == "Succeeded");
  CHECK(j["resourceGroup"].is_null());
  CHECK(j["status"]["displayStatus"] == "Ready");
  CHECK(j["status"]["message"].is_null());
  CHECK(j["status"]["timestamp"] == "2018-08-15T20:22:09.275000+00:00");
  CHECK(j["tags"] == nlohmann::json::object());
  CHECK(j["type"] == "georeg/registries/replications");
  CHECK(j["regionEndpointEnabled"] == true);
}
