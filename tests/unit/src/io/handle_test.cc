// The owning libuv handle (src/io/handle.h): freed after its close
// callback, one owner.
#include "src/io/handle.h"

#include <catch2/catch.hpp>

#include <memory>

#include "tests/unit/capture.h"

using capture::Drain;

TEST_CASE("handle: the owner may go first; the memory goes after the close callback") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  bool closed = false;
  {
    io::Handle<uv_timer_t> t;
    REQUIRE(t.Init(&loop, nullptr, uv_timer_init) == 0);
    CHECK(t.open());
    uv_timer_start(
        t.get(), [](uv_timer_t*) { FAIL("a closed timer fired"); }, 0, 0);
    t.Close([&] { closed = true; });
    CHECK_FALSE(t.open());
    t.Close();  // no-op
  }             // the owner is gone; libuv still holds the handle
  CHECK_FALSE(closed);
  CHECK(Drain(&loop) == 0);
  CHECK(closed);
}

TEST_CASE("handle: moved handles keep one owner") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  io::Handle<uv_idle_t> a;
  REQUIRE(a.Init(&loop, nullptr, uv_idle_init) == 0);
  io::Handle<uv_idle_t> b(std::move(a));
  CHECK_FALSE(a.open());
  CHECK(b.open());
  b.Close();
  CHECK(Drain(&loop) == 0);
}
