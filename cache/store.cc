#include "cache/store.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "util/log.h"

namespace cache {
namespace {

// One LMDB cursor, closed when it goes out of scope: declare it inside the
// scope of its transaction, so it closes first. LMDB codes are returned as
// they are, for the caller's FromMdb.
class Cursor {
 public:
  Cursor(MDB_txn* txn, MDB_dbi dbi) {
    open_rc_ = mdb_cursor_open(txn, dbi, &cur_);
    if (open_rc_) cur_ = nullptr;
  }
  ~Cursor() {
    if (cur_) mdb_cursor_close(cur_);
  }
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;
  // 0, or why the cursor could not be opened (then nothing else may be called).
  int open_rc() const { return open_rc_; }
  int Get(MDB_val* key, MDB_val* val, MDB_cursor_op op) {
    return mdb_cursor_get(cur_, key, val, op);
  }
  // Deletes the entry the cursor is on.
  int Del() { return mdb_cursor_del(cur_, 0); }

 private:
  MDB_cursor* cur_ = nullptr;
  int open_rc_ = 0;
};

using util::Digest;
using util::Result;
using util::Status;

// Format 2 added the own registry's databases and BlobRecord v2; a format 1
// environment is upgraded in place when opened for writing.
constexpr uint32_t kFormatVersion = 2;
constexpr uint32_t kRecordVersion = 1;  // manifest, tag and own-manifest records
constexpr uint32_t kBlobRecordV1 = 1;   // 32 bytes
constexpr uint32_t kBlobRecordV2 = 2;   // 72 bytes: v1 + flags + chunk key
constexpr size_t kBlobRecordV2Size = 72;
constexpr uint32_t kBlobFlagOwn = 1;

// The one place LMDB codes become Status.
Status FromMdb(int rc, const char* what) {
  if (rc == MDB_SUCCESS) return Status::Ok();
  std::string msg = std::string(what) + ": " + mdb_strerror(rc);
  if (rc == MDB_NOTFOUND) return Status::NotFound(msg);
  if (rc == MDB_MAP_FULL || rc == ENOSPC || rc == EDQUOT) return Status::NoSpace(msg);
  if (rc == MDB_CORRUPTED || rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH)
    return Status::Corruption(msg);
  return Status::IoError(msg);
}

// Calls `fn(key, val)` for every entry of `dbi` in key order, under `txn`;
// `what` names the scan in errors.
template <typename Fn>
Status ForEach(MDB_txn* txn, MDB_dbi dbi, const char* what, Fn fn) {
  Cursor cur(txn, dbi);
  if (int rc = cur.open_rc()) return FromMdb(rc, "cursor");
  MDB_val k, v;
  int rc;
  for (rc = cur.Get(&k, &v, MDB_FIRST); rc == 0; rc = cur.Get(&k, &v, MDB_NEXT)) fn(k, v);
  return rc == MDB_NOTFOUND ? Status::Ok() : FromMdb(rc, what);
}

void PutU32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }  // little-endian hosts only
void PutU64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint32_t GetU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t GetU64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

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

Status DecodeBlobRecord(const MDB_val& val, const Digest& d, BlobInfo* out) {
  const uint8_t* p = static_cast<const uint8_t*>(val.mv_data);
  uint32_t version = val.mv_size >= 32 ? GetU32(p) : 0;
  if (!(version == kBlobRecordV1 || (version == kBlobRecordV2 && val.mv_size >= kBlobRecordV2Size)))
    return Status::Corruption("bad blob record for " + d.ToString());
  out->chunk_size = GetU32(p + 4);
  out->size = GetU64(p + 8);
  out->created_ms = GetU64(p + 16);
  out->last_access_ms = GetU64(p + 24);
  out->own = false;
  out->chunk_key = Digest{};
  if (version == kBlobRecordV2) {
    out->own = GetU32(p + 32) & kBlobFlagOwn;
    out->chunk_key = Digest::FromRaw(p + 40);
  }
  if (out->chunk_size == 0) return Status::Corruption("bad chunk size for " + d.ToString());
  return Status::Ok();
}

std::array<uint8_t, kBlobRecordV2Size> EncodeBlobRecord(const BlobInfo& info) {
  std::array<uint8_t, kBlobRecordV2Size> rec{};
  PutU32(rec.data(), kBlobRecordV2);
  PutU32(rec.data() + 4, info.chunk_size);
  PutU64(rec.data() + 8, info.size);
  PutU64(rec.data() + 16, info.created_ms);
  PutU64(rec.data() + 24, info.last_access_ms);
  PutU32(rec.data() + 32, info.own ? kBlobFlagOwn : 0);
  std::memcpy(rec.data() + 40, info.chunk_key.bytes.data(), 32);
  return rec;
}

// Writes blob `d`'s record; an LMDB code.
int PutBlobRecord(MDB_txn* txn, MDB_dbi blobs, const Digest& d, const BlobInfo& info) {
  auto rec = EncodeBlobRecord(info);
  MDB_val key = DigestVal(d), val = Val(rec.data(), rec.size());
  return mdb_put(txn, blobs, &key, &val, 0);
}

// Deletes every chunk stored under `key`.
int DeleteChunksUnder(MDB_txn* txn, MDB_dbi chunks, const Digest& key) {
  Cursor cur(txn, chunks);
  int rc = cur.open_rc();
  if (rc) return rc;
  auto first = ChunkKey(key, 0);
  MDB_val k = Val(first.data(), first.size()), v;
  for (rc = cur.Get(&k, &v, MDB_SET_RANGE); rc == 0; rc = cur.Get(&k, &v, MDB_NEXT)) {
    if (k.mv_size != 36 || std::memcmp(k.mv_data, key.bytes.data(), 32) != 0) break;
    rc = cur.Del();
    if (rc) break;
  }
  return rc == MDB_NOTFOUND ? 0 : rc;
}

// OwnManifest record: u32 version, u32 flags (1: has subject), u64 size,
// u64 created, 32 subject, then length-prefixed media type (u16), artifact
// type (u16), annotations JSON (u32), and u32 count + 32 bytes per reference.
std::string EncodeOwnManifest(const OwnManifest& m) {
  std::string out(56, '\0');
  uint8_t* p = reinterpret_cast<uint8_t*>(out.data());
  PutU32(p, kRecordVersion);
  PutU32(p + 4, m.subject ? 1 : 0);
  PutU64(p + 8, m.size);
  PutU64(p + 16, m.created_ms);
  if (m.subject) std::memcpy(p + 24, m.subject->bytes.data(), 32);
  auto put_len = [&out](uint64_t n, size_t width) {
    uint8_t b[4];
    PutU32(b, static_cast<uint32_t>(n));
    out.append(reinterpret_cast<char*>(b), width);
  };
  put_len(m.media_type.size(), 2);
  out += m.media_type;
  put_len(m.artifact_type.size(), 2);
  out += m.artifact_type;
  put_len(m.annotations_json.size(), 4);
  out += m.annotations_json;
  put_len(m.references.size(), 4);
  for (const Digest& d : m.references)
    out.append(reinterpret_cast<const char*>(d.bytes.data()), 32);
  return out;
}

Status DecodeOwnManifest(const MDB_val& val, const Digest& d, OwnManifest* out) {
  const uint8_t* p = static_cast<const uint8_t*>(val.mv_data);
  size_t n = val.mv_size, at = 56;
  Status bad = Status::Corruption("bad own manifest record for " + d.ToString());
  if (n < at || GetU32(p) != kRecordVersion) return bad;
  *out = OwnManifest();
  out->digest = d;
  if (GetU32(p + 4) & 1) out->subject = Digest::FromRaw(p + 24);
  out->size = GetU64(p + 8);
  out->created_ms = GetU64(p + 16);
  auto get_str = [&](size_t width, std::string* s) {
    if (at + width > n) return false;
    uint32_t len = 0;
    std::memcpy(&len, p + at, width);
    at += width;
    if (at + len > n) return false;
    s->assign(reinterpret_cast<const char*>(p + at), len);
    at += len;
    return true;
  };
  if (!get_str(2, &out->media_type) || !get_str(2, &out->artifact_type) ||
      !get_str(4, &out->annotations_json))
    return bad;
  if (at + 4 > n) return bad;
  uint32_t refs = GetU32(p + at);
  at += 4;
  if (refs > (n - at) / 32) return bad;
  for (uint32_t i = 0; i < refs; ++i, at += 32) out->references.push_back(Digest::FromRaw(p + at));
  return Status::Ok();
}

std::array<uint8_t, 48> TagRecord(const Digest& d, uint64_t confirmed_ms) {
  std::array<uint8_t, 48> rec{};
  PutU32(rec.data(), kRecordVersion);
  std::memcpy(rec.data() + 8, d.bytes.data(), 32);
  PutU64(rec.data() + 40, confirmed_ms);
  return rec;
}

// REQUIRES: the media type fits 16 bits.
std::string EncodeManifestRecord(const Manifest& m) {
  std::string rec(6 + m.media_type.size() + m.bytes.size(), '\0');
  uint8_t* p = reinterpret_cast<uint8_t*>(rec.data());
  PutU32(p, kRecordVersion);
  uint16_t mlen = static_cast<uint16_t>(m.media_type.size());
  std::memcpy(p + 4, &mlen, 2);
  std::memcpy(p + 6, m.media_type.data(), mlen);
  std::memcpy(p + 6 + mlen, m.bytes.data(), m.bytes.size());
  return rec;
}

std::string ReferrerKey(const Digest& subject, const Digest& referrer) {
  std::string k(reinterpret_cast<const char*>(subject.bytes.data()), 32);
  k.append(reinterpret_cast<const char*>(referrer.bytes.data()), 32);
  return k;
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

namespace {

// Whether every page of [data, data + len) of a file mapping is in the page
// cache. False when mincore(2) fails or the kernel withholds the answer
// (it then reports only pages mapped in this process, which a released
// chunk never is): the caller verifies.
bool Resident(const uint8_t* data, size_t len) {
  static const uintptr_t kPage = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  uintptr_t begin = reinterpret_cast<uintptr_t>(data) & ~(kPage - 1);
  uintptr_t end = reinterpret_cast<uintptr_t>(data) + len;
  size_t pages = (end - begin + kPage - 1) / kPage;
  // Chunks are 1 MiB by default (256 pages); a small stack vector covers
  // most, larger ones go by parts.
  unsigned char vec[1024];
  for (size_t done = 0; done < pages;) {
    size_t n = std::min(pages - done, sizeof vec);
    if (mincore(reinterpret_cast<void*>(begin + done * kPage), n * kPage, vec) != 0) return false;
    for (size_t i = 0; i < n; ++i)
      if (!(vec[i] & 1)) return false;
    done += n;
  }
  return true;
}

}  // namespace

void Store::NoteMap() {
  // LMDB names the map's address only for MDB_FIXEDMAP (me_mapaddr is 0
  // otherwise). So take a pointer it returns into the map, the meta
  // database's format record, and find the mapping that holds it in
  // /proc/self/maps: its start less its file offset is where file offset 0
  // is mapped. Without it FileOf() answers -1 and bytes go by writes.
  MDB_envinfo info;
  mdb_filehandle_t fd;
  if (mdb_env_info(env_, &info) != 0 || mdb_env_get_fd(env_, &fd) != 0) return;
  auto txn = BeginRead();
  if (!txn.ok()) return;
  MDB_val key = Val("format", 6), val;
  if (mdb_get(txn->get(), meta_, &key, &val) != 0) return;
  uintptr_t inside = reinterpret_cast<uintptr_t>(val.mv_data);
  FILE* maps = std::fopen("/proc/self/maps", "re");
  if (!maps) return;
  char* line = nullptr;
  size_t cap = 0;
  uintptr_t base = 0;
  while (getline(&line, &cap, maps) > 0) {
    unsigned long start, end, offset;
    if (std::sscanf(line, "%lx-%lx %*s %lx", &start, &end, &offset) == 3 && inside >= start &&
        inside < end && offset <= start) {
      base = start - offset;
      break;
    }
  }
  std::free(line);
  std::fclose(maps);
  if (!base || inside + val.mv_size > base + info.me_mapsize) return;
  map_base_ = reinterpret_cast<const uint8_t*>(base);
  map_size_ = info.me_mapsize;
  data_fd_ = fd;
}

Store::FileSpan Store::FileOf(std::span<const uint8_t> bytes) const {
  if (!map_base_ || bytes.data() < map_base_ || bytes.data() + bytes.size() > map_base_ + map_size_)
    return {};
  return {data_fd_, static_cast<uint64_t>(bytes.data() - map_base_)};
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
    struct {
      const char* name;
      MDB_dbi* dbi;
    } dbs[] = {{"meta", &s->meta_},           {"blobs", &s->blobs_},
               {"chunks", &s->chunks_},       {"manifests", &s->manifests_},
               {"tags", &s->tags_},           {"own_manifests", &s->own_manifests_},
               {"referrers", &s->referrers_}, {"fleet", &s->fleet_}};
    for (auto& db : dbs) {
      rc = mdb_dbi_open(txn.get(), db.name, MDB_CREATE, db.dbi);
      if (rc) return FromMdb(rc, "open database");
    }
    MDB_val key = Val("format", 6), val;
    rc = mdb_get(txn.get(), s->meta_, &key, &val);
    if (rc == 0 && val.mv_size == 4 && GetU32(static_cast<uint8_t*>(val.mv_data)) == 1) {
      LOG_INFO("cache: format 1 upgraded to %u (own registry databases added)", kFormatVersion);
      rc = MDB_NOTFOUND;  // rewritten below; the databases were created above
    }
    if (rc == MDB_NOTFOUND) {
      uint8_t v[4];
      PutU32(v, kFormatVersion);
      MDB_val nv = Val(v, 4);
      rc = mdb_put(txn.get(), s->meta_, &key, &nv, 0);
      if (rc) return FromMdb(rc, "write format version");
    } else if (rc) {
      return FromMdb(rc, "read format version");
    } else if (val.mv_size != 4 || GetU32(static_cast<uint8_t*>(val.mv_data)) != kFormatVersion) {
      return Status::Corruption("cache format in " + options.dir +
                                " is not supported by this georeg");
    }
    Status st = txn.Commit();
    if (!st.ok()) return st;
  }
  s->NoteMap();
  auto orphans = s->RemoveOrphanChunks();
  if (!orphans.ok()) return orphans.status();
  if (*orphans)
    LOG_INFO("cache: removed %llu chunk(s) of unfinished fills", (unsigned long long)*orphans);
  Status st = s->Sync();
  if (!st.ok()) return st;
  return s;
}

Result<std::unique_ptr<Store>> Store::OpenReadOnly(std::unique_ptr<Store> s,
                                                   const Options& options) {
  struct stat sb;
  if (::stat((options.dir + "/data.mdb").c_str(), &sb) != 0)
    return Status::NotFound("no cache in " + options.dir);
  int rc = mdb_env_create(&s->env_);
  if (rc) return FromMdb(rc, "mdb_env_create");
  if ((rc = mdb_env_set_maxdbs(s->env_, 8)) ||
      (rc = mdb_env_set_maxreaders(s->env_, options.max_readers)))
    return FromMdb(rc, "configure environment");
  rc = mdb_env_open(s->env_, options.dir.c_str(), MDB_NOTLS | MDB_RDONLY, 0640);
  if (rc) return FromMdb(rc, ("open cache " + options.dir).c_str());
  s->read_only_ = true;
  MDB_txn* txn;
  rc = mdb_txn_begin(s->env_, nullptr, MDB_RDONLY, &txn);
  if (rc) return FromMdb(rc, "begin read transaction");
  struct {
    const char* name;
    MDB_dbi* dbi;
  } dbs[] = {{"meta", &s->meta_},           {"blobs", &s->blobs_},
             {"chunks", &s->chunks_},       {"manifests", &s->manifests_},
             {"tags", &s->tags_},           {"own_manifests", &s->own_manifests_},
             {"referrers", &s->referrers_}, {"fleet", &s->fleet_}};
  for (auto& db : dbs) {
    rc = mdb_dbi_open(txn, db.name, 0, db.dbi);
    // A format 1 cache (a daemon not upgraded yet) has no own-registry databases.
    if (rc == MDB_NOTFOUND && db.dbi != &s->meta_ && db.dbi != &s->blobs_ &&
        db.dbi != &s->chunks_ && db.dbi != &s->manifests_ && db.dbi != &s->tags_) {
      s->missing_dbs_ = true;
      continue;
    }
    if (rc) {
      mdb_txn_abort(txn);
      return FromMdb(rc, "open database");
    }
  }
  mdb_txn_commit(txn);  // keeps the dbi handles
  s->NoteMap();
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
  return DecodeBlobRecord(val, d, out);
}

Status Store::GetChunk(const ReadTxn& txn, const Digest& d, uint32_t index,
                       std::span<const uint8_t>* payload, ChunkCheck check) const {
  auto k = ChunkKey(d, index);
  MDB_val key = Val(k.data(), k.size()), val;
  int rc = mdb_get(txn.get(), chunks_, &key, &val);
  if (rc) return FromMdb(rc, "chunk");
  if (val.mv_size < 8) return Status::Corruption("short chunk record for " + d.ToString());
  *payload =
      std::span<const uint8_t>(static_cast<const uint8_t*>(val.mv_data) + 8, val.mv_size - 8);
  bool verify = check == ChunkCheck::kFull ||
                (check == ChunkCheck::kUnlessResident &&
                 !Resident(static_cast<const uint8_t*>(val.mv_data), val.mv_size));
  if (verify && GetU64(static_cast<const uint8_t*>(val.mv_data)) != ChunkChecksum(*payload))
    return Status::Corruption("chunk " + std::to_string(index) + " of " + d.ToString() +
                              " fails its checksum");
  return Status::Ok();
}

Status Store::GetManifest(const ReadTxn& txn, const Digest& d, Manifest* out) const {
  MDB_val key = DigestVal(d), val;
  int rc = mdb_get(txn.get(), manifests_, &key, &val);
  if (rc) return FromMdb(rc, "manifest");
  const uint8_t* p = static_cast<const uint8_t*>(val.mv_data);
  if (val.mv_size < 6 || GetU32(p) != kRecordVersion)
    return Status::Corruption("bad manifest record");
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
  std::vector<std::pair<Digest, BlobInfo>> out;
  Status st = ForEach(txn->get(), blobs_, "list blobs", [&](const MDB_val& key, const MDB_val&) {
    if (key.mv_size != 32) return;
    Digest d = Digest::FromRaw(static_cast<uint8_t*>(key.mv_data));
    BlobInfo info;
    if (GetBlob(*txn, d, &info).ok()) out.emplace_back(d, info);
  });
  if (!st.ok()) return st;
  return out;
}

Result<std::vector<ManifestEntry>> Store::ListManifests() const {
  auto txn = BeginRead();
  if (!txn.ok()) return txn.status();
  std::vector<ManifestEntry> out;
  Status st = ForEach(txn->get(), manifests_, "list manifests",
                      [&](const MDB_val& key, const MDB_val& val) {
                        if (key.mv_size != 32 || val.mv_size < 6) return;
                        const uint8_t* p = static_cast<const uint8_t*>(val.mv_data);
                        uint16_t mlen;
                        std::memcpy(&mlen, p + 4, 2);
                        if (6u + mlen > val.mv_size) return;
                        out.push_back({Digest::FromRaw(static_cast<uint8_t*>(key.mv_data)),
                                       std::string(reinterpret_cast<const char*>(p + 6), mlen),
                                       val.mv_size - 6 - mlen});
                      });
  if (!st.ok()) return st;
  return out;
}

Result<StoreStats> Store::Stats() const {
  StoreStats st;
  auto blobs = ListBlobInfos();
  if (!blobs.ok()) return blobs.status();
  for (auto& [d, info] : *blobs) {
    ++(info.own ? st.own_blobs : st.blobs);
    (info.own ? st.own_blob_bytes : st.blob_bytes) += info.size;
  }
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

Store::MapUse Store::Map() const {
  MapUse use;
  MDB_envinfo info;
  MDB_stat st;
  if (mdb_env_info(env_, &info) == 0 && mdb_env_stat(env_, &st) == 0) {
    use.map_size = info.me_mapsize;
    use.used_bytes = (uint64_t(info.me_last_pgno) + 1) * st.ms_psize;
  }
  return use;
}

Status Store::DeleteManifest(const Digest& d) {
  WriteTxn txn(env_);
  if (!txn.status().ok()) return txn.status();
  MDB_val key = DigestVal(d), val;
  int rc = mdb_del(txn.get(), manifests_, &key, nullptr);
  if (rc) return FromMdb(rc, "delete manifest");
  if (!missing_dbs_ && mdb_get(txn.get(), own_manifests_, &key, &val) == 0) {
    OwnManifest own;
    if (DecodeOwnManifest(val, d, &own).ok() && own.subject) {
      std::string rk = ReferrerKey(*own.subject, d);
      MDB_val rkey = Val(rk.data(), rk.size());
      rc = mdb_del(txn.get(), referrers_, &rkey, nullptr);
      if (rc && rc != MDB_NOTFOUND) return FromMdb(rc, "delete referrer");
    }
    if ((rc = mdb_del(txn.get(), own_manifests_, &key, nullptr)))
      return FromMdb(rc, "delete own manifest");
  }
  Status st = txn.Commit();
  if (!st.ok()) return st;
  return Sync();
}

Status Store::PutOwnManifest(const OwnManifest& own, const Manifest& m, const std::string& registry,
                             const std::string& repo, const std::string& tag) {
  if (m.media_type.size() > 0xffff || own.artifact_type.size() > 0xffff)
    return Status::InvalidArgument("media type too long");
  {
    WriteTxn txn(env_);
    if (!txn.status().ok()) return txn.status();
    std::string rec = EncodeManifestRecord(m);
    MDB_val key = DigestVal(own.digest), val = Val(rec.data(), rec.size());
    int rc = mdb_put(txn.get(), manifests_, &key, &val, 0);
    if (rc) return FromMdb(rc, "put manifest");
    std::string orec = EncodeOwnManifest(own);
    MDB_val oval = Val(orec.data(), orec.size());
    if ((rc = mdb_put(txn.get(), own_manifests_, &key, &oval, 0)))
      return FromMdb(rc, "put own manifest");
    if (own.subject) {
      std::string rk = ReferrerKey(*own.subject, own.digest);
      MDB_val rkey = Val(rk.data(), rk.size()), rval = Val("", 0);
      if ((rc = mdb_put(txn.get(), referrers_, &rkey, &rval, 0)))
        return FromMdb(rc, "put referrer");
    }
    if (!tag.empty()) {
      std::string k = TagKey(registry, repo, tag);
      auto trec = TagRecord(own.digest, own.created_ms);
      MDB_val tkey = Val(k.data(), k.size()), tval = Val(trec.data(), trec.size());
      if ((rc = mdb_put(txn.get(), tags_, &tkey, &tval, 0))) return FromMdb(rc, "put tag");
    }
    Status st = txn.Commit();
    if (!st.ok()) return st;
  }
  return Sync();
}

Status Store::DeleteTag(const std::string& registry, const std::string& repo,
                        const std::string& tag) {
  WriteTxn txn(env_);
  if (!txn.status().ok()) return txn.status();
  std::string k = TagKey(registry, repo, tag);
  MDB_val key = Val(k.data(), k.size());
  int rc = mdb_del(txn.get(), tags_, &key, nullptr);
  if (rc && rc != MDB_NOTFOUND) return FromMdb(rc, "delete tag");
  return txn.Commit();
}

Status Store::PutFleetRecord(const std::string& key, const std::string& value) {
  {
    WriteTxn txn(env_);
    if (!txn.status().ok()) return txn.status();
    MDB_val k = Val(key.data(), key.size()), v = Val(value.data(), value.size());
    int rc = value.empty() ? mdb_del(txn.get(), fleet_, &k, nullptr)
                           : mdb_put(txn.get(), fleet_, &k, &v, 0);
    if (rc && !(value.empty() && rc == MDB_NOTFOUND)) return FromMdb(rc, "put fleet record");
    Status st = txn.Commit();
    if (!st.ok()) return st;
  }
  return Sync();
}

Result<std::vector<std::string>> Store::ListTags(const ReadTxn& txn, const std::string& registry,
                                                 const std::string& repo, const std::string& last,
                                                 size_t n) const {
  std::vector<std::string> out;
  std::string prefix = TagKey(registry, repo, "");
  std::string start = prefix + last;
  Cursor cur(txn.get(), tags_);
  int rc = cur.open_rc();
  if (rc) return FromMdb(rc, "cursor");
  MDB_val k = Val(start.data(), start.size()), v;
  for (rc = cur.Get(&k, &v, MDB_SET_RANGE); rc == 0 && out.size() < n;
       rc = cur.Get(&k, &v, MDB_NEXT)) {
    std::string_view key(static_cast<const char*>(k.mv_data), k.mv_size);
    if (key.substr(0, prefix.size()) != prefix) break;
    std::string_view tag = key.substr(prefix.size());
    if (!last.empty() && tag == last) continue;  // strictly after `last`
    out.emplace_back(tag);
  }
  if (rc && rc != MDB_NOTFOUND) return FromMdb(rc, "list tags");
  return out;
}

Status Store::GetOwnManifest(const ReadTxn& txn, const Digest& d, OwnManifest* out) const {
  if (missing_dbs_) return Status::NotFound("own manifest");
  MDB_val key = DigestVal(d), val;
  int rc = mdb_get(txn.get(), own_manifests_, &key, &val);
  if (rc) return FromMdb(rc, "own manifest");
  return DecodeOwnManifest(val, d, out);
}

Result<std::vector<OwnManifest>> Store::ListOwnManifests() const {
  std::vector<OwnManifest> out;
  if (missing_dbs_) return out;
  auto txn = BeginRead();
  if (!txn.ok()) return txn.status();
  Status st = ForEach(
      txn->get(), own_manifests_, "list own manifests", [&](const MDB_val& k, const MDB_val& v) {
        OwnManifest m;
        if (k.mv_size == 32 &&
            DecodeOwnManifest(v, Digest::FromRaw(static_cast<const uint8_t*>(k.mv_data)), &m).ok())
          out.push_back(std::move(m));
      });
  if (!st.ok()) return st;
  return out;
}

Result<std::vector<OwnManifest>> Store::ListReferrers(const ReadTxn& txn,
                                                      const Digest& subject) const {
  std::vector<OwnManifest> out;
  if (missing_dbs_) return out;
  Cursor cur(txn.get(), referrers_);
  int rc = cur.open_rc();
  if (rc) return FromMdb(rc, "cursor");
  MDB_val k = DigestVal(subject), v;
  for (rc = cur.Get(&k, &v, MDB_SET_RANGE); rc == 0; rc = cur.Get(&k, &v, MDB_NEXT)) {
    if (k.mv_size != 64 || std::memcmp(k.mv_data, subject.bytes.data(), 32) != 0) break;
    OwnManifest m;
    if (GetOwnManifest(txn, Digest::FromRaw(static_cast<const uint8_t*>(k.mv_data) + 32), &m).ok())
      out.push_back(std::move(m));
  }
  if (rc && rc != MDB_NOTFOUND) return FromMdb(rc, "list referrers");
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> Store::ListFleetRecords() const {
  std::vector<std::pair<std::string, std::string>> out;
  if (missing_dbs_) return out;
  auto txn = BeginRead();
  if (!txn.ok()) return txn.status();
  Status st =
      ForEach(txn->get(), fleet_, "list fleet records", [&](const MDB_val& k, const MDB_val& v) {
        out.emplace_back(std::string(static_cast<const char*>(k.mv_data), k.mv_size),
                         std::string(static_cast<const char*>(v.mv_data), v.mv_size));
      });
  if (!st.ok()) return st;
  return out;
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
    if (mdb_get(txn.get(), blobs_, &key, &val) != 0 || val.mv_size < 32)
      continue;  // evicted meanwhile
    std::string rec(static_cast<const char*>(val.mv_data),
                    val.mv_size);  // v1 or v2: only the time changes
    PutU64(reinterpret_cast<uint8_t*>(rec.data()) + 24, ms);
    MDB_val nv = Val(rec.data(), rec.size());
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
    if (int rc = PutBlobRecord(txn.get(), blobs_, d, info)) return FromMdb(rc, "put blob");
    Status st = txn.Commit();
    if (!st.ok()) return st;
  }
  return Sync();
}

Status Store::PublishUpload(const Digest& d, const BlobInfo& info, bool* existed) {
  *existed = false;
  {
    WriteTxn txn(env_);
    if (!txn.status().ok()) return txn.status();
    MDB_val key = DigestVal(d), val;
    int rc = mdb_get(txn.get(), blobs_, &key, &val);
    if (rc == 0) {
      // Pushed before, or cached from a mirror: same bytes. Keep those, mark them own.
      *existed = true;
      BlobInfo cur;
      Status st = DecodeBlobRecord(val, d, &cur);
      if (!st.ok()) return st;
      cur.own = true;
      if ((rc = PutBlobRecord(txn.get(), blobs_, d, cur))) return FromMdb(rc, "put blob");
      if (info.chunk_key != Digest{} && info.chunk_key != d &&
          (rc = DeleteChunksUnder(txn.get(), chunks_, info.chunk_key)))
        return FromMdb(rc, "delete upload chunks");
    } else if (rc == MDB_NOTFOUND) {
      BlobInfo own = info;
      own.own = true;
      if ((rc = PutBlobRecord(txn.get(), blobs_, d, own))) return FromMdb(rc, "put blob");
    } else {
      return FromMdb(rc, "blob");
    }
    Status st = txn.Commit();
    if (!st.ok()) return st;
  }
  return Sync();
}

Status Store::SetBlobOwn(const Digest& d, bool own) {
  WriteTxn txn(env_);
  if (!txn.status().ok()) return txn.status();
  MDB_val key = DigestVal(d), val;
  int rc = mdb_get(txn.get(), blobs_, &key, &val);
  if (rc) return FromMdb(rc, "blob");
  BlobInfo cur;
  Status st = DecodeBlobRecord(val, d, &cur);
  if (!st.ok()) return st;
  if (cur.own == own) return Status::Ok();
  cur.own = own;
  if ((rc = PutBlobRecord(txn.get(), blobs_, d, cur))) return FromMdb(rc, "put blob");
  st = txn.Commit();
  if (!st.ok()) return st;
  return Sync();
}

Status Store::DeleteChunks(const Digest& key) {
  WriteTxn txn(env_);
  if (!txn.status().ok()) return txn.status();
  if (int rc = DeleteChunksUnder(txn.get(), chunks_, key)) return FromMdb(rc, "delete chunks");
  return txn.Commit();
}

Status Store::DeleteBlob(const Digest& d) {
  WriteTxn txn(env_);
  if (!txn.status().ok()) return txn.status();
  MDB_val key = DigestVal(d), val;
  Digest chunks_at = d;
  int rc = mdb_get(txn.get(), blobs_, &key, &val);
  if (rc == 0) {
    BlobInfo info;
    if (DecodeBlobRecord(val, d, &info).ok()) chunks_at = info.ChunksOf(d);
    rc = mdb_del(txn.get(), blobs_, &key, nullptr);
  }
  if (rc && rc != MDB_NOTFOUND) return FromMdb(rc, "delete blob");
  if ((rc = DeleteChunksUnder(txn.get(), chunks_, chunks_at))) return FromMdb(rc, "delete chunks");
  // A fill's chunks (under the digest) may exist beside an upload's.
  if (chunks_at != d && (rc = DeleteChunksUnder(txn.get(), chunks_, d)))
    return FromMdb(rc, "delete chunks");
  return txn.Commit();
}

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
    std::string rec = EncodeManifestRecord(m);
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
  // Chunks kept under another key than their blob's digest (pushed blobs).
  std::vector<Digest> moved;
  uint64_t removed = 0;
  {  // the cursors close here, before the commit frees them
    Status st = ForEach(txn.get(), blobs_, "list blobs", [&](const MDB_val& k, const MDB_val& v) {
      BlobInfo info;
      if (k.mv_size != 32) return;
      Digest d = Digest::FromRaw(static_cast<const uint8_t*>(k.mv_data));
      if (DecodeBlobRecord(v, d, &info).ok() && info.ChunksOf(d) != d)
        moved.push_back(info.chunk_key);
    });
    if (!st.ok()) return st;
    std::sort(moved.begin(), moved.end());
    Cursor cur(txn.get(), chunks_);
    int rc = cur.open_rc();
    if (rc) return FromMdb(rc, "cursor");
    MDB_val k, v;
    // Remembers the last digest checked so each blob's record is looked up once.
    uint8_t last[32] = {};
    bool last_complete = false, have_last = false;
    for (rc = cur.Get(&k, &v, MDB_FIRST); rc == 0; rc = cur.Get(&k, &v, MDB_NEXT)) {
      const uint8_t* kd = static_cast<const uint8_t*>(k.mv_data);
      if (k.mv_size != 36 || !have_last || std::memcmp(kd, last, 32) != 0) {
        if (k.mv_size == 36) std::memcpy(last, kd, 32);
        have_last = k.mv_size == 36;
        MDB_val bk = Val(kd, 32), bv;
        last_complete = k.mv_size == 36 &&
                        (mdb_get(txn.get(), blobs_, &bk, &bv) == 0 ||
                         std::binary_search(moved.begin(), moved.end(), Digest::FromRaw(kd)));
      }
      if (!last_complete) {
        rc = cur.Del();
        if (rc) break;
        ++removed;
      }
    }
    if (rc && rc != MDB_NOTFOUND) return FromMdb(rc, "remove orphan chunks");
  }
  Status st = txn.Commit();
  if (!st.ok()) return st;
  return removed;
}

}  // namespace cache
