// The distribution-spec grammar for repository names and tags.
//
// Everything a client sends is checked here before it reaches the cache or
// an upstream URL. Pure functions. Digests are parsed by util::Digest.
#pragma once

#include <string_view>

namespace oci {

inline constexpr size_t kMaxNameLength = 255;

// path-component ("/" path-component)*, where a component is
// [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*, and at most 255 characters in all.
bool ValidRepositoryName(std::string_view name);

// [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
bool ValidTag(std::string_view tag);

}  // namespace oci
