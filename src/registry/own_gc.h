// OwnGc: removes the own registry's blobs that no manifest held here
// references, once they are older than `[registry] gc_grace`
// (push/gc.h). Runs every gc_grace / 4 (between 1 s and 10 min), or when
// Run() is called: the scan of the blob and manifest records and the
// deletes run in one job on the writer thread (in order with every other
// write, so a manifest stored meanwhile is seen), then the blobs leave the
// CacheKeeper's index.
//
// Ownership: borrows the Store, WriterBridge and CacheKeeper, which outlive
// it; owns its timer (Stop() closes it). Loop thread only.
#pragma once

#include <uv.h>

#include <memory>

#include "cache/store.h"
#include "config/config.h"
#include "src/io/env.h"
#include "src/io/handle.h"
#include "src/io/lifetime.h"
#include "src/registry/cache_keeper.h"
#include "src/registry/writer_bridge.h"

namespace registry {

class OwnGc {
 public:
  OwnGc(io::Env env, const config::Registry& cfg, cache::Store* store, WriterBridge* writer,
        CacheKeeper* keeper);
  ~OwnGc();
  OwnGc(const OwnGc&) = delete;
  OwnGc& operator=(const OwnGc&) = delete;
  void Start();
  void Stop();
  // Collects now (as the timer does); nothing when a run is in progress.
  void Run();
  uint64_t removed() const { return removed_; }

 private:
  static void OnTimer(uv_timer_t* t);

  io::Env env_;
  uint64_t grace_ms_;
  cache::Store* store_;
  WriterBridge* writer_;
  CacheKeeper* keeper_;
  io::Handle<uv_timer_t> timer_;
  bool running_ = false;
  uint64_t removed_ = 0;
  io::Lifetime life_;  // guards callbacks that may outlive this object
};

}  // namespace registry
