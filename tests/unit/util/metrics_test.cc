// The Prometheus text exposition (util/metrics.h).
#include "util/metrics.h"

#include <catch2/catch.hpp>

#include <string>

#include "tests/unit/capture.h"

using capture::Contains;

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
