// Lifetime: how an object's callbacks tell that it is gone.
//
// An object that hands callbacks to something that may outlive it (the
// writer thread's answers, a peer's response, a timer) holds a Lifetime as
// a member and wraps each such callback with Guard(): the wrapped callback
// does nothing once the object is destroyed. weak() is the same token for
// io::Deferred::Post(guard, fn). The one weak-guard helper: no per-class
// `alive_` flags. Not thread-safe: guards are checked on the loop thread.
#pragma once

#include <memory>
#include <utility>

namespace io {

class Lifetime {
 public:
  Lifetime() = default;
  Lifetime(const Lifetime&) = delete;
  Lifetime& operator=(const Lifetime&) = delete;

  // `fn` (returning void), run only while the owner of this Lifetime lives.
  template <class F>
  auto Guard(F fn) const {
    return [alive = std::weak_ptr<const char>(token_), fn = std::move(fn)](auto&&... args) {
      if (alive.expired()) return;
      fn(std::forward<decltype(args)>(args)...);
    };
  }
  std::weak_ptr<void> weak() const { return std::const_pointer_cast<char>(token_); }

 private:
  std::shared_ptr<const char> token_ = std::make_shared<const char>(0);
};

}  // namespace io
