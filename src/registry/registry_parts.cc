#include "src/registry/registry_parts.h"

#include "push/tag_value.h"
#include "util/log.h"

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

bool RegistryParts::Learn(const peers::TagUpdate& u) {
  if (!tags.Owns(u.key)) return false;
  if (u.key.registry == push::kDeletedContent) {
    tags.ApplyGossiped(u);
    if (tags.Deleted(u.version.digest)) {
      LOG_INFO("cluster: own %s deleted fleet-wide (by %s)", u.version.digest.ToString().c_str(),
               u.version.origin.c_str());
      own.DropDeleted(u.version.digest);
    }
  } else if (u.key.registry == own.name()) {
    LOG_INFO("cluster: own tag %s:%s -> %s (from %s)", u.key.repository.c_str(), u.key.tag.c_str(),
             u.version.digest.ToString().c_str(), u.version.origin.c_str());
    tags.ApplyGossiped(u);
  } else {
    replicator.Apply(u);
  }
  return true;
}

void RegistryParts::Stop() {
  fills.Shutdown();
  own.Stop();
  replicator.Stop();
}

}  // namespace registry
