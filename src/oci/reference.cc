#include "src/oci/reference.h"

namespace oci {
namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool ValidComponent(std::string_view c) {
  size_t i = 0;
  while (i < c.size()) {
    size_t start = i;
    while (i < c.size() && IsLowerAlnum(c[i])) ++i;
    if (i == start) return false;  // empty run: leading, trailing or doubled separator
    if (i == c.size()) return true;
    // separator: ".", "_", "__" or one or more "-"
    if (c[i] == '.') {
      ++i;
    } else if (c[i] == '_') {
      ++i;
      if (i < c.size() && c[i] == '_') ++i;
    } else if (c[i] == '-') {
      while (i < c.size() && c[i] == '-') ++i;
    } else {
      return false;
    }
    if (i == c.size()) return false;
  }
  return false;  // empty component
}

}  // namespace

bool ValidRepositoryName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  size_t start = 0;
  for (;;) {
    size_t slash = name.find('/', start);
    std::string_view comp =
        name.substr(start, slash == std::string_view::npos ? name.npos : slash - start);
    if (!ValidComponent(comp)) return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

bool ValidTag(std::string_view tag) {
  if (tag.empty() || tag.size() > 128) return false;
  for (size_t i = 0; i < tag.size(); ++i) {
    char c = tag[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || (i > 0 && (c == '.' || c == '-'));
    if (!ok) return false;
  }
  return true;
}

}  // namespace oci
