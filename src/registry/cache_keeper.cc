#include "src/registry/cache_keeper.h"

#include <sys/statvfs.h>

#include "util/log.h"
#include "util/units.h"

namespace registry {

namespace {
constexpr uint64_t kCheckIntervalMs = 5000;
constexpr uint64_t kNoSpaceLogIntervalMs = 60000;
}  // namespace

CacheKeeper::CacheKeeper(io::Env env, const config::Cache& cfg, cache::Store* store,
                         WriterBridge* writer)
    : env_(env), cfg_(cfg), store_(store), writer_(writer) {}

util::Status CacheKeeper::Start() {
  auto blobs = store_->ListBlobInfos();
  if (!blobs.ok()) return blobs.status();
  for (const auto& [d, info] : *blobs) index_.Add(d, info.size, info.last_access_ms, info.own);
  LOG_INFO("cache: %zu blob(s), %s of %s budget; own registry: %zu blob(s), %s",
           index_.cached_count(), util::FormatSize(index_.stored_bytes()).c_str(),
           util::FormatSize(cfg_.max_size).c_str(), index_.own_count(),
           util::FormatSize(index_.own_bytes()).c_str());
  timer_.Init(env_.loop, this, uv_timer_init);
  uv_timer_start(timer_.get(), OnTimer, kCheckIntervalMs, kCheckIntervalMs);
  uv_unref(timer_.base());
  CheckDisk();
  MakeRoom(0);  // a smaller budget than last time
  return util::Status::Ok();
}

void CacheKeeper::Stop() { timer_.Close(); }

void CacheKeeper::Pin(const util::Digest& d, uint64_t now_ms) {
  index_.Pin(d);
  index_.Touch(d, now_ms);
}

uint64_t CacheKeeper::Limit() const {
  return low_space_ ? std::min(cfg_.max_size, low_space_cap_) : cfg_.max_size;
}

bool CacheKeeper::MakeRoom(uint64_t extra) {
  uint64_t limit = Limit();
  if (extra > limit) return false;
  uint64_t want = index_.committed_bytes() + extra;
  if (want <= limit) return true;
  std::vector<util::Digest> victims = index_.ChooseEvictions(want - limit);
  for (const util::Digest& d : victims) {
    Remove(d, "evicted (least recently used)");
    ++evictions_;
  }
  return index_.committed_bytes() + extra <= limit;
}

size_t CacheKeeper::EvictTo(uint64_t target) {
  if (index_.stored_bytes() <= target) return 0;
  std::vector<util::Digest> victims = index_.ChooseEvictions(index_.stored_bytes() - target);
  for (const util::Digest& d : victims) Remove(d, "evicted (cache gc)");
  evictions_ += victims.size();
  return victims.size();
}

bool CacheKeeper::Reserve(uint64_t size) {
  CheckDisk();  // a burst of fills must not outrun the periodic check
  if (!MakeRoom(size)) return false;
  index_.Reserve(size);
  return true;
}

void CacheKeeper::Published(const util::Digest& d, uint64_t size, uint64_t now_ms) {
  index_.Unreserve(size);
  index_.Add(d, size, now_ms);
}

void CacheKeeper::AddOwn(const util::Digest& d, uint64_t size, uint64_t now_ms) {
  if (index_.Find(d)) {
    index_.SetOwn(d, true);
    return;
  }
  index_.Add(d, size, now_ms, /*own=*/true);
}

void CacheKeeper::Disown(const util::Digest& d) {
  if (index_.Find(d)) index_.SetOwn(d, false);
}

void CacheKeeper::Remove(const util::Digest& d, const char* why) {
  if (!index_.Find(d)) return;
  LOG_INFO("cache: %s %s", why, d.ToString().c_str());
  index_.Remove(d);
  cache::Store* store = store_;
  writer_->Run([store, d] { return store->DeleteBlob(d); },
               [d](util::Status st) {
                 if (!st.ok())
                   LOG_ERROR("cache: could not delete %s: %s", d.ToString().c_str(),
                             st.ToString().c_str());
               });
}

void CacheKeeper::Forget(const util::Digest& d, const char* why) {
  if (!index_.Find(d)) return;
  LOG_INFO("cache: %s %s", why, d.ToString().c_str());
  index_.Remove(d);
}

void CacheKeeper::Corrupt(const util::Digest& d, const std::string& what) {
  ++corruptions_;
  LOG_ERROR("cache: %s; the client is reset and the blob removed (corrupt blobs found: %llu)",
            what.c_str(), (unsigned long long)corruptions_);
  Remove(d, "removed corrupt blob");
}

void CacheKeeper::NoteNoSpace(const std::string& what) {
  uint64_t now = env_.clock->NowMs();
  if (last_nospace_log_ms_ && now - last_nospace_log_ms_ < kNoSpaceLogIntervalMs) return;
  last_nospace_log_ms_ = now;
  LOG_WARN("cache: out of space (%s); serving without storing until space returns", what.c_str());
}

void CacheKeeper::CheckDisk() {
  struct statvfs fs;
  if (statvfs(cfg_.dir.c_str(), &fs) != 0) return;
  uint64_t total = static_cast<uint64_t>(fs.f_blocks) * fs.f_frsize;
  uint64_t avail = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  uint64_t min_free = cfg_.min_free_bytes ? cfg_.min_free_bytes
                                          : static_cast<uint64_t>(total * cfg_.min_free_fraction);
  if (!low_space_ && avail < min_free) {
    low_space_ = true;
    low_space_cap_ = index_.stored_bytes();
    LOG_WARN("cache: file system has %s free, below min_free %s: the cache stops growing at %s",
             util::FormatSize(avail).c_str(), util::FormatSize(min_free).c_str(),
             util::FormatSize(low_space_cap_).c_str());
  } else if (low_space_ && avail > min_free + min_free / 10) {  // a little hysteresis
    low_space_ = false;
    LOG_INFO("cache: file system has %s free again; the cache may grow to its budget",
             util::FormatSize(avail).c_str());
  }
}

void CacheKeeper::OnTimer(uv_timer_t* t) {
  auto* self = static_cast<CacheKeeper*>(t->data);
  self->CheckDisk();
  self->MakeRoom(0);
  auto access = self->index_.TakeDirtyAccess();
  if (access.empty()) return;
  cache::Store* store = self->store_;
  self->writer_->Run([store, access] { return store->PutBlobAccess(access); },
                     [](util::Status st) {
                       if (!st.ok())
                         LOG_WARN("cache: could not record access times: %s",
                                  st.ToString().c_str());
                     });
}

}  // namespace registry
