#include "src/telemetry/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace telemetry {

namespace {

bool ReadFile(const char* path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

bool ToU64(std::string_view s, uint64_t* v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

bool ParseProcStat(std::string_view line, ProcStat* out) {
  size_t close = line.rfind(')');
  if (close == std::string_view::npos) return false;
  std::vector<std::string_view> f;  // f[0] is field 3 (state)
  std::string_view rest = line.substr(close + 1);
  size_t i = 0;
  while (i < rest.size()) {
    while (i < rest.size() && (rest[i] == ' ' || rest[i] == '\n')) ++i;
    size_t j = i;
    while (j < rest.size() && rest[j] != ' ' && rest[j] != '\n') ++j;
    if (j > i) f.push_back(rest.substr(i, j - i));
    i = j;
  }
  // Fields (1-based, proc(5)): 14 utime, 15 stime, 22 starttime, 23 vsize, 24 rss.
  auto field = [&](size_t n) { return f[n - 3]; };
  if (f.size() < 24 - 2) return false;
  return ToU64(field(14), &out->utime_ticks) && ToU64(field(15), &out->stime_ticks) &&
         ToU64(field(22), &out->start_ticks) && ToU64(field(23), &out->vsize_bytes) &&
         ToU64(field(24), &out->rss_pages);
}

bool ParseBootTime(std::string_view proc_stat, uint64_t* out) {
  size_t pos = 0;
  while (pos < proc_stat.size()) {
    size_t end = proc_stat.find('\n', pos);
    std::string_view line = proc_stat.substr(pos, end == std::string_view::npos ? end : end - pos);
    if (line.rfind("btime ", 0) == 0) return ToU64(line.substr(6), out);
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  return false;
}

void DescribeProcess(util::Exposition* out) {
  using T = util::Exposition::Type;
  std::string text;
  ProcStat ps;
  long ticks = sysconf(_SC_CLK_TCK);
  long page = sysconf(_SC_PAGESIZE);
  if (ReadFile("/proc/self/stat", &text) && ParseProcStat(text, &ps) && ticks > 0) {
    out->Family("process_cpu_seconds_total", T::kCounter,
                "Total user and system CPU time spent in seconds.");
    out->Sample(double(ps.utime_ticks + ps.stime_ticks) / double(ticks));
    out->Family("process_resident_memory_bytes", T::kGauge, "Resident memory size in bytes.");
    out->Sample(double(ps.rss_pages) * double(page));
    out->Family("process_virtual_memory_bytes", T::kGauge, "Virtual memory size in bytes.");
    out->Sample(double(ps.vsize_bytes));
    uint64_t btime = 0;
    if (ReadFile("/proc/stat", &text) && ParseBootTime(text, &btime)) {
      out->Family("process_start_time_seconds", T::kGauge,
                  "Start time of the process since unix epoch in seconds.");
      out->Sample(double(btime) + double(ps.start_ticks) / double(ticks));
    }
  }
  if (DIR* d = opendir("/proc/self/fd")) {
    uint64_t n = 0;
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    closedir(d);
    out->Family("process_open_fds", T::kGauge, "Number of open file descriptors.");
    out->Sample(double(n > 0 ? n - 1 : 0));  // less the one reading the directory
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    out->Family("process_max_fds", T::kGauge, "Maximum number of open file descriptors.");
    out->Sample(rl.rlim_cur == RLIM_INFINITY ? -1.0 : double(rl.rlim_cur));
  }
}

}  // namespace telemetry
