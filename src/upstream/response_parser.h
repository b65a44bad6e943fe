// ResponseParser: HTTP/1.1 responses from bytes, on llhttp in strict mode.
//
// Pure: bytes in, events out, no sockets; tested with transcripts split at
// every byte. One parser per connection, Reset() before each response. It
// bounds the head (status line and headers, `max_head` bytes) and can refuse
// a body by its announced length before any of it is read (`max_body`: the
// head's Content-Length larger, or a chunked body growing past it, is an
// error). Repeated header fields are merged with ", ".
//
// Events: `on_head` once per response, `on_body` for each body piece (the
// pointer is into the caller's buffer, valid during the call). Either may
// return false to stop parsing at once (the caller cancelled); Feed then
// returns kStopped and the parser must be Reset() before reuse.
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "src/http/headers.h"

namespace upstream {

struct ResponseHead {
  int status = 0;
  std::vector<http::Header> headers;  // lowercase names, repeats merged
  std::optional<uint64_t> content_length;
  const std::string* Find(std::string_view name) const { return http::FindHeader(headers, name); }
};

class ResponseParser {
 public:
  struct Limits {
    size_t max_head = 64 * 1024;
    uint64_t max_body = UINT64_MAX;
  };
  enum class Result {
    kNeedMore,  // all input consumed; the response is not complete
    kComplete,  // the response ended; *consumed says where (the rest is not ours)
    kStopped,   // an event handler returned false
    kError,     // error() says why; the connection cannot be reused
  };

  ResponseParser();
  ResponseParser(const ResponseParser&) = delete;
  ResponseParser& operator=(const ResponseParser&) = delete;

  // Starts a new response. `head_request`: the request was HEAD, so the
  // response has no body whatever its Content-Length says.
  void Reset(bool head_request, Limits limits);
  Result Feed(const char* data, size_t len, size_t* consumed);
  // The connection closed (EOF): completes a body delimited by the close,
  // or is an error when the response was cut short.
  Result Finish();

  std::function<bool(const ResponseHead&)> on_head;
  std::function<bool(const char* data, size_t len)> on_body;

  // True once any byte of this response was fed.
  bool started() const { return started_; }
  bool head_done() const { return head_done_; }
  // After kComplete: the connection may carry another request.
  bool keep_alive() const { return keep_alive_; }
  const std::string& error() const { return error_; }
  uint64_t body_bytes() const { return body_bytes_; }

 private:
  static int OnHeaderField(llhttp_t* p, const char* at, size_t len);
  static int OnHeaderValue(llhttp_t* p, const char* at, size_t len);
  static int OnHeaderValueComplete(llhttp_t* p);
  static int OnHeadersComplete(llhttp_t* p);
  static int OnBody(llhttp_t* p, const char* at, size_t len);
  static int OnMessageComplete(llhttp_t* p);
  int CountHead(size_t len);
  int Stop(const char* why);

  llhttp_settings_t settings_;
  llhttp_t parser_;
  Limits limits_;
  bool head_request_ = false;
  ResponseHead head_;
  size_t head_bytes_ = 0;
  uint64_t body_bytes_ = 0;
  http::HeaderCollector header_;
  std::string error_;
  bool started_ = false;
  bool head_done_ = false;
  bool complete_ = false;
  bool stopped_ = false;
  bool keep_alive_ = false;
};

}  // namespace upstream
