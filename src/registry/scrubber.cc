#include "src/registry/scrubber.h"

#include <memory>

#include "util/log.h"

namespace registry {

Scrubber::Scrubber(uv_loop_t* loop, cache::Store* store, CacheKeeper* keeper,
                   uint64_t bytes_per_second)
    : loop_(loop), store_(store), keeper_(keeper), rate_(bytes_per_second) {}

void Scrubber::Start() {
  if (rate_ == 0) return;
  running_ = true;
  timer_.Init(loop_, this, uv_timer_init);
  uv_timer_start(timer_.get(), OnTimer, 1000, 1000);
  uv_unref(timer_.base());
}

void Scrubber::Stop() {
  if (!running_) return;
  running_ = false;
  timer_.Close();
}

void Scrubber::OnTimer(uv_timer_t* t) {
  auto* self = static_cast<Scrubber*>(t->data);
  if (self->in_flight_) return;  // the disk is slower than the rate: skip a beat
  auto* b = new Batch();
  b->req.data = b;
  b->self = self;
  b->start = self->cursor_;
  b->start_chunk = self->cursor_chunk_;
  b->budget = self->rate_;
  self->in_flight_ = true;
  uv_queue_work(self->loop_, &b->req, Work, AfterWork);
}

// Threadpool: walks blobs from the cursor, checking chunk checksums.
void Scrubber::Work(uv_work_t* req) {
  auto* b = static_cast<Batch*>(req->data);
  cache::Store* store = b->self->store_;
  auto blobs = store->ListBlobInfos();  // digest order
  if (!blobs.ok()) return;
  size_t i = 0;
  while (i < blobs->size() && (*blobs)[i].first < b->start) ++i;
  uint32_t chunk = i < blobs->size() && (*blobs)[i].first == b->start ? b->start_chunk : 0;
  for (; i < blobs->size(); ++i, chunk = 0) {
    const auto& [d, info] = (*blobs)[i];
    auto txn = store->BeginRead();
    if (!txn.ok()) return;
    cache::BlobInfo now;
    if (!store->GetBlob(*txn, d, &now).ok()) continue;  // evicted meanwhile
    for (; chunk < info.ChunkCount(); ++chunk) {
      if (b->checked >= b->budget) {
        b->next = d;
        b->next_chunk = chunk;
        return;
      }
      std::span<const uint8_t> p;
      util::Status st = store->GetChunk(*txn, now.ChunksOf(d), chunk, &p, cache::ChunkCheck::kFull);
      if (st.IsCorruption() || (st.IsNotFound())) {
        b->corrupt.emplace_back(d, st.IsNotFound() ? "chunk " + std::to_string(chunk) + " of " +
                                                         d.ToString() + " is missing"
                                                   : st.message());
        break;
      }
      b->checked += p.size();
      cache::Store::ReleaseMapped(p);
    }
  }
  b->wrapped = true;  // start over next time
}

void Scrubber::AfterWork(uv_work_t* req, int) {
  std::unique_ptr<Batch> b(static_cast<Batch*>(req->data));
  Scrubber* self = b->self;
  self->in_flight_ = false;
  if (!self->running_) return;
  self->bytes_checked_ += b->checked;
  if (b->wrapped) {
    self->cursor_ = util::Digest{};
    self->cursor_chunk_ = 0;
  } else {
    self->cursor_ = b->next;
    self->cursor_chunk_ = b->next_chunk;
  }
  for (const auto& [d, what] : b->corrupt) {
    // A blob the index no longer lists was evicted or removed meanwhile.
    if (self->keeper_->Has(d)) self->keeper_->Corrupt(d, "scrub: " + what);
  }
}

}  // namespace registry
