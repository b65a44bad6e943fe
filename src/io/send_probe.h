// SendProbe: which way of sending cached bytes is faster on this machine,
// measured once at start: sendfile(2) from a file in the page cache, or
// write(2) from a read-only map of the same file (what the server does
// without sendfile). Machines differ: on one sendfile wins over loopback,
// on another plain writes do, so the daemon asks rather than assumes.
//
// It writes a scratch file of `file_bytes` in `dir` (unlinked at once),
// opens a TCP connection to itself on 127.0.0.1 (TCP_NODELAY, as the
// server's), and sends `rounds` x `bytes_per_round` each way, alternating,
// `piece_bytes` per call as the server does (a cache chunk; each sendfile
// corked, io::TcpCork), while a thread reads them. The first round of each
// way warms up (fresh memory is slow to touch in a VM) and does not count;
// the rates are the medians of the others, as rounds vary by 30% or more
// here. About 0.15 s on an idle host. Blocking: call it before the loop
// runs. On a busy host (a restart while the machine compiles or serves) it
// stops early rather than delay the start: once `budget` has passed it ends
// after one measured round of each way, and it gives up past three times
// the budget; every wait has a 2 s timeout, so it cannot hang the start.
//
// Errors: IoError (the scratch file, the sockets, a timeout, the budget).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "util/status.h"

namespace io {

struct SendRates {
  double sendfile_bytes_per_s = 0;
  double write_bytes_per_s = 0;
};

util::Result<SendRates> ProbeSend(const std::string& dir,
                                  std::chrono::milliseconds budget = std::chrono::seconds(1),
                                  uint64_t file_bytes = 8u << 20,
                                  uint64_t bytes_per_round = 32u << 20, int rounds = 6,
                                  uint64_t piece_bytes = 1u << 20);

}  // namespace io
