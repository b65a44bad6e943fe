#include "src/http/request_parser.h"

#include <cstring>

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

int RequestParser::CountHeaderBytes(const char* at, size_t len) {
  // llhttp refuses NUL in most of a head but not everywhere; no NUL belongs there.
  if (std::memchr(at, 0, len)) return Fail(400, "NUL byte in the request head");
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
  if (std::memchr(at, 0, len)) return self->Fail(400, "NUL byte in the request target");
  self->current_.target.append(at, len);
  if (self->current_.target.size() > self->limits_.max_request_line)
    return self->Fail(414, "request target too long");
  return 0;
}

int RequestParser::OnHeaderField(llhttp_t* p, const char* at, size_t len) {
  RequestParser* self = Self(p);
  self->header_.Name(at, len);
  return self->CountHeaderBytes(at, len);
}

int RequestParser::OnHeaderValue(llhttp_t* p, const char* at, size_t len) {
  RequestParser* self = Self(p);
  if (self->header_.in_value()) {
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
  self->header_.Value(at, len);
  return self->CountHeaderBytes(at, len);
}

int RequestParser::OnHeaderValueComplete(llhttp_t* p) {
  RequestParser* self = Self(p);
  if (++self->header_count_ > self->limits_.max_headers)
    return self->Fail(431, "too many header fields");
  self->header_.Complete(&self->current_.headers);
  return 0;
}

int RequestParser::OnHeadersComplete(llhttp_t* p) {
  RequestParser* self = Self(p);
  if (p->http_major != 1 || p->http_minor > 1)
    return self->Fail(400, "only HTTP/1.0 and HTTP/1.1 are spoken here");
  if (p->method == HTTP_CONNECT || p->upgrade)
    return self->Fail(405, "CONNECT and upgrades are not supported");
  self->current_.keep_alive = llhttp_should_keep_alive(p);
  self->current_.chunked = p->flags & F_CHUNKED;
  if (p->flags & F_CONTENT_LENGTH) self->current_.content_length = p->content_length;
  self->current_.has_body = self->current_.chunked || self->current_.content_length > 0;
  self->ready_ = true;
  if (self->current_.has_body) {
    self->pending_chunked_ = self->current_.chunked;
    self->pending_length_ = self->current_.content_length;
    // Stop at the head: the body is read only if the caller asks (ExpectBody).
    self->body_state_ = BodyState::kPending;
    return HPE_PAUSED;
  }
  return 0;
}

int RequestParser::OnMessageComplete(llhttp_t* p) {
  RequestParser* self = Self(p);
  self->in_request_ = false;
  if (self->body_state_ == BodyState::kReading) self->body_state_ = BodyState::kDone;
  return HPE_PAUSED;
}

int RequestParser::OnBody(llhttp_t* p, const char* at, size_t len) {
  RequestParser* self = Self(p);
  if (self->body_state_ != BodyState::kReading) return self->Fail(400, "unexpected body");
  if (self->body_total_ + len > self->body_limit_) return self->Fail(413, "request body too large");
  self->body_total_ += len;
  self->body_.append(at, len);
  return 0;
}

int RequestParser::ExpectBody(uint64_t max_bytes) {
  if (body_state_ != BodyState::kPending) return 0;
  if (pending_chunked_) return 411;
  if (pending_length_ > max_bytes) return 413;
  body_limit_ = max_bytes;
  body_total_ = 0;
  streaming_ = false;
  body_.clear();
  body_.reserve(pending_length_);
  body_state_ = BodyState::kReading;
  return 0;
}

int RequestParser::ExpectBodyStream(uint64_t max_bytes) {
  if (body_state_ != BodyState::kPending) return 0;
  if (!pending_chunked_ && pending_length_ > max_bytes) return 413;
  body_limit_ = max_bytes;
  body_total_ = 0;
  streaming_ = true;
  body_.clear();
  body_state_ = BodyState::kReading;
  return 0;
}

std::string RequestParser::TakeBody() {
  std::string out = std::move(body_);
  body_.clear();
  // A piece of a streamed body leaves the body being read; the end (or a
  // whole body) finishes it.
  if (!(streaming_ && body_state_ == BodyState::kReading)) {
    body_state_ = BodyState::kNone;
    streaming_ = false;
  }
  return out;
}

RequestParser::Event RequestParser::Feed(std::string_view data, size_t* consumed) {
  *consumed = 0;
  if (dead_ || error_status_) return Event::kError;
  // A body nobody asked for: nothing after it can be parsed.
  if (body_state_ == BodyState::kPending && !ready_) {
    error_status_ = 400;
    error_reason_ = "request body not read";
    dead_ = true;
    return Event::kError;
  }
  if (data.empty()) return Event::kNeedMore;
  ++feed_id_;
  feed_begin_ = data.data();
  feed_end_ = data.data() + data.size();
  llhttp_errno_t err = llhttp_execute(&parser_, data.data(), data.size());
  if (err == HPE_OK) {
    *consumed = data.size();
    return Event::kNeedMore;
  }
  if (err == HPE_PAUSED && !error_status_) {
    *consumed = llhttp_get_error_pos(&parser_) - data.data();
    llhttp_resume(&parser_);
    if (body_state_ == BodyState::kDone) return Event::kBody;
    if (ready_) return Event::kRequest;
    return Event::kNeedMore;
  }
  if (!error_status_) {
    error_status_ = 400;
    error_reason_ =
        llhttp_get_error_reason(&parser_) ? llhttp_get_error_reason(&parser_) : "bad request";
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
