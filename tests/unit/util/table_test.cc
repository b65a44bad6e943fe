// util::FormatTable: the layout of the CLI's tables.
#include <catch2/catch.hpp>

#include "util/table.h"

TEST_CASE("table: the managed registry CLI's layout") {
  std::string t = util::FormatTable({"NAME", "LOCATION", "PROVISIONING STATE", "STATUS"},
                                    {{"japaneast", "japaneast", "Succeeded", "Ready"},
                                     {"eastus", "eastus", "Succeeded", "Ready"}});
  CHECK(t ==
        "NAME       LOCATION    PROVISIONING STATE    STATUS\n"
        "---------  ----------  --------------------  --------\n"
        "japaneast  japaneast   Succeeded             Ready\n"
        "eastus     eastus      Succeeded             Ready\n");
  CHECK(util::FormatTable({"A"}, {}) == "A\n---\n");
  CHECK(util::FormatTable({"A", "B"}, {{"x"}, {"1", "2", "3"}}) == "A    B\n---  ---\nx\n1    2\n");
}
