#!/usr/bin/env bash
# kill -9 at random moments: CYCLES times (default 60), start georeg on the
# same cache, run concurrent fills (from a slow upstream, so kills land
# mid-fill and mid-commit), warm reads and evictions (60 blobs of 1.5 MiB
# against a 64 MiB budget), kill -9 after a random delay, restart. After every restart every blob the cache lists must be served
# whole with the right sha256 while the upstream is out of reach, and every
# blob listed before the kill must still be there (committed is never lost).
source "$(dirname "$0")/lib/common.sh"
need mdb_dump
CYCLES="${CYCLES:-60}"

mapfile -t BLOBS < <(make_blobs "$WORK/blobs" 60 1.5 crash)
start_fake files --dir "$WORK/blobs" --rate $((12 * 1048576))
write_config fake "http://$FAKE"
sed -i 's/max_size = "1GiB"/max_size = "64MiB"/' "$WORK/georeg.toml"
printf '[[upstream]]\nregistry = "dead"\nurl = "http://127.0.0.1:9"\n' >>"$WORK/georeg.toml"
CACHE=$(sed -n 's/^dir = "\(.*\)"/\1/p' "$WORK/georeg.toml")
listed() { blob_keys "$CACHE"; }

bad=0
lost=0
orphan_cleanups=0
checked=0
before=""
start=$(date +%s)
for ((cycle = 1; cycle <= CYCLES; cycle++)); do
  start_georeg --config "$WORK/georeg.toml"
  grep -q "chunk(s) of unfinished fills" "$GEOREG_LOG" && orphan_cleanups=$((orphan_cleanups + 1))
  # Everything the cache lists is whole and right, from the cache alone (ns=dead).
  now=$(listed)
  if [ -n "$now" ]; then
    checked=$((checked + $(wc -l <<<"$now")))
    python3 "$IT_LIB/verify_blobs.py" "127.0.0.1:$GEOREG_PORT" ns=dead <<<"$now" >&2
    bad=$((bad + $?))
  fi
  for d in $before; do
    grep -qx "$d" <<<"$now" || { lost=$((lost + 1)); echo "cycle $cycle: committed $d lost" >&2; }
  done
  # Load: concurrent fills and warm reads, then kill -9 at a random moment.
  clients=()
  for i in 1 2 3 4; do
    d=${BLOBS[$((RANDOM % ${#BLOBS[@]}))]}
    curl -s -o /dev/null --max-time 10 "$GEOREG_URL/v2/x/blobs/$d" &
    clients+=($!)
  done
  sleep "0.$((RANDOM % 40))"
  before=$(listed)  # committed by now (the daemon is still running)
  kill -KILL "$GEOREG_PID"
  wait "$GEOREG_PID" "${clients[@]}" 2>/dev/null
  # Evicted on purpose between the listing and the kill: not "lost".
  evicted=$(grep -o "evicted (least recently used) sha256:[0-9a-f]*" "$GEOREG_LOG" | awk '{print $NF}')
  [ -n "$evicted" ] && before=$(grep -vxF -f <(echo "$evicted") <<<"$before")
done
elapsed=$(($(date +%s) - start))
echo "crash loop: $CYCLES cycles in ${elapsed}s, $checked blob checks, $(listed | wc -l) blobs cached at the end"
expect_eq "after $CYCLES kill -9 cycles: every listed blob served whole and right" 0 "$bad"
expect_eq "after $CYCLES kill -9 cycles: no committed blob lost" 0 "$lost"
check "the cache filled up along the way" test "$(listed | wc -l)" -gt 0
check "kills landed mid-fill: $orphan_cleanups restarts cleared chunks of unfinished fills" test "$orphan_cleanups" -gt 0
start_georeg --config "$WORK/georeg.toml"
stop_georeg
expect_eq "a clean stop after the loop" 0 $?
it_finish
