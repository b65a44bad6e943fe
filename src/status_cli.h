// `georeg status [-o table|json] [--endpoint URL] [-c CONFIG]`: what a node
// says of itself (telemetry/status_page.h): the node and its region, every
// peer with its state, RTT and last contact, cache use, upstream health and
// the replications. Exit codes: 0, 2 bad arguments, 3 the node cannot be
// reached or did not answer with its status.
#pragma once

#include <string>

namespace status_cli {

struct Options {
  std::string endpoint;  // any node; "" = the local daemon
  std::string config;    // to find the local daemon's listen address
  std::string output = "table";
};

int Status(const Options& o);

// The table form of a status document (pure; for tests).
std::string FormatStatus(const std::string& status_json);

}  // namespace status_cli
