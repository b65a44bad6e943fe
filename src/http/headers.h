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

// ASCII case-insensitive equality (header values such as "100-continue").
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// Joins the pieces llhttp delivers a header field in (name pieces, value
// pieces, then "value complete") into AddHeader calls. Used by the request
// and the response parser alike.
class HeaderCollector {
 public:
  void Name(const char* at, size_t len);
  void Value(const char* at, size_t len);
  // Between a field's first value piece and its completion.
  bool in_value() const { return in_value_; }
  // The field is complete: added to `headers`.
  void Complete(std::vector<Header>* headers);
  void Reset();

 private:
  std::string name_, value_;
  bool in_value_ = false;
};

}  // namespace http
