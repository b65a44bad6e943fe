#!/usr/bin/env bash
# Concurrent misses: 16 clients ask for one uncached 64 MiB blob at once; the
# origin (docker-registry) sees exactly one request for it, and every client
# gets the right bytes. Then Range requests on the cached blob.
source "$(dirname "$0")/lib/common.sh"

start_origin
push_fixtures
start_georeg --cache-dir "$WORK/cache" --upstream "$ORIGIN=http://$ORIGIN"

blob=$(fix big_layer)
size=$(fix big_layer_size)
url="$GEOREG_URL/v2/team/big/blobs/$blob?ns=$ORIGIN"
base=$(origin_count "/v2/team/big/blobs/$blob")
pids=()
for i in $(seq 16); do
  curl -s -o "$WORK/out.$i" -w '%{http_code}' "$url" >"$WORK/code.$i" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
good=0
for i in $(seq 16); do
  [ "$(cat "$WORK/code.$i")" = 200 ] && [ "sha256:$(sha_of "$WORK/out.$i")" = "$blob" ] && good=$((good + 1))
done
expect_eq "16 concurrent clients all got the right bytes" 16 "$good"
expect_eq "the origin saw exactly one GET for the blob" 1 "$(($(origin_count "/v2/team/big/blobs/$blob") - base))"

# Served from the cache now: Range forms.
curl -s -o "$WORK/full" "$url"
expect_eq "warm read is the right blob" "$blob" "sha256:$(sha_of "$WORK/full")"
expect_eq "still one origin request after a warm read" 1 "$(($(origin_count "/v2/team/big/blobs/$blob") - base))"
range_check() {  # NAME RANGE EXPECTED_START EXPECTED_LEN
  local code
  code=$(curl -s -o "$WORK/part" -D "$WORK/part.h" -w '%{http_code}' -H "Range: $2" "$url")
  expect_eq "$1: status" 206 "$code"
  expect_eq "$1: bytes" "$(tail -c +$(($3 + 1)) "$WORK/full" | head -c "$4" | sha256sum)" "$(sha256sum <"$WORK/part")"
  expect_eq "$1: Content-Range" "bytes $3-$(($3 + $4 - 1))/$size" \
    "$(tr -d '\r' <"$WORK/part.h" | awk -F': ' 'tolower($1)=="content-range"{print $2}')"
}
range_check "bytes=a-b across a chunk boundary" "bytes=1048000-1049999" 1048000 2000
range_check "bytes=a-" "bytes=$((size - 5000))-" $((size - 5000)) 5000
range_check "bytes=-n" "bytes=-777" $((size - 777)) 777
code=$(curl -s -o "$WORK/err" -D "$WORK/err.h" -w '%{http_code}' -H "Range: bytes=$size-" "$url")
expect_eq "range past the end: 416" 416 "$code"
check "416 carries Content-Range bytes */size" grep -qi "^content-range: bytes \*/$size" "$WORK/err.h"
check "blob responses carry Accept-Ranges and Docker-Content-Digest" \
  bash -c "curl -sI '$url' | tr -d '\r' | grep -qi '^accept-ranges: bytes' && curl -sI '$url' | grep -qi 'docker-content-digest: $blob'"
check "no Content-Encoding on blobs" bash -c "! curl -sI '$url' | grep -qi '^content-encoding'"

# A range on a miss: joins a fill and gets its slice.
app=$(fix app_layer)
code=$(curl -s -o "$WORK/app.part" -w '%{http_code}' -H "Range: bytes=100-199" "$GEOREG_URL/v2/team/app/blobs/$app?ns=$ORIGIN")
expect_eq "range on an uncached blob: 206" 206 "$code"
curl -s -o "$WORK/app.full" "http://$ORIGIN/v2/team/app/blobs/$app"
expect_eq "range on an uncached blob: bytes" "$(tail -c +101 "$WORK/app.full" | head -c 100 | sha256sum)" "$(sha256sum <"$WORK/app.part")"

# A client that disconnects mid-fill does not cancel the fill: the others
# finish, and the blob ends up cached (no second origin request).
stop_georeg
rm -rf "$WORK/cache"
start_georeg --cache-dir "$WORK/cache" --upstream "$ORIGIN=http://$ORIGIN"
url="$GEOREG_URL/v2/team/big/blobs/$blob?ns=$ORIGIN"
base=$(origin_count "/v2/team/big/blobs/$blob")
curl -s --limit-rate 2M -o /dev/null "$url" &
quitter=$!
curl -s --limit-rate 30M -o "$WORK/stayer" "$url" &
stayer=$!
sleep 1
kill "$quitter"
wait "$stayer"
expect_eq "the client that stayed got the blob" "$blob" "sha256:$(sha_of "$WORK/stayer")"
for _ in $(seq 50); do grep -q "cached blob $blob" "$GEOREG_LOG" && break; sleep 0.1; done
curl -s -o "$WORK/after" "$url"
expect_eq "served from the cache afterwards" "$blob" "sha256:$(sha_of "$WORK/after")"
expect_eq "one origin request in all" 1 "$(($(origin_count "/v2/team/big/blobs/$blob") - base))"

stop_georeg
expect_eq "georeg exits 0 on SIGTERM" 0 $?
it_finish
