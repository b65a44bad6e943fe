// Handle<T>: the one owner of a libuv handle, and the one way one is freed.
//
// libuv may still touch a handle's memory until its close callback has run,
// so a handle cannot live inside an object that is deleted on its own
// schedule. A Handle keeps the uv_*_t on the heap; Close() calls uv_close and
// the memory is freed from the close callback, after `on_closed` ran. The
// owner may therefore be destroyed as soon as it called Close(): no callback
// of the handle fires after uv_close (libuv's guarantee), and the storage
// outlives the owner by exactly as long as libuv needs it.
//
// The destructor asserts that Close() ran (a handle left open is a bug: the
// loop would never close). Loop thread only. Copy deleted, move allowed.
#pragma once

#include <uv.h>

#include <cassert>
#include <functional>
#include <type_traits>
#include <utility>

namespace io {

template <typename T>
class Handle {
 public:
  Handle() = default;
  ~Handle() {
    assert(!box_ && "io::Handle destroyed while open: call Close() first");
    if (box_) Close();  // release builds: never leak the loop's reference
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& o) noexcept : box_(std::exchange(o.box_, nullptr)) {}
  Handle& operator=(Handle&& o) noexcept {
    assert(!box_);
    box_ = std::exchange(o.box_, nullptr);
    return *this;
  }

  // Allocates the handle and runs `init(loop, handle, args...)` on it
  // (uv_timer_init, uv_tcp_init, ...). Returns init's libuv code; on an error
  // nothing stays allocated. `data` becomes the handle's data pointer.
  // REQUIRES: not open.
  template <typename InitFn, typename... Args>
  int Init(uv_loop_t* loop, void* data, InitFn init, Args&&... args) {
    assert(!box_);
    auto* box = new Box;
    int rc = init(loop, &box->h, std::forward<Args>(args)...);
    if (rc != 0) {
      delete box;
      return rc;
    }
    box->h.data = data;
    box_ = box;
    return 0;
  }

  T* get() const { return box_ ? &box_->h : nullptr; }
  T* operator->() const { return get(); }
  uv_handle_t* base() const { return reinterpret_cast<uv_handle_t*>(get()); }
  uv_stream_t* stream() const { return reinterpret_cast<uv_stream_t*>(get()); }
  bool open() const { return box_ != nullptr; }

  // Closes the handle; `on_closed` runs from the close callback, after which
  // the memory is freed. No-op when not open.
  void Close(std::function<void()> on_closed = {}) {
    if (!box_) return;
    Box* box = std::exchange(box_, nullptr);
    box->after = std::move(on_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&box->h), &Handle::OnClose);
  }

  // For a TCP handle: closes with a RST instead of a FIN (uv_tcp_close_reset).
  // Falls back to Close() when libuv refuses (the handle is not a connected TCP socket).
  void CloseReset(std::function<void()> on_closed = {}) {
    if (!box_) return;
    if constexpr (std::is_same_v<T, uv_tcp_t>) {
      Box* box = box_;
      box->after = std::move(on_closed);
      if (uv_tcp_close_reset(&box->h, &Handle::OnClose) == 0) {
        box_ = nullptr;
        return;
      }
      on_closed = std::move(box->after);
    }
    Close(std::move(on_closed));
  }

 private:
  struct Box {
    T h;  // first: the close callback turns the handle pointer back into the Box
    std::function<void()> after;
  };
  static void OnClose(uv_handle_t* h) {
    Box* box = reinterpret_cast<Box*>(h);
    auto after = std::move(box->after);
    delete box;
    if (after) after();
  }

  Box* box_ = nullptr;
};

}  // namespace io
