// RegistryParts: the parts of the registry that answer for content, built
// in dependency order, each given what it uses: HolderHints and PushAuth;
// Fills (store, keeper, fleet, hints); Holdings (Fills); FleetTags
// (Holdings); OwnRegistry and Replicator (all of them). None calls back
// into another above it.
//
// The Service holds one; the unit tests' rigs build one per node, so a test
// runs the wiring the daemon runs. Construction starts nothing: the holder
// loads the push credentials (auth), restores the fleet tags, and starts
// own and replicator as it needs; Stop() before the loop closes.
//
// Ownership: owns every part; borrows the Store, WriterBridge, CacheKeeper
// and Fleet (null without a cluster), which must outlive it; shares the
// in-flight byte budget with whoever else holds it (the manifest fetches).
// Loop thread only.
#pragma once

#include <memory>

#include "cache/store.h"
#include "config/config.h"
#include "peers/holder_hints.h"
#include "src/io/env.h"
#include "src/peering/fleet.h"
#include "src/registry/cache_keeper.h"
#include "src/registry/fills.h"
#include "src/registry/fleet_tags.h"
#include "src/registry/holdings.h"
#include "src/registry/in_flight.h"
#include "src/registry/own_registry.h"
#include "src/registry/push_auth.h"
#include "src/registry/replicator.h"
#include "src/registry/writer_bridge.h"

namespace registry {

struct RegistryParts {
  RegistryParts(io::Env env, const config::Config& cfg, cache::Store* store, WriterBridge* writer,
                CacheKeeper* keeper, std::shared_ptr<InFlightBytes> in_flight,
                peering::Fleet* fleet);
  RegistryParts(const RegistryParts&) = delete;
  RegistryParts& operator=(const RegistryParts&) = delete;

  // Ends what runs (fills in flight, uploads, the replicator's timer).
  void Stop();
  // A fleet record learned from a peer, handed to the part it is for: a
  // tag of the own registry to the FleetTags; a deletion to the FleetTags,
  // then the OwnRegistry drops the content; replications and sync reports
  // to the Replicator. False when it is not the own registry's.
  bool Learn(const peers::TagUpdate& u);

  peers::HolderHints hints;
  PushAuth auth;
  Fills fills;
  Holdings holdings;
  FleetTags tags;
  OwnRegistry own;
  Replicator replicator;
};

}  // namespace registry
