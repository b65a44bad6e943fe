// Parsing WWW-Authenticate challenges (RFC 9110 section 11.6.1). Pure.
//
// A header may hold several challenges, and repeated headers arrive merged
// with ", ", so "Bearer realm=\"a,b\",service=x, Basic realm=y" is two
// challenges. Parameter names are lowercased; quoted values are unescaped.
// Malformed input yields what could be parsed up to the fault.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace upstream {

struct Challenge {
  std::string scheme;                         // lowercased: "bearer", "basic"
  std::map<std::string, std::string> params;  // lowercased names
  std::string Param(const std::string& name) const {
    auto it = params.find(name);
    return it == params.end() ? std::string() : it->second;
  }
};

std::vector<Challenge> ParseWwwAuthenticate(std::string_view header);

// The first challenge of `scheme` (lowercase), or nullptr.
const Challenge* FindChallenge(const std::vector<Challenge>& challenges, std::string_view scheme);

}  // namespace upstream
