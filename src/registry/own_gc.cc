#include "src/registry/own_gc.h"

#include <algorithm>

#include "push/gc.h"
#include "util/log.h"

namespace registry {

OwnGc::OwnGc(io::Env env, const config::Registry& cfg, cache::Store* store, WriterBridge* writer,
             CacheKeeper* keeper)
    : env_(env), grace_ms_(cfg.gc_grace_ms), store_(store), writer_(writer), keeper_(keeper) {}

OwnGc::~OwnGc() = default;

void OwnGc::Start() {
  timer_.Init(env_.loop, this, uv_timer_init);
  uint64_t every = std::clamp<uint64_t>(grace_ms_ / 4, 1000, 10 * 60 * 1000);
  uv_timer_start(timer_.get(), OnTimer, every, every);
  uv_unref(timer_.base());
}

void OwnGc::Stop() { timer_.Close(); }

void OwnGc::OnTimer(uv_timer_t* t) { static_cast<OwnGc*>(t->data)->Run(); }

void OwnGc::Run() {
  if (running_) return;
  running_ = true;
  struct Scan {
    std::vector<push::OwnBlob> blobs;
    std::vector<util::Digest> references;
  };
  auto scan = std::make_shared<Scan>();
  cache::Store* store = store_;
  writer_->Run(
      [store, scan] {
        auto blobs = store->ListBlobInfos();
        if (!blobs.ok()) return blobs.status();
        auto manifests = store->ListOwnManifests();
        if (!manifests.ok()) return manifests.status();
        for (const auto& [d, info] : *blobs)
          if (info.own) scan->blobs.push_back({d, info.created_ms});
        for (const cache::OwnManifest& m : *manifests)
          scan->references.insert(scan->references.end(), m.references.begin(), m.references.end());
        return util::Status::Ok();
      },
      life_.Guard([this, scan](util::Status st) {
        running_ = false;
        if (!st.ok()) {
          LOG_WARN("registry: garbage collection could not read the store: %s",
                   st.ToString().c_str());
          return;
        }
        for (const util::Digest& d :
             push::Collectable(scan->blobs, scan->references, env_.clock->WallMs(), grace_ms_)) {
          const cache::BlobIndex::Entry* e = keeper_->index().Find(d);
          if (!e || !e->own) continue;
          keeper_->Remove(d, "garbage-collected (no manifest references it) own blob");
          ++removed_;
        }
      }));
}

}  // namespace registry
