#include "src/registry/blob_stream.h"

#include "src/http/range.h"
#include "src/registry/blob_fill.h"
#include "src/registry/oci_errors.h"
#include "util/log.h"

namespace registry {

using util::Status;

void BlobStream::ServeCached(cache::Store* store, CacheKeeper* keeper, const util::Digest& digest,
                             const cache::BlobInfo& info, std::shared_ptr<http::Exchange> exchange,
                             uint64_t now_wall_ms) {
  auto s = std::make_shared<BlobStream>(store, keeper, digest, std::move(exchange), nullptr);
  keeper->Pin(digest, now_wall_ms);
  s->pinned_ = true;
  s->chunk_key_ = info.ChunksOf(digest);
  s->Start(info.size, info.chunk_size);
}

void BlobStream::Start(uint64_t size, uint32_t chunk_size) {
  size_ = size;
  chunk_size_ = chunk_size;
  if (state_ == State::kWaitingSize) state_ = State::kReady;  // a finished stream stays so
  auto headers = BaseHeaders();
  headers.push_back({"Docker-Content-Digest", digest_.ToString()});
  headers.push_back({"Accept-Ranges", "bytes"});
  const std::string* range_header = exchange_->request().Find("range");
  http::ByteRange range = http::ParseRange(range_header ? *range_header : "", size);
  if (range.kind == http::ByteRange::kUnsatisfiable) {
    headers.push_back({"Content-Range", "bytes */" + std::to_string(size)});
    headers.push_back({"Content-Type", "application/json"});
    exchange_->Respond(416, headers,
                       OciErrorBody("UNSUPPORTED", "range not satisfiable for a blob of " +
                                                       std::to_string(size) + " bytes"));
    Finish();
    return;
  }
  headers.push_back({"Content-Type", "application/octet-stream"});
  int status = 200;
  if (range.kind == http::ByteRange::kPartial) {
    status = 206;
    pos_ = range.first;
    end_ = range.last + 1;
    headers.push_back({"Content-Range", "bytes " + std::to_string(range.first) + "-" +
                                            std::to_string(range.last) + "/" +
                                            std::to_string(size)});
  } else {
    pos_ = 0;
    end_ = size;
  }
  exchange_->SendHead(status, headers, end_ - pos_);
  if (exchange_->is_head()) {
    exchange_->End();
    Finish();
    return;
  }
  Pump();
}

void BlobStream::Pump() {
  if (state_ != State::kReady) return;
  if (!exchange_->active()) {  // the client went away
    Finish();
    return;
  }
  if (fill_ && fill_->failed()) {
    Abort();
    return;
  }
  if (pos_ >= end_) {
    if (fill_ && !fill_->verified()) return;  // a zero-length range or blob: wait for the digest
    exchange_->End();
    Finish();
    return;
  }
  uint64_t available = fill_ ? fill_->Available(end_) : size_;
  if (pos_ >= available) return;  // the fill calls Pump() again when more arrives
  uint32_t index = static_cast<uint32_t>(pos_ / chunk_size_);
  uint64_t chunk_start = static_cast<uint64_t>(index) * chunk_size_;
  uint64_t stop = std::min({chunk_start + chunk_size_, available, end_});
  const uint8_t* base = nullptr;
  std::shared_ptr<const void> keep;
  http::FileRange file;
  bool from_map = false;
  if (fill_) {
    if (auto mem = fill_->MemoryChunk(index)) {
      base = mem->data();
      keep = mem;
    }
  }
  if (!keep) {
    Mapped m;
    if (!ReadChunk(index, stop - chunk_start, &m)) return;
    base = m.base;
    keep = std::move(m.keep);
    file = m.file;
    from_map = true;
  }
  size_t len = stop - pos_;
  const uint8_t* data = base + (pos_ - chunk_start);
  // The same bytes in data.mdb, for sendfile: unchanged while `keep` (the
  // read transaction) lives, which the connection holds as long as the
  // kernel may still send from those pages.
  if (file.fd >= 0) file.offset += pos_ - chunk_start;
  state_ = State::kWriting;
  auto self = shared_from_this();
  bool queued = exchange_->Write(
      reinterpret_cast<const char*>(data), len, std::move(keep),
      [self, len, data, from_map](bool ok) {
        // The kernel has the bytes now; keep file pages out of our RSS.
        if (from_map) cache::Store::ReleaseMapped({data, len});
        if (self->state_ == State::kWriting) self->state_ = State::kReady;
        if (!ok) {
          self->Finish();
          return;
        }
        self->pos_ += len;
        std::shared_ptr<BlobFill> fill = self->fill_;
        self->Pump();
        if (fill) fill->OnStreamProgress();
      },
      file);
  if (!queued) Finish();
}

bool BlobStream::ReadChunk(uint32_t index, uint64_t need, Mapped* out) {
  // Straight from the map: the read transaction pins the chunk's pages
  // until the socket write completes, so nothing is copied in user space.
  auto txn = store_->BeginRead();
  std::span<const uint8_t> payload;
  // A fill's chunks are not listed until it is published: checked in full.
  cache::ChunkCheck check = keeper_->CheckFor(digest_, index);
  Status st = txn.ok() ? store_->GetChunk(*txn, chunk_key_, index, &payload, check) : txn.status();
  if (st.ok() && payload.size() < need)
    st = Status::Corruption("short chunk " + std::to_string(index));
  if (!st.ok()) {
    // Never bad bytes: the client is reset, and a corrupt blob leaves the
    // cache so the next request fetches it again.
    if (st.IsCorruption()) {
      keeper_->Corrupt(digest_, st.message());
    } else {
      LOG_ERROR("cache: blob %s chunk %u unreadable (%s); resetting the client",
                digest_.ToString().c_str(), index, st.ToString().c_str());
    }
    Abort();
    return false;
  }
  if (check == cache::ChunkCheck::kFull) keeper_->MarkVerified(digest_, index);
  cache::Store::FileSpan span = store_->FileOf(payload);
  out->base = payload.data();
  out->keep = std::make_shared<cache::ReadTxn>(std::move(*txn));
  if (span.fd >= 0) out->file = {span.fd, span.offset};
  return true;
}

void BlobStream::Abort() {
  if (state_ == State::kFinished) return;
  exchange_->Reset();
  Finish();
}

void BlobStream::Finish() {
  state_ = State::kFinished;
  if (pinned_) {
    keeper_->Unpin(digest_);
    pinned_ = false;
  }
  if (auto fill = std::move(fill_)) fill->OnStreamProgress();
}

}  // namespace registry
