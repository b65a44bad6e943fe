// The deferred queue (src/io/deferred.h): later, in order, guarded, and
// never what keeps a loop alive.
#include "src/io/deferred.h"

#include <catch2/catch.hpp>

#include <memory>
#include <vector>

#include "tests/unit/capture.h"

using capture::Drain;

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
