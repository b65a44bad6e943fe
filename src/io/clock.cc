#include "src/io/clock.h"

#include <chrono>

namespace io {

uint64_t LoopClock::WallMs() const {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace io
