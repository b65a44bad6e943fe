// RequestParser: HTTP/1.1 request heads from bytes, on llhttp in strict mode.
//
// Pure: bytes in, events out, no sockets; tested with transcripts. One parser
// per connection. It stops after each complete request so the server can
// answer pipelined requests in order, and enforces the head limits:
// request line (414), total header bytes and header count (431). Malformed
// input, including obs-fold continuation lines that llhttp lets through even
// in strict mode, is 400. Repeated header fields are merged with ", " (skopeo
// sends six Accept lines).
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
  // Read only for signed requests under Limits::body_prefix (peer routes);
  // other requests with a body are answered and the connection closed unread.
  std::string body;

  // The merged value of a header (name in lowercase), or nullptr.
  const std::string* Find(std::string_view name) const { return FindHeader(headers, name); }
};

class RequestParser {
 public:
  struct Limits {
    size_t max_request_line = 8192;
    size_t max_header_bytes = 16384;
    size_t max_headers = 100;
    // Signed requests (X-Georeg-Signature) whose target starts with this
    // prefix may carry a body of at most max_body bytes with Content-Length
    // (chunked: 411, larger: 413).
    std::string body_prefix = "/_georeg/";
    size_t max_body = 16 << 20;
  };
  enum class Event {
    kNeedMore,  // all input consumed, no complete request yet
    kRequest,   // a request head is ready: TakeRequest()
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
  int CountHeaderBytes(size_t len);

  Limits limits_;
  llhttp_settings_t settings_;
  llhttp_t parser_;
  Request current_;
  std::string field_, value_;
  bool in_value_ = false;
  bool in_request_ = false;
  bool ready_ = false;
  bool dead_ = false;
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
