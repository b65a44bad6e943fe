#!/usr/bin/env bash
# /metrics under real traffic (docker-registry upstream, skopeo, curl):
# promtool accepts the page at rest, while requests run and after; the
# counters say what happened (misses, hits, a coalesced herd, stale tags,
# bytes by source, upstream codes and up); no label carries a repository,
# tag, digest or address. The access log (json here) has a line per request
# with its result and source and never a query's secrets. The shipped
# alert rules pass promtool.
source "$(dirname "$0")/lib/common.sh"
need skopeo; need promtool; need jq

start_origin
BIG_MB=32 push_fixtures
write_config "$ORIGIN" "http://$ORIGIN" 'tag_ttl = "1s"'
printf '[metrics]\nlisten = "127.0.0.1:0"\n' >>"$WORK/georeg.toml"
start_georeg --config "$WORK/georeg.toml" --log-format json
METRICS_URL=$(sed -n 's/.*metrics on \(http:[^ "]*\).*/\1/p' "$GEOREG_LOG" | head -1)
[ -n "$METRICS_URL" ] || die "no metrics address in the log"
scrape() { curl -sf "$METRICS_URL" >"$WORK/m.$1" && promtool check metrics <"$WORK/m.$1" >"$WORK/promtool.$1" 2>&1; }
# metric NAME{LABELS} from scrape FILE: its value (empty when absent).
metric() { awk -v k="$2" '$1 == k { print $2 }' "$WORK/m.$1"; }

check "at rest: promtool check metrics accepts the page" scrape rest
expect_eq "content type is the 0.0.4 text format" "text/plain; version=0.0.4; charset=utf-8" \
  "$(curl -s -o /dev/null -w '%{content_type}' "$METRICS_URL")"
for k in 'georeg_requests_total{kind="manifest",result="stale"}' 'georeg_requests_total{kind="blob",result="coalesced"}' \
  'georeg_requests_total{kind="blob",result="peer"}' 'georeg_response_bytes_total{source="upstream"}' \
  "georeg_upstream_requests_total{registry=\"$ORIGIN\",code=\"200\"}" 'georeg_cache_evictions_total' \
  'georeg_verification_failures_total{source="peer"}' 'georeg_fills_in_flight'; do
  expect_eq "known series starts at 0: $k" 0 "$(metric rest "$k")"
done
expect_eq "build info" 1 "$(metric rest "georeg_build_info{version=\"$("$GEOREG" version | awk '{print $NF}')\"}")"
expect_eq "upstream up before any request" 1 "$(metric rest "georeg_upstream_up{registry=\"$ORIGIN\"}")"
expect_eq "other paths: 404" 404 "$(curl -s -o /dev/null -w '%{http_code}' "${METRICS_URL%/metrics}/v2/")"
expect_eq "POST: 405" 405 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$METRICS_URL")"

# A herd of 6 on one uncached 32 MiB blob: one miss, the rest join it (or,
# if it is done by then, hit the cache).
big=$(fix big_layer)
herd=()
for i in 1 2 3 4 5 6; do curl -sf -o /dev/null "$GEOREG_URL/v2/team/big/blobs/$big" & herd+=($!); done
wait "${herd[@]}"
# Scrapes while skopeo copies: the page stays valid under traffic.
skopeo copy -q --all --src-tls-verify=false "docker://127.0.0.1:$GEOREG_PORT/team/app:1.0" "dir:$WORK/cold" &
copy=$!
busy_ok=0
for i in 1 2 3 4 5; do scrape "busy$i" && busy_ok=$((busy_ok + 1)); done
wait "$copy"; copy_rc=$?
expect_eq "cold skopeo copy through georeg" 0 "$copy_rc"
expect_eq "under traffic: promtool accepts every scrape" 5 "$busy_ok"
check "warm skopeo copy" skopeo copy -q --all --src-tls-verify=false "docker://127.0.0.1:$GEOREG_PORT/team/app:1.0" "dir:$WORK/warm"
curl -s -o /dev/null "$GEOREG_URL/v2/team/app/blobs/$(fix app_layer)?ns=$ORIGIN&token=hunter2&X-Amz-Signature=s3cr3t"
# Upstream gone: the tag (older than tag_ttl) is served stale; a new one fails.
stop_origin
sleep 1.2
curl -s -o /dev/null -H "Accept: $ACCEPT_ALL" "$GEOREG_URL/v2/team/app/manifests/1.0"
curl -s -o /dev/null -H "Accept: $ACCEPT_ALL" "$GEOREG_URL/v2/team/app/manifests/never-seen"
check "after: promtool accepts the page" scrape after

blob() { metric after "georeg_requests_total{kind=\"blob\",result=\"$1\"}"; }
blob_lines=$(jq -c 'select(.msg == "access" and .kind == "blob")' "$GEOREG_LOG" | wc -l)
expect_eq "blob requests counted: one per access line" "$blob_lines" \
  "$(($(blob hit) + $(blob miss) + $(blob coalesced) + $(blob peer) + $(blob error)))"
check "misses ($(blob miss)), hits ($(blob hit)) and joins ($(blob coalesced)) all seen" \
  test "$(blob miss)" -ge 2 -a "$(blob hit)" -ge 1 -a $(($(blob hit) + $(blob coalesced))) -ge 5
expect_eq "a stale manifest" 1 "$(metric after 'georeg_requests_total{kind="manifest",result="stale"}')"
check "manifest errors counted (the tag never seen)" test "$(metric after 'georeg_requests_total{kind="manifest",result="error"}')" -ge 1
cache_bytes=$(metric after 'georeg_response_bytes_total{source="cache"}')
up_bytes=$(metric after 'georeg_response_bytes_total{source="upstream"}')
check "bytes from the cache ($cache_bytes) and the upstream ($up_bytes)" test "$cache_bytes" -gt 0 -a "$up_bytes" -ge $((32 << 20))
check "upstream 200s counted" test "$(metric after "georeg_upstream_requests_total{registry=\"$ORIGIN\",code=\"200\"}")" -gt 3
expect_eq "upstream down once it stopped answering" 0 "$(metric after "georeg_upstream_up{registry=\"$ORIGIN\"}")"
check "upstream failures counted" test "$(metric after "georeg_upstream_failures_total{registry=\"$ORIGIN\"}")" -ge 1
check "upstream durations observed" test "$(metric after "georeg_upstream_request_duration_seconds_count{registry=\"$ORIGIN\"}")" -gt 3
check "cache holds the blobs" test "$(metric after georeg_cache_bytes)" -ge $((32 << 20))
check "LMDB map use below its size" test "$(metric after georeg_lmdb_map_used_bytes)" -lt "$(metric after georeg_lmdb_map_size_bytes)"
expect_eq "no fill left running" 0 "$(metric after georeg_fills_in_flight)"
check "process metrics" test "$(metric after process_resident_memory_bytes)" -gt 1000000 -a "$(metric after process_open_fds)" -gt 3
bad=$(grep -v '^#' "$WORK/m.after" | grep -oE '\{[^}]*\}' | grep -E 'sha256|team|library|app|127\.0\.0\.1:[0-9]+"?' |
  grep -v "registry=\"$ORIGIN\"" | sort -u | head -3)
expect_eq "no label holds a repository, tag, digest or client address" "" "$bad"
families=$(grep -c '^# TYPE ' "$WORK/m.after")
check "every family has HELP and TYPE ($families families)" test "$families" = "$(grep -c '^# HELP ' "$WORK/m.after")"

# The access log, as json: every line parses; one per request, with result and source.
check "every log line is one json object" jq -e . "$GEOREG_LOG" >/dev/null
access() { jq -c "select(.msg == \"access\") | $1" "$GEOREG_LOG"; }
check "access lines carry result, source and duration" \
  test "$(access "select(.path == \"/v2/team/big/blobs/$big\" and .result != null and .ms != null) | .status" | sort -u)" = '"200"'
expect_eq "the herd: six access lines" 6 "$(access "select(.path == \"/v2/team/big/blobs/$big\")" | wc -l)"
expect_eq "  one of them the miss, the others joined it or hit the cache" "miss=1 other=5" \
  "$(access "select(.path == \"/v2/team/big/blobs/$big\") | .result" | awk '{ if ($0 == "\"miss\"") m++; else if ($0 == "\"coalesced\"" || $0 == "\"hit\"") o++ } END { printf "miss=%d other=%d", m, o }')"
expect_eq "a stale answer is logged as one" '"stale"' "$(access 'select(.path == "/v2/team/app/manifests/1.0") | .result' | tail -1)"
check "a cache hit names the cache as its source" test -n "$(access 'select(.result == "hit" and .source == "cache")' | head -1)"
expect_eq "the query is dropped but ns=" "\"/v2/team/app/blobs/$(fix app_layer)?ns=$ORIGIN\"" \
  "$(access "select(.path | startswith(\"/v2/team/app/blobs/$(fix app_layer)?\")) | .path")"
expect_eq "no secret from a query appears" 0 "$(grep -cE 'hunter2|s3cr3t' "$GEOREG_LOG")"

# A second daemon asking for the metrics address the first holds: refused
# at start, with one error naming the setting, and the first serves on.
mport=${METRICS_URL#http://127.0.0.1:}; mport=${mport%/metrics}
"$GEOREG" serve --listen 127.0.0.1:0 --metrics-listen "127.0.0.1:$mport" \
  --cache-dir "$WORK/second" 2>"$WORK/second.err"
check "metrics address taken: non-zero exit" test $? -ne 0
check "  its error names metrics.listen" grep -q 'error .*metrics.listen: cannot listen on 127.0.0.1:'"$mport"': address already in use' "$WORK/second.err"
check "  the first daemon's metrics still answer" curl -sf -o /dev/null "$METRICS_URL"

REPO_ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
check "the shipped alert rules pass promtool check rules" promtool check rules "$REPO_ROOT/docs/alerts.yml"
check "and fire when they should (promtool test rules)" bash -c "cd \"$REPO_ROOT/docs\" && promtool test rules alerts_test.yml"

stop_georeg
expect_eq "georeg exits 0 on SIGTERM" 0 $?
it_finish
