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
  const std::string& label = sources_[source_].label;
  if (head.status == 404) {
    return Skip("blob unknown to " + label);
  }
  all_unknown_ = false;
  if (head.status != 200) return Skip(label + " answered " + std::to_string(head.status));
  if (!head.content_length) return Skip(label + " gave no Content-Length");
  if (const std::string* d = head.Find("docker-content-digest"); d && *d != digest_.ToString())
    return Skip(label + " answered for another digest (" + d->substr(0, 80) + ")");
  Finish(200, *head.content_length, nullptr, "");
}

void BlobProbe::OnComplete(Status st) {
  request_.reset();
  if (done_) return;
  // Completed without a head we took: a transport error.
  all_unknown_ = false;
  Skip(sources_[source_].label + ": " + st.ToString());
}

void BlobProbe::Skip(const std::string& why) {
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
  if (all_unknown_) {
    Finish(404, 0, "BLOB_UNKNOWN", why);
  } else {
    Finish(503, 0, "UNAVAILABLE", why);
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
