#include "src/registry/registry_parts.h"

namespace registry {

RegistryParts::RegistryParts(io::Env env, const config::Config& cfg, cache::Store* store,
                             WriterBridge* writer, CacheKeeper* keeper,
                             std::shared_ptr<InFlightBytes> in_flight, peering::Fleet* fleet)
    : auth(env, cfg.registry.name, cfg.registry.auth_failures_per_minute,
           cfg.registry.pull_requires_auth),
      fills({env, store, writer, keeper, std::move(in_flight), fleet, &hints}, cfg.registry.name,
            cfg.server.max_fills),
      holdings(env, cfg, store, writer, keeper, &fills, &hints, fleet),
      tags(env, cfg, store, writer, &hints, &holdings, fleet),
      own({env, store, writer, keeper, &auth, &fills, &holdings, &tags, &hints, fleet}, cfg),
      replicator(env, cfg, store, &holdings, &tags, &auth, fleet) {}

void RegistryParts::Stop() {
  fills.Shutdown();
  own.Stop();
  replicator.Stop();
}

}  // namespace registry
