// Join: one answer from many asynchronous results.
//
// For work that starts a number of operations, each with a callback, and
// must answer once when all of them have answered. Add() before starting
// each operation gives that operation's callback; Close() after the last
// Add() says no more will come. `done` runs exactly once, after Close() and
// after every added callback ran, with the first error seen (Ok when there
// was none), how many succeeded and how many were added. It runs inside
// whichever of those calls comes last: a caller bound by the callback
// contract (never call back from inside the call) posts Close() to a later
// turn. Each added callback must be called at most once. Pure; one thread.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <utility>

#include "util/status.h"

namespace util {

class Join : public std::enable_shared_from_this<Join> {
 public:
  using Done = std::function<void(Status first_error, size_t succeeded, size_t total)>;
  static std::shared_ptr<Join> Make(Done done) {
    return std::shared_ptr<Join>(new Join(std::move(done)));
  }

  std::function<void(Status)> Add() {
    ++pending_;
    ++total_;
    return [self = shared_from_this()](Status st) { self->One(std::move(st)); };
  }
  void Close() {
    closed_ = true;
    Finish();
  }

 private:
  explicit Join(Done done) : done_(std::move(done)) {}
  void One(Status st) {
    if (st.ok()) {
      ++succeeded_;
    } else if (first_.ok()) {
      first_ = std::move(st);
    }
    --pending_;
    Finish();
  }
  void Finish() {
    if (!closed_ || pending_ > 0 || !done_) return;
    Done done = std::move(done_);
    done_ = nullptr;
    done(first_, succeeded_, total_);
  }

  Done done_;
  Status first_ = Status::Ok();
  size_t pending_ = 0, total_ = 0, succeeded_ = 0;
  bool closed_ = false;
};

}  // namespace util
