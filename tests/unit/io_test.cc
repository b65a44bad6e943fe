// The loop pieces every libuv-facing class stands on: the deferred queue,
// the owning handle, the clock, the log throttle.
#include <catch2/catch.hpp>

#include <memory>
#include <vector>

#include "src/io/clock.h"
#include "src/io/deferred.h"
#include "src/io/handle.h"
#include "util/log.h"

namespace {
// Runs the loop dry and closes it: 0 proves every handle was closed.
int Drain(uv_loop_t* loop) {
  uv_run(loop, UV_RUN_DEFAULT);
  return uv_loop_close(loop);
}
}  // namespace

TEST_CASE("deferred: runs later, in order, and what a function posts waits a turn") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  io::Deferred d(&loop);
  std::vector<int> order;
  d.Post([&] {
    order.push_back(1);
    d.Post([&] { order.push_back(3); });
  });
  d.Post([&] { order.push_back(2); });
  CHECK(order.empty());  // never inside Post
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK(order == std::vector<int>{1, 2});
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK(order == std::vector<int>{1, 2, 3});
  d.Close();
  CHECK(Drain(&loop) == 0);
}

TEST_CASE("deferred: a guard that died skips its function; Close drops the rest") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  io::Deferred d(&loop);
  int ran = 0;
  auto alive = std::make_shared<int>(0);
  auto dead = std::make_shared<int>(0);
  d.Post(alive, [&] { ++ran; });
  d.Post(dead, [&] { ran += 10; });
  dead.reset();
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK(ran == 1);
  d.Post([&] { ran += 100; });
  d.Close();
  d.Post([&] { ran += 1000; });
  CHECK(Drain(&loop) == 0);
  CHECK(ran == 1);
}

TEST_CASE("deferred: an idle queue does not keep the loop alive") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  io::Deferred d(&loop);
  CHECK(uv_run(&loop, UV_RUN_DEFAULT) == 0);  // returns at once
  d.Close();
  CHECK(Drain(&loop) == 0);
}

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

TEST_CASE("fake clock moves only when told") {
  io::FakeClock c(100, 5000);
  CHECK(c.NowMs() == 100);
  c.Advance(50);
  CHECK(c.NowMs() == 150);
  CHECK(c.WallMs() == 5050);
}

TEST_CASE("log throttle: one line a minute with the count behind it") {
  util::LogThrottle t(60000);
  unsigned long long n = 0;
  CHECK(t.Note(1000, &n));
  CHECK(n == 1);
  for (int i = 0; i < 99; ++i) CHECK_FALSE(t.Note(2000 + i, &n));
  CHECK(t.Note(61000, &n));
  CHECK(n == 100);
  CHECK(t.total() == 101);
}
