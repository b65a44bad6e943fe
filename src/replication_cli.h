// `georeg replication create|list|show|update|delete|status`: the fleet's
// own registry's replications, managed through any node's HTTP API
// (src/registry/replicator.h; docs/replication.md, "Replications").
//
// Output: JSON (the default, as the managed registries' CLI prints it) or
// `-o table`; errors on stderr, one line. Exit codes: 0 ok, 1 the node
// refused (unknown registry, invalid or unknown region, the last
// replication, bad credentials), 2 bad arguments, 3 the node cannot be
// reached.
#pragma once

#include <string>

namespace replication_cli {

struct Options {
  std::string endpoint;  // http(s)://host:port of any node; "" = the local daemon
  std::string config;    // config file to find the local daemon's listen address in
  std::string registry;  // --registry
  std::string location;  // --location
  std::string routing;   // update: "enabled" or "disabled"
  std::string image;     // status: REPO:TAG
  std::string output = "json";
  std::string username, password;  // Basic credentials (push credentials for writes)
};

int Create(const Options& o);
int List(const Options& o);
int Show(const Options& o);
int Update(const Options& o);
int Delete(const Options& o);
int Status(const Options& o);

}  // namespace replication_cli
