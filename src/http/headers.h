// Header lists for requests and responses: names lowercased, repeats merged.
//
// RFC 9110 lets a recipient combine repeated fields into one value joined by
// ", " (skopeo sends six Accept lines). Used by the request parser and the
// upstream client alike. Pure.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace http {

struct Header {
  std::string name;  // lowercased when added through AddHeader
  std::string value;
};

// Lowercases `name`, trims trailing whitespace from `value`, and appends it,
// or merges it into an earlier field of the same name.
void AddHeader(std::vector<Header>* headers, std::string name, std::string value);

// The (merged) value of the field `lowercase_name`, or nullptr.
const std::string* FindHeader(const std::vector<Header>& headers, std::string_view lowercase_name);

}  // namespace http
