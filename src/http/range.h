// Range: parsing one HTTP byte range against a known representation size,
// and the Content-Range of a partial response.
//
// Supported: "bytes=a-b", "bytes=a-", "bytes=-n". Pure.
//   - absent header, an unknown unit, or several ranges: kFull (serve 200;
//     RFC 9110 lets a server ignore Range, and OCI clients ask for one range)
//   - a malformed byte range, or one that starts past the end: kUnsatisfiable
//     (416 with "Content-Range: bytes */size", as the reference registry does)
#pragma once

#include <cstdint>
#include <string_view>

namespace http {

struct ByteRange {
  enum Kind { kFull, kPartial, kUnsatisfiable } kind = kFull;
  uint64_t first = 0;  // inclusive
  uint64_t last = 0;   // inclusive; meaningful for kPartial
  uint64_t length() const { return last - first + 1; }
};

ByteRange ParseRange(std::string_view header, uint64_t size);

// A 206 response's "Content-Range: bytes first-last/size" (RFC 9110
// 14.4). False for anything else: another unit, "*", an unknown size, or
// first > last or last >= size.
bool ParseContentRange(std::string_view header, uint64_t* first, uint64_t* last, uint64_t* size);

}  // namespace http
