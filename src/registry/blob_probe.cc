#include "src/registry/blob_probe.h"

#include "src/registry/oci_errors.h"
#include "util/log.h"

namespace registry {

using util::Status;

void BlobProbe::Start(std::vector<FillSource> sources) {
  sources_ = std::move(sources);
  source_ = 0;
  Next();
}

void BlobProbe::Next() {
  auto self = shared_from_this();
  upstream::Callbacks cb;
  cb.on_head = [self](const upstream::ResponseHead& h) { self->OnHead(h); };
  cb.on_body = [](const char*, size_t) {};  // a HEAD has none
  cb.on_complete = [self](Status st) { self->OnComplete(std::move(st)); };
  LOG_INFO("probe: HEAD blob %s at %s", digest_.ToString().c_str(),
           sources_[source_].label.c_str());
  request_ = sources_[source_].start(SourceRequest{"HEAD", 0}, std::move(cb));
}

void BlobProbe::OnHead(const upstream::ResponseHead& head) {
  if (done_) return;
  const FillSource& src = sources_[source_];
  bool peer = !src.peer.empty();
  if (head.status == 404) return Skip("blob unknown to " + src.label, true);
  if (head.status != 200) return Skip(src.label + " answered " + std::to_string(head.status), peer);
  if (!head.content_length) return Skip(src.label + " gave no Content-Length", peer);
  if (const std::string* d = head.Find("docker-content-digest"); d && *d != digest_.ToString())
    return Skip(src.label + " answered for another digest (" + d->substr(0, 80) + ")", peer);
  Finish(200, *head.content_length, nullptr, "");
}

void BlobProbe::OnComplete(Status st) {
  request_.reset();
  if (done_) return;
  // Completed without a head we took: a transport error.
  const FillSource& src = sources_[source_];
  Skip(src.label + ": " + st.ToString(), !src.peer.empty());
}

void BlobProbe::Skip(const std::string& why, bool unknown) {
  if (!unknown) upstream_failed_ = true;
  if (request_) {
    auto r = std::move(request_);
    r->Cancel();
  }
  if (source_ + 1 < sources_.size()) {
    LOG_INFO("probe: blob %s: %s; asking %s", digest_.ToString().c_str(), why.c_str(),
             sources_[source_ + 1].label.c_str());
    ++source_;
    Next();
    return;
  }
  if (upstream_failed_) {
    Finish(503, 0, "UNAVAILABLE", why);
  } else {
    Finish(404, 0, "BLOB_UNKNOWN", why);
  }
}

void BlobProbe::Finish(int status, uint64_t size, const char* code, const std::string& message) {
  done_ = true;  // a request still in flight completes on its own (its connection is reused)
  auto waiting = std::move(waiting_);
  waiting_.clear();
  for (auto& ex : waiting) {
    if (status != 200) {
      RespondOciError(ex, status, code, message);
      continue;
    }
    auto headers = BaseHeaders();
    headers.push_back({"Docker-Content-Digest", digest_.ToString()});
    headers.push_back({"Accept-Ranges", "bytes"});
    headers.push_back({"Content-Type", "application/octet-stream"});
    ex->SendHead(200, headers, size);
    ex->End();
  }
  auto asking = std::move(asking_);
  asking_.clear();
  for (auto& found : asking) found(status == 200);
  on_done_(this);
}

void BlobProbe::Cancel() {
  if (request_) {
    auto r = std::move(request_);
    r->Cancel();
  }
  if (!done_) Finish(503, 0, "UNAVAILABLE", "shutting down");
}

}  // namespace registry
