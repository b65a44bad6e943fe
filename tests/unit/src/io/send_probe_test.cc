// The start-up probe of sendfile against writes (src/io/send_probe.h): it
// measures both ways, and on a host too busy to finish within its budget it
// gives up instead of holding back the start.
#include "src/io/send_probe.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <string>

namespace {

struct ScratchDir {
  std::string path;
  ScratchDir() {
    char tmpl[] = "/tmp/georeg-send-probe-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~ScratchDir() { std::filesystem::remove_all(path); }
};

}  // namespace

TEST_CASE("send probe: measures both ways and leaves no file behind") {
  ScratchDir dir;
  auto rates = io::ProbeSend(dir.path, std::chrono::seconds(5), 1u << 20, 2u << 20, 3, 256u << 10);
  REQUIRE(rates.ok());
  CHECK(rates->sendfile_bytes_per_s > 0);
  CHECK(rates->write_bytes_per_s > 0);
  CHECK(std::filesystem::is_empty(dir.path));  // the scratch file was never linked
}

TEST_CASE("send probe: past three times its budget it gives up rather than delay the start") {
  ScratchDir dir;
  auto rates = io::ProbeSend(dir.path, std::chrono::milliseconds(0), 1u << 20, 2u << 20, 3);
  REQUIRE_FALSE(rates.ok());
  CHECK(rates.status().code() == util::Code::kIoError);
  CHECK(rates.status().message().find("time budget") != std::string::npos);
}

TEST_CASE("send probe: a directory it cannot write in is an IoError") {
  auto rates = io::ProbeSend("/nonexistent/georeg-probe");
  REQUIRE_FALSE(rates.ok());
  CHECK(rates.status().code() == util::Code::kIoError);
  CHECK(rates.status().message().find("scratch file") != std::string::npos);
}
