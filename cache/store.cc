#include "cache/store.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/statvfs.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>

#include "util/log.h"

namespace cache {
namespace {

using util::Digest;
using util::Result;
using util::Status;

constexpr uint32_t kFormatVersion = 1;
constexpr uint32_t kRecordVersion = 1;

// The one place LMDB codes become Status.
Status FromMdb(int rc, const char* what) {
  if (rc == MDB_SUCCESS) return Status::Ok();
  std::string msg = std::string(what) + ": " + mdb_strerror(rc);
  if (rc == MDB_NOTFOUND) return Status::NotFound(msg);
  if (rc == MDB_MAP_FULL || rc == ENOSPC || rc == EDQUOT) return Status::NoSpace(msg);
  if (rc == MDB_CORRUPTED || rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) return Status::Corruption(msg);
  return Status::IoError(msg);
}

void PutU32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }  // little-endian hosts only
void PutU64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint32_t GetU32(const uint8_t* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }
uint64_t GetU64(const uint8_t* p) { uint64_t v; std::memcpy(&v, p, 8); return v; }

std::array<uint8_t, 36> ChunkKey(const Digest& d, uint32_t index) {
  std::array<uint8_t, 36> key;
  std::memcpy(key.data(), d.bytes.data(), 32);
  key[32] = index >> 24;
  key[33] = index >> 16;
  key[34] = index >> 8;
  key[35] = index;
  return key;
}

MDB_val Val(const void* p, size_t n) { return MDB_val{n, const_cast<void*>(p)}; }
MDB_val DigestVal(const Digest& d) { return Val(d.bytes.data(), 32); }

std::string TagKey(const std::string& registry, const std::string& repo, const std::string& tag) {
  std::string key = registry;
  key.push_back('\0');
  key += repo;
  key.push_back('\0');
  key += tag;
  return key;
}

// LMDB reports a short pwrite(2) as EIO, and on a full file system that is
// what ENOSPC looks like. An I/O error while the file system is nearly full
// is treated as "no space", so the daemon degrades to pass-through.
Status ClassifyWriteError(MDB_env* env, int rc, const char* what) {
  if (rc == EIO) {
    const char* path = nullptr;
    struct statvfs fs;
    if (mdb_env_get_path(env, &path) == 0 && statvfs(path, &fs) == 0 &&
        static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize < (64ull << 20)) {
      return Status::NoSpace(std::string(what) + ": short write on a nearly full file system");
    }
  }
  return FromMdb(rc, what);
}

// A write transaction that aborts unless committed.
class WriteTxn {
 public:
  explicit WriteTxn(MDB_env* env) : env_(env) { rc_ = mdb_txn_begin(env, nullptr, 0, &txn_); }
  ~WriteTxn() {
    if (txn_) mdb_txn_abort(txn_);
  }
  Status status() const { return FromMdb(rc_, "begin write transaction"); }
  MDB_txn* get() { return txn_; }
  Status Commit() {
    int rc = mdb_txn_commit(txn_);
    txn_ = nullptr;
    return ClassifyWriteError(env_, rc, "commit");
  }

 private:
  MDB_env* env_;
  MDB_txn* txn_ = nullptr;
  int rc_ = 0;
};

}  // namespace

void Store::ReleaseMapped(std::span<const uint8_t> bytes) {
  static const uintptr_t kPage = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  uintptr_t begin = (reinterpret_cast<uintptr_t>(bytes.data()) + kPage - 1) & ~(kPage - 1);
  uintptr_t end = (reinterpret_cast<uintptr_t>(bytes.data()) + bytes.size()) & ~(kPage - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

uint64_t ChunkChecksum(std::span<const uint8_t> payload) {
  return XXH3_64bits(payload.data(), payload.size());
}

ReadTxn& ReadTxn::operator=(ReadTxn&& o) noexcept {
  if (this != &o) {
    if (txn_) mdb_txn_abort(txn_);
    txn_ = o.txn_;
    o.txn_ = nullptr;
  }
  return *this;
}

ReadTxn::~ReadTxn() {
  if (txn_) mdb_txn_abort(txn_);
}

Result<std::unique_ptr<Store>> Store::Open(const Options& options) {
  std::unique_ptr<Store> s(new Store());
  s->dir_ = options.dir;
  if (options.read_only) return OpenReadOnly(std::move(s), options);
  if (::mkdir(options.dir.c_str(), 0750) != 0 && errno != EEXIST)
    return Status::IoError("cannot create cache dir " + options.dir + ": " + std::strerror(errno));
  int rc = mdb_env_create(&s->env_);
  if (rc) return FromMdb(rc, "mdb_env_create");
  // Map: budget + 25% + 256 MiB headroom, rounded up to 1 GiB. Sparse on disk.
  uint64_t map = options.max_size + options.max_size / 4 + (256ull << 20);
  map = (map + (1ull << 30) - 1) & ~((1ull << 30) - 1);
  if (options.map_size) map = options.map_size;
  if ((rc = mdb_env_set_mapsize(s->env_, map)) || (rc = mdb_env_set_maxdbs(s->env_, 8)) ||
      (rc = mdb_env_set_maxreaders(s->env_, options.max_readers)))
    return FromMdb(rc, "configure environment");
  rc = mdb_env_open(s->env_, options.dir.c_str(), MDB_NOTLS | MDB_NOSYNC, 0640);
  if (rc) return FromMdb(rc, ("open cache " + options.dir).c_str());
  int dead = 0;
  mdb_reader_check(s->env_, &dead);  // clear reader slots of killed processes
  if (dead) LOG_INFO("cache: cleared %d stale reader slot(s)", dead);
  {
    WriteTxn txn(s->env_);
    if (!txn.status().ok()) return txn.status();
    struct { const char* name; MDB_dbi* dbi; } dbs[] = {{"meta", &s->meta_},
                                                        {"blobs", &s->blobs_},
                                                        {"chunks", &s->chunks_},
                                                        {"manifests", &s->manifests_},
                                                        {"tags", &s->tags_}};
    for (auto& db : dbs) {
      rc = mdb_dbi_open(txn.get(), db.name, MDB_CREATE, db.dbi);
      if (rc) return FromMdb(rc, "open database");
    }
    MDB_val key = Val("format", 6), val;
    rc = mdb_get(txn.get(), s->meta_, &key, &val);
    if (rc == MDB_NOTFOUND) {
      uint8_t v[4];
      PutU32(v, kFormatVersion);
      MDB_val nv = Val(v, 4);
      rc = mdb_put(txn.get(), s->meta_, &key, &nv, 0);
      if (rc) return FromMdb(rc, "write format version");
    } else if (rc) {
      return FromMdb(rc, "read format version");
    } else if (val.mv_size != 4 || GetU32(static_cast<uint8_t*>(val.mv_data)) != kFormatVersion) {
      return Status::Corruption("cache format in " + options.dir + " is not supported by this georeg");
    }
    Status st = txn.Commit();
    if (!st.ok()) return st;
  }
  auto orphans = s->RemoveOrphanChunks();
  if (!orphans.ok()) return orphans.status();
  if (*orphans) LOG_INFO("cache: removed %llu chunk(s) of unfinished fills", (unsigned long long)*orphans);
  Status st = s->Sync();
  if (!st.ok()) return st;
  return s;
}

Result<std::unique_ptr<Store>> Store::OpenReadOnly(std::unique_ptr<Store> s, const Options& options) {
  struct stat sb;
  if (::stat((options.dir + "/data.mdb").c_str(), &sb) != 0) return Status::NotFound("no cache in " + options.dir);
  int rc = mdb_env_create(&s->env_);
  if (rc) return FromMdb(rc, "mdb_env_create");
  if ((rc = mdb_env_set_maxdbs(s->env_, 8)) || (rc = mdb_env_set_maxreaders(s->env_, options.max_readers)))
    return FromMdb(rc, "configure environment");
  rc = mdb_env_open(s->env_, options.dir.c_str(), MDB_NOTLS | MDB_RDONLY, 0640);
  if (rc) return FromMdb(rc, ("open cache " + options.dir).c_str());
  s->read_only_ = true;
  MDB_txn* txn;
  rc = mdb_txn_begin(s->env_, nullptr, MDB_RDONLY, &txn);
  if (rc) return FromMdb(rc, "begin read transaction");
  struct { const char* name; MDB_dbi* dbi; } dbs[] = {{"meta", &s->meta_}, {"blobs", &s->blobs_},
                                                      {"chunks", &s->chunks_}, {"manifests", &s->manifests_},
                                                      {"tags", &s->tags_}};
  for (auto& db : dbs) {
    rc = mdb_dbi_open(txn, db.name, 0, db.dbi);
    if (rc) {
      mdb_txn_abort(txn);
      return FromMdb(rc, "open database");
    }
  }
  mdb_txn_commit(txn);  // keeps the dbi handles
  return s;
}

Store::~Store() {
  if (env_) {
    if (!read_only_) mdb_env_sync(env_, 1);
    mdb_env_close(env_);
  }
}

Status Store::Sync() { return ClassifyWriteError(env_, mdb_env_sync(env_, 1), "sync"); }

Result<ReadTxn> Store::BeginRead() const {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  if (rc) return FromMdb(rc, "begin read transaction");
  return ReadTxn(txn);
}

Status Store::GetBlob(const ReadTxn& txn, const Digest& d, BlobInfo* out) const {
  MDB_val key = DigestVal(d), val;
  int rc = mdb_get(txn.get(), blobs_, &key, &val);
  if (rc) return FromMdb(rc, "blob");
  const uint8_t* p = static_cast<const uint8_t*>(val.mv_data);
  if (val.mv_size < 32 || GetU32(p) != kRecordVersion)
    return Status::Corruption("bad blob record for " + d.ToString());
  out->chunk_size = GetU32(p + 4);
  out->size = GetU64(p + 8);
  out->created_ms = GetU64(p + 16);
  out->last_access_ms = GetU64(p + 24);
  if (out->chunk_size == 0) return Status::Corruption("bad chunk size for " + d.ToString());
  return Status::Ok();
}

Status Store::GetChunk(const ReadTxn& txn, const Digest& d, uint32_t index,
                       std::span<const uint8_t>* payload, bool verify) const {
  auto k = ChunkKey(d, index);
  MDB_val key = Val(k.data(), k.size()), val;
  int rc = mdb_get(txn.get(), chunks_, &key, &val);
  if (rc) return FromMdb(rc, "chunk");
  if (val.mv_size < 8) return Status::Corruption("short chunk record for " + d.ToString());
  *payload = std::span<const uint8_t>(static_cast<const uint8_t*>(val.mv_data) + 8, val.mv_size - 8);
  if (verify && GetU64(static_cast<const uint8_t*>(val.mv_data)) != ChunkChecksum(*payload))
    return Status::Corruption("chunk " + std::to_string(index) + " of " + d.ToString() + " fails its checksum");
  return Status::Ok();
}

Status Store::GetManifest(const ReadTxn& txn, const Digest& d, Manifest* out) const {
  MDB_val key = DigestVal(d), val;
  int rc = mdb_get(txn.get(), manifests_, &key, &val);
  if (rc) return FromMdb(rc, "manifest");
  const uint8_t* p = static_cast<const uint8_t*>(val.mv_data);
  if (val.mv_size < 6 || GetU32(p) != kRecordVersion) return Status::Corruption("bad manifest record");
  uint16_t mlen;
  std::memcpy(&mlen, p + 4, 2);
  if (6u + mlen > val.mv_size) return Status::Corruption("bad manifest record");
  out->media_type.assign(reinterpret_cast<const char*>(p + 6), mlen);
  out->bytes.assign(reinterpret_cast<const char*>(p + 6 + mlen), val.mv_size - 6 - mlen);
  return Status::Ok();
}

Status Store::GetTag(const ReadTxn& txn, const std::string& registry, const std::string& repo,
                     const std::string& tag, TagInfo* out) const {
  std::string k = TagKey(registry, repo, tag);
  MDB_val key = Val(k.data(), k.size()), val;
  int rc = mdb_get(txn.get(), tags_, &key, &val);
  if (rc) return FromMdb(rc, "tag");
  const uint8_t* p = static_cast<const uint8_t*>(val.mv_data);
  if (val.mv_size != 48 || GetU32(p) != kRecordVersion) return Status::Corruption("bad tag record");
  out->digest = Digest::FromRaw(p + 8);
  out->confirmed_ms = GetU64(p + 40);
  return Status::Ok();
}

Result<std::vector<std::pair<Digest, BlobInfo>>> Store::ListBlobInfos() const {
  auto txn = BeginRead();
  if (!txn.ok()) return txn.status();
  MDB_cursor* cur;
  int rc = mdb_cursor_open(txn->get(), blobs_, &cur);
  if (rc) return FromMdb(rc, "cursor");
  std::vector<std::pair<Digest, BlobInfo>> out;
  MDB_val key, val;
  for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
    if (key.mv_size != 32) continue;
    Digest d = Digest::FromRaw(static_cast<uint8_t*>(key.mv_data));
    BlobInfo info;
    if (GetBlob(*txn, d, &info).ok()) out.emplace_back(d, info);
  }
  mdb_cursor_close(cur);
  if (rc != MDB_NOTFOUND) return FromMdb(rc, "list blobs");
  return out;
}

Result<std::vector<ManifestEntry>> Store::ListManifests() const {
  auto txn = BeginRead();
  if (!txn.ok()) return txn.status();
  MDB_cursor* cur;
  int rc = mdb_cursor_open(txn->get(), manifests_, &cur);
  if (rc) return FromMdb(rc, "cursor");
  std::vector<ManifestEntry> out;
  MDB_val key, val;
  for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
    if (key.mv_size != 32 || val.mv_size < 6) continue;
    const uint8_t* p = static_cast<const uint8_t*>(val.mv_data);
    uint16_t mlen;
    std::memcpy(&mlen, p + 4, 2);
    if (6u + mlen > val.mv_size) continue;
    out.push_back({Digest::FromRaw(static_cast<uint8_t*>(key.mv_data)),
                   std::string(reinterpret_cast<const char*>(p + 6), mlen), val.mv_size - 6 - mlen});
  }
  mdb_cursor_close(cur);
  if (rc != MDB_NOTFOUND) return FromMdb(rc, "list manifests");
  return out;
}

Result<StoreStats> Store::Stats() const {
  StoreStats st;
  auto blobs = ListBlobInfos();
  if (!blobs.ok()) return blobs.status();
  st.blobs = blobs->size();
  for (auto& [d, info] : *blobs) st.blob_bytes += info.size;
  auto manifests = ListManifests();
  if (!manifests.ok()) return manifests.status();
  st.manifests = manifests->size();
  for (auto& m : *manifests) st.manifest_bytes += m.size;
  auto txn = BeginRead();
  if (!txn.ok()) return txn.status();
  MDB_stat ms;
  if (mdb_stat(txn->get(), tags_, &ms) == 0) st.tags = ms.ms_entries;
  MDB_envinfo info;
  if (mdb_env_info(env_, &info) == 0) st.map_size = info.me_mapsize;
  struct stat sb;
  if (::stat((dir_ + "/data.mdb").c_str(), &sb) == 0) st.data_file_bytes = sb.st_size;
  return st;
}

Status Store::DeleteManifest(const Digest& d) {
  WriteTxn txn(env_);
  if (!txn.status().ok()) return txn.status();
  MDB_val key = DigestVal(d);
  int rc = mdb_del(txn.get(), manifests_, &key, nullptr);
  if (rc) return FromMdb(rc, "delete manifest");
  return txn.Commit();
}

Result<std::vector<Digest>> Store::ListBlobs() const {
  auto infos = ListBlobInfos();
  if (!infos.ok()) return infos.status();
  std::vector<Digest> out;
  for (auto& [d, info] : *infos) out.push_back(d);
  return out;
}

Status Store::PutBlobAccess(const std::vector<std::pair<Digest, uint64_t>>& access) {
  WriteTxn txn(env_);
  if (!txn.status().ok()) return txn.status();
  for (const auto& [d, ms] : access) {
    MDB_val key = DigestVal(d), val;
    if (mdb_get(txn.get(), blobs_, &key, &val) != 0 || val.mv_size < 32) continue;  // evicted meanwhile
    uint8_t rec[32];
    std::memcpy(rec, val.mv_data, 32);
    PutU64(rec + 24, ms);
    MDB_val nv = Val(rec, sizeof(rec));
    int rc = mdb_put(txn.get(), blobs_, &key, &nv, 0);
    if (rc) return FromMdb(rc, "put blob access");
  }
  return txn.Commit();
}

Status Store::PutChunk(const Digest& d, uint32_t index, std::span<const uint8_t> payload) {
  WriteTxn txn(env_);
  if (!txn.status().ok()) return txn.status();
  auto k = ChunkKey(d, index);
  MDB_val key = Val(k.data(), k.size());
  MDB_val val{payload.size() + 8, nullptr};
  // MDB_RESERVE: LMDB hands us the space and we write checksum and payload into it once.
  int rc = mdb_put(txn.get(), chunks_, &key, &val, MDB_RESERVE);
  if (rc) return FromMdb(rc, "put chunk");
  uint8_t* dst = static_cast<uint8_t*>(val.mv_data);
  PutU64(dst, ChunkChecksum(payload));
  std::memcpy(dst + 8, payload.data(), payload.size());
  return txn.Commit();
}

Status Store::PublishBlob(const Digest& d, const BlobInfo& info) {
  {
    WriteTxn txn(env_);
    if (!txn.status().ok()) return txn.status();
    uint8_t rec[32];
    PutU32(rec, kRecordVersion);
    PutU32(rec + 4, info.chunk_size);
    PutU64(rec + 8, info.size);
    PutU64(rec + 16, info.created_ms);
    PutU64(rec + 24, info.last_access_ms);
    MDB_val key = DigestVal(d), val = Val(rec, sizeof(rec));
    int rc = mdb_put(txn.get(), blobs_, &key, &val, 0);
    if (rc) return FromMdb(rc, "put blob");
    Status st = txn.Commit();
    if (!st.ok()) return st;
  }
  return Sync();
}

Status Store::DeleteBlob(const Digest& d) {
  WriteTxn txn(env_);
  if (!txn.status().ok()) return txn.status();
  MDB_val key = DigestVal(d);
  int rc = mdb_del(txn.get(), blobs_, &key, nullptr);
  if (rc && rc != MDB_NOTFOUND) return FromMdb(rc, "delete blob");
  MDB_cursor* cur;
  rc = mdb_cursor_open(txn.get(), chunks_, &cur);
  if (rc) return FromMdb(rc, "cursor");
  auto first = ChunkKey(d, 0);
  MDB_val k = Val(first.data(), first.size()), v;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (k.mv_size != 36 || std::memcmp(k.mv_data, d.bytes.data(), 32) != 0) break;
    rc = mdb_cursor_del(cur, 0);
    if (rc) break;
  }
  mdb_cursor_close(cur);
  if (rc && rc != MDB_NOTFOUND) return FromMdb(rc, "delete chunks");
  return txn.Commit();
}

namespace {
std::array<uint8_t, 48> TagRecord(const Digest& d, uint64_t confirmed_ms) {
  std::array<uint8_t, 48> rec{};
  PutU32(rec.data(), kRecordVersion);
  std::memcpy(rec.data() + 8, d.bytes.data(), 32);
  PutU64(rec.data() + 40, confirmed_ms);
  return rec;
}
}  // namespace

Status Store::PutTag(const std::string& registry, const std::string& repo, const std::string& tag,
                     const TagInfo& info) {
  WriteTxn txn(env_);
  if (!txn.status().ok()) return txn.status();
  std::string k = TagKey(registry, repo, tag);
  auto rec = TagRecord(info.digest, info.confirmed_ms);
  MDB_val key = Val(k.data(), k.size()), val = Val(rec.data(), rec.size());
  int rc = mdb_put(txn.get(), tags_, &key, &val, 0);
  if (rc) return FromMdb(rc, "put tag");
  return txn.Commit();
}

Status Store::PutManifest(const Digest& d, const Manifest& m, const std::string& registry,
                          const std::string& repo, const std::string& tag, uint64_t now_ms) {
  if (m.media_type.size() > 0xffff) return Status::InvalidArgument("media type too long");
  {
    WriteTxn txn(env_);
    if (!txn.status().ok()) return txn.status();
    std::string rec(6 + m.media_type.size() + m.bytes.size(), '\0');
    uint8_t* p = reinterpret_cast<uint8_t*>(rec.data());
    PutU32(p, kRecordVersion);
    uint16_t mlen = static_cast<uint16_t>(m.media_type.size());
    std::memcpy(p + 4, &mlen, 2);
    std::memcpy(p + 6, m.media_type.data(), mlen);
    std::memcpy(p + 6 + mlen, m.bytes.data(), m.bytes.size());
    MDB_val key = DigestVal(d), val = Val(rec.data(), rec.size());
    int rc = mdb_put(txn.get(), manifests_, &key, &val, 0);
    if (rc) return FromMdb(rc, "put manifest");
    if (!tag.empty()) {
      std::string k = TagKey(registry, repo, tag);
      auto trec = TagRecord(d, now_ms);
      MDB_val tkey = Val(k.data(), k.size()), tval = Val(trec.data(), trec.size());
      rc = mdb_put(txn.get(), tags_, &tkey, &tval, 0);
      if (rc) return FromMdb(rc, "put tag");
    }
    Status st = txn.Commit();
    if (!st.ok()) return st;
  }
  return Sync();
}

Result<uint64_t> Store::RemoveOrphanChunks() {
  WriteTxn txn(env_);
  if (!txn.status().ok()) return txn.status();
  MDB_cursor* cur;
  int rc = mdb_cursor_open(txn.get(), chunks_, &cur);
  if (rc) return FromMdb(rc, "cursor");
  uint64_t removed = 0;
  MDB_val k, v;
  // Remembers the last digest checked so each blob's record is looked up once.
  uint8_t last[32] = {};
  bool last_complete = false, have_last = false;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    const uint8_t* kd = static_cast<const uint8_t*>(k.mv_data);
    if (k.mv_size != 36 || !have_last || std::memcmp(kd, last, 32) != 0) {
      if (k.mv_size == 36) std::memcpy(last, kd, 32);
      have_last = k.mv_size == 36;
      MDB_val bk = Val(kd, 32), bv;
      last_complete = k.mv_size == 36 && mdb_get(txn.get(), blobs_, &bk, &bv) == 0;
    }
    if (!last_complete) {
      rc = mdb_cursor_del(cur, 0);
      if (rc) break;
      ++removed;
    }
  }
  mdb_cursor_close(cur);
  if (rc && rc != MDB_NOTFOUND) return FromMdb(rc, "remove orphan chunks");
  Status st = txn.Commit();
  if (!st.ok()) return st;
  return removed;
}

}  // namespace cache
