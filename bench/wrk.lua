-- wrk.lua: the request script of every wrk run in bench/suite.py.
-- WRK_PATHS names a file of request paths (one per line), taken in turn;
-- without it the URL's own path is requested. WRK_METHOD (default GET) and
-- WRK_ACCEPT (an Accept header) apply to every request. The requests are
-- formatted once, in init, so the load generator spends nothing per request
-- on Lua. done() prints one line, "WRKJSON {...}", that suite.py reads.
local requests = {}
local n = 0

function init(args)
  local method = os.getenv("WRK_METHOD") or "GET"
  local headers = {}
  local accept = os.getenv("WRK_ACCEPT")
  if accept then headers["Accept"] = accept end
  local file = os.getenv("WRK_PATHS")
  if file then
    for line in io.lines(file) do
      requests[#requests + 1] = wrk.format(method, line, headers)
    end
  end
  if #requests == 0 then requests[1] = wrk.format(method, nil, headers) end
  -- Threads start at different places in the list.
  n = math.random(#requests) - 1
end

function request()
  n = n + 1
  if n > #requests then n = 1 end
  return requests[n]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"bytes":%d,"duration_us":%d,"socket_errors":%d,"status_errors":%d,' ..
    '"timeouts":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.bytes, summary.duration, e.connect + e.read + e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
