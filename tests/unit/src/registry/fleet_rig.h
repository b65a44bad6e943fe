// A fleet of georeg nodes in one process, for unit tests of what the own
// registry does across nodes (durable copies, holds, tags told to every
// region) with no sockets: every node has its own cache (LMDB in a
// temporary directory, writer thread, keeper) and registry modules, all on
// one loop with one FakeClock; each node's peering::Fleet is a FakeFleet
// that hands peer requests straight to the other node's modules (answered
// through a fake client, on later turns) and keeps a tag table of its own.
// A node can die (its peers' requests to it are refused) or fail holds.
// Gossip is a step the test takes (World::Gossip, World::Tick), so what a
// node knows at each moment is the test's to say. Every rig ends with
// uv_loop_close() == 0.
#pragma once

#include <unistd.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cache/store.h"
#include "cache/writer.h"
#include "config/config.h"
#include "peers/hlc.h"
#include "peers/tag_table.h"
#include "push/replication.h"
#include "push/tag_value.h"
#include "src/io/clock.h"
#include "src/io/deferred.h"
#include "src/io/handle.h"
#include "src/oci/router.h"
#include "src/peering/fleet.h"
#include "src/registry/cache_keeper.h"
#include "src/registry/registry_parts.h"
#include "src/registry/writer_bridge.h"
#include "tests/unit/registry_fakes.h"
#include "tests/unit/src/registry/images.h"

namespace fleetrig {

constexpr const char* kReg = "fleet.test";
using fakes::kCreds;

class World;
struct Node;

// Answers a fake client's exchange into upstream callbacks once it is done
// (polled on later turns), unless cancelled.
class Answer : public upstream::InFlight {
 public:
  void Pause() override {}
  void Resume() override {}
  void Cancel() override { *cancelled = true; }
  std::shared_ptr<bool> cancelled = std::make_shared<bool>(false);
};

class FakeFleet final : public peering::Fleet {
 public:
  FakeFleet(World* world, Node* self) : world_(world), self_(self) {}
  const std::string& name() const override;
  const std::string& region() const override;
  std::vector<NodeInfo> Nodes() const override;
  std::optional<peers::PeerStep> StepTo(const std::string& name) const override;
  peers::RoutePlan Plan(const util::Digest& digest, peers::Hop incoming, bool blob,
                        peers::Scope scope,
                        const std::vector<std::string>& prefer = {}) const override;
  std::vector<peers::PeerStep> ReplicaCandidates() const override;
  std::vector<peers::PeerStep> TagRegionOwners(const peers::TagKey& key) const override;
  void SetRegionPolicy(std::set<std::string> replicated, std::set<std::string> drained) override {
    replicated_ = std::move(replicated);
    drained_ = std::move(drained);
  }
  bool Routable(const std::string& region) const override;
  std::shared_ptr<upstream::InFlight> Send(const peers::PeerStep& step, const std::string& method,
                                           const std::string& oci_target,
                                           std::vector<http::Header> headers,
                                           upstream::Callbacks cb,
                                           upstream::FetchOptions options = {}) override;
  void ReportFailure(const std::string& peer, const std::string&, bool) override {
    failures.push_back(peer);
  }
  void Hold(const peers::PeerStep& step, const std::string& oci_target,
            std::function<void(util::Status)> done) override;
  peers::TagUpdate RecordTag(const std::string& registry, const std::string& repository,
                             const std::string& tag, const util::Digest& digest,
                             const std::string& value = "") override;
  void PushTag(const peers::TagUpdate& u,
               std::function<void(size_t told, size_t asked)> done) override;
  bool Restore(const peers::TagUpdate& u) override { return table.Apply(u); }
  const peers::TagVersion* FindTag(const peers::TagKey& key) const override {
    return table.Find(key);
  }
  std::string TagOrigin(const std::string& registry, const std::string& repository,
                        const std::string& tag) const override {
    const peers::TagVersion* v = table.Find({registry, repository, tag});
    return v ? v->origin : "";
  }
  std::vector<peers::TagUpdate> FleetEntries(const std::string& registry) const override {
    return table.EntriesOf(registry);
  }

  peers::TagTable table;
  peers::HybridLogicalClock hlc{60'000};
  std::vector<std::string> failures;  // ReportFailure's peers
  std::vector<std::string> holds_asked;
  std::vector<std::string> sent;  // "<node> <method> <target>" of every Send

 private:
  World* world_;
  Node* self_;
  std::set<std::string> replicated_, drained_;
};

// One node: its cache and the registry modules, as the Service builds them.
struct Node {
  std::string name, region, dir;
  config::Config cfg;
  bool live = true;
  bool fail_holds = false;  // a hold asked of it breaks off (after it started)
  std::unique_ptr<cache::Store> store;
  std::unique_ptr<cache::Writer> writer;
  std::unique_ptr<registry::WriterBridge> bridge;
  std::unique_ptr<registry::CacheKeeper> keeper;
  std::unique_ptr<FakeFleet> fleet;
  // The daemon's wiring (src/registry/registry_parts.h), and its parts by name.
  std::unique_ptr<registry::RegistryParts> parts;
  registry::Fills* fills = nullptr;
  registry::Holdings* holdings = nullptr;
  registry::FleetTags* tags = nullptr;
  registry::OwnRegistry* own = nullptr;
  registry::Replicator* replicator = nullptr;  // ticked by World::Tick, not by a timer

  bool Own(const util::Digest& d) const {
    const cache::BlobIndex::Entry* e = keeper->index().Find(d);
    return e && e->own;
  }
  bool HasManifest(const util::Digest& d) const {
    auto txn = store->BeginRead();
    cache::OwnManifest m;
    return txn.ok() && store->GetOwnManifest(*txn, d, &m).ok();
  }
};

class World {
 public:
  // `nodes`: {name, region}; `copies`: [registry] copies; `configure`
  // changes one node's copy of the configuration before it is built.
  using Configure = std::function<void(const std::string& node, config::Config*)>;
  World(std::vector<std::pair<std::string, std::string>> nodes, uint64_t copies,
        Configure configure = nullptr) {
    uv_loop_init(&loop);
    deferred = std::make_unique<io::Deferred>(&loop);
    cfg = config::Defaults();
    cfg.registry.name = kReg;
    cfg.registry.max_size = 64 << 20;
    cfg.registry.copies = copies;
    char tmpl[] = "/tmp/georeg-fleet-test.XXXXXX";
    root = mkdtemp(tmpl);
    htpasswd = root + "/htpasswd";
    fakes::WriteHtpasswd(htpasswd);
    for (auto& [name, region] : nodes) {
      config::Config c = cfg;
      if (configure) configure(name, &c);
      Add(name, region, c);
    }
    keepalive.Init(&loop, this, uv_timer_init);
    uv_timer_start(
        keepalive.get(), [](uv_timer_t*) {}, 3'600'000, 3'600'000);
  }
  ~World() {
    if (!closed_) Close();
    std::filesystem::remove_all(root);
  }
  io::Env env() { return {&loop, &clock, deferred.get()}; }
  Node& operator[](const std::string& name) {
    for (auto& n : nodes)
      if (n->name == name) return *n;
    FAIL("no node " << name);
    return *nodes[0];
  }
  Node* Find(const std::string& name) {
    for (auto& n : nodes)
      if (n->name == name) return n.get();
    return nullptr;
  }

  // Turns the loop until `pred` holds, at most `turns` times (half a
  // millisecond apart).
  bool RunUntil(const std::function<bool()>& pred, int turns = 20000) {
    for (int i = 0; i < turns; ++i) {
      uv_run(&loop, UV_RUN_NOWAIT);
      if (pred()) return true;
      ::usleep(500);
    }
    return false;
  }
  bool Settle() {
    return RunUntil([this] {
      for (auto& n : nodes)
        if (n->bridge->pending() != 0) return false;
      return deferred->pending() == 0;
    });
  }
  // A client's request to `node`, answered (the loop turns until it is).
  std::shared_ptr<fakes::Client> Send(const std::string& node, const std::string& method,
                                      const std::string& target,
                                      std::optional<std::string> body = std::nullopt,
                                      std::vector<http::Header> headers = kCreds) {
    auto c = Start(node, method, target, std::move(body), std::move(headers));
    REQUIRE(RunUntil([&] { return c->done(); }));
    return c;
  }
  // A request to `node`'s replications API, answered.
  std::shared_ptr<fakes::Client> Manage(const std::string& node, const std::string& method,
                                        const std::string& target,
                                        std::optional<std::string> body = std::nullopt) {
    auto c = fakes::Client::Make(deferred.get(), target, kCreds, method, std::move(body));
    (*this)[node].replicator->Handle(c->ex);
    REQUIRE(RunUntil([&] { return c->done(); }));
    return c;
  }
  // The same, not waited for.
  std::shared_ptr<fakes::Client> Start(const std::string& node, const std::string& method,
                                       const std::string& target,
                                       std::optional<std::string> body = std::nullopt,
                                       std::vector<http::Header> headers = kCreds) {
    auto c =
        fakes::Client::Make(deferred.get(), target, std::move(headers), method, std::move(body));
    (*this)[node].own->Handle(oci::RouteRequest(method, target), c->ex, peers::Hop::kClient);
    return c;
  }
  // Calls `then` on a later turn once `c` is answered.
  void WhenDone(std::shared_ptr<fakes::Client> c, std::function<void()> then) {
    deferred->Post([this, c, then] {
      if (!c->done()) return WhenDone(c, then);
      then();
    });
  }
  // One round of gossip: every live node's fleet records (the registry's
  // tags, replications, sync reports) reach every other live node, and a
  // node whose table changed hands them on as the Service does.
  void Gossip() {
    for (auto& from : nodes) {
      if (!from->live) continue;
      for (const char* kind :
           {kReg, push::kReplicationRecords, push::kSyncReports, push::kDeletedContent})
        for (const peers::TagUpdate& u : from->fleet->table.EntriesOf(kind))
          for (auto& to : nodes) {
            if (to == from || !to->live) continue;
            to->fleet->hlc.Observe(u.version.hlc, clock.WallMs());
            if (to->fleet->table.Apply(u)) to->parts->Learn(u);
          }
    }
  }
  // A second passes: every live node's Replicator does its once-a-second
  // work, what it recorded is gossiped, and the loop settles.
  void Tick() {
    clock.Advance(1000);
    for (auto& n : nodes)
      if (n->live) n->replicator->Tick();
    Gossip();
    REQUIRE(Settle());
    Gossip();
  }
  // Ticks until `pred` holds (at most `seconds` ticks).
  bool TickUntil(const std::function<bool()>& pred, int seconds = 30) {
    for (int i = 0; i < seconds; ++i) {
      if (pred()) return true;
      Tick();
    }
    return pred();
  }

  // A pushed image's blobs, uploaded to `node`.
  void PushBlobs(const std::string& node, const images::Image& img) {
    for (const std::string* b : {&img.config, &img.layer})
      REQUIRE(Send(node, "POST",
                   "/v2/" + img.repo + "/blobs/uploads/?digest=" + util::DigestOf(*b).ToString(),
                   *b)
                  ->status == 201);
  }
  std::shared_ptr<fakes::Client> PutManifest(const std::string& node, const images::Image& img,
                                             const std::string& tag) {
    return Send(node, "PUT", "/v2/" + img.repo + "/manifests/" + tag, img.manifest,
                {kCreds[0], {"content-type", images::kManifestType}});
  }
  // Whether `node` holds the image's manifest and both blobs as own content.
  bool HoldsImage(const std::string& node, const images::Image& img) {
    Node& n = (*this)[node];
    return n.Own(util::DigestOf(img.config)) && n.Own(util::DigestOf(img.layer)) &&
           n.HasManifest(util::DigestOf(img.manifest));
  }

  // Clients of peer requests whose answer nobody waits for any more (a
  // hold that broke off): kept until the end, as a connection would be.
  std::vector<std::shared_ptr<fakes::Client>> kept;

  // The keepalive timer stays until the writers answered everything: without
  // a referenced handle the loop would not poll for their answers.
  int Close() {
    closed_ = true;
    for (auto& n : nodes) n->parts->Stop();
    CHECK(Settle());
    kept.clear();
    for (auto& n : nodes) {
      n->parts.reset();
      n->keeper->Stop();
    }
    CHECK(Settle());
    keepalive.Close();
    for (auto& n : nodes) {
      n->writer.reset();
      n->bridge->Close();
    }
    deferred->Close();
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop);
  }

  uv_loop_t loop;
  io::FakeClock clock;
  std::unique_ptr<io::Deferred> deferred;
  config::Config cfg;
  std::string root, htpasswd;
  std::vector<std::unique_ptr<Node>> nodes;

 private:
  void Add(const std::string& name, const std::string& region, const config::Config& node_cfg) {
    auto n = std::make_unique<Node>();
    n->name = name;
    n->region = region;
    n->cfg = node_cfg;
    n->dir = root + "/" + name;
    std::filesystem::create_directories(n->dir);
    auto s = cache::Store::Open({n->dir, 1ull << 30, 256ull << 20});
    REQUIRE(s.ok());
    n->store = std::move(*s);
    n->writer = std::make_unique<cache::Writer>();
    n->bridge = std::make_unique<registry::WriterBridge>(&loop, n->writer.get());
    config::Cache c;
    c.dir = n->dir;
    c.max_size = 1ull << 30;
    c.min_free_fraction = 0;
    c.scrub_rate = 0;
    n->keeper = std::make_unique<registry::CacheKeeper>(env(), c, n->store.get(), n->bridge.get());
    REQUIRE(n->keeper->Start().ok());
    n->fleet = std::make_unique<FakeFleet>(this, n.get());
    n->parts = std::make_unique<registry::RegistryParts>(
        env(), n->cfg, n->store.get(), n->bridge.get(), n->keeper.get(),
        std::make_shared<registry::InFlightBytes>(64 << 20), n->fleet.get());
    REQUIRE(n->parts->auth.Load(htpasswd).ok());
    n->fills = &n->parts->fills;
    n->holdings = &n->parts->holdings;
    n->tags = &n->parts->tags;
    n->own = &n->parts->own;
    n->replicator = &n->parts->replicator;
    n->own->Start();
    nodes.push_back(std::move(n));
  }

  io::Handle<uv_timer_t> keepalive;
  bool closed_ = false;
};

// ---- FakeFleet ----

inline const std::string& FakeFleet::name() const { return self_->name; }
inline const std::string& FakeFleet::region() const { return self_->region; }

inline std::vector<peering::Fleet::NodeInfo> FakeFleet::Nodes() const {
  std::vector<NodeInfo> out;
  for (auto& n : world_->nodes) out.push_back({n->name, n->region, n->live});
  return out;
}

inline bool FakeFleet::Routable(const std::string& region) const {
  return region == self_->region || !drained_.count(region);
}

inline std::optional<peers::PeerStep> FakeFleet::StepTo(const std::string& name) const {
  Node* n = world_->Find(name);
  if (!n) return std::nullopt;
  return peers::PeerStep{name, "fake://" + name, peers::Hop::kPeer, n->region};
}

// Known holders first, then every other member, all asked as peers (from
// their caches), none in a drained region: a small fleet's plan.
inline peers::RoutePlan FakeFleet::Plan(const util::Digest&, peers::Hop incoming, bool,
                                        peers::Scope,
                                        const std::vector<std::string>& prefer) const {
  peers::RoutePlan plan;
  plan.role = incoming;
  plan.upstream = false;
  if (incoming == peers::Hop::kPeer) return plan;
  std::vector<std::string> order;
  for (const std::string& p : prefer)
    if (p != self_->name && std::find(order.begin(), order.end(), p) == order.end())
      order.push_back(p);
  for (auto& n : world_->nodes)
    if (n->name != self_->name && n->live &&
        std::find(order.begin(), order.end(), n->name) == order.end())
      order.push_back(n->name);
  for (const std::string& name : order)
    if (auto s = StepTo(name); s && Routable(s->region)) plan.steps.push_back(*s);
  return plan;
}

inline std::vector<peers::PeerStep> FakeFleet::ReplicaCandidates() const {
  std::vector<peers::PeerStep> other, ours;
  for (auto& n : world_->nodes) {
    if (n->name == self_->name || !n->live) continue;
    (n->region == self_->region ? ours : other).push_back(*StepTo(n->name));
  }
  other.insert(other.end(), ours.begin(), ours.end());
  return other;
}

inline std::vector<peers::PeerStep> FakeFleet::TagRegionOwners(const peers::TagKey&) const {
  std::vector<peers::PeerStep> out;
  for (auto& n : world_->nodes)
    if (n->name != self_->name && n->live && n->region == self_->region) {
      peers::PeerStep s = *StepTo(n->name);
      s.hop = peers::Hop::kOwner;
      out.push_back(s);
    }
  return out;
}

inline std::shared_ptr<upstream::InFlight> FakeFleet::Send(
    const peers::PeerStep& step, const std::string& method, const std::string& oci_target,
    std::vector<http::Header> headers, upstream::Callbacks cb, upstream::FetchOptions) {
  auto answer = std::make_shared<Answer>();
  sent.push_back(step.name + " " + method + " " + oci_target);
  Node* to = world_->Find(step.name);
  if (!to || !to->live) {  // connection refused, on a later turn
    world_->deferred->Post([cancelled = answer->cancelled, cb] {
      if (!*cancelled) cb.on_complete(util::Status::Unavailable("connection refused"));
    });
    return answer;
  }
  auto c = fakes::Client::Make(world_->deferred.get(), oci_target, std::move(headers), method);
  to->own->Handle(oci::RouteRequest(method, oci_target), c->ex, step.hop);
  world_->WhenDone(c, [c, cb, cancelled = answer->cancelled] {
    if (*cancelled) return;
    upstream::ResponseHead h;
    h.status = c->status;
    for (const http::Header& x : c->headers) {
      std::string n = x.name;
      for (char& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      h.headers.push_back({n, x.value});
    }
    h.content_length = c->length;
    cb.on_head(h);
    if (*cancelled) return;
    if (!c->body.empty()) cb.on_body(c->body.data(), c->body.size());
    if (*cancelled) return;
    cb.on_complete(c->reset ? util::Status::Unavailable("reset") : util::Status::Ok());
  });
  return answer;
}

inline void FakeFleet::Hold(const peers::PeerStep& step, const std::string& oci_target,
                            std::function<void(util::Status)> done) {
  holds_asked.push_back(step.name);
  Node* to = world_->Find(step.name);
  if (!to || !to->live) {
    world_->deferred->Post([done] { done(util::Status::Unavailable("connection refused")); });
    return;
  }
  auto c = fakes::Client::Make(world_->deferred.get(), "/_georeg/v1/hold" + oci_target, {}, "POST");
  to->holdings->ServeHold(c->ex, oci_target, self_->name);
  if (to->fail_holds) {  // the holder breaks off mid-hold
    world_->kept.push_back(c);
    world_->deferred->Post([done] { done(util::Status::Unavailable("connection reset")); });
    return;
  }
  world_->WhenDone(c, [c, done, name = step.name] {
    done(c->status == 200
             ? util::Status::Ok()
             : util::Status::Unavailable(name + " answered " + std::to_string(c->status)));
  });
}

inline peers::TagUpdate FakeFleet::RecordTag(const std::string& registry,
                                             const std::string& repository, const std::string& tag,
                                             const util::Digest& digest, const std::string& value) {
  peers::TagKey key{registry, repository, tag};
  const peers::TagVersion* cur = table.Find(key);
  if (cur && cur->digest == digest && cur->value == value) return {key, *cur};
  peers::TagUpdate u{key, {digest, hlc.Now(world_->clock.WallMs()), self_->name, "", value}};
  table.Apply(u);
  return u;
}

// Told to every live member at once (the test fleet is one region's size);
// a member whose table changed takes it as gossip.
inline void FakeFleet::PushTag(const peers::TagUpdate& u,
                               std::function<void(size_t told, size_t asked)> done) {
  size_t told = 0, asked = 0;
  for (auto& n : world_->nodes) {
    if (n->name == self_->name) continue;
    ++asked;
    if (!n->live) continue;
    ++told;
    n->fleet->hlc.Observe(u.version.hlc, world_->clock.WallMs());
    if (n->fleet->table.Apply(u)) n->parts->Learn(u);
  }
  world_->deferred->Post([done, told, asked] { done(told, asked); });
}

}  // namespace fleetrig
