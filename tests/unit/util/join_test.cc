// util::Join: one answer, exactly once, after every result and the close.
#include <catch2/catch.hpp>

#include <functional>
#include <vector>

#include "util/join.h"

using util::Status;

TEST_CASE("join: answers once, after the close and the last result, with the first error") {
  int calls = 0;
  Status first = Status::Ok();
  size_t ok = 0, total = 0;
  auto join = util::Join::Make([&](Status st, size_t s, size_t t) {
    ++calls;
    first = st;
    ok = s;
    total = t;
  });
  auto a = join->Add(), b = join->Add(), c = join->Add();
  b(Status::NotFound("b"));
  c(Status::Unavailable("c"));
  join->Close();
  CHECK(calls == 0);  // a has not answered
  a(Status::Ok());
  CHECK(calls == 1);
  CHECK(first.IsNotFound());
  CHECK(ok == 1);
  CHECK(total == 3);
}

TEST_CASE("join: results before the close wait for it; nothing added answers at the close") {
  int calls = 0;
  auto join = util::Join::Make([&](Status st, size_t ok, size_t total) {
    ++calls;
    CHECK(st.ok());
    CHECK(ok == total);
  });
  auto a = join->Add();
  a(Status::Ok());
  CHECK(calls == 0);
  join->Close();
  CHECK(calls == 1);

  int empty_calls = 0;
  auto empty = util::Join::Make([&](Status, size_t, size_t total) {
    ++empty_calls;
    CHECK(total == 0);
  });
  empty->Close();
  CHECK(empty_calls == 1);
}

TEST_CASE("join: lives as long as a result is outstanding, though its maker let go") {
  int calls = 0;
  std::function<void(Status)> later;
  {
    auto join = util::Join::Make([&](Status, size_t, size_t) { ++calls; });
    later = join->Add();
    join->Close();
  }
  CHECK(calls == 0);
  later(Status::Ok());
  CHECK(calls == 1);
}
