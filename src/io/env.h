// Env: what every libuv-facing class is given to run on one loop: the loop,
// the Clock it reads time from, and the Deferred queue it reports early
// failures through. A plain bundle of borrowed pointers; the daemon (or a
// test) owns all three and keeps them alive until every user is gone.
#pragma once

#include <uv.h>

#include "src/io/clock.h"
#include "src/io/deferred.h"

namespace io {

struct Env {
  uv_loop_t* loop = nullptr;
  const Clock* clock = nullptr;
  Deferred* deferred = nullptr;
};

}  // namespace io
