// libFuzzer: configuration files (TOML through toml++ and our validation).
#include <cstdint>
#include <string>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string s(reinterpret_cast<const char*>(data), size);
  (void)config::ParseString(s, "fuzz.toml");
  (void)config::ParseUpstreamFlag(s);
  return 0;
}
