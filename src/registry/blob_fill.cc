#include "src/registry/blob_fill.h"

#include "src/http/range.h"
#include "src/registry/oci_errors.h"

#include "util/log.h"

namespace registry {

using util::Status;

void BlobFill::Start(std::vector<FillSource> sources) {
  started_ms_ = env_.clock->NowMs();
  sources_ = std::move(sources);
  source_ = 0;
  TryNextSource();
}

void BlobFill::TryNextSource() {
  auto self = shared_from_this();
  upstream::Callbacks cb;
  cb.on_head = [self](const upstream::ResponseHead& h) { self->OnHead(h); };
  cb.on_body = [self](const char* d, size_t n) { self->OnBody(d, n); };
  cb.on_complete = [self](Status st) { self->OnComplete(std::move(st)); };
  const FillSource& src = sources_[source_];
  SourceRequest req;
  if (state_ == State::kStreaming) {
    req.offset = received_;
    resume_from_ = received_;
    LOG_INFO("fill: GET blob %s from %s, resuming at byte %llu of %llu", digest_.ToString().c_str(),
             src.label.c_str(), (unsigned long long)received_, (unsigned long long)size_);
  } else {
    LOG_INFO("fill: GET blob %s from %s", digest_.ToString().c_str(), src.label.c_str());
  }
  paused_ = false;  // a new request starts reading
  skip_ = 0;
  fetch_ = src.start(req, std::move(cb));
}

void BlobFill::SourceFailed(int status, const char* code, const std::string& message) {
  if (status != 404 && sources_[source_].peer.empty()) upstream_failed_ = true;
  if (fetch_) {
    auto f = std::move(fetch_);
    f->Cancel();  // the rest of that response is not wanted
  }
  if (source_ + 1 < sources_.size()) {
    LOG_INFO("fill: blob %s: %s; trying %s", digest_.ToString().c_str(), message.c_str(),
             sources_[source_ + 1].label.c_str());
    ++source_;
    TryNextSource();
    return;
  }
  if (state_ == State::kStreaming) {
    Fail(message + "; no source left to resume from");
  } else if (upstream_failed_ || status == 404) {
    RespondError(status, code, message);
  } else {
    RespondError(404, "BLOB_UNKNOWN", "no reachable node has the blob (" + message + ")");
  }
}

void BlobFill::Join(std::shared_ptr<http::Exchange> exchange) {
  if (state_ == State::kWaitingHead) {
    waiting_head_.push_back(std::move(exchange));
    return;
  }
  NoteSource(exchange.get());
  auto stream = std::make_shared<BlobStream>(env_.store, env_.keeper, digest_, std::move(exchange),
                                             shared_from_this());
  streams_.push_back(stream);
  stream->Start(size_, chunk_size_);
}

void BlobFill::NoteSource(http::Exchange* ex) const {
  bool peer = !sources_[first_source_].peer.empty();
  http::Outcome& o = ex->outcome();
  o.source = peer ? "peer" : "upstream";
  if (peer && o.result == "miss") o.result = "peer";
}

uint64_t BlobFill::Available(uint64_t stream_end) const {
  if (state_ == State::kVerified) return received_;
  if (state_ != State::kStreaming || stream_end == 0) return 0;
  return std::min(received_, stream_end - 1);
}

std::shared_ptr<const std::vector<uint8_t>> BlobFill::MemoryChunk(uint32_t index) const {
  auto it = chunks_.find(index);
  return it == chunks_.end() ? nullptr : it->second;
}

void BlobFill::OnHead(const upstream::ResponseHead& head) {
  if (resume_from_) return OnResumeHead(head);
  if (state_ != State::kWaitingHead) return;
  if (head.status == 200 && head.content_length) {
    size_ = *head.content_length;
    state_ = State::kStreaming;
    first_source_ = source_;
    if (keeping_ == Keeping::kStoring) {
      if (env_.keeper->Reserve(size_))
        keeping_ = Keeping::kReserved;
      else
        PassThrough("no room for " + std::to_string(size_) + " bytes within the budget");
    }
    auto waiting = std::move(waiting_head_);
    waiting_head_.clear();
    for (auto& ex : waiting) Join(std::move(ex));
    return;
  }
  const std::string& label = sources_[source_].label;
  if (head.status == 404) {
    SourceFailed(404, "BLOB_UNKNOWN", "blob unknown to " + label);
  } else if (head.status == 200) {
    SourceFailed(502, "UNKNOWN", label + " sent a blob without Content-Length");
  } else {
    LOG_WARN("fill: %s answered %d for blob %s", label.c_str(), head.status,
             digest_.ToString().c_str());
    SourceFailed(503, "UNAVAILABLE", label + " answered " + std::to_string(head.status));
  }
}

void BlobFill::OnResumeHead(const upstream::ResponseHead& head) {
  uint64_t offset = *resume_from_;
  const std::string& label = sources_[source_].label;
  uint64_t first = 0, last = 0, total = 0;
  if (head.status == 206) {
    const std::string* cr = head.Find("content-range");
    if (!cr || !http::ParseContentRange(*cr, &first, &last, &total) || first != offset ||
        last + 1 != size_ || total != size_ ||
        (head.content_length && *head.content_length != size_ - offset))
      return SourceFailed(502, "UNKNOWN", label + " answered the range with other bytes");
  } else if (head.status == 200) {
    // It ignored the Range: the whole blob, of which we skip what we have.
    if (!head.content_length || *head.content_length != size_)
      return SourceFailed(502, "UNKNOWN", label + " has a blob of another size");
    skip_ = offset;
  } else {
    return SourceFailed(503, "UNAVAILABLE",
                        label + " answered " + std::to_string(head.status) + " to a Range");
  }
  resume_from_.reset();
  LOG_INFO("fill: blob %s resumed at byte %llu from %s", digest_.ToString().c_str(),
           (unsigned long long)offset, label.c_str());
  if (env_.on_resumed) env_.on_resumed();
}

void BlobFill::OnBody(const char* data, size_t len) {
  if (state_ != State::kStreaming || resume_from_) return;
  if (skip_ > 0) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(skip_, len));
    skip_ -= n;
    data += n;
    len -= n;
    if (len == 0) return;
  }
  if (received_ + len > size_) {
    const FillSource& src = sources_[source_];
    if (!src.peer.empty() && env_.on_peer_failure)
      env_.on_peer_failure(src.peer, "more bytes than its Content-Length", true);
    Fail(src.label + " sent more bytes than its Content-Length");
    return;
  }
  hasher_.Update(data, len);
  while (len > 0) {
    uint32_t index = static_cast<uint32_t>(received_ / chunk_size_);
    uint64_t chunk_start = static_cast<uint64_t>(index) * chunk_size_;
    size_t chunk_len = static_cast<size_t>(std::min<uint64_t>(chunk_size_, size_ - chunk_start));
    auto& chunk = chunks_[index];
    if (!chunk) {
      // Counted while any holder (the fill, a socket write) keeps it.
      std::shared_ptr<InFlightBytes> budget = env_.in_flight;
      if (budget) budget->Add(chunk_len);
      chunk = std::shared_ptr<std::vector<uint8_t>>(new std::vector<uint8_t>(),
                                                    [budget, chunk_len](auto* v) {
                                                      if (budget) budget->Sub(chunk_len);
                                                      delete v;
                                                    });
      chunk->reserve(chunk_len);  // never reallocates: streams write from data()
    }
    size_t n = std::min(len, chunk_len - chunk->size());
    chunk->insert(chunk->end(), data, data + n);
    data += n;
    len -= n;
    received_ += n;
    if (chunk->size() == chunk_len && storing()) CommitChunk(index);
  }
  if (!paused_ && chunks_.size() > kMaxChunksInMemory && fetch_) {
    paused_ = true;
    fetch_->Pause();
  }
  PumpAll();
}

void BlobFill::CommitChunk(uint32_t index) {
  std::shared_ptr<const std::vector<uint8_t>> data = chunks_[index];
  cache::Store* store = env_.store;
  util::Digest digest = digest_;
  auto self = shared_from_this();
  ++chunks_posted_;
  env_.writer->Run([store, digest, index, data] { return store->PutChunk(digest, index, *data); },
                   [self, index](Status st) { self->OnChunkCommitted(index, std::move(st)); });
}

void BlobFill::OnChunkCommitted(uint32_t index, Status st) {
  if (state_ == State::kFailed) return;
  if (!st.ok()) {
    if (st.IsNoSpace()) {
      PassThrough(st.message());  // this chunk stays in memory for the clients
    } else {
      Fail("cache write failed: " + st.ToString());
    }
    return;
  }
  chunks_.erase(index);
  if (paused_ && chunks_.size() <= kMaxChunksInMemory / 2 && fetch_) {
    paused_ = false;
    fetch_->Resume();
  }
}

void BlobFill::OnComplete(Status status) {
  fetch_.reset();
  if (state_ == State::kFailed || state_ == State::kVerified) return;
  const FillSource& src = sources_[source_];
  if (state_ == State::kWaitingHead || resume_from_) {
    LOG_WARN("fill: blob %s from %s: %s", digest_.ToString().c_str(), src.label.c_str(),
             status.ToString().c_str());
    SourceFailed(503, "UNAVAILABLE", src.label + ": " + status.ToString());
    return;
  }
  // Broken off mid-body: no byte so far was wrong (that shows only at the
  // end), so the next source continues from here.
  auto broke_off = [&](const std::string& why) {
    if (!src.peer.empty() && env_.on_peer_failure) env_.on_peer_failure(src.peer, why, false);
    SourceFailed(503, "UNAVAILABLE", why);
  };
  if (!status.ok()) {
    broke_off(src.label + ": " + status.ToString());
    return;
  }
  if (received_ != size_) {
    broke_off(src.label + " body ended after " + std::to_string(received_) + " of " +
              std::to_string(size_) + " bytes");
    return;
  }
  util::Digest got = util::Digest::FromRaw(hasher_.Finish().data());
  if (got != digest_) {
    // Which source sent wrong bytes is known only when one sent them all:
    // after a resume, nobody is quarantined on a guess.
    bool one_source = first_source_ == source_;
    std::string why =
        "digest mismatch: the bytes from " +
        (one_source ? src.label : sources_[first_source_].label + " to " + src.label) +
        " hash to " + got.ToString();
    if (one_source && !src.peer.empty() && env_.on_peer_failure)
      env_.on_peer_failure(src.peer, why, true);
    if (env_.on_mismatch) env_.on_mismatch(!src.peer.empty());
    Fail(why);
    return;
  }
  state_ = State::kVerified;
  uint64_t elapsed = env_.clock->NowMs() - started_ms_;
  if (!storing()) {
    LOG_INFO("fill: passed blob %s through unstored (%llu bytes in %llu ms)",
             digest_.ToString().c_str(), (unsigned long long)size_, (unsigned long long)elapsed);
    PumpAll();
    if (keeping_ == Keeping::kPassingDiscard) {
      MaybeDiscard();
    } else {
      env_.on_done(digest_, this);
    }
    return;
  }
  cache::BlobInfo info;
  info.size = size_;
  info.chunk_size = chunk_size_;
  info.created_ms = info.last_access_ms = env_.clock->WallMs();
  cache::Store* store = env_.store;
  util::Digest digest = digest_;
  auto self = shared_from_this();
  // Chunks were posted before this job, and the writer runs jobs in order.
  env_.writer->Run(
      [store, digest, info] { return store->PublishBlob(digest, info); },
      [self, elapsed](Status st) {
        if (!self->storing()) {
          // A chunk's write, queued before this job, found the disk full:
          // the fill passed through, and its discard takes what it stored,
          // this record too (the delete is queued after it).
          self->MaybeDiscard();
          return;
        }
        if (st.ok()) {
          self->keeping_ = Keeping::kStored;
          LOG_INFO("fill: cached blob %s (%llu bytes in %llu ms)", self->digest_.ToString().c_str(),
                   (unsigned long long)self->size_, (unsigned long long)elapsed);
          self->env_.keeper->Published(self->digest_, self->size_, self->env_.clock->WallMs());
          self->env_.on_done(self->digest_, self.get());
          return;
        }
        LOG_ERROR("fill: could not publish blob %s: %s", self->digest_.ToString().c_str(),
                  st.ToString().c_str());
        if (st.IsNoSpace()) self->env_.keeper->NoteNoSpace(st.message());
        if (self->keeping_ == Keeping::kReserved) self->env_.keeper->Unreserve(self->size_);
        self->keeping_ = Keeping::kPassingDiscard;
        self->MaybeDiscard();
      });
  PumpAll();
}

void BlobFill::RespondError(int status, const char* code, const std::string& message) {
  state_ = State::kFailed;
  auto waiting = std::move(waiting_head_);
  waiting_head_.clear();
  for (auto& ex : waiting) RespondOciError(ex, status, code, message);
  env_.on_done(digest_, this);
}

void BlobFill::Fail(const std::string& why) {
  if (state_ == State::kFailed) return;
  size_t clients = 0;
  for (auto& s : streams_) clients += !s->finished();
  LOG_ERROR("fill: blob %s failed: %s; resetting %zu client connection(s), nothing cached",
            digest_.ToString().c_str(), why.c_str(), clients);
  state_ = State::kFailed;
  if (keeping_ == Keeping::kReserved) env_.keeper->Unreserve(size_);
  if (fetch_) {
    auto f = std::move(fetch_);
    f->Cancel();
  }
  auto streams = std::move(streams_);
  streams_.clear();
  for (auto& s : streams) s->Abort();
  for (auto& ex : waiting_head_) ex->Reset();
  waiting_head_.clear();
  chunks_.clear();
  keeping_ = chunks_posted_ ? Keeping::kPassingDiscard : Keeping::kPassing;
  if (keeping_ == Keeping::kPassingDiscard) {
    MaybeDiscard();  // no stream is left: deletes now, then on_done
  } else {
    env_.on_done(digest_, this);
  }
}

void BlobFill::PassThrough(const std::string& why) {
  if (!storing()) return;
  bool reserved = keeping_ == Keeping::kReserved;
  // Chunks already sent to the writer are deleted once no client needs them.
  keeping_ = chunks_posted_ ? Keeping::kPassingDiscard : Keeping::kPassing;
  env_.keeper->NoteNoSpace(why);
  if (reserved) env_.keeper->Unreserve(size_);
  TrimPassedChunks();
}

void BlobFill::OnStreamProgress() {
  if (!storing()) TrimPassedChunks();
  MaybeDiscard();
}

void BlobFill::TrimPassedChunks() {
  uint64_t min_pos = UINT64_MAX;
  for (auto& s : streams_)
    if (!s->finished()) min_pos = std::min(min_pos, s->position());
  if (min_pos == UINT64_MAX && state_ == State::kStreaming && waiting_head_.empty()) {
    // Nobody is left to pass the bytes to, and they are not being stored.
    LOG_INFO("fill: blob %s: every client left a pass-through fill; stopping it",
             digest_.ToString().c_str());
    state_ = State::kFailed;
    if (fetch_) {
      auto f = std::move(fetch_);
      f->Cancel();
    }
    chunks_.clear();
    if (keeping_ == Keeping::kPassingDiscard) {
      MaybeDiscard();
    } else {
      env_.on_done(digest_, this);
    }
    return;
  }
  while (!chunks_.empty()) {
    auto first = chunks_.begin();
    if ((static_cast<uint64_t>(first->first) + 1) * chunk_size_ > min_pos) break;
    chunks_.erase(first);
  }
  if (paused_ && chunks_.size() <= kMaxChunksInMemory / 2 && fetch_) {
    paused_ = false;
    fetch_->Resume();
  }
}

void BlobFill::MaybeDiscard() {
  if (keeping_ != Keeping::kPassingDiscard || state_ == State::kStreaming ||
      state_ == State::kWaitingHead)
    return;
  for (auto& s : streams_)
    if (!s->finished()) return;
  keeping_ = Keeping::kPassing;  // the delete below takes what it stored
  cache::Store* store = env_.store;
  util::Digest digest = digest_;
  // Posted before the service may start a new fill of this digest (on_done
  // below), so the writer deletes these chunks before that fill writes any.
  env_.writer->Run([store, digest] { return store->DeleteBlob(digest); },
                   [](Status st) {
                     if (!st.ok())
                       LOG_ERROR("fill: could not discard chunks: %s", st.ToString().c_str());
                   });
  env_.on_done(digest_, this);
}

void BlobFill::Cancel() {
  if (state_ == State::kWaitingHead) {
    RespondError(503, "UNAVAILABLE", "shutting down");
    if (fetch_) {
      auto f = std::move(fetch_);
      f->Cancel();
    }
    return;
  }
  if (state_ == State::kStreaming) Fail("shutting down");
}

void BlobFill::PumpAll() {
  auto streams = streams_;
  for (auto& s : streams) s->Pump();
  std::erase_if(streams_, [](const std::shared_ptr<BlobStream>& s) { return s->finished(); });
}

}  // namespace registry
