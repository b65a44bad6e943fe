// The service manager's protocols (systemd, or anything that speaks them):
// readiness and status notifications ($NOTIFY_SOCKET, sd_notify(3)) and
// sockets passed at start ($LISTEN_FDS, sd_listen_fds(3)).
//
// Every call is a no-op without the environment that asks for it, so the
// daemon runs the same by hand. Notifications are best effort: a manager
// that went away is not the daemon's error (logged at debug).
#pragma once

#include <string>
#include <vector>

namespace io {

// READY=1 with a STATUS= line: the listeners are bound and the cache is open.
void NotifyReady(const std::string& status);
void NotifyStatus(const std::string& status);
// RELOADING=1 with MONOTONIC_USEC= (the reload protocol of systemd 253+,
// understood as plain RELOADING=1 by older ones); READY=1 follows when done.
void NotifyReloading();
void NotifyStopping();

struct InheritedSocket {
  int fd;
  std::string name;  // FileDescriptorName= of the socket unit; "unknown" when not given
};
// The sockets passed to this process, once (the variables are unset so no
// child inherits them). Only stream sockets are returned; others are closed
// with a warning.
std::vector<InheritedSocket> TakeInheritedSockets();

}  // namespace io
