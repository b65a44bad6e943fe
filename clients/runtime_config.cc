#include "clients/runtime_config.h"

#include <sstream>

#include "config/config.h"
#include "util/url.h"

namespace clients {

namespace {

// A [host."URL"] header line: the URL, or empty for any other line.
std::string HostHeader(const std::string& line) {
  size_t i = line.find_first_not_of(" \t");
  if (i == std::string::npos || line.compare(i, 7, "[host.\"") != 0) return "";
  size_t end = line.find('"', i + 7);
  if (end == std::string::npos) return "";
  return line.substr(i + 7, end - i - 7);
}

bool IsTableHeader(const std::string& line) {
  size_t i = line.find_first_not_of(" \t");
  return i != std::string::npos && line[i] == '[';
}

std::string Quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::string DefaultServer(const std::string& registry) {
  if (registry == "docker.io" || registry == "index.docker.io" ||
      registry == "registry-1.docker.io")
    return "https://registry-1.docker.io";
  return "https://" + registry;
}

util::Result<std::string> HostsToml(const std::string& registry, const Mirror& mirror,
                                    const std::string& existing) {
  for (const auto& c : mirror.capabilities)
    if (c != "pull" && c != "resolve" && c != "push")
      return util::Status::InvalidArgument("capability '" + c + "' must be pull, resolve or push");
  if (mirror.capabilities.empty())
    return util::Status::InvalidArgument("at least one capability is needed");
  if (!existing.empty()) {
    util::Status st = config::CheckTomlSyntax(existing, registry + "/hosts.toml");
    if (!st.ok())
      return util::Status::InvalidArgument("the existing file is not TOML georeg can read: " +
                                           st.message());
  }
  // Split into the head (before the first table) and tables, each with its
  // lines; comments go with the table they precede... except in the head.
  std::vector<std::string> head;
  struct Table {
    std::string host;  // empty: a table that is not a [host."..."]
    std::vector<std::string> lines;
  };
  std::vector<Table> tables;
  std::istringstream in(existing);
  std::string line;
  bool has_server = false;
  while (std::getline(in, line)) {
    if (IsTableHeader(line)) {
      tables.push_back({HostHeader(line), {line}});
    } else if (tables.empty()) {
      size_t i = line.find_first_not_of(" \t");
      if (i != std::string::npos && line.compare(i, 6, "server") == 0) has_server = true;
      head.push_back(line);
    } else {
      tables.back().lines.push_back(line);
    }
  }
  while (!head.empty() && head.back().empty()) head.pop_back();
  std::string out;
  if (head.empty())
    out += "# Written by `georeg containerd configure`: georeg first, then the hosts below it.\n";
  for (const auto& l : head) out += l + "\n";
  if (!has_server) out += "server = " + Quoted(DefaultServer(registry)) + "\n";
  out += "\n[host." + Quoted(mirror.url) + "]\n  capabilities = [";
  for (size_t i = 0; i < mirror.capabilities.size(); ++i)
    out += (i ? ", " : "") + Quoted(mirror.capabilities[i]);
  out += "]\n";
  for (const Table& t : tables) {
    if (t.host == mirror.url) continue;  // ours, written above
    std::vector<std::string> lines = t.lines;
    while (!lines.empty() && lines.back().empty()) lines.pop_back();
    out += "\n";
    for (const auto& l : lines) out += l + "\n";
  }
  return out;
}

std::string RegistriesConf(const std::vector<PodmanRegistry>& registries,
                           const std::vector<std::string>& own,
                           const std::string& mirror_hostport) {
  std::string out =
      "# Written by `georeg podman configure`: pulls go to the local georeg first, under a path\n"
      "# naming the registry (georeg selects that upstream by it), then to the registry itself.\n";
  for (const auto& r : own) {
    out += "\n[[registry]]\nprefix = " + Quoted(r) +
           "\nlocation = " + Quoted(mirror_hostport + "/" + util::RegistryPathComponent(r)) +
           "\ninsecure = true\n";
  }
  for (const auto& r : registries) {
    out += "\n[[registry]]\nprefix = " + Quoted(r.name) + "\nlocation = " + Quoted(r.name) + "\n" +
           (r.insecure ? "insecure = true\n" : "") + "\n[[registry.mirror]]\nlocation = " +
           Quoted(mirror_hostport + "/" + util::RegistryPathComponent(r.name)) +
           "\ninsecure = true\n";
  }
  return out;
}

}  // namespace clients
