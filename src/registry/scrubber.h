// Scrubber: re-verifies stored blobs in the background at a set rate.
//
// Every second it checks up to `cache.scrub_rate` bytes of chunks against
// their XXH3 checksums, walking the blobs in digest order and starting over
// when done. The reads run on libuv's threadpool (LMDB reads are
// thread-safe under MDB_NOTLS), so a cold disk never stalls the loop; one
// batch is in flight at a time. A corrupt blob is handed to the CacheKeeper
// (logged, counted, removed) on the loop thread. Loop thread only otherwise.
#pragma once

#include <uv.h>

#include <string>
#include <vector>

#include "cache/store.h"
#include "src/registry/cache_keeper.h"

namespace registry {

class Scrubber {
 public:
  Scrubber(uv_loop_t* loop, cache::Store* store, CacheKeeper* keeper, uint64_t bytes_per_second);
  Scrubber(const Scrubber&) = delete;
  Scrubber& operator=(const Scrubber&) = delete;
  void Start();  // no-op when the rate is 0
  void Stop();   // closes the timer; a batch in flight finishes unreported
  uint64_t bytes_checked() const { return bytes_checked_; }

 private:
  struct Batch {
    uv_work_t req;
    Scrubber* self;
    util::Digest start;        // resume at this digest...
    uint32_t start_chunk = 0;  // ...and chunk
    uint64_t budget = 0;
    // Results, written on the threadpool, read on the loop after it.
    util::Digest next;
    uint32_t next_chunk = 0;
    bool wrapped = false;  // reached the end of the blobs
    uint64_t checked = 0;
    std::vector<std::pair<util::Digest, std::string>> corrupt;
  };
  static void OnTimer(uv_timer_t* t);
  static void Work(uv_work_t* req);
  static void AfterWork(uv_work_t* req, int status);

  uv_loop_t* loop_;
  cache::Store* store_;
  CacheKeeper* keeper_;
  uint64_t rate_;
  io::Handle<uv_timer_t> timer_;
  bool running_ = false;
  bool in_flight_ = false;
  util::Digest cursor_{};
  uint32_t cursor_chunk_ = 0;
  uint64_t bytes_checked_ = 0;
};

}  // namespace registry
