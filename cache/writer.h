// Writer: the one thread that runs every LMDB write transaction.
//
// Jobs run in the order they were posted, one at a time. A job is a closure
// that calls Store write methods and then reports back however its caller
// wants (the daemon hands results to the loop thread with uv_async; tests
// use a promise). Post() is thread-safe. The Writer does not own the Store;
// the Store must outlive it. Destruction runs every job already posted, then
// joins the thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace cache {

class Writer {
 public:
  using Job = std::function<void()>;
  Writer();
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  void Post(Job job);
  // Number of jobs posted and not yet finished (for back-pressure decisions).
  size_t Pending() const;

 private:
  void Run();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  size_t running_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace cache
