#include "src/io/send_probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "src/io/tcp_cork.h"

namespace io {

using util::Status;

namespace {

Status Errno(const std::string& what) {
  return Status::IoError("send probe: " + what + ": " + std::strerror(errno));
}

// Closes a descriptor when it goes out of scope.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

void SetTimeouts(int fd) {
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

}  // namespace

util::Result<SendRates> ProbeSend(const std::string& dir, std::chrono::milliseconds budget,
                                  uint64_t file_bytes, uint64_t bytes_per_round, int rounds,
                                  uint64_t piece_bytes) {
  Fd file;
  file.fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (file.fd < 0) return Errno("scratch file in " + dir);
  std::vector<char> block(1 << 20);
  for (size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>(i * 131 + 7);
  for (uint64_t off = 0; off < file_bytes; off += block.size()) {
    if (::pwrite(file.fd, block.data(), block.size(), static_cast<off_t>(off)) !=
        static_cast<ssize_t>(block.size()))
      return Errno("write scratch file");
  }
  void* map = ::mmap(nullptr, file_bytes, PROT_READ, MAP_SHARED, file.fd, 0);
  if (map == MAP_FAILED) return Errno("map scratch file");
  struct Unmap {
    void* p;
    size_t n;
    ~Unmap() { ::munmap(p, n); }
  } unmap{map, file_bytes};

  Fd listener, out, in;
  listener.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listener.fd < 0 ||
      ::bind(listener.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener.fd, 1) != 0 ||
      ::getsockname(listener.fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    return Errno("listen on 127.0.0.1");
  out.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (out.fd < 0 || ::connect(out.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return Errno("connect");
  in.fd = ::accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (in.fd < 0) return Errno("accept");
  SetTimeouts(out.fd);
  SetTimeouts(in.fd);
  int one = 1;  // as the server's sockets
  ::setsockopt(out.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  // The reader, as a client would: recv into a buffer, counting. The sender
  // sleeps on `progress` while it waits for the reader: on a busy host a
  // spinning sender would take the core the reader needs.
  std::mutex mu;
  std::condition_variable progress;
  uint64_t received = 0;  // guarded by mu, as is reader_failed
  bool reader_failed = false;
  const uint64_t total = bytes_per_round * rounds * 2;
  std::thread reader([&] {
    std::vector<char> buf(1 << 20);
    for (;;) {
      ssize_t n = ::recv(in.fd, buf.data(), buf.size(), 0);
      if (n < 0 && errno == EINTR) continue;
      std::lock_guard<std::mutex> lock(mu);
      if (n <= 0)
        reader_failed = true;
      else
        received += static_cast<uint64_t>(n);
      progress.notify_one();
      if (reader_failed || received >= total) return;
    }
  });

  using Clock = std::chrono::steady_clock;
  const auto began = Clock::now();
  std::vector<double> sendfile_rates, write_rates;
  uint64_t sent_total = 0;
  Status failure = Status::Ok();
  for (int r = 0; r < rounds * 2 && failure.ok(); ++r) {
    // Past the budget, stop once each way has one measured round.
    if (r >= 4 && r % 2 == 0 && Clock::now() - began > budget) break;
    bool by_sendfile = r % 2 == 0;
    auto start = Clock::now();
    uint64_t sent = 0;
    while (sent < bytes_per_round && failure.ok()) {
      uint64_t off = sent % file_bytes;
      size_t want =
          static_cast<size_t>(std::min({file_bytes - off, bytes_per_round - sent, piece_bytes}));
      ssize_t n;
      if (by_sendfile) {
        off_t o = static_cast<off_t>(off);
        TcpCork cork(out.fd);
        n = ::sendfile(out.fd, file.fd, &o, want);
      } else {
        n = ::write(out.fd, static_cast<const char*>(map) + off, want);
      }
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0)
        failure = Errno(by_sendfile ? "sendfile" : "write");
      else
        sent += n;
    }
    sent_total += sent;
    // Until the reader has it all: the receiver's copy is part of the cost.
    if (failure.ok()) {
      std::unique_lock<std::mutex> lock(mu);
      if (!progress.wait_for(lock, std::chrono::seconds(2),
                             [&] { return reader_failed || received >= sent_total; }))
        failure = Status::IoError("send probe: timed out");
      else if (received < sent_total)
        failure = Status::IoError("send probe: the reading side failed");
    }
    double secs = std::chrono::duration<double>(Clock::now() - start).count();
    double rate = secs > 0 ? bytes_per_round / secs : 0;
    if (r >= 2)
      (by_sendfile ? sendfile_rates : write_rates).push_back(rate);  // round 0 of each way warms up
    if (failure.ok() && Clock::now() - began > 3 * budget)
      failure = Status::IoError("send probe: over its time budget");
  }
  ::shutdown(out.fd, SHUT_RDWR);  // the reader returns at once if it still waits
  ::shutdown(in.fd, SHUT_RDWR);
  reader.join();
  if (!failure.ok()) return failure;
  auto median = [](std::vector<double> v) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  return SendRates{median(sendfile_rates), median(write_rates)};
}

}  // namespace io
