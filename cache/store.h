// Store: the LMDB cache of blobs (as fixed-size chunks), manifests and tags.
//
// The on-disk format is specified in docs/cache-format.md. Threading:
//   - Read methods take a ReadTxn and may run on any thread (MDB_NOTLS); the
//     pointers they return point into the memory map and stay valid only
//     while that ReadTxn is open.
//   - Write methods must all run on one thread (the writer, cache/writer.h).
// The Store is owned by the daemon and must outlive every ReadTxn.
// LMDB return codes are translated here and never leave this module:
// MDB_NOTFOUND -> NotFound, MDB_MAP_FULL/ENOSPC -> NoSpace, others -> IoError.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "util/digest.h"
#include "util/status.h"

namespace cache {

inline constexpr uint32_t kDefaultChunkSize = 1u << 20;

struct BlobInfo {
  uint64_t size = 0;
  uint32_t chunk_size = kDefaultChunkSize;
  uint64_t created_ms = 0;
  uint64_t last_access_ms = 0;
  // Content of the fleet's own registry: pushed, or held as a replica. Never
  // evicted by the cache budget (docs/cache-format.md, BlobRecord flags).
  bool own = false;
  // Where the chunks are stored: a pushed blob keeps the key its upload
  // wrote them under (its digest was not known yet). All-zero: the digest.
  util::Digest chunk_key{};
  uint32_t ChunkCount() const {
    return static_cast<uint32_t>((size + chunk_size - 1) / chunk_size);
  }
  // The key to read chunks of blob `d` with.
  const util::Digest& ChunksOf(const util::Digest& d) const {
    return chunk_key == util::Digest{} ? d : chunk_key;
  }
};

// A manifest of the own registry: what tags/list, referrers and garbage
// collection need without parsing it again.
struct OwnManifest {
  util::Digest digest;
  std::string media_type;
  std::string artifact_type;  // artifactType, or the config's media type (OCI image spec)
  uint64_t size = 0;
  uint64_t created_ms = 0;
  std::optional<util::Digest> subject;
  std::vector<util::Digest> references;  // blobs (config, layers) and child manifests
  std::string annotations_json;          // the manifest's "annotations" object, or empty
};

struct Manifest {
  std::string media_type;
  std::string bytes;
};

struct ManifestEntry {
  util::Digest digest;
  std::string media_type;
  uint64_t size = 0;
};

struct StoreStats {
  uint64_t blobs = 0, manifests = 0, tags = 0;
  uint64_t blob_bytes = 0;  // sum of complete cached (evictable) blobs' sizes
  uint64_t own_blobs = 0;   // the own registry's blobs (never evicted), apart
  uint64_t own_blob_bytes = 0;
  uint64_t manifest_bytes = 0;
  uint64_t data_file_bytes = 0;  // data.mdb on disk
  uint64_t map_size = 0;
};

struct TagInfo {
  util::Digest digest;
  uint64_t confirmed_ms = 0;
};

// A read-only snapshot. Move-only; aborts on destruction.
class ReadTxn {
 public:
  ReadTxn() = default;
  ReadTxn(ReadTxn&& o) noexcept : txn_(o.txn_) { o.txn_ = nullptr; }
  ReadTxn& operator=(ReadTxn&& o) noexcept;
  ReadTxn(const ReadTxn&) = delete;
  ReadTxn& operator=(const ReadTxn&) = delete;
  ~ReadTxn();
  MDB_txn* get() const { return txn_; }

 private:
  friend class Store;
  explicit ReadTxn(MDB_txn* txn) : txn_(txn) {}
  MDB_txn* txn_ = nullptr;
};

// Whether a chunk read compares the payload's XXH3 with the stored one.
enum class ChunkCheck {
  kNone,
  // Always: about 30 GB/s of hashing, plus touching every page of the map.
  kFull,
  // Only when some page of the record is not in the page cache, so reading
  // it means reading the disk: for a chunk the caller already verified
  // since this process opened the store. Bytes that stayed in memory since
  // that check are the bytes checked; bytes coming back from the disk are
  // checked again. Where the kernel does not report residency for the
  // file (mincore(2) on a file we may not write), every page counts as not
  // resident and this is kFull.
  kUnlessResident,
};

class Store {
 public:
  struct Options {
    std::string dir;        // created if missing
    uint64_t max_size = 0;  // the budget; the map is sized from it
    uint64_t map_size = 0;  // overrides that sizing when non-zero
    unsigned max_readers = 1024;
    // Opens an existing cache for reading only, beside a running daemon:
    // no write transaction, no orphan clean-up. Write methods then fail.
    bool read_only = false;
  };
  // Opens (creating) the environment and removes orphan chunks left by a fill
  // that never completed. Errors: IoError (cannot create dir, open env),
  // Corruption (unsupported format version).
  static util::Result<std::unique_ptr<Store>> Open(const Options& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // ---- reads (any thread) ----
  util::Result<ReadTxn> BeginRead() const;
  // Errors: NotFound if the blob is not complete, Corruption for a bad record.
  util::Status GetBlob(const ReadTxn& txn, const util::Digest& d, BlobInfo* out) const;
  // The payload of one chunk, pointing into the map (valid while txn lives).
  // `d` is the key the chunks are stored under: BlobInfo::ChunksOf(digest)
  // for a complete blob, the digest for a fill in progress.
  // Used for complete blobs and, by a fill's own waiters, for committed
  // chunks of the fill in progress. `check` says whether the payload's XXH3
  // is compared with the one written at fill time (ChunkCheck).
  // Errors: NotFound, Corruption (short record, checksum mismatch).
  util::Status GetChunk(const ReadTxn& txn, const util::Digest& d, uint32_t index,
                        std::span<const uint8_t>* payload,
                        ChunkCheck check = ChunkCheck::kNone) const;
  // Copies the manifest out. Errors: NotFound, Corruption.
  util::Status GetManifest(const ReadTxn& txn, const util::Digest& d, Manifest* out) const;
  util::Status GetTag(const ReadTxn& txn, const std::string& registry, const std::string& repo,
                      const std::string& tag, TagInfo* out) const;
  // Every complete blob's digest (for tests and the cache CLI).
  util::Result<std::vector<util::Digest>> ListBlobs() const;
  // Every cached manifest (for the cache CLI).
  util::Result<std::vector<ManifestEntry>> ListManifests() const;
  util::Result<StoreStats> Stats() const;
  // The map's size and the bytes of it in use (pages up to the last one
  // written), from the environment's header: cheap, no walk (the metrics).
  struct MapUse {
    uint64_t map_size = 0, used_bytes = 0;
  };
  MapUse Map() const;
  // Every complete blob with its record (to rebuild the index at start).
  util::Result<std::vector<std::pair<util::Digest, BlobInfo>>> ListBlobInfos() const;
  // Tags of `repo` in `registry` sorted bytewise (the spec's lexical order),
  // after `last` when it is non-empty, at most `n`.
  util::Result<std::vector<std::string>> ListTags(const ReadTxn& txn, const std::string& registry,
                                                  const std::string& repo, const std::string& last,
                                                  size_t n) const;
  // Errors: NotFound, Corruption.
  util::Status GetOwnManifest(const ReadTxn& txn, const util::Digest& d, OwnManifest* out) const;
  util::Result<std::vector<OwnManifest>> ListOwnManifests() const;
  // Own manifests whose subject is `subject`.
  util::Result<std::vector<OwnManifest>> ListReferrers(const ReadTxn& txn,
                                                       const util::Digest& subject) const;
  // The fleet state this node keeps across restarts (own tags, replications):
  // opaque records by key, written by the cluster layer.
  util::Result<std::vector<std::pair<std::string, std::string>>> ListFleetRecords() const;

  // ---- writes (writer thread only) ----
  // Writes one in-progress chunk, not synced. Errors: NoSpace, IoError.
  util::Status PutChunk(const util::Digest& d, uint32_t index, std::span<const uint8_t> payload);
  // Marks a blob complete and syncs. REQUIRES: all its chunks were put
  // (under info.ChunksOf(d)).
  util::Status PublishBlob(const util::Digest& d, const BlobInfo& info);
  // Publishes an upload whose chunks are under `info.chunk_key` as own
  // blob `d`, and syncs. When `d` is already stored, it is marked own
  // instead, the upload's chunks are deleted and *existed is set.
  util::Status PublishUpload(const util::Digest& d, const BlobInfo& info, bool* existed);
  // Sets or clears the own flag of a stored blob. Errors: NotFound.
  util::Status SetBlobOwn(const util::Digest& d, bool own);
  // Deletes chunks stored under `key` that no blob record uses (an
  // abandoned upload).
  util::Status DeleteChunks(const util::Digest& key);
  // Deletes a blob's record and every chunk of it (complete or not).
  util::Status DeleteBlob(const util::Digest& d);
  // Stores a verified manifest and, when tag is non-empty, the tag pointing at
  // it, in one synced transaction.
  util::Status PutManifest(const util::Digest& d, const Manifest& m, const std::string& registry,
                           const std::string& repo, const std::string& tag, uint64_t now_ms);
  // Deletes a manifest record (tags pointing at it then miss and refetch),
  // with its own-registry record and referrer entry if it has them.
  util::Status DeleteManifest(const util::Digest& d);
  // Stores a manifest of the own registry: the manifest, its OwnManifest
  // record (and referrer entry), and the tag when non-empty, in one synced
  // transaction. The tag record's confirmed time is created_ms.
  util::Status PutOwnManifest(const OwnManifest& own, const Manifest& m,
                              const std::string& registry, const std::string& repo,
                              const std::string& tag);
  // Deletes a tag record. Missing is not an error.
  util::Status DeleteTag(const std::string& registry, const std::string& repo,
                         const std::string& tag);
  // Writes (or, with an empty value, deletes) a fleet record. Synced: fleet
  // state is what a push's acknowledgement promised.
  util::Status PutFleetRecord(const std::string& key, const std::string& value);
  // Writes a tag record alone (a revalidation confirmed it). Not synced: a
  // lost confirmation only costs one more HEAD.
  util::Status PutTag(const std::string& registry, const std::string& repo, const std::string& tag,
                      const TagInfo& info);
  // Records last-access times of blobs that still exist. Not synced.
  util::Status PutBlobAccess(const std::vector<std::pair<util::Digest, uint64_t>>& access);
  // Deletes chunks that have no blob record (fills cut short). Returns count.
  util::Result<uint64_t> RemoveOrphanChunks();

  const std::string& dir() const { return dir_; }

  // Drops this process's page-table entries for map bytes it has finished
  // with (written to a socket, hashed). The pages stay in the page cache
  // (the map is a shared read-only file mapping), so nothing is lost; this
  // keeps reading large blobs from inflating the resident set with file
  // pages. Only whole pages inside the range are released.
  static void ReleaseMapped(std::span<const uint8_t> bytes);

  // Where map bytes (a GetChunk payload) lie in data.mdb. The map covers the
  // file from offset 0 and is never moved (its size is fixed at Open), so
  // the bytes can be sent from `fd` at `offset` with sendfile(2) while the
  // read transaction they came from lives. `fd` belongs to the Store (valid
  // while it is open); -1 for bytes outside the map.
  struct FileSpan {
    int fd = -1;
    uint64_t offset = 0;
  };
  FileSpan FileOf(std::span<const uint8_t> bytes) const;

 private:
  Store() = default;
  static util::Result<std::unique_ptr<Store>> OpenReadOnly(std::unique_ptr<Store> s,
                                                           const Options& options);
  util::Status Sync();
  void NoteMap();  // after mdb_env_open: the map's address and the data file's descriptor

  std::string dir_;
  const uint8_t* map_base_ = nullptr;
  uint64_t map_size_ = 0;
  int data_fd_ = -1;
  bool read_only_ = false;
  MDB_env* env_ = nullptr;
  MDB_dbi meta_ = 0, blobs_ = 0, chunks_ = 0, manifests_ = 0, tags_ = 0;
  MDB_dbi own_manifests_ = 0, referrers_ = 0, fleet_ = 0;
  bool missing_dbs_ = false;  // read-only over a format 1 cache: no own-registry databases
};

// The XXH3-64 checksum stored in each chunk record.
uint64_t ChunkChecksum(std::span<const uint8_t> payload);

}  // namespace cache
