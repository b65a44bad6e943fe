// Clock: where every libuv-facing class gets the time. Passed in, never read
// behind the caller's back, so tests drive time by hand (FakeClock) and the
// logic underneath stays pure.
//
// NowMs is monotonic (timeouts, deadlines, ages inside one run); WallMs is
// Unix time (what is written to disk or sent to peers). Thread-compatible:
// a Clock is read on the loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>

namespace io {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds on a monotonic clock with an arbitrary origin.
  virtual uint64_t NowMs() const = 0;
  // Milliseconds since the Unix epoch.
  virtual uint64_t WallMs() const = 0;
  // Microseconds on a monotonic clock, read when asked (request durations).
  virtual uint64_t NowUs() const = 0;
};

// The loop's cached time (uv_now: updated once per loop turn) and the
// system's wall clock. The loop must outlive it.
class LoopClock final : public Clock {
 public:
  explicit LoopClock(uv_loop_t* loop) : loop_(loop) {}
  uint64_t NowMs() const override { return uv_now(loop_); }
  uint64_t WallMs() const override;
  uint64_t NowUs() const override { return uv_hrtime() / 1000; }

 private:
  uv_loop_t* loop_;
};

// Time that moves only when a test says so.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(uint64_t now_ms = 1000, uint64_t wall_ms = 1'700'000'000'000)
      : now_(now_ms), wall_(wall_ms) {}
  uint64_t NowMs() const override { return now_; }
  uint64_t WallMs() const override { return wall_; }
  uint64_t NowUs() const override { return now_ * 1000; }
  void Advance(uint64_t ms) {
    now_ += ms;
    wall_ += ms;
  }
  void SetWall(uint64_t wall_ms) { wall_ = wall_ms; }

 private:
  uint64_t now_;
  uint64_t wall_;
};

}  // namespace io
