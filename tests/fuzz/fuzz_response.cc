// libFuzzer: the upstream response parser, split at a byte the input chooses,
// with a body bound it must keep.
#include <cstdint>
#include <string>

#include "src/upstream/response_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  bool head = data[0] & 1;
  size_t split = data[1] % size;
  std::string input(reinterpret_cast<const char*>(data + 2), size - 2);
  upstream::ResponseParser p;
  uint64_t body = 0;
  p.on_head = [](const upstream::ResponseHead&) { return true; };
  p.on_body = [&](const char*, size_t n) {
    body += n;
    return true;
  };
  p.Reset(head, {1024, 4096});
  using R = upstream::ResponseParser::Result;
  R r = R::kNeedMore;
  for (std::string piece : {input.substr(0, split), input.substr(std::min(split, input.size()))}) {
    size_t used = 0;
    r = p.Feed(piece.data(), piece.size(), &used);
    if (used > piece.size()) __builtin_trap();
    if (r != R::kNeedMore) break;
  }
  if (r == R::kNeedMore) p.Finish();
  if (body > 4096) __builtin_trap();  // the bound held
  return 0;
}
