// Text tables as the managed registries' CLIs print them: a header line, a
// line of dashes per column, then the rows. A column is as wide as its
// longest value, and at least its header plus two; columns are two spaces
// apart; trailing spaces are trimmed. Pure.
#pragma once

#include <string>
#include <vector>

namespace util {

// Rows shorter than the header are padded with empty cells; longer ones
// are cut to the header's width.
std::string FormatTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows);

}  // namespace util
