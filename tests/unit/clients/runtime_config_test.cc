// containerd's hosts.toml and podman's registries.conf.d drop-in.
#include <catch2/catch.hpp>

#include "clients/runtime_config.h"
#include "config/config.h"

TEST_CASE("hosts.toml: georeg first, existing hosts kept after it in order, idempotent") {
  clients::Mirror m{"http://127.0.0.1:5000", {"pull", "resolve"}};
  auto fresh = clients::HostsToml("docker.io", m, "");
  REQUIRE(fresh.ok());
  CHECK(fresh->find("server = \"https://registry-1.docker.io\"\n") != std::string::npos);
  CHECK(
      fresh->find("[host.\"http://127.0.0.1:5000\"]\n  capabilities = [\"pull\", \"resolve\"]\n") !=
      std::string::npos);
  CHECK(config::CheckTomlSyntax(*fresh, "t").ok());
  CHECK(*clients::HostsToml("docker.io", m, *fresh) == *fresh);

  std::string existing =
      "# ours\nserver = \"https://mirror.example\"\n\n[host.\"https://b.example\"]\n  capabilities "
      "= [\"pull\"]\n"
      "  # note b\n\n[host.\"https://a.example\"]\n  capabilities = [\"pull\", \"resolve\"]\n  "
      "skip_verify = true\n";
  auto merged = clients::HostsToml("quay.io", m, existing);
  REQUIRE(merged.ok());
  CHECK(merged->find("server = \"https://mirror.example\"") !=
        std::string::npos);  // kept, not replaced
  CHECK(merged->find("https://quay.io") == std::string::npos);
  size_t ours = merged->find("127.0.0.1:5000"), b = merged->find("b.example"),
         a = merged->find("a.example");
  CHECK(ours < b);
  CHECK(b < a);  // their order
  CHECK(merged->find("# note b") != std::string::npos);
  CHECK(merged->find("skip_verify = true") != std::string::npos);
  CHECK(*clients::HostsToml("quay.io", m, *merged) == *merged);
  // Ours, already somewhere down the list, moves first (once).
  std::string later =
      existing + "\n[host.\"http://127.0.0.1:5000\"]\n  capabilities = [\"pull\"]\n";
  auto moved = clients::HostsToml("quay.io", m, later);
  REQUIRE(moved.ok());
  CHECK(moved->find("127.0.0.1:5000") < moved->find("b.example"));
  CHECK(moved->find("127.0.0.1:5000", moved->find("127.0.0.1:5000") + 1) == std::string::npos);

  CHECK_FALSE(clients::HostsToml("docker.io", m, "[host.\"x\"\nbroken").ok());
  CHECK_FALSE(
      clients::HostsToml("docker.io", {"http://127.0.0.1:5000", {"pull", "delete"}}, "").ok());
  CHECK(clients::DefaultServer("index.docker.io") == "https://registry-1.docker.io");
  CHECK(clients::DefaultServer("ghcr.io") == "https://ghcr.io");
}

TEST_CASE(
    "registries.conf.d: georeg under each registry's name as its mirror; the own registry at "
    "georeg") {
  std::string conf = clients::RegistriesConf({{"docker.io", false}, {"127.0.0.1:5001", true}},
                                             {"fleet.example"}, "127.0.0.1:5000");
  CHECK(config::CheckTomlSyntax(conf, "t").ok());
  CHECK(conf.find(
            "prefix = \"docker.io\"\nlocation = \"docker.io\"\n\n[[registry.mirror]]\nlocation = "
            "\"127.0.0.1:5000/docker.io\"\ninsecure = true\n") != std::string::npos);
  CHECK(conf.find("location = \"127.0.0.1:5001\"\ninsecure = true\n") != std::string::npos);
  CHECK(conf.find("location = \"127.0.0.1:5000/127.0.0.1_5001\"") !=
        std::string::npos);  // a path cannot hold ':'
  CHECK(conf.find("prefix = \"fleet.example\"\nlocation = "
                  "\"127.0.0.1:5000/fleet.example\"\ninsecure = true\n") != std::string::npos);
}
