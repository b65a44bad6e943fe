#!/usr/bin/env bash
# Upstream faults the real registry cannot produce (lib/fake_upstream.py):
# wrong bytes of the right length, a truncated body, an upstream that accepts
# and never answers. Clients must see a reset, never a clean end; nothing is
# cached; the next request goes to the upstream again; a hanging upstream
# gives a fast 503.
source "$(dirname "$0")/lib/common.sh"
need mdb_dump

SIZE=$((3 * 1048576 + 4321))
# The digest georeg is asked for is that of different bytes of the same length.
DIGEST="sha256:$(python3 -c "import random,hashlib,sys; sys.stdout.write(hashlib.sha256(random.Random('other').randbytes($SIZE)).hexdigest())")"

start_fake wrong-bytes --size "$SIZE"
start_georeg --cache-dir "$WORK/cache" --upstream "fake=http://$FAKE"
url="$GEOREG_URL/v2/x/blobs/$DIGEST?ns=fake"
pids=()
for i in 1 2 3 4; do
  curl -s -o "$WORK/out.$i" "$url" &
  pids+=($!)
  sleep 0.1
done
resets=0
for p in "${pids[@]}"; do
  wait "$p"
  rc=$?
  # 18: partial transfer, 56: receive failure (reset) - never 0, a clean end.
  if [ "$rc" = 18 ] || [ "$rc" = 56 ]; then resets=$((resets + 1)); fi
done
expect_eq "every client of the bad fill saw a reset, not a clean end" 4 "$resets"
small=0
for i in 1 2 3 4; do [ "$(stat -c %s "$WORK/out.$i")" -lt "$SIZE" ] && small=$((small + 1)); done
expect_eq "no client received the whole length" 4 "$small"
expect_eq "one upstream request for the four clients" 1 "$(grep -c "GET /v2/x/blobs/$DIGEST" "$FAKE_LOG")"
check "the mismatch is logged" grep -q "digest mismatch" "$GEOREG_LOG"
check "nothing is cached" bash -c "! mdb_dump -s blobs '$WORK/cache' | grep -q '^ '"
# A ranged client of a failing fill is reset too, even though its range ends
# long before the blob does: a fill's bytes are not trusted until verified.
curl -s -o "$WORK/ranged" -H "Range: bytes=0-99" "$url"
rc=$?
check "a ranged client of a bad fill is reset (curl $rc)" test "$rc" = 18 -o "$rc" = 56
expect_eq "the next request goes to the upstream again" 2 "$(grep -c "GET /v2/x/blobs/$DIGEST" "$FAKE_LOG")"
stop_georeg
stop_pid "$FAKE_PID"

# Truncated body.
start_fake truncate --size "$SIZE"
start_georeg --cache-dir "$WORK/cache" --upstream "fake=http://$FAKE"
curl -s -o "$WORK/trunc" "$GEOREG_URL/v2/x/blobs/$DIGEST?ns=fake"
rc=$?
check "a truncated upstream body is not a clean end for the client (curl $rc)" test "$rc" = 18 -o "$rc" = 56
check "nothing is cached after truncation" bash -c "! mdb_dump -s blobs '$WORK/cache' | grep -q '^ '"
stop_georeg
stop_pid "$FAKE_PID"

# An upstream that accepts and never answers: a fast 503, never a hang.
start_fake hang
write_config fake "http://$FAKE" 'response_timeout = "2s"'
check "config check accepts the file" "$GEOREG" config check --config "$WORK/georeg.toml"
start_georeg --config "$WORK/georeg.toml"
start=$(date +%s%N)
code=$(curl -s -o "$WORK/hang.body" -w '%{http_code}' --max-time 30 "$GEOREG_URL/v2/x/blobs/$DIGEST")
ms=$((($(date +%s%N) - start) / 1000000))
expect_eq "hanging upstream: blob answered 503" 503 "$code"
check "hanging upstream: answered within 10 s (took ${ms} ms)" test "$ms" -lt 10000
check "hanging upstream: OCI error body" grep -q '"UNAVAILABLE"' "$WORK/hang.body"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$GEOREG_URL/v2/x/manifests/latest")
expect_eq "hanging upstream: manifest answered 503" 503 "$code"
stop_georeg
expect_eq "georeg exits 0 on SIGTERM" 0 $?
it_finish
