// Deferred: runs functions on a later turn of the loop, in the order posted.
//
// This is how a function that takes a callback keeps libuv's contract when it
// fails early: it returns, and the failure reaches the callback from here,
// never from inside the call. A function posted while the queue runs waits
// for the next turn (a callback that re-posts cannot starve the loop).
//
// Post(guard, fn) runs fn only if `guard` is still alive then, for posters
// that may be destroyed first. Close() drops what is still queued and closes
// the handle; the Deferred may be destroyed after that. Loop thread only.
#pragma once

#include <uv.h>

#include <deque>
#include <functional>
#include <memory>

#include "src/io/handle.h"

namespace io {

class Deferred {
 public:
  // Errors: none that libuv reports for uv_idle_init on a live loop.
  explicit Deferred(uv_loop_t* loop);
  ~Deferred();  // REQUIRES: Close() ran
  Deferred(const Deferred&) = delete;
  Deferred& operator=(const Deferred&) = delete;

  void Post(std::function<void()> fn);
  void Post(std::weak_ptr<void> guard, std::function<void()> fn);
  // Drops the queue and closes the handle. Posts after Close() are dropped.
  void Close();
  size_t pending() const { return queue_.size(); }

 private:
  static void OnIdle(uv_idle_t* idle);

  Handle<uv_idle_t> idle_;
  std::deque<std::function<void()>> queue_;
  bool running_ = false;
};

}  // namespace io
