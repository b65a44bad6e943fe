// Metrics exposition, request metrics, the access log's target, /proc
// parsing and the log's formats and repeat limit.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "src/telemetry/access_log.h"
#include "src/telemetry/process_metrics.h"
#include "src/telemetry/request_metrics.h"
#include "util/log.h"
#include "util/metrics.h"

namespace {

bool Contains(const std::string& text, const std::string& line) {
  return text.find(line) != std::string::npos;
}

// Runs `fn` with stderr sent to a file; returns what it wrote.
template <typename Fn>
std::string CaptureStderr(Fn fn) {
  char path[] = "/tmp/georeg-log-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  int saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  fn();
  dup2(saved, STDERR_FILENO);
  close(saved);
  std::string out;
  char buf[4096];
  lseek(fd, 0, SEEK_SET);
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, n);
  close(fd);
  unlink(path);
  return out;
}

}  // namespace

TEST_CASE("exposition: families, escaping, numbers and histograms in the text format") {
  util::Exposition out;
  using T = util::Exposition::Type;
  out.Family("georeg_things_total", T::kCounter, "Things, with a \\ and a\nnewline.");
  out.Sample({{"kind", "a\"b\\c\nd"}}, 3);
  out.Family("georeg_ratio", T::kGauge, "A ratio.");
  out.Sample(0.1);
  util::Histogram h({0.5, 1, 2});
  for (double v : {0.1, 0.5, 0.7, 3.0}) h.Observe(v);
  out.Family("georeg_seconds", T::kHistogram, "Durations.");
  out.Sample({{"kind", "x"}}, h);
  const std::string& t = out.text();
  CHECK(Contains(t,
                 "# HELP georeg_things_total Things, with a \\\\ and a\\nnewline.\n# TYPE "
                 "georeg_things_total counter\n"));
  CHECK(Contains(t, "georeg_things_total{kind=\"a\\\"b\\\\c\\nd\"} 3\n"));
  CHECK(Contains(t, "georeg_ratio 0.1\n"));
  CHECK(Contains(t, "georeg_seconds_bucket{kind=\"x\",le=\"0.5\"} 2\n"));  // 0.5 falls in le=0.5
  CHECK(Contains(t, "georeg_seconds_bucket{kind=\"x\",le=\"1\"} 3\n"));
  CHECK(Contains(t, "georeg_seconds_bucket{kind=\"x\",le=\"2\"} 3\n"));
  CHECK(Contains(t, "georeg_seconds_bucket{kind=\"x\",le=\"+Inf\"} 4\n"));
  CHECK(Contains(t, "georeg_seconds_sum{kind=\"x\"} 4.3\n"));
  CHECK(Contains(t, "georeg_seconds_count{kind=\"x\"} 4\n"));
  CHECK(util::Exposition::FormatValue(1e20) == "1e+20");
  CHECK(util::Exposition::FormatValue(21474836480.0) == "21474836480");
  CHECK(util::Exposition::FormatValue(1.0 / 0.0) == "+Inf");
  CHECK(util::Exposition::FormatValue(0.1 + 0.2) == "0.30000000000000004");  // read back exactly
  CHECK(util::Exposition::ValidName("georeg_x:y_total"));
  CHECK_FALSE(util::Exposition::ValidName("9lives"));
  CHECK_FALSE(util::Exposition::ValidName("a-b"));
  CHECK(util::Exposition::ValidLabelName("le"));
  CHECK_FALSE(util::Exposition::ValidLabelName("__name__"));
  CHECK_FALSE(util::Exposition::ValidLabelName("a:b"));
}

TEST_CASE("request metrics: results, known pairs at 0, bytes by source") {
  telemetry::RequestMetrics m;
  auto render = [&] {
    util::Exposition out;
    m.Describe(&out);
    return out.text();
  };
  std::string first = render();
  CHECK(Contains(first, "georeg_requests_total{kind=\"manifest\",result=\"stale\"} 0\n"));
  CHECK(Contains(first, "georeg_requests_total{kind=\"blob\",result=\"coalesced\"} 0\n"));
  CHECK_FALSE(Contains(first, "kind=\"blob\",result=\"stale\""));
  CHECK(Contains(first, "georeg_response_bytes_total{source=\"peer\"} 0\n"));

  http::RequestRecord hit;
  hit.method = "GET";
  hit.target = "/v2/a/blobs/sha256:00";
  hit.status = 200;
  hit.body_bytes = 1000;
  hit.duration_us = 2000;
  hit.outcome = {"blob", "hit", "cache"};
  m.Record(hit);
  http::RequestRecord cut = hit;  // a client that left mid-body: an error, its bytes still counted
  cut.ending = http::RequestRecord::Ending::kAborted;
  cut.outcome = {"blob", "miss", "upstream"};
  cut.body_bytes = 10;
  m.Record(cut);
  http::RequestRecord notfound = hit;
  notfound.status = 404;
  notfound.outcome = {"manifest", "", ""};
  m.Record(notfound);
  http::RequestRecord refused;  // the server's own 400 before a request was parsed
  refused.status = 400;
  m.Record(refused);
  std::string t = render();
  CHECK(Contains(t, "georeg_requests_total{kind=\"blob\",result=\"hit\"} 1\n"));
  CHECK(Contains(t, "georeg_requests_total{kind=\"blob\",result=\"error\"} 1\n"));
  CHECK(Contains(t, "georeg_requests_total{kind=\"manifest\",result=\"error\"} 1\n"));
  CHECK(Contains(t, "georeg_requests_total{kind=\"other\",result=\"error\"} 1\n"));
  CHECK(Contains(t, "georeg_response_bytes_total{source=\"cache\"} 1000\n"));
  CHECK(Contains(t, "georeg_response_bytes_total{source=\"upstream\"} 10\n"));
  CHECK(Contains(t, "georeg_request_duration_seconds_bucket{kind=\"blob\",le=\"0.0025\"} 2\n"));
  CHECK(Contains(t, "georeg_request_duration_seconds_count{kind=\"blob\"} 2\n"));
}

TEST_CASE("access log: the query is dropped but ns=, odd targets stay one bounded line") {
  CHECK(telemetry::LoggedTarget("/v2/a/manifests/latest?ns=docker.io") ==
        "/v2/a/manifests/latest?ns=docker.io");
  CHECK(telemetry::LoggedTarget("/v2/a/blobs/x?X-Amz-Signature=abc&ns=quay.io&token=s") ==
        "/v2/a/blobs/x?ns=quay.io");
  CHECK(telemetry::LoggedTarget("/v2/a/blobs/x?token=secret") == "/v2/a/blobs/x");
  CHECK(telemetry::LoggedTarget("/v2/a b\x01\n") == "/v2/a?b??");
  std::string longer(1000, 'a');
  CHECK(telemetry::LoggedTarget("/" + longer).size() == 256 + 3);
  http::RequestRecord r;
  r.method = "GET";
  r.target = "/v2/x/blobs/y?sig=1";
  r.status = 200;
  r.body_bytes = 5;
  r.duration_us = 1500;
  r.remote = "127.0.0.1";
  r.outcome = {"blob", "coalesced", "peer"};
  telemetry::AccessLog log;
  std::string none = CaptureStderr([&] { log.Add(r); });
  CHECK(none.empty());  // batched: written by Flush
  std::string line = CaptureStderr([&] { log.Flush(); });
  CHECK(Contains(
      line,
      " info  access method=GET path=/v2/x/blobs/y status=200 bytes=5 kind=blob result=coalesced "
      "source=peer ms=1.500 remote=127.0.0.1\n"));
  CHECK_FALSE(Contains(line, "sig"));
}

TEST_CASE("access lines: a large batch is written whole, in pieces of whole lines") {
  CHECK(util::LogWriteSize("a\nbb\nccc\n", 100) == 9);
  CHECK(util::LogWriteSize("a\nbb\nccc\n", 6) == 5);  // "a\nbb\n": the third line would pass 6
  CHECK(util::LogWriteSize("a\nbb\nccc\n", 5) == 5);
  CHECK(util::LogWriteSize("long line\nx\n", 4) == 10);  // longer than max: alone, not cut
  http::RequestRecord r;
  r.method = "GET";
  r.target = "/v2/x/manifests/latest";
  r.status = 200;
  r.outcome = {"manifest", "hit", "cache"};
  telemetry::AccessLog log;
  std::string out = CaptureStderr([&] {
    for (int i = 0; i < 500; ++i) log.Add(r);  // past the 64 KiB flush threshold
    log.Flush();
  });
  size_t lines = 0;
  for (size_t at = 0;
       (at = out.find(" access method=GET path=/v2/x/manifests/latest ", at)) != std::string::npos;
       ++at)
    ++lines;
  CHECK(lines == 500);
  CHECK(std::count(out.begin(), out.end(), '\n') == 500);
}

TEST_CASE("/proc parsing: a command with spaces and parentheses, and the boot time") {
  std::string stat =
      "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 3 0 12345 "
      "987654321 2048 "
      "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
  telemetry::ProcStat ps;
  REQUIRE(telemetry::ParseProcStat(stat, &ps));
  CHECK(ps.utime_ticks == 250);
  CHECK(ps.stime_ticks == 50);
  CHECK(ps.start_ticks == 12345);
  CHECK(ps.vsize_bytes == 987654321);
  CHECK(ps.rss_pages == 2048);
  CHECK_FALSE(telemetry::ParseProcStat("4242 (short) S 1 2 3", &ps));
  uint64_t btime = 0;
  REQUIRE(telemetry::ParseBootTime("cpu  1 2 3\nintr 5\nbtime 1796270000\nprocesses 9\n", &btime));
  CHECK(btime == 1796270000);
  CHECK_FALSE(telemetry::ParseBootTime("cpu 1\n", &btime));
}

TEST_CASE("log: json lines, journal priorities, and identical errors held back") {
  CHECK(util::IsJournalStream("8:1234", 8, 1234));
  CHECK_FALSE(util::IsJournalStream("8:1234", 8, 1235));
  CHECK_FALSE(util::IsJournalStream("8:1234x", 8, 1234));
  CHECK_FALSE(util::IsJournalStream(nullptr, 0, 0));

  std::string json = CaptureStderr([] {
    util::SetLogFormat(util::LogFormat::kJson);
    LOG_INFO("hello \"%s\"\n", "world");
    util::LogWithFields(util::LogLevel::kInfo, "access", {{"path", "/v2/"}, {"status", "200"}});
    util::SetLogFormat(util::LogFormat::kText);
  });
  CHECK(Contains(json, "\"level\":\"info\",\"msg\":\"hello \\\"world\\\"\\u000a\"}\n"));
  CHECK(Contains(json, "\"msg\":\"access\",\"path\":\"/v2/\",\"status\":\"200\"}\n"));
  CHECK(json.rfind("{\"time\":\"20", 0) == 0);

  // On the journal (stderr is the stream $JOURNAL_STREAM names): "<N>" and no time.
  std::string journal;
  {
    char path[] = "/tmp/georeg-journal-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    struct stat st;
    REQUIRE(fstat(fd, &st) == 0);
    std::string stream = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    setenv("JOURNAL_STREAM", stream.c_str(), 1);
    util::SetLogFormat(util::LogFormat::kText);
    LOG_ERROR("disk on fire %d", 1);
    LOG_INFO("fine");
    unsetenv("JOURNAL_STREAM");
    util::SetLogFormat(util::LogFormat::kText);
    dup2(saved, STDERR_FILENO);
    close(saved);
    char buf[4096];
    lseek(fd, 0, SEEK_SET);
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) journal.append(buf, n);
    close(fd);
    unlink(path);
  }
  CHECK(journal == "<3>error disk on fire 1\n<6>info  fine\n");

  std::string repeated = CaptureStderr([] {
    for (int i = 0; i < 50; ++i) LOG_WARN("upstream down (test %s)", "repeat");
    LOG_WARN("another warning (test)");
    for (int i = 0; i < 50; ++i) LOG_INFO("info is never held back (test)");
  });
  size_t warns = 0, infos = 0;
  for (size_t p = 0; (p = repeated.find("upstream down (test repeat)", p)) != std::string::npos;
       ++p)
    ++warns;
  for (size_t p = 0; (p = repeated.find("info is never held back", p)) != std::string::npos; ++p)
    ++infos;
  CHECK(warns == 1);
  CHECK(infos == 50);
  CHECK(Contains(repeated, "another warning (test)"));
}
