#include "util/table.h"

#include <algorithm>

namespace util {

std::string FormatTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const std::string& h : header) width.push_back(h.size() + 2);
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size() && i < width.size(); ++i)
      width[i] = std::max(width[i], row[i].size());
  std::string out;
  auto line = [&](auto cell) {
    std::string l;
    for (size_t i = 0; i < width.size(); ++i) {
      if (i) l += "  ";
      std::string c = cell(i);
      l += c;
      l.append(width[i] - std::min(width[i], c.size()), ' ');
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l + "\n";
  };
  line([&](size_t i) { return header[i]; });
  line([&](size_t i) { return std::string(width[i], '-'); });
  for (const auto& row : rows)
    line([&](size_t i) { return i < row.size() ? row[i] : std::string(); });
  return out;
}

}  // namespace util
