// io::Lifetime: a guarded callback does nothing once its owner is gone.
#include <catch2/catch.hpp>

#include <functional>
#include <memory>

#include "src/io/lifetime.h"

TEST_CASE("lifetime: guarded callbacks run while the owner lives, never after") {
  int ran = 0;
  std::function<void(int)> cb;
  std::weak_ptr<void> token;
  {
    io::Lifetime life;
    cb = life.Guard([&ran](int n) { ran += n; });
    token = life.weak();
    cb(2);
    CHECK(ran == 2);
    CHECK_FALSE(token.expired());
  }
  cb(5);
  CHECK(ran == 2);
  CHECK(token.expired());
}
