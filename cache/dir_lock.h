// DirLock: one georeg daemon per cache directory.
//
// Holds an exclusive flock(2) on DIR/georeg.lock, which also records the
// holder's PID. The kernel drops the lock when the process dies, even by
// kill -9, so a stale file never blocks a restart. Opening LMDB from two
// daemons would give the cache two writer threads and two budgets.
#pragma once

#include <string>

#include "util/status.h"

namespace cache {

class DirLock {
 public:
  // Errors: Unavailable "cache DIR is in use by georeg pid N" when another
  // process holds it; IoError when the file cannot be created.
  static util::Result<DirLock> Acquire(const std::string& dir);
  DirLock(DirLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  DirLock& operator=(DirLock&&) = delete;
  DirLock(const DirLock&) = delete;
  ~DirLock();

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace cache
