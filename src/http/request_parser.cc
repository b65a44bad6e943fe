#include "src/http/request_parser.h"

namespace http {
namespace {

RequestParser* Self(llhttp_t* p) { return static_cast<RequestParser*>(p->data); }

}  // namespace

RequestParser::RequestParser(Limits limits) : limits_(limits) {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = OnMessageBegin;
  settings_.on_url = OnUrl;
  settings_.on_method = OnMethod;
  settings_.on_header_field = OnHeaderField;
  settings_.on_header_value = OnHeaderValue;
  settings_.on_header_value_complete = OnHeaderValueComplete;
  settings_.on_headers_complete = OnHeadersComplete;
  settings_.on_message_complete = OnMessageComplete;
  settings_.on_body = OnBody;
  llhttp_init(&parser_, HTTP_REQUEST, &settings_);
  parser_.data = this;
}

int RequestParser::Fail(int status, const char* reason) {
  error_status_ = status;
  error_reason_ = reason;
  return -1;
}

int RequestParser::CountHeaderBytes(size_t len) {
  header_bytes_ += len;
  if (header_bytes_ > limits_.max_header_bytes) return Fail(431, "request header fields too large");
  return 0;
}

int RequestParser::OnMessageBegin(llhttp_t* p) {
  RequestParser* self = Self(p);
  self->current_ = Request();
  self->header_bytes_ = 0;
  self->header_count_ = 0;
  self->in_request_ = true;
  return 0;
}

int RequestParser::OnMethod(llhttp_t* p, const char* at, size_t len) {
  Self(p)->current_.method.append(at, len);
  return 0;
}

int RequestParser::OnUrl(llhttp_t* p, const char* at, size_t len) {
  RequestParser* self = Self(p);
  self->current_.target.append(at, len);
  if (self->current_.target.size() > self->limits_.max_request_line)
    return self->Fail(414, "request target too long");
  return 0;
}

int RequestParser::OnHeaderField(llhttp_t* p, const char* at, size_t len) {
  RequestParser* self = Self(p);
  if (self->in_value_) {
    self->in_value_ = false;
    self->field_.clear();
  }
  self->field_.append(at, len);
  return self->CountHeaderBytes(len);
}

int RequestParser::OnHeaderValue(llhttp_t* p, const char* at, size_t len) {
  RequestParser* self = Self(p);
  if (!self->in_value_) {
    self->in_value_ = true;
    self->value_.clear();
  } else {
    // llhttp delivers an obs-fold continuation as one more piece of the same
    // value, with the line break skipped. A piece that does not start right
    // where the previous one ended (in the same buffer, or at the start of the
    // next one after a piece that ran to its end) is such a continuation.
    bool contiguous = self->feed_id_ == self->piece_feed_id_
                          ? at == self->piece_end_
                          : self->piece_ended_buffer_ && at == self->feed_begin_;
    if (!contiguous) return self->Fail(400, "obsolete line folding in a header");
  }
  self->piece_feed_id_ = self->feed_id_;
  self->piece_end_ = at + len;
  self->piece_ended_buffer_ = at + len == self->feed_end_;
  self->value_.append(at, len);
  return self->CountHeaderBytes(len);
}

int RequestParser::OnHeaderValueComplete(llhttp_t* p) {
  RequestParser* self = Self(p);
  if (++self->header_count_ > self->limits_.max_headers) return self->Fail(431, "too many header fields");
  AddHeader(&self->current_.headers, std::move(self->field_), std::move(self->value_));
  self->in_value_ = false;
  self->field_.clear();
  self->value_.clear();
  return 0;
}

int RequestParser::OnHeadersComplete(llhttp_t* p) {
  RequestParser* self = Self(p);
  self->current_.keep_alive = llhttp_should_keep_alive(p);
  self->current_.has_body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0);
  const std::string& prefix = self->limits_.body_prefix;
  // Only a signed request's body is read: an unsigned one is refused without
  // costing us its bytes (the connection closes after the answer).
  if (self->current_.has_body && !prefix.empty() && self->current_.target.compare(0, prefix.size(), prefix) == 0 &&
      self->current_.Find("x-georeg-signature")) {
    if (p->flags & F_CHUNKED) return self->Fail(411, "a body needs Content-Length");
    if (p->content_length > self->limits_.max_body) return self->Fail(413, "request body too large");
    self->current_.body.reserve(p->content_length);
    return 0;
  }
  if (self->current_.has_body) {
    // Other routes never read request bodies: the request is answered and the
    // connection closed, so parsing stops here for good.
    self->ready_ = true;
    self->dead_ = true;
    return HPE_PAUSED;
  }
  return 0;
}

int RequestParser::OnMessageComplete(llhttp_t* p) {
  RequestParser* self = Self(p);
  self->ready_ = true;
  self->in_request_ = false;
  return HPE_PAUSED;
}

int RequestParser::OnBody(llhttp_t* p, const char* at, size_t len) {
  Self(p)->current_.body.append(at, len);
  return 0;
}

RequestParser::Event RequestParser::Feed(std::string_view data, size_t* consumed) {
  *consumed = 0;
  if (dead_ || error_status_) return Event::kError;
  if (data.empty()) return Event::kNeedMore;
  ++feed_id_;
  feed_begin_ = data.data();
  feed_end_ = data.data() + data.size();
  llhttp_errno_t err = llhttp_execute(&parser_, data.data(), data.size());
  if (err == HPE_OK) {
    *consumed = data.size();
    return Event::kNeedMore;
  }
  if (err == HPE_PAUSED && ready_) {
    *consumed = llhttp_get_error_pos(&parser_) - data.data();
    llhttp_resume(&parser_);
    return Event::kRequest;
  }
  if (!error_status_) {
    error_status_ = 400;
    error_reason_ = llhttp_get_error_reason(&parser_) ? llhttp_get_error_reason(&parser_) : "bad request";
  }
  if (err == HPE_PAUSED) llhttp_resume(&parser_);
  dead_ = true;
  return Event::kError;
}

Request RequestParser::TakeRequest() {
  ready_ = false;
  Request r = std::move(current_);
  current_ = Request();
  return r;
}

}  // namespace http
