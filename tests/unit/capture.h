// Helpers for tests that check what code left behind: whether a text
// holds a line, what a function wrote to stderr, and that a loop closes.
#pragma once

#include <stdlib.h>
#include <unistd.h>
#include <uv.h>
#include <catch2/catch.hpp>

#include <string>

namespace capture {

inline bool Contains(const std::string& text, const std::string& line) {
  return text.find(line) != std::string::npos;
}

// Runs `fn` with stderr sent to a file; returns what it wrote.
template <typename Fn>
std::string Stderr(Fn fn) {
  char path[] = "/tmp/georeg-log-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  int saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  fn();
  dup2(saved, STDERR_FILENO);
  close(saved);
  std::string out;
  char buf[4096];
  lseek(fd, 0, SEEK_SET);
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, n);
  close(fd);
  unlink(path);
  return out;
}

// Runs the loop dry and closes it: 0 proves every handle was closed.
inline int Drain(uv_loop_t* loop) {
  uv_run(loop, UV_RUN_DEFAULT);
  return uv_loop_close(loop);
}

}  // namespace capture
