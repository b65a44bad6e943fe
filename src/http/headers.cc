#include "src/http/headers.h"

#include <algorithm>

namespace http {

void AddHeader(std::vector<Header>* headers, std::string name, std::string value) {
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
  for (Header& h : *headers) {
    if (h.name == name) {
      h.value += ", " + value;
      return;
    }
  }
  headers->push_back(Header{std::move(name), std::move(value)});
}

const std::string* FindHeader(const std::vector<Header>& headers, std::string_view lowercase_name) {
  for (const Header& h : headers)
    if (h.name == lowercase_name) return &h.value;
  return nullptr;
}

void HeaderCollector::Name(const char* at, size_t len) {
  if (in_value_) {
    in_value_ = false;
    name_.clear();
  }
  name_.append(at, len);
}

void HeaderCollector::Value(const char* at, size_t len) {
  if (!in_value_) {
    in_value_ = true;
    value_.clear();
  }
  value_.append(at, len);
}

void HeaderCollector::Complete(std::vector<Header>* headers) {
  AddHeader(headers, std::move(name_), std::move(value_));
  Reset();
}

void HeaderCollector::Reset() {
  in_value_ = false;
  name_.clear();
  value_.clear();
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

}  // namespace http
