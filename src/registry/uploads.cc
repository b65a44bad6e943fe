#include "src/registry/uploads.h"

#include <sys/random.h>

#include "util/log.h"

namespace registry {

using util::Status;

namespace {

std::string NewUploadId() {
  uint8_t raw[16];
  if (getrandom(raw, sizeof raw, 0) != static_cast<ssize_t>(sizeof raw)) {
    // Never expected; ids still must not repeat within this process.
    static uint64_t counter = 0;
    uint64_t c = ++counter;
    std::memcpy(raw, &c, sizeof c);
  }
  return util::HexEncode(raw, sizeof raw);
}

}  // namespace

Uploads::Uploads(io::Env env, Options options, cache::Store* store, WriterBridge* writer,
                 CacheKeeper* keeper)
    : env_(env), options_(options), store_(store), writer_(writer), keeper_(keeper) {}

Uploads::~Uploads() = default;

void Uploads::Start() {
  sweep_.Init(env_.loop, this, uv_timer_init);
  uint64_t period = std::max<uint64_t>(250, std::min<uint64_t>(options_.timeout_ms / 4, 10000));
  uv_timer_start(sweep_.get(), OnSweep, period, period);
  uv_unref(sweep_.base());
}

void Uploads::Stop() {
  sweep_.Close();
  while (!uploads_.empty()) Drop(uploads_.begin());
}

void Uploads::OnSweep(uv_timer_t* t) {
  auto* self = static_cast<Uploads*>(t->data);
  uint64_t now = self->env_.clock->NowMs();
  for (auto it = self->uploads_.begin(); it != self->uploads_.end();) {
    Upload* u = it->second.get();
    auto next = std::next(it);
    if (!u->streaming && !u->drained && now - u->touched_ms >= self->options_.timeout_ms) {
      LOG_INFO("registry: upload %s of %s abandoned after %llu bytes; dropped", u->id.c_str(),
               u->repo.c_str(), (unsigned long long)u->offset);
      ++self->expired_;
      self->Drop(it);
    }
    it = next;
  }
}

util::Result<std::string> Uploads::Create(const std::string& repo) {
  if (uploads_.size() >= options_.max_uploads)
    return Status::ResourceExhausted("too many uploads open (" +
                                     std::to_string(options_.max_uploads) + ")");
  auto u = std::make_unique<Upload>();
  u->id = NewUploadId();
  u->repo = repo;
  u->chunk_key = util::DigestOf("georeg upload\n" + u->id);
  u->touched_ms = env_.clock->NowMs();
  u->buffer.reserve(cache::kDefaultChunkSize);
  std::string id = u->id;
  uploads_.emplace(id, std::move(u));
  return id;
}

std::optional<Uploads::View> Uploads::Find(const std::string& id, const std::string& repo) const {
  auto it = uploads_.find(id);
  if (it == uploads_.end() || it->second->repo != repo) return std::nullopt;
  return View{it->second->repo, it->second->offset,
              it->second->streaming != nullptr || it->second->drained != nullptr};
}

Status Uploads::Append(const std::string& id, const std::shared_ptr<http::Exchange>& ex,
                       uint64_t max_bytes, std::function<void(Status)> done) {
  auto it = uploads_.find(id);
  if (it == uploads_.end()) return Status::NotFound("no such upload");
  Upload* u = it->second.get();
  if (u->streaming || u->drained)
    return Status::Unavailable("the upload is busy with another request");
  auto finish = std::make_shared<std::function<void(Status)>>(std::move(done));
  // Ends this request's part exactly once: body end, client gone, a
  // budget or write failure, or the upload dropped under it.
  auto end = [this, id, finish](Status st) {
    auto it = uploads_.find(id);
    if (it != uploads_.end() && it->second->streaming) {
      it->second->streaming.reset();
      it->second->paused = false;
      it->second->touched_ms = env_.clock->NowMs();
    }
    if (*finish) {
      auto cb = std::move(*finish);
      *finish = nullptr;
      cb(st);
    }
  };
  http::BodySink sink;
  sink.data = [this, id, end](std::string_view piece) {
    auto it = uploads_.find(id);
    if (it == uploads_.end() || !it->second->streaming)
      return true;  // ended already: the rest is dropped
    Upload* u = it->second.get();
    if (keeper_->own_bytes() + uploading_bytes_ + piece.size() > options_.budget) {
      end(Status::PermissionDenied("the registry's storage budget would be exceeded"));
      return true;
    }
    return Accept(u, piece);
  };
  sink.end = [end, this, id] {
    auto it = uploads_.find(id);
    end(it != uploads_.end() && !it->second->write_error.ok() ? it->second->write_error
                                                              : Status::Ok());
  };
  int rc = ex->ReadBodyStream(max_bytes, std::move(sink));
  if (rc != 0) return Status::InvalidArgument("request body refused (" + std::to_string(rc) + ")");
  u->streaming = ex;
  u->touched_ms = env_.clock->NowMs();
  ex->SetAbortCallback([end] { end(Status::Aborted("the client went away")); });
  end_of_[id] = end;  // how a dropped upload or a write error reach the request
  return Status::Ok();
}

bool Uploads::Accept(Upload* u, std::string_view piece) {
  u->sha.Update(piece.data(), piece.size());
  u->offset += piece.size();
  uploading_bytes_ += piece.size();
  const size_t cs = cache::kDefaultChunkSize;
  while (!piece.empty()) {
    size_t take = std::min(cs - u->buffer.size(), piece.size());
    u->buffer.append(piece.data(), take);
    piece.remove_prefix(take);
    if (u->buffer.size() == cs) WriteChunk(u);
  }
  if (u->writes_in_flight < kMaxWritesInFlight) return true;
  u->paused = true;
  return false;
}

void Uploads::WriteChunk(Upload* u) {
  auto data = std::make_shared<std::string>(std::move(u->buffer));
  u->buffer = std::string();
  u->buffer.reserve(cache::kDefaultChunkSize);
  uint32_t index = u->next_chunk++;
  ++u->writes_in_flight;
  cache::Store* store = store_;
  util::Digest key = u->chunk_key;
  std::string id = u->id;
  writer_->Run(
      [store, key, index, data] {
        return store->PutChunk(key, index,
                               {reinterpret_cast<const uint8_t*>(data->data()), data->size()});
      },
      [this, id](Status st) { ChunkWritten(id, st); });
}

void Uploads::ChunkWritten(const std::string& id, Status st) {
  auto it = uploads_.find(id);
  if (it == uploads_.end()) return;  // dropped meanwhile: its chunks are deleted after this write
  Upload* u = it->second.get();
  --u->writes_in_flight;
  if (!st.ok() && u->write_error.ok()) {
    u->write_error = st;
    if (u->streaming) end_of_[id](st);
  }
  if (u->paused && u->streaming && u->writes_in_flight < kMaxWritesInFlight) {
    u->paused = false;
    u->streaming->ResumeBody();
  }
  if (u->writes_in_flight == 0 && u->drained) {
    auto fn = std::move(u->drained);
    u->drained = nullptr;
    fn();
  }
}

Status Uploads::Finish(const std::string& id, const util::Digest& digest,
                       std::function<void(Status, Published)> done) {
  auto it = uploads_.find(id);
  if (it == uploads_.end()) return Status::NotFound("no such upload");
  Upload* u = it->second.get();
  if (u->streaming || u->drained)
    return Status::Unavailable("the upload is busy with another request");
  if (!u->buffer.empty()) WriteChunk(u);
  u->drained = [this, id, digest, done = std::move(done)] {
    auto it = uploads_.find(id);
    Upload* u = it->second.get();
    Published pub{digest, u->offset, false};
    if (!u->write_error.ok()) {
      Status err = u->write_error;
      Drop(it);
      done(err, pub);
      return;
    }
    auto hash = u->sha.Finish();
    if (util::Digest::FromRaw(hash.data()) != digest) {
      LOG_INFO(
          "registry: upload %s of %s: digest %s does not match the %llu bytes received; dropped",
          id.c_str(), u->repo.c_str(), digest.ToString().c_str(), (unsigned long long)u->offset);
      Drop(it);
      done(Status::InvalidArgument("the uploaded bytes do not match " + digest.ToString()), pub);
      return;
    }
    cache::BlobInfo info;
    info.size = u->offset;
    info.created_ms = info.last_access_ms = env_.clock->WallMs();
    info.chunk_key = u->chunk_key;
    info.own = true;
    auto existed = std::make_shared<bool>(false);
    cache::Store* store = store_;
    writer_->Run([store, digest, info,
                  existed] { return store->PublishUpload(digest, info, existed.get()); },
                 [this, id, pub, existed, done](Status st) mutable {
                   auto it = uploads_.find(id);
                   if (it == uploads_.end()) return;  // Stop() dropped it
                   if (!st.ok()) {
                     Drop(it);
                     done(st, pub);
                     return;
                   }
                   pub.existed = *existed;
                   keeper_->AddOwn(pub.digest, pub.size, env_.clock->WallMs());
                   uploading_bytes_ -= std::min(uploading_bytes_, it->second->offset);
                   end_of_.erase(id);
                   uploads_.erase(it);  // its chunks are the blob's now
                   done(Status::Ok(), pub);
                 });
  };
  if (u->writes_in_flight == 0) {
    // Never inside Finish: on a later turn, as the writer would call back.
    env_.deferred->Post([this, id] {
      auto it = uploads_.find(id);
      if (it == uploads_.end() || !it->second->drained || it->second->writes_in_flight) return;
      auto fn = std::move(it->second->drained);
      it->second->drained = nullptr;
      fn();
    });
  }
  return Status::Ok();
}

bool Uploads::Cancel(const std::string& id) {
  auto it = uploads_.find(id);
  if (it == uploads_.end()) return false;
  Drop(it);
  return true;
}

void Uploads::Drop(std::map<std::string, std::unique_ptr<Upload>>::iterator it) {
  Upload* u = it->second.get();
  std::string id = u->id;
  uploading_bytes_ -= std::min(uploading_bytes_, u->offset);
  util::Digest key = u->chunk_key;
  cache::Store* store = store_;
  // Queued after every chunk write of this upload (the writer keeps order).
  writer_->Run([store, key] { return store->DeleteChunks(key); },
               [](Status st) {
                 if (!st.ok())
                   LOG_WARN("registry: could not delete an upload's chunks: %s",
                            st.ToString().c_str());
               });
  bool streaming = u->streaming != nullptr;
  auto end = end_of_.find(id);
  std::function<void(Status)> tell = end != end_of_.end() ? end->second : nullptr;
  if (end != end_of_.end()) end_of_.erase(end);
  uploads_.erase(it);
  if (streaming && tell) tell(Status::NotFound("the upload was cancelled"));
}

}  // namespace registry
