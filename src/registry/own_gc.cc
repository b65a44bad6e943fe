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
  // Decided and done in one writer job: every write of a manifest comes
  // before or after it, never between the scan and the delete, so a blob is
  // never deleted under a manifest stored meanwhile (a manifest PUT checks
  // its blobs in its own writer job, and fails cleanly when one is gone).
  auto removed = std::make_shared<std::vector<util::Digest>>();
  cache::Store* store = store_;
  uint64_t now_ms = env_.clock->WallMs(), grace_ms = grace_ms_;
  writer_->Run(
      [store, removed, now_ms, grace_ms] {
        auto blobs = store->ListBlobInfos();
        if (!blobs.ok()) return blobs.status();
        auto manifests = store->ListOwnManifests();
        if (!manifests.ok()) return manifests.status();
        std::vector<push::OwnBlob> own;
        std::vector<util::Digest> references;
        for (const auto& [d, info] : *blobs)
          if (info.own) own.push_back({d, info.created_ms});
        for (const cache::OwnManifest& m : *manifests)
          references.insert(references.end(), m.references.begin(), m.references.end());
        for (const util::Digest& d : push::Collectable(own, references, now_ms, grace_ms)) {
          util::Status st = store->DeleteBlob(d);
          if (!st.ok()) return st;
          removed->push_back(d);
        }
        return util::Status::Ok();
      },
      life_.Guard([this, removed](util::Status st) {
        running_ = false;
        if (!st.ok()) LOG_WARN("registry: garbage collection stopped: %s", st.ToString().c_str());
        for (const util::Digest& d : *removed)
          keeper_->Forget(d, "garbage-collected (no manifest references it) own blob");
        removed_ += removed->size();
      }));
}

}  // namespace registry
