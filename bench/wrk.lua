-- wrk.lua: the script of every wrk run in bench/suite.py (blob throughput
-- against one URL). done() prints one line, "WRKJSON {...}", that suite.py
-- reads; bench/reqload prints the same line for the request-rate figures.
function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"bytes":%d,"duration_us":%d,"socket_errors":%d,"status_errors":%d,' ..
    '"timeouts":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.bytes, summary.duration, e.connect + e.read + e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
