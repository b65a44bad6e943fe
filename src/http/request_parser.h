// RequestParser: HTTP/1.1 request heads from bytes, on llhttp in strict mode.
//
// Pure: bytes in, events out, no sockets; tested with transcripts. One parser
// per connection. It stops after each request head so the server can answer
// pipelined requests in order, and enforces the head limits: request line
// (414), total header bytes and header count (431). Malformed input is 400:
// llhttp's strict mode (bare LF or CR, two Content-Lengths, Transfer-Encoding
// with Content-Length, bad chunk sizes), plus what it lets through: obs-fold
// continuation lines, HTTP versions other than 1.0 and 1.1 (HTTP/0.9's bare
// "GET /"), and NUL bytes. CONNECT and protocol upgrades are 405.
// Repeated header fields are merged with ", " (skopeo sends six Accept lines).
//
// A body is never read unless the caller asks for it after seeing the head
// (ExpectBody, with the route's limit: 413 past it, 411 for chunked), so no
// byte of it is buffered before the request was authenticated.
#pragma once

#include <llhttp.h>

#include "src/http/headers.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace http {

struct Request {
  std::string method;
  std::string target;
  std::vector<Header> headers;  // in first-seen order, repeats merged
  bool keep_alive = true;       // false for "Connection: close" or HTTP/1.0 without keep-alive
  bool has_body = false;        // Content-Length > 0 or chunked
  bool chunked = false;
  uint64_t content_length = 0;  // when !chunked
  std::string remote;           // the client's address ("IP" or "unix"), set by the server

  // The merged value of a header (name in lowercase), or nullptr.
  const std::string* Find(std::string_view name) const { return FindHeader(headers, name); }
};

class RequestParser {
 public:
  struct Limits {
    size_t max_request_line = 8192;
    size_t max_header_bytes = 16384;
    size_t max_headers = 100;
  };
  enum class Event {
    kNeedMore,  // all input consumed, no complete request (or body) yet
    kRequest,   // a request head is ready: TakeRequest()
    kBody,      // the body asked for with ExpectBody is complete: TakeBody()
    kError,     // error_status() says which; close the connection after answering
  };

  explicit RequestParser(Limits limits);
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Parses from `data`, setting *consumed to the bytes used. After kRequest
  // the rest of `data` belongs to the next request: feed it again after
  // TakeRequest(). After kError the parser is unusable.
  Event Feed(std::string_view data, size_t* consumed);
  Request TakeRequest();
  // After kRequest with has_body: reads the body, up to `max_bytes`.
  // Returns 0, or the status to answer (411 chunked, 413 too large) when the
  // body is refused unread; the connection must close after that answer.
  // A body that is not asked for is never read: close the connection.
  int ExpectBody(uint64_t max_bytes);
  // As ExpectBody, but the body (chunked or not) is taken in pieces: after
  // every Feed, TakeBody() returns what that Feed decoded (at most the bytes
  // fed), and kBody marks the end. 413 at the head when Content-Length is
  // above `max_bytes`, or as a parse error when a chunked body passes it.
  int ExpectBodyStream(uint64_t max_bytes);
  std::string TakeBody();
  // The body will not be read on (answered early): the connection closes.
  void AbandonBody() {
    body_.clear();
    body_state_ = BodyState::kNone;
    streaming_ = false;
  }
  bool streaming_body() const { return streaming_; }
  bool reading_body() const { return body_state_ == BodyState::kReading; }

  int error_status() const { return error_status_; }
  const std::string& error_reason() const { return error_reason_; }
  // True once any byte of the next request has been seen (header timeout).
  bool in_request() const { return in_request_; }

 private:
  static int OnMessageBegin(llhttp_t* p);
  static int OnUrl(llhttp_t* p, const char* at, size_t len);
  static int OnMethod(llhttp_t* p, const char* at, size_t len);
  static int OnHeaderField(llhttp_t* p, const char* at, size_t len);
  static int OnHeaderValue(llhttp_t* p, const char* at, size_t len);
  static int OnHeaderValueComplete(llhttp_t* p);
  static int OnHeadersComplete(llhttp_t* p);
  static int OnMessageComplete(llhttp_t* p);
  static int OnBody(llhttp_t* p, const char* at, size_t len);
  int Fail(int status, const char* reason);
  int CountHeaderBytes(const char* at, size_t len);

  Limits limits_;
  llhttp_settings_t settings_;
  llhttp_t parser_;
  Request current_;
  HeaderCollector header_;
  bool in_request_ = false;
  bool ready_ = false;
  bool dead_ = false;
  // kNone: no body, or not asked for yet. kUnread: the head had a body that
  // nobody asked for, so the stream cannot go on past it.
  enum class BodyState { kNone, kPending, kReading, kDone } body_state_ = BodyState::kNone;
  uint64_t body_limit_ = 0;
  uint64_t body_total_ = 0;  // decoded so far (streaming)
  bool streaming_ = false;
  bool pending_chunked_ = false;  // of the request whose body is pending
  uint64_t pending_length_ = 0;
  std::string body_;
  size_t header_bytes_ = 0;
  size_t header_count_ = 0;
  // Where the last header-value piece ended, to spot obs-fold continuations.
  uint64_t feed_id_ = 0, piece_feed_id_ = 0;
  const char* feed_begin_ = nullptr;
  const char* feed_end_ = nullptr;
  const char* piece_end_ = nullptr;
  bool piece_ended_buffer_ = false;
  int error_status_ = 0;
  std::string error_reason_;
};

}  // namespace http
