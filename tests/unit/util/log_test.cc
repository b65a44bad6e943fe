// The log (util/log.h): json lines, journal priorities, identical errors
// held back, and the throttle that says how many lines it held.
#include "util/log.h"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "tests/unit/capture.h"

using capture::Contains;

TEST_CASE("log throttle: one line a minute with the count behind it") {
  util::LogThrottle t(60000);
  unsigned long long n = 0;
  CHECK(t.Note(1000, &n));
  CHECK(n == 1);
  for (int i = 0; i < 99; ++i) CHECK_FALSE(t.Note(2000 + i, &n));
  CHECK(t.Note(61000, &n));
  CHECK(n == 100);
  CHECK(t.total() == 101);
}

TEST_CASE("log: json lines, journal priorities, and identical errors held back") {
  CHECK(util::IsJournalStream("8:1234", 8, 1234));
  CHECK_FALSE(util::IsJournalStream("8:1234", 8, 1235));
  CHECK_FALSE(util::IsJournalStream("8:1234x", 8, 1234));
  CHECK_FALSE(util::IsJournalStream(nullptr, 0, 0));

  std::string json = capture::Stderr([] {
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

  std::string repeated = capture::Stderr([] {
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
