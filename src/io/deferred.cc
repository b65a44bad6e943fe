#include "src/io/deferred.h"

namespace io {

Deferred::Deferred(uv_loop_t* loop) { idle_.Init(loop, this, uv_idle_init); }

Deferred::~Deferred() { Close(); }

void Deferred::Post(std::function<void()> fn) {
  if (!idle_.open()) return;
  queue_.push_back(std::move(fn));
  // An active idle handle makes the loop poll without blocking, so the queue
  // runs on the next turn even when no I/O is due.
  if (!running_ && queue_.size() == 1) uv_idle_start(idle_.get(), OnIdle);
}

void Deferred::Post(std::weak_ptr<void> guard, std::function<void()> fn) {
  Post([guard = std::move(guard), fn = std::move(fn)] {
    if (guard.lock()) fn();
  });
}

void Deferred::Close() {
  queue_.clear();
  idle_.Close();
}

void Deferred::OnIdle(uv_idle_t* idle) {
  auto* self = static_cast<Deferred*>(idle->data);
  std::deque<std::function<void()>> batch;
  batch.swap(self->queue_);
  self->running_ = true;
  while (!batch.empty() && self->idle_.open()) {
    auto fn = std::move(batch.front());
    batch.pop_front();
    fn();
  }
  self->running_ = false;
  if (self->idle_.open() && self->queue_.empty()) uv_idle_stop(idle);
}

}  // namespace io
