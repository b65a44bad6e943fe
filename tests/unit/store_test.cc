#include <catch2/catch.hpp>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "cache/store.h"
#include "util/sha256.h"

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/georeg-store-test.XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

util::Digest DigestOf(const std::string& s) { return util::Digest::FromRaw(util::Sha256::Of(s).data()); }

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
    REQUIRE(store->PutChunk(d, i, {reinterpret_cast<const uint8_t*>(part.data()), part.size()}).ok());
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
  REQUIRE(store->PutManifest(d, {"application/vnd.oci.image.manifest.v1+json", bytes}, "docker.io", "library/a",
                             "latest", 1234)
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
