// Compatibility across releases (peers/protocol.h, docs/gossip.md
// "Versions"): files an earlier release wrote, kept in tests/compat/, are
// read by this one. A gossip message, a kept fleet record, a digest
// summary and an LMDB cache, each checked field by field.
//
// tools/compat.sh writes them anew from this release
// (GEOREG_COMPAT_WRITE=1 with the hidden "[.compat-write]" case) when a format
// changes on purpose; the files then in the repository are what the next
// release must read. GEOREG_COMPAT_DIR (set by tests/meson.build) names
// the folder; without it the test fails rather than pass unchecked.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cache/store.h"
#include "peers/bloom.h"
#include "peers/message_codec.h"
#include "peers/protocol.h"
#include "util/sha256.h"

using util::DigestOf;

namespace {

std::string Dir() {
  const char* d = std::getenv("GEOREG_COMPAT_DIR");
  REQUIRE(d);
  return d;
}

std::string Read(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE(f.good());
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void Write(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << bytes;
  REQUIRE(f.good());
}

// What the files hold: fixed, so each release writes the same facts.
peers::TagUpdate Update() {
  return {{"fleet.example", "team/app", "1.0"},
          {DigestOf("manifest"), {1790000000000, 3}, "n1", "sig-of-n1", "{\"holders\":[\"n1\"]}"}};
}

peers::Message SyncMessage() {
  peers::Message m;
  m.type = peers::MessageType::kSync;
  m.from = "n1";
  m.seq = 42;
  m.summary_version = 7;
  m.members.push_back({"n1", "eu", "http://10.0.0.1:5000", peers::MemberState::kAlive, 1790000000,
                       "key-of-n1", "sig-of-n1"});
  m.members.push_back({"n2", "us", "http://10.0.0.2:5000", peers::MemberState::kDead, 1790000005,
                       "key-of-n2", "sig-of-n2"});
  m.tags.push_back(Update());
  m.tag_summaries = {0, 0xfedcba9876543210ull};
  m.revocations.push_back({"n3", "key-of-n3", "n1", "sig-by-n1"});
  return m;
}

peers::DigestBloom Summary() {
  peers::DigestBloom b(100, 0.01);
  for (const char* s : {"a", "b", "c"}) b.Add(DigestOf(s));
  return b;
}

const std::string kBlob = "compat blob bytes";
const std::string kManifest = "{\"schemaVersion\":2}";

void WriteCache(const std::string& dir) {
  std::filesystem::remove_all(dir);
  cache::Store::Options o;
  o.dir = dir;
  o.max_size = 64 << 20;
  auto store = cache::Store::Open(o);
  REQUIRE(store.ok());
  util::Digest b = DigestOf(kBlob);
  REQUIRE((*store)
              ->PutChunk(b, 0, {reinterpret_cast<const uint8_t*>(kBlob.data()), kBlob.size()})
              .ok());
  cache::BlobInfo info;
  info.size = kBlob.size();
  info.created_ms = info.last_access_ms = 1790000000000;
  REQUIRE((*store)->PublishBlob(b, info).ok());
  cache::Manifest m{"application/vnd.oci.image.manifest.v1+json", kManifest};
  REQUIRE(
      (*store)
          ->PutManifest(DigestOf(kManifest), m, "docker.io", "library/app", "1.0", 1790000000000)
          .ok());
  REQUIRE((*store)
              ->PutFleetRecord("fleet.example team/app 1.0", peers::EncodeTagUpdate(Update()))
              .ok());
}

}  // namespace

TEST_CASE("compat: files of the release in tests/compat are read by this one") {
  std::string dir = Dir();
  {
    auto m = peers::DecodeMessage(Read(dir + "/message.json"));
    REQUIRE(m.ok());
    CHECK(peers::SpeaksProtocol(m->protocol));
    peers::Message want = SyncMessage();
    CHECK(m->type == want.type);
    CHECK(m->from == want.from);
    CHECK(m->seq == want.seq);
    CHECK(m->summary_version == want.summary_version);
    REQUIRE(m->members.size() == 2);
    CHECK(m->members[1].state == peers::MemberState::kDead);
    CHECK(m->members[1].incarnation == 1790000005);
    CHECK(m->members[0].public_key == "key-of-n1");
    REQUIRE(m->tags.size() == 1);
    CHECK(m->tags[0].key == want.tags[0].key);
    CHECK(m->tags[0].version.digest == want.tags[0].version.digest);
    CHECK(m->tags[0].version.hlc == want.tags[0].version.hlc);
    CHECK(m->tags[0].version.value == want.tags[0].version.value);
    CHECK(m->tag_summaries == want.tag_summaries);
    REQUIRE(m->revocations.size() == 1);
    CHECK(m->revocations[0].by == "n1");
  }
  {
    auto u = peers::DecodeTagUpdate(Read(dir + "/tag_update.json"));
    REQUIRE(u.ok());
    CHECK(u->key == Update().key);
    CHECK(u->version.origin == "n1");
    CHECK(u->version.signature == "sig-of-n1");
  }
  {
    auto b = peers::DigestBloom::Decode(Read(dir + "/summary.bin"));
    REQUIRE(b.ok());
    for (const char* s : {"a", "b", "c"}) CHECK(b->MayContain(DigestOf(s)));
  }
  {
    // Opened read-only where it lies (the repository's copy stays as it is).
    std::string copy = std::filesystem::temp_directory_path() / "georeg-compat-cache-XXXXXX";
    REQUIRE(mkdtemp(copy.data()));
    std::filesystem::copy(dir + "/cache", copy, std::filesystem::copy_options::recursive);
    cache::Store::Options o;
    o.dir = copy;
    o.max_size = 64 << 20;
    {
      auto store = cache::Store::Open(o);
      REQUIRE(store.ok());
      auto txn = (*store)->BeginRead();
      REQUIRE(txn.ok());
      cache::BlobInfo info;
      REQUIRE((*store)->GetBlob(*txn, DigestOf(kBlob), &info).ok());
      CHECK(info.size == kBlob.size());
      std::span<const uint8_t> payload;
      REQUIRE(
          (*store)->GetChunk(*txn, DigestOf(kBlob), 0, &payload, cache::ChunkCheck::kFull).ok());
      CHECK(std::string(reinterpret_cast<const char*>(payload.data()), payload.size()) == kBlob);
      cache::Manifest m;
      REQUIRE((*store)->GetManifest(*txn, DigestOf(kManifest), &m).ok());
      CHECK(m.bytes == kManifest);
      cache::TagInfo tag;
      REQUIRE((*store)->GetTag(*txn, "docker.io", "library/app", "1.0", &tag).ok());
      CHECK(tag.digest == DigestOf(kManifest));
      auto records = (*store)->ListFleetRecords();
      REQUIRE(records.ok());
      REQUIRE(records->size() == 1);
      auto u = peers::DecodeTagUpdate((*records)[0].second);
      REQUIRE(u.ok());
      CHECK(u->key == Update().key);
    }
    std::filesystem::remove_all(copy);
  }
}

TEST_CASE("compat: a version this node does not speak is named and refused") {
  CHECK(peers::ProtocolOf(nullptr) == 1);  // before versions were named
  std::string two = "2", junk = "1x";
  CHECK(peers::ProtocolOf(&two) == 2);
  CHECK(peers::ProtocolOf(&junk) == 0);
  CHECK_FALSE(peers::SpeaksProtocol(0));
  CHECK_FALSE(peers::SpeaksProtocol(peers::kProtocolVersion + 1));
  // A message names its version; one without is version 1; fields a later
  // release adds are ignored.
  std::string body = peers::EncodeMessage(SyncMessage());
  CHECK(body.find("\"pv\":" + std::to_string(peers::kProtocolVersion)) != std::string::npos);
  auto later = nlohmann::json::parse(body);
  later["pv"] = peers::kProtocolVersion + 1;
  later["a_field_from_later"] = {{"x", 1}};
  auto m = peers::DecodeMessage(later.dump());
  REQUIRE(m.ok());
  CHECK(m->protocol == peers::kProtocolVersion + 1);  // the receiver refuses it (Cluster)
  later.erase("pv");
  m = peers::DecodeMessage(later.dump());
  REQUIRE(m.ok());
  CHECK(m->protocol == 1);
  // A kept record of a version this node does not speak is not read.
  auto rec = nlohmann::json::parse(peers::EncodeTagUpdate(Update()));
  rec["pv"] = peers::kProtocolVersion + 1;
  auto u = peers::DecodeTagUpdate(rec.dump());
  REQUIRE_FALSE(u.ok());
  CHECK(u.status().message().find("protocol") != std::string::npos);
}

TEST_CASE("write tests/compat from this release", "[.compat-write]") {
  // Hidden: tools/compat.sh runs it on purpose.
  REQUIRE(std::getenv("GEOREG_COMPAT_WRITE"));
  std::string dir = Dir();
  std::filesystem::create_directories(dir);
  Write(dir + "/message.json", peers::EncodeMessage(SyncMessage()) + "\n");
  Write(dir + "/tag_update.json", peers::EncodeTagUpdate(Update()) + "\n");
  Write(dir + "/summary.bin", Summary().Encode());
  WriteCache(dir + "/cache");
  std::filesystem::remove(dir + "/cache/lock.mdb");
}
