#include "src/http/range.h"

namespace http {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool ParseU64(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

}  // namespace

ByteRange ParseRange(std::string_view header, uint64_t size) {
  ByteRange r;
  header = Trim(header);
  if (header.empty()) return r;
  if (header.substr(0, 6) != "bytes=") return r;  // unknown unit: ignore
  std::string_view spec = Trim(header.substr(6));
  if (spec.find(',') != std::string_view::npos) return r;  // several ranges: serve it all
  size_t dash = spec.find('-');
  r.kind = ByteRange::kUnsatisfiable;
  if (dash == std::string_view::npos) return r;
  std::string_view a = Trim(spec.substr(0, dash)), b = Trim(spec.substr(dash + 1));
  uint64_t first, last;
  if (a.empty()) {  // suffix: the last n bytes
    uint64_t n;
    if (!ParseU64(b, &n) || n == 0 || size == 0) return r;
    r.first = n >= size ? 0 : size - n;
    r.last = size - 1;
  } else {
    if (!ParseU64(a, &first)) return r;
    if (b.empty()) {
      last = size ? size - 1 : 0;
    } else if (!ParseU64(b, &last) || last < first) {
      return r;
    }
    if (first >= size) return r;
    r.first = first;
    r.last = last >= size ? size - 1 : last;
  }
  r.kind = ByteRange::kPartial;
  return r;
}

bool ParseContentRange(std::string_view header, uint64_t* first, uint64_t* last, uint64_t* size) {
  header = Trim(header);
  if (header.substr(0, 6) != "bytes ") return false;
  std::string_view spec = Trim(header.substr(6));
  size_t dash = spec.find('-'), slash = spec.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || dash > slash)
    return false;
  if (!ParseU64(spec.substr(0, dash), first) ||
      !ParseU64(spec.substr(dash + 1, slash - dash - 1), last) ||
      !ParseU64(spec.substr(slash + 1), size))
    return false;
  return *first <= *last && *last < *size;
}

}  // namespace http
