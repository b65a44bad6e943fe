#include "src/io/service_manager.h"

#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "util/log.h"

namespace io {

namespace {
void Notify(const std::string& state) {
  int rc = sd_notify(0, state.c_str());
  if (rc < 0) LOG_DEBUG("service manager: notify failed: %s", std::strerror(-rc));
}

// One line, and no newline that would start another assignment.
std::string StatusLine(const std::string& status) {
  std::string s = status.substr(0, 200);
  for (char& c : s)
    if (c == '\n') c = ' ';
  return "STATUS=" + s;
}
}  // namespace

void NotifyReady(const std::string& status) { Notify("READY=1\n" + StatusLine(status)); }

void NotifyStatus(const std::string& status) { Notify(StatusLine(status)); }

void NotifyReloading() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  unsigned long long usec = (unsigned long long)ts.tv_sec * 1000000ull + ts.tv_nsec / 1000;
  Notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec) +
         "\nSTATUS=reloading the configuration");
}

void NotifyStopping() { Notify("STOPPING=1\nSTATUS=stopping: draining in-flight responses"); }

std::vector<InheritedSocket> TakeInheritedSockets() {
  std::vector<InheritedSocket> out;
  char** names = nullptr;
  int n = sd_listen_fds_with_names(/*unset_environment=*/1, &names);
  if (n < 0) {
    LOG_WARN("service manager: LISTEN_FDS could not be used: %s", std::strerror(-n));
    return out;
  }
  for (int i = 0; i < n; ++i) {
    int fd = SD_LISTEN_FDS_START + i;
    std::string name = names && names[i] ? names[i] : "unknown";
    if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, /*listening=*/1) > 0) {
      out.push_back({fd, name});
    } else {
      LOG_WARN(
          "service manager: passed descriptor %d (%s) is not a listening stream socket; closed", fd,
          name.c_str());
      ::close(fd);
    }
  }
  if (names) {
    for (int i = 0; i < n; ++i) free(names[i]);
    free(names);
  }
  return out;
}

}  // namespace io
