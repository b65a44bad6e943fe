#include "src/registry/writer_bridge.h"

namespace registry {

WriterBridge::WriterBridge(uv_loop_t* loop, cache::Writer* writer) : writer_(writer) {
  async_.Init(loop, this, uv_async_init, OnAsync);
  // Not a reason to keep the loop running: at shutdown the loop ends once the
  // network handles are closed, and the daemon then drains the writer.
  uv_unref(async_.base());
}

void WriterBridge::Run(std::function<util::Status()> job, std::function<void(util::Status)> done) {
  ++pending_;
  writer_->Post([this, job = std::move(job), done = std::move(done)]() mutable {
    util::Status st = job();
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_.push_back(Done{std::move(done), std::move(st)});
    }
    uv_async_send(async_.get());
  });
}

void WriterBridge::OnAsync(uv_async_t* a) {
  auto* self = static_cast<WriterBridge*>(a->data);
  std::vector<Done> batch;
  {
    std::lock_guard<std::mutex> lock(self->mu_);
    batch.swap(self->done_);
  }
  for (Done& d : batch) {
    --self->pending_;
    if (d.cb && !self->closed_) d.cb(std::move(d.status));
  }
}

void WriterBridge::Close() {
  closed_ = true;
  async_.Close();
}

}  // namespace registry
