// Request metrics (src/telemetry/request_metrics.h): results, known
// pairs shown at 0, bytes by source.
#include "src/telemetry/request_metrics.h"

#include <catch2/catch.hpp>

#include <string>

#include "tests/unit/capture.h"
#include "util/metrics.h"

using capture::Contains;

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
