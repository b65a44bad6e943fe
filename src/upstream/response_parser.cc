#include "src/upstream/response_parser.h"

namespace upstream {
namespace {
ResponseParser* Self(llhttp_t* p) { return static_cast<ResponseParser*>(p->data); }
constexpr int kStop = -1;
}  // namespace

ResponseParser::ResponseParser() {
  llhttp_settings_init(&settings_);
  settings_.on_header_field = OnHeaderField;
  settings_.on_header_value = OnHeaderValue;
  settings_.on_header_value_complete = OnHeaderValueComplete;
  settings_.on_headers_complete = OnHeadersComplete;
  settings_.on_body = OnBody;
  settings_.on_message_complete = OnMessageComplete;
  Reset(false, Limits());
}

void ResponseParser::Reset(bool head_request, Limits limits) {
  llhttp_init(&parser_, HTTP_RESPONSE, &settings_);
  parser_.data = this;
  limits_ = limits;
  head_request_ = head_request;
  head_ = ResponseHead();
  head_bytes_ = 0;
  body_bytes_ = 0;
  header_.Reset();
  error_.clear();
  started_ = head_done_ = complete_ = stopped_ = keep_alive_ = false;
}

int ResponseParser::Stop(const char* why) {
  if (why) error_ = why;
  return kStop;
}

int ResponseParser::CountHead(size_t len) {
  head_bytes_ += len;
  return head_bytes_ > limits_.max_head ? Stop("response head too large") : 0;
}

int ResponseParser::OnHeaderField(llhttp_t* p, const char* at, size_t len) {
  ResponseParser* self = Self(p);
  self->header_.Name(at, len);
  return self->CountHead(len);
}

int ResponseParser::OnHeaderValue(llhttp_t* p, const char* at, size_t len) {
  ResponseParser* self = Self(p);
  self->header_.Value(at, len);
  return self->CountHead(len);
}

int ResponseParser::OnHeaderValueComplete(llhttp_t* p) {
  ResponseParser* self = Self(p);
  self->header_.Complete(&self->head_.headers);
  return 0;
}

int ResponseParser::OnHeadersComplete(llhttp_t* p) {
  ResponseParser* self = Self(p);
  self->head_.status = p->status_code;
  if (p->flags & F_CONTENT_LENGTH) self->head_.content_length = p->content_length;
  self->head_done_ = true;
  // Refused at the head: a body announced larger than the caller takes is
  // never read.
  if (!self->head_request_ && self->head_.content_length &&
      *self->head_.content_length > self->limits_.max_body)
    return self->Stop("response body announced larger than allowed");
  if (self->on_head && !self->on_head(self->head_)) {
    self->stopped_ = true;
    return self->Stop(nullptr);
  }
  return self->head_request_ ? 1 : 0;  // 1: no body follows
}

int ResponseParser::OnBody(llhttp_t* p, const char* at, size_t len) {
  ResponseParser* self = Self(p);
  self->body_bytes_ += len;
  if (self->body_bytes_ > self->limits_.max_body)
    return self->Stop("response body larger than allowed");
  if (self->on_body && !self->on_body(at, len)) {
    self->stopped_ = true;
    return self->Stop(nullptr);
  }
  return 0;
}

int ResponseParser::OnMessageComplete(llhttp_t* p) {
  ResponseParser* self = Self(p);
  self->complete_ = true;
  self->keep_alive_ = llhttp_should_keep_alive(p);
  return HPE_PAUSED;  // the bytes after this response are not ours
}

ResponseParser::Result ResponseParser::Feed(const char* data, size_t len, size_t* consumed) {
  *consumed = 0;
  if (!error_.empty()) return Result::kError;
  if (stopped_) return Result::kStopped;
  if (complete_) return Result::kComplete;
  if (len == 0) return Result::kNeedMore;
  started_ = true;
  llhttp_errno_t err = llhttp_execute(&parser_, data, len);
  if (err == HPE_OK) {
    *consumed = len;
    return Result::kNeedMore;
  }
  if (err == HPE_PAUSED && complete_) {
    *consumed = llhttp_get_error_pos(&parser_) - data;
    return Result::kComplete;
  }
  if (stopped_) return Result::kStopped;
  if (error_.empty()) {
    const char* reason = llhttp_get_error_reason(&parser_);
    error_ = std::string(llhttp_errno_name(err)) +
             (reason && *reason ? std::string(" (") + reason + ")" : "");
  }
  return Result::kError;
}

ResponseParser::Result ResponseParser::Finish() {
  if (!error_.empty()) return Result::kError;
  if (stopped_) return Result::kStopped;
  if (complete_) return Result::kComplete;
  if (!started_) {
    error_ = "connection closed before a response";
    return Result::kError;
  }
  llhttp_errno_t err = llhttp_finish(&parser_);
  if ((err == HPE_OK || err == HPE_PAUSED) && complete_) {
    keep_alive_ = false;
    return Result::kComplete;
  }
  error_ = head_done_ ? "connection closed mid-body" : "connection closed mid-head";
  return Result::kError;
}

}  // namespace upstream
