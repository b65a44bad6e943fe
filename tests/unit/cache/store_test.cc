#include <fcntl.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>

#include "cache/store.h"
#include "util/sha256.h"

using util::DigestOf;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/georeg-store-test.XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

std::unique_ptr<cache::Store> Open(const std::string& dir) {
  auto s = cache::Store::Open({dir, 64ull << 20});
  REQUIRE(s.ok());
  return std::move(*s);
}

}  // namespace

TEST_CASE("store: a blob is invisible until published, then read by chunk") {
  TempDir tmp;
  auto store = Open(tmp.path);
  std::string blob(2 * 1024 + 100, 'x');
  blob[0] = 'a';
  blob.back() = 'z';
  util::Digest d = DigestOf(blob);
  const uint32_t cs = 1024;
  for (uint32_t i = 0; i * cs < blob.size(); ++i) {
    std::string part = blob.substr(i * cs, cs);
    REQUIRE(
        store->PutChunk(d, i, {reinterpret_cast<const uint8_t*>(part.data()), part.size()}).ok());
  }
  {
    auto txn = store->BeginRead();
    REQUIRE(txn.ok());
    cache::BlobInfo info;
    CHECK(store->GetBlob(*txn, d, &info).IsNotFound());
  }
  cache::BlobInfo info;
  info.size = blob.size();
  info.chunk_size = cs;
  REQUIRE(store->PublishBlob(d, info).ok());
  auto txn = store->BeginRead();
  REQUIRE(txn.ok());
  cache::BlobInfo got;
  REQUIRE(store->GetBlob(*txn, d, &got).ok());
  CHECK(got.size == blob.size());
  CHECK(got.ChunkCount() == 3);
  std::string back;
  for (uint32_t i = 0; i < got.ChunkCount(); ++i) {
    std::span<const uint8_t> p;
    REQUIRE(store->GetChunk(*txn, d, i, &p).ok());
    back.append(reinterpret_cast<const char*>(p.data()), p.size());
  }
  CHECK(back == blob);
  auto list = store->ListBlobs();
  REQUIRE(list.ok());
  REQUIRE(list->size() == 1);
  CHECK((*list)[0] == d);
}

TEST_CASE("store: orphan chunks are removed when reopened, complete blobs stay") {
  TempDir tmp;
  util::Digest done = DigestOf("done"), partial = DigestOf("partial");
  {
    auto store = Open(tmp.path);
    const uint8_t b[4] = {1, 2, 3, 4};
    REQUIRE(store->PutChunk(done, 0, b).ok());
    cache::BlobInfo info;
    info.size = 4;
    REQUIRE(store->PublishBlob(done, info).ok());
    REQUIRE(store->PutChunk(partial, 0, b).ok());
    REQUIRE(store->PutChunk(partial, 1, b).ok());
  }
  auto store = Open(tmp.path);
  auto txn = store->BeginRead();
  REQUIRE(txn.ok());
  std::span<const uint8_t> p;
  CHECK(store->GetChunk(*txn, done, 0, &p).ok());
  CHECK(store->GetChunk(*txn, partial, 0, &p).IsNotFound());
  CHECK(store->GetChunk(*txn, partial, 1, &p).IsNotFound());
}

TEST_CASE("store: DeleteBlob removes the record and every chunk, not a neighbour's") {
  TempDir tmp;
  auto store = Open(tmp.path);
  util::Digest a = DigestOf("a"), b = DigestOf("b");
  const uint8_t x[1] = {7};
  for (uint32_t i = 0; i < 3; ++i) {
    REQUIRE(store->PutChunk(a, i, x).ok());
    REQUIRE(store->PutChunk(b, i, x).ok());
  }
  cache::BlobInfo info;
  info.size = 3;
  info.chunk_size = 1;
  REQUIRE(store->PublishBlob(a, info).ok());
  REQUIRE(store->PublishBlob(b, info).ok());
  REQUIRE(store->DeleteBlob(a).ok());
  auto txn = store->BeginRead();
  REQUIRE(txn.ok());
  cache::BlobInfo got;
  std::span<const uint8_t> p;
  CHECK(store->GetBlob(*txn, a, &got).IsNotFound());
  CHECK(store->GetChunk(*txn, a, 2, &p).IsNotFound());
  CHECK(store->GetBlob(*txn, b, &got).ok());
  CHECK(store->GetChunk(*txn, b, 2, &p).ok());
}

TEST_CASE("store: manifests by digest, tags by registry") {
  TempDir tmp;
  auto store = Open(tmp.path);
  std::string bytes = R"({"schemaVersion":2})";
  util::Digest d = DigestOf(bytes);
  REQUIRE(store
              ->PutManifest(d, {"application/vnd.oci.image.manifest.v1+json", bytes}, "docker.io",
                            "library/a", "latest", 1234)
              .ok());
  auto txn = store->BeginRead();
  REQUIRE(txn.ok());
  cache::Manifest m;
  REQUIRE(store->GetManifest(*txn, d, &m).ok());
  CHECK(m.bytes == bytes);
  CHECK(m.media_type == "application/vnd.oci.image.manifest.v1+json");
  cache::TagInfo tag;
  REQUIRE(store->GetTag(*txn, "docker.io", "library/a", "latest", &tag).ok());
  CHECK(tag.digest == d);
  CHECK(tag.confirmed_ms == 1234);
  // Another registry's same repository and tag is a different key.
  CHECK(store->GetTag(*txn, "ghcr.io", "library/a", "latest", &tag).IsNotFound());
}

namespace {
std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
}  // namespace

TEST_CASE(
    "store: an upload's chunks become an own blob without a copy, and survive orphan removal") {
  TempDir tmp;
  std::string blob = "layer bytes that were pushed";
  util::Digest d = DigestOf(blob), upload_key = DigestOf("upload 1");
  {
    auto store = Open(tmp.path);
    REQUIRE(store->PutChunk(upload_key, 0, Bytes(blob)).ok());
    cache::BlobInfo info;
    info.size = blob.size();
    info.chunk_key = upload_key;
    bool existed = true;
    REQUIRE(store->PublishUpload(d, info, &existed).ok());
    CHECK_FALSE(existed);
  }
  auto store = Open(tmp.path);  // reopening removes orphans: these chunks are not orphans
  auto txn = store->BeginRead();
  REQUIRE(txn.ok());
  cache::BlobInfo got;
  REQUIRE(store->GetBlob(*txn, d, &got).ok());
  CHECK(got.own);
  CHECK(got.ChunksOf(d) == upload_key);
  std::span<const uint8_t> p;
  REQUIRE(store->GetChunk(*txn, got.ChunksOf(d), 0, &p, cache::ChunkCheck::kFull).ok());
  CHECK(std::string(reinterpret_cast<const char*>(p.data()), p.size()) == blob);
  // Access times rewrite the record without losing its v2 fields.
  *txn = cache::ReadTxn();
  REQUIRE(store->PutBlobAccess({{d, 12345}}).ok());
  auto txn2 = store->BeginRead();
  REQUIRE(store->GetBlob(*txn2, d, &got).ok());
  CHECK(got.own);
  CHECK(got.last_access_ms == 12345);
  CHECK(got.ChunksOf(d) == upload_key);
  txn2 = cache::ReadTxn();
  // Deleting the blob deletes the chunks where they are.
  REQUIRE(store->DeleteBlob(d).ok());
  auto txn3 = store->BeginRead();
  CHECK(store->GetChunk(*txn3, upload_key, 0, &p).IsNotFound());
}

TEST_CASE("store: an upload of a blob already stored marks it own and drops the upload's chunks") {
  TempDir tmp;
  auto store = Open(tmp.path);
  std::string blob = "cached from a mirror first";
  util::Digest d = DigestOf(blob), upload_key = DigestOf("upload 2");
  REQUIRE(store->PutChunk(d, 0, Bytes(blob)).ok());
  cache::BlobInfo info;
  info.size = blob.size();
  REQUIRE(store->PublishBlob(d, info).ok());
  REQUIRE(store->PutChunk(upload_key, 0, Bytes(blob)).ok());
  info.chunk_key = upload_key;
  bool existed = false;
  REQUIRE(store->PublishUpload(d, info, &existed).ok());
  CHECK(existed);
  auto txn = store->BeginRead();
  cache::BlobInfo got;
  REQUIRE(store->GetBlob(*txn, d, &got).ok());
  CHECK(got.own);
  CHECK(got.ChunksOf(d) == d);
  std::span<const uint8_t> p;
  CHECK(store->GetChunk(*txn, upload_key, 0, &p).IsNotFound());
  txn = cache::ReadTxn();
  REQUIRE(store->SetBlobOwn(d, false).ok());
  auto txn2 = store->BeginRead();
  REQUIRE(store->GetBlob(*txn2, d, &got).ok());
  CHECK_FALSE(got.own);
  // An abandoned upload's chunks go with DeleteChunks.
  txn2 = cache::ReadTxn();
  REQUIRE(store->PutChunk(upload_key, 0, Bytes(blob)).ok());
  REQUIRE(store->DeleteChunks(upload_key).ok());
  auto txn3 = store->BeginRead();
  CHECK(store->GetChunk(*txn3, upload_key, 0, &p).IsNotFound());
  CHECK(store->GetChunk(*txn3, d, 0, &p).ok());
}

TEST_CASE("store: own manifests, referrers, tag listing and fleet records") {
  TempDir tmp;
  auto store = Open(tmp.path);
  cache::OwnManifest image;
  image.digest = DigestOf("image");
  image.media_type = "application/vnd.oci.image.manifest.v1+json";
  image.size = 5;
  image.created_ms = 1000;
  image.references = {DigestOf("config"), DigestOf("layer")};
  cache::OwnManifest sig = image;
  sig.digest = DigestOf("signature");
  sig.subject = image.digest;
  sig.artifact_type = "application/example.sig";
  sig.annotations_json = R"({"k":"v"})";
  for (const char* tag : {"b", "a", "c", "a-1"})
    REQUIRE(store->PutOwnManifest(image, {image.media_type, "image"}, "own", "team/app", tag).ok());
  REQUIRE(store->PutOwnManifest(sig, {sig.media_type, "signature"}, "own", "team/app", "").ok());
  REQUIRE(store->PutTag("own", "team/app2", "z", {image.digest, 1}).ok());  // another repository
  {
    auto txn = store->BeginRead();
    auto all = store->ListTags(*txn, "own", "team/app", "", 100);
    REQUIRE(all.ok());
    CHECK(*all == std::vector<std::string>{"a", "a-1", "b", "c"});
    auto page = store->ListTags(*txn, "own", "team/app", "a-1", 1);
    REQUIRE(page.ok());
    CHECK(*page == std::vector<std::string>{"b"});
    auto after_last = store->ListTags(*txn, "own", "team/app", "c", 10);
    CHECK(after_last->empty());
    auto refs = store->ListReferrers(*txn, image.digest);
    REQUIRE(refs.ok());
    REQUIRE(refs->size() == 1);
    CHECK((*refs)[0].digest == sig.digest);
    CHECK((*refs)[0].artifact_type == "application/example.sig");
    CHECK((*refs)[0].annotations_json == R"({"k":"v"})");
    cache::OwnManifest got;
    REQUIRE(store->GetOwnManifest(*txn, image.digest, &got).ok());
    CHECK(got.references == image.references);
    CHECK_FALSE(got.subject);
    cache::Manifest m;
    REQUIRE(store->GetManifest(*txn, sig.digest, &m).ok());
    CHECK(m.bytes == "signature");
  }
  REQUIRE(store->DeleteTag("own", "team/app", "b").ok());
  REQUIRE(store->DeleteTag("own", "team/app", "missing").ok());
  REQUIRE(store->DeleteManifest(sig.digest).ok());
  {
    auto txn = store->BeginRead();
    CHECK(store->ListTags(*txn, "own", "team/app", "", 100)->size() == 3);
    CHECK(store->ListReferrers(*txn, image.digest)->empty());
    cache::OwnManifest got;
    CHECK(store->GetOwnManifest(*txn, sig.digest, &got).IsNotFound());
  }
  auto own = store->ListOwnManifests();
  REQUIRE(own.ok());
  CHECK(own->size() == 1);
  REQUIRE(store->PutFleetRecord("k1", "v1").ok());
  REQUIRE(store->PutFleetRecord("k2", "v2").ok());
  REQUIRE(store->PutFleetRecord("k1", "").ok());  // deleted
  REQUIRE(store->PutFleetRecord("k3", "").ok());  // deleting a missing one is fine
  auto fleet = store->ListFleetRecords();
  REQUIRE(fleet.ok());
  CHECK(*fleet == std::vector<std::pair<std::string, std::string>>{{"k2", "v2"}});
}

TEST_CASE(
    "store: a chunk checked once is checked again only when its pages come back from the disk") {
  // Under the working directory (the build tree), not /tmp: the page cache
  // must be able to drop the file's pages, which tmpfs cannot.
  char tmpl[] = "store-resident-test.XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  struct Cleanup {
    std::string path;
    ~Cleanup() { std::filesystem::remove_all(path); }
  } cleanup{tmpl};
  auto store = Open(tmpl);
  std::string blob(256 * 1024, '\0');
  for (size_t i = 0; i < blob.size(); ++i) blob[i] = static_cast<char>(i * 2654435761u >> 13);
  util::Digest d = DigestOf(blob);
  REQUIRE(store->PutChunk(d, 0, Bytes(blob)).ok());
  cache::BlobInfo info;
  info.size = blob.size();
  REQUIRE(store->PublishBlob(d, info).ok());

  auto read = [&](cache::ChunkCheck check, cache::Store::FileSpan* file = nullptr) {
    auto txn = store->BeginRead();
    REQUIRE(txn.ok());
    std::span<const uint8_t> p;
    util::Status st = store->GetChunk(*txn, d, 0, &p, check);
    if (file) *file = store->FileOf(p);
    cache::Store::ReleaseMapped(p);  // as a serve does: our own mapping no longer holds the pages
    return st;
  };
  cache::Store::FileSpan file;
  REQUIRE(read(cache::ChunkCheck::kFull, &file).ok());
  REQUIRE(file.fd >= 0);

  // One byte changes in the file; its page stays in memory.
  int fd = ::open((std::string(tmpl) + "/data.mdb").c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  // FileOf names where the payload lies in the file (what sendfile sends).
  std::string head(4096, '\0');
  REQUIRE(::pread(fd, head.data(), head.size(), static_cast<off_t>(file.offset)) == 4096);
  CHECK(head == blob.substr(0, 4096));
  off_t at = static_cast<off_t>(file.offset + 1000);
  char byte;
  REQUIRE(::pread(fd, &byte, 1, at) == 1);
  byte ^= 0x40;
  REQUIRE(::pwrite(fd, &byte, 1, at) == 1);
  CHECK(read(cache::ChunkCheck::kFull).IsCorruption());
  CHECK(read(cache::ChunkCheck::kNone).ok());
  // Its pages leave the page cache: the next read comes from the disk and
  // is checked, so the change is found.
  REQUIRE(::fdatasync(fd) == 0);
  REQUIRE(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0);
  ::close(fd);
  util::Status again = read(cache::ChunkCheck::kUnlessResident);
  CHECK(again.IsCorruption());
  // Once read back, the pages are resident again: a checked-before chunk is
  // not hashed (the cost a warm serve saves).
  CHECK(read(cache::ChunkCheck::kUnlessResident).ok());
}
