// `georeg cache ls|stats|rm|gc|verify`: the operator's view of a cache.
//
// With the daemon running, the commands talk to it over DIR/admin.sock;
// with it stopped, they take the cache's lock and open it directly (so the
// two never write at once). `verify` reads every blob itself (read-only
// beside a running daemon) and has corrupt ones removed.
// Output: data on stdout as a table (the default on a terminal) or JSON
// (field names documented in docs/operations.md); errors on stderr, one line.
// Exit codes: 0 ok, 1 verify found corrupt blobs, 2 bad arguments,
// 3 the cache cannot be reached, 4 rm: no such entry.
#pragma once

#include <string>

namespace cache_cli {

struct Options {
  std::string dir;     // the cache directory
  std::string output;  // "table", "json", or "" (table on a terminal, else JSON)
};

int Ls(const Options& o);
int Stats(const Options& o);
int Rm(const Options& o, const std::string& digest);
int Gc(const Options& o, const std::string& target);
// georeg peers remove NAME: revokes a member fleet-wide (through the daemon only).
int PeersRemove(const Options& o, const std::string& name);
int Verify(const Options& o);
// `georeg peers ls`: the cluster as the running daemon sees it (needs the
// daemon: exit 3 when its admin socket cannot be reached).
int PeersLs(const Options& o);

}  // namespace cache_cli
