// TcpCork: TCP_CORK on a socket for one scope. The kernel splices a
// sendfile(2) range into the socket in pipe-sized pieces and, with
// TCP_NODELAY on (the server's sockets), pushes after each one; corked, it
// sends full segments and the uncork at scope exit sends the rest. Used by
// the server around each sendfile and by the send probe, which measures
// the same thing. Errors from setsockopt are ignored: the bytes go out
// either way, only in more packets.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace io {

class TcpCork {
 public:
  explicit TcpCork(int fd) : fd_(fd) { Set(1); }
  ~TcpCork() { Set(0); }
  TcpCork(const TcpCork&) = delete;
  TcpCork& operator=(const TcpCork&) = delete;

 private:
  void Set(int on) const { ::setsockopt(fd_, IPPROTO_TCP, TCP_CORK, &on, sizeof on); }
  int fd_;
};

}  // namespace io
