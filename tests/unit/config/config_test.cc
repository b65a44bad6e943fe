// The configuration (config/config.h): defaults, a full file, the node,
// cluster and own registry sections, each error naming its key, reloads.
#include "config/config.h"

#include <catch2/catch.hpp>

TEST_CASE("config: server.sendfile is auto unless set") {
  CHECK(config::Defaults().server.sendfile == "auto");
  auto c = config::ParseString(
      "[server]\nsendfile = \"off\"\n[[upstream]]\nregistry = \"r\"\nurl = \"http://h:1\"\n",
      "test.toml");
  REQUIRE(c.ok());
  CHECK(c->server.sendfile == "off");
}

TEST_CASE("config: embedded defaults") {
  config::Config c = config::Defaults();
  CHECK(c.server.listen == "127.0.0.1:5000");
  CHECK(c.server.listen_addr.port == 5000);
  CHECK(c.cache.max_size == 20ull << 30);
  REQUIRE(c.upstreams.size() == 1);
  CHECK(c.upstreams[0].registry == "docker.io");
  CHECK(c.upstreams[0].is_default);
  CHECK(c.upstreams[0].scheme == "https");
  CHECK(c.upstreams[0].port == 443);
}

TEST_CASE("config: a full file") {
  auto c = config::LoadString(R"(
[server]
listen = "0.0.0.0:5001"
idle_timeout = "2m"
[cache]
dir = "/tmp/x"
max_size = "512MiB"
[log]
level = "debug"
[[upstream]]
registry = "docker.io"
url = "https://registry-1.docker.io"
[[upstream]]
registry = "localhost:5000"
url = "http://127.0.0.1:5000"
default = true
tag_ttl = "1m"
single_flight = "region"
)",
                              "test.toml");
  REQUIRE(c.ok());
  CHECK(c->server.idle_timeout_ms == 120000);
  CHECK(c->cache.max_size == 512ull << 20);
  REQUIRE(c->upstreams.size() == 2);
  CHECK(c->upstreams[0].registry == "localhost:5000");  // the default goes first
  CHECK(c->upstreams[0].host == "127.0.0.1");
  CHECK(c->upstreams[0].port == 5000);
  CHECK(c->upstreams[0].tag_ttl_ms == 60000);
  CHECK_FALSE(c->upstreams[1].is_default);
  CHECK_FALSE(c->upstreams[0].fleet_single_flight);
  CHECK(c->upstreams[1].fleet_single_flight);  // the default
}

TEST_CASE("config: node and cluster") {
  auto c = config::LoadString(R"(
[node]
name = "eu-1"
region = "europe-west"
latitude = 50.1
longitude = 8.7
[cluster]
key_file = "/etc/hostname"
advertise = "http://10.0.1.1:5000"
seeds = ["http://10.0.1.1:5000", "http://10.0.2.1:5000"]
probe_interval = "500ms"
probe_timeout = "200ms"
sync_interval = "2s"
[[upstream]]
registry = "r"
url = "http://h:1"
)",
                              "t.toml");
  REQUIRE(c.ok());
  CHECK(c->node.name == "eu-1");
  CHECK(c->node.region == "europe-west");
  CHECK(c->node.has_location);
  CHECK(c->cluster.enabled());
  CHECK(c->cluster.seeds.size() == 2);
  CHECK(c->cluster.probe_interval_ms == 500);
  CHECK(c->cluster.sync_interval_ms == 2000);
  CHECK(c->cluster.gossip_fanout == 3);
  auto derived = config::LoadString(
      "[server]\nlisten = \"10.1.2.3:5000\"\n[cluster]\nkey_file = \"/etc/hostname\"\n"
      "[[upstream]]\nregistry = \"r\"\nurl = \"http://h:1\"\n",
      "t.toml");
  REQUIRE(derived.ok());
  CHECK(derived->cluster.advertise == "http://10.1.2.3:5000");
  auto d = config::Defaults();
  CHECK_FALSE(d.cluster.enabled());
  CHECK(d.node.region == "default");
}

TEST_CASE("config: the own registry") {
  auto c = config::LoadString(R"(
[registry]
name = "fleet.example"
push_htpasswd = "/etc/hostname"
pull_auth = "htpasswd"
policy = "full"
prefixes = ["team-a/", "base"]
prefetch_rate = "50MiB/s"
copies = 3
upload_timeout = "30s"
[[upstream]]
registry = "docker.io"
url = "http://h:1"
)",
                              "t.toml");
  REQUIRE(c.ok());
  CHECK(c->registry.enabled());
  CHECK(c->registry.name == "fleet.example");
  CHECK(c->registry.pull_requires_auth);
  CHECK(c->registry.full_policy);
  CHECK(c->registry.prefixes == std::vector<std::string>{"team-a/", "base"});
  CHECK(c->registry.prefetch_rate == 50ull << 20);
  CHECK(c->registry.copies == 3);
  CHECK(c->registry.upload_timeout_ms == 30000);
  // No upstream said default: requests without ns= go to the own registry.
  CHECK_FALSE(c->default_upstream_marked);
  CHECK_FALSE(c->upstreams[0].is_default);

  auto marked = config::LoadString(R"(
[registry]
name = "own"
push_htpasswd = "/etc/hostname"
prefetch_rate = 0
[[upstream]]
registry = "docker.io"
url = "http://h:1"
default = true
)",
                                   "t.toml");
  REQUIRE(marked.ok());
  CHECK(marked->default_upstream_marked);
  CHECK(marked->upstreams[0].is_default);
  CHECK_FALSE(marked->registry.full_policy);  // "manifests" by default
  CHECK(marked->registry.copies == 2);

  // An own registry alone, with no upstream at all.
  auto alone = config::LoadString("[registry]\nname = \"own\"\npush_htpasswd = \"/etc/hostname\"\n",
                                  "t.toml");
  REQUIRE(alone.ok());
  CHECK(alone->upstreams.empty());
  // Without [registry], the first upstream is the default as before.
  auto plain =
      config::LoadString("[[upstream]]\nregistry = \"r\"\nurl = \"http://h:1\"\n", "t.toml");
  REQUIRE(plain.ok());
  CHECK(plain->upstreams[0].is_default);
}

TEST_CASE("config: registry names, as ?ns= and API paths carry them") {
  for (const char* ok : {"docker.io", "localhost:5000", "fleet.example", "[::1]:5000", "a"})
    CHECK(config::ValidRegistryName(ok));
  for (const char* bad :
       {"", "a b", "a/b", "a?b", "a&b", "a=b", "a%20", "a#b", "a\tb", "caf\xc3\xa9"})
    CHECK_FALSE(config::ValidRegistryName(bad));
  CHECK_FALSE(config::ValidRegistryName(std::string(256, 'a')));
  CHECK(config::ValidRegistryName(std::string(255, 'a')));
}

TEST_CASE("config: each error names the key") {
  struct Case {
    const char* toml;
    const char* key;
  };
  const char* up = "\n[[upstream]]\nregistry = \"r\"\nurl = \"http://h:1\"\n";
  std::vector<std::pair<std::string, std::string>> cases = {
      {std::string("[server]\nlisten = \"nope\"") + up, "server.listen:"},
      {std::string("[server]\nlistne = \"1.2.3.4:5\"") + up, "server.listne: unknown key"},
      {std::string("bogus = 1") + up, "bogus: unknown key"},
      {std::string("[cache]\nmax_size = \"lots\"") + up, "cache.max_size:"},
      {std::string("[server]\nsendfile = \"yes\"") + up, "server.sendfile: must be"},
      {std::string("[cache]\nmax_size = \"1MiB\"") + up, "cache.max_size:"},
      {"[cache]\ndir = \"/x\"\n", "upstream:"},
      {"[[upstream]]\nregistry = \"r\"\nurl = \"ftp://h\"\n", "upstream[0].url:"},
      {"[[upstream]]\nregistry = \"r\"\nurl = \"http://h/path\"\n", "upstream[0].url:"},
      {"[[upstream]]\nurl = \"http://h\"\n", "upstream[0].registry:"},
      {"[[upstream]]\nregistry = \"r\"\nurl = \"http://h\"\ntag_ttl = \"soon\"\n",
       "upstream[0].tag_ttl:"},
      {"[[upstream]]\nregistry = \"r\"\nurl = \"http://h\"\nsingle_flight = \"world\"\n",
       "upstream[0].single_flight:"},
      {"[[upstream]]\nregistry = \"r\"\nurl = \"http://h\"\n[[upstream]]\nregistry = \"r\"\nurl = "
       "\"http://g\"\n",
       "upstream[1].registry:"},
      {"[[upstream]]\nregistry = \"r\"\nurl = \"http://h\"\ndefault = true\n[[upstream]]\nregistry "
       "= \"s\"\n"
       "url = \"http://g\"\ndefault = true\n",
       "upstream:"},
      {std::string("[server\n") + up, "test.toml:1"},
      {std::string("[node]\nname = \"a b\"\n[cluster]\nkey_file = \"/etc/hostname\"\nadvertise = "
                   "\"http://h:1\"") +
           up,
       "node.name:"},
      {std::string("[node]\nregion = \"\"\n[cluster]\nkey_file = \"/etc/hostname\"\nadvertise = "
                   "\"http://h:1\"") +
           up,
       "node.region:"},
      {std::string("[node]\nlatitude = 95.0\nlongitude = 1") + up, "node.latitude:"},
      {std::string("[node]\nlatitude = 45.0") + up, "node.longitude:"},
      {std::string("[cluster]\nseeds = [\"http://10.0.0.1:5000\"]") + up, "cluster.key_file:"},
      {std::string(
           "[cluster]\nkey_file = \"/nonexistent/key\"\nadvertise = \"http://10.0.0.1:5000\"") +
           up,
       "cluster.key_file:"},
      {std::string("[server]\nlisten = \"0.0.0.0:5000\"\n[cluster]\nkey_file = \"/etc/hostname\"") +
           up,
       "cluster.advertise:"},
      {std::string("[cluster]\nkey_file = \"/etc/hostname\"\nadvertise = \"https://h:1\"") + up,
       "cluster.advertise:"},
      {std::string("[cluster]\nkey_file = \"/etc/hostname\"\nadvertise = \"http://h:1\"\nseeds = "
                   "[\"h:2\"]") +
           up,
       "cluster.seeds:"},
      {std::string("[cluster]\nkey_file = \"/etc/hostname\"\nadvertise = "
                   "\"http://h:1\"\nprobe_timeout = \"2s\"") +
           up,
       "cluster.probe_timeout:"},
      {std::string("[cluster]\nkey_file = \"/etc/hostname\"\nadvertise = "
                   "\"http://h:1\"\ngossip_fanout = 0") +
           up,
       "cluster.gossip_fanout:"},
      {std::string("[cluster]\nbogus = 1") + up, "cluster.bogus: unknown key"},
      {std::string("[registry]\nname = \"own\"") + up, "registry.push_htpasswd:"},
      {std::string("[registry]\nname = \"own\"\npush_htpasswd = \"/nonexistent\"") + up,
       "registry.push_htpasswd:"},
      {std::string("[registry]\npush_htpasswd = \"/etc/hostname\"") + up, "registry.name:"},
      {std::string("[registry]\nname = \"r\"\npush_htpasswd = \"/etc/hostname\"") + up,
       "registry.name:"},
      {std::string("[registry]\nname = \"a/b\"\npush_htpasswd = \"/etc/hostname\"") + up,
       "registry.name:"},
      {std::string(
           "[registry]\nname = \"o\"\npush_htpasswd = \"/etc/hostname\"\npolicy = \"most\"") +
           up,
       "registry.policy:"},
      {std::string(
           "[registry]\nname = \"o\"\npush_htpasswd = \"/etc/hostname\"\npull_auth = \"x\"") +
           up,
       "registry.pull_auth:"},
      {std::string("[registry]\nname = \"o\"\npush_htpasswd = \"/etc/hostname\"\nprefetch_rate = "
                   "\"fast\"") +
           up,
       "registry.prefetch_rate:"},
      {std::string("[registry]\nname = \"o\"\npush_htpasswd = \"/etc/hostname\"\ncopies = 0") + up,
       "registry.copies:"},
      {std::string("[registry]\nname = \"o\"\npush_htpasswd = \"/etc/hostname\"\nprefixes = [1]") +
           up,
       "registry.prefixes:"},
      {std::string("[registry]\nbogus = 1") + up, "registry.bogus: unknown key"},
  };
  for (auto& [toml, key] : cases) {
    INFO(toml);
    auto c = config::LoadString(toml, "test.toml");
    REQUIRE_FALSE(c.ok());
    CHECK(c.status().message().rfind(key, 0) == 0);
    CHECK(c.status().message().find('\n') == std::string::npos);
  }
}

TEST_CASE("config: a reload names what needs a restart, and only that") {
  config::Config a = config::Defaults();
  config::Config b = a;
  CHECK(config::RestartKeys(a, b).empty());
  b.log_level = "debug";
  b.log_format = "json";
  b.access_log = false;
  CHECK(config::RestartKeys(a, b).empty());  // [log] applies live
  b.server.listen = "127.0.0.1:6000";
  b.metrics.listen = "";
  b.upstreams[0].tag_ttl_ms = 1;
  b.cluster.seeds = {"http://10.0.0.1:5000"};
  CHECK(config::RestartKeys(a, b) ==
        std::vector<std::string>{"server.listen", "metrics.listen", "cluster", "upstream"});
}

TEST_CASE("config: [metrics] listen and [log] format are checked") {
  auto ok = config::LoadString(
      "[metrics]\nlisten = \"127.0.0.1:9100\"\n[log]\nformat = \"json\"\naccess = false\n"
      "[[upstream]]\nregistry = \"r\"\nurl = \"http://127.0.0.1:1\"\n",
      "t");
  REQUIRE(ok.ok());
  CHECK(ok->metrics.listen_addr.port == 9100);
  CHECK(ok->log_format == "json");
  CHECK_FALSE(ok->access_log);
  CHECK(config::LoadString("[[upstream]]\nregistry = \"r\"\nurl = \"http://127.0.0.1:1\"\n", "t")
            ->metrics.listen.empty());
  CHECK(config::Defaults().metrics.listen == "127.0.0.1:9464");
  auto bad = config::LoadString(
      "[metrics]\nlisten = \"nowhere\"\n[[upstream]]\nregistry = \"r\"\nurl = \"http://x:1\"\n",
      "t");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("metrics.listen") != std::string::npos);
  auto same = config::LoadString(
      "[server]\nlisten = \"127.0.0.1:5000\"\n[metrics]\nlisten = \"127.0.0.1:5000\"\n"
      "[[upstream]]\nregistry = \"r\"\nurl = \"http://x:1\"\n",
      "t");
  CHECK_FALSE(same.ok());
  auto fmt = config::LoadString(
      "[log]\nformat = \"xml\"\n[[upstream]]\nregistry = \"r\"\nurl = \"http://x:1\"\n", "t");
  REQUIRE_FALSE(fmt.ok());
  CHECK(fmt.status().message().find("log.format") != std::string::npos);
}
