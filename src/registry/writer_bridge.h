// WriterBridge: runs cache writes on the writer thread and brings each
// result back to the loop thread.
//
// Run(job, done): `job` runs on the writer thread (it may call only Store
// write methods and touch nothing of the loop's), then `done(status)` runs on
// the loop thread, exactly once, in job order. Close() must be called on the
// loop thread before the loop ends; done callbacks of jobs still queued then
// are dropped (the daemon drains the writer first).
#pragma once

#include <uv.h>

#include <functional>
#include <mutex>
#include <vector>

#include "cache/writer.h"
#include "src/io/handle.h"
#include "util/status.h"

namespace registry {

class WriterBridge {
 public:
  WriterBridge(uv_loop_t* loop, cache::Writer* writer);
  WriterBridge(const WriterBridge&) = delete;
  WriterBridge& operator=(const WriterBridge&) = delete;

  void Run(std::function<util::Status()> job, std::function<void(util::Status)> done);
  void Close();
  size_t pending() const { return pending_; }

 private:
  struct Done {
    std::function<void(util::Status)> cb;
    util::Status status;
  };
  static void OnAsync(uv_async_t* a);

  cache::Writer* writer_;
  io::Handle<uv_async_t> async_;
  std::mutex mu_;
  std::vector<Done> done_;  // guarded by mu_
  size_t pending_ = 0;      // loop thread only
  bool closed_ = false;
};

}  // namespace registry
