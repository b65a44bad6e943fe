#!/usr/bin/env bash
# cache_churn.sh [BUDGET_MIB] [ROUNDS] [BLOB_MIB]: writes ROUNDS budgets'
# worth of distinct blobs through georeg (default: a 256 MiB budget, 10
# rounds, 32 MiB blobs) and reports
#   - cold fill throughput of the first budget's worth against the last
#     (median MiB/s per blob, and their ratio),
#   - data.mdb's size after each round against the budget (max ratio).
# nginx serves the blobs as static files and is georeg's upstream.
#   bash bench/cache_churn.sh
# Needs root (nginx) and the build in build/.
cd "$(dirname "$0")/.."
BUDGET_MIB="${1:-256}"
ROUNDS="${2:-10}"
BLOB_MIB="${3:-32}"
source bench/lib.sh

per_round=$((BUDGET_MIB / BLOB_MIB))
total=$((per_round * ROUNDS))
echo "making $total blobs of $BLOB_MIB MiB ($((total * BLOB_MIB)) MiB)..." >&2
mkdir -p "$W/www/v2/bench/blobs"
python3 - "$W/www/v2/bench/blobs" "$total" "$BLOB_MIB" >"$W/digests" <<'PY'
import hashlib, os, sys
d, n, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
block = os.urandom(mib << 20)
for i in range(n):
    data = i.to_bytes(8, "little") + block[8:]   # distinct blobs without n x urandom
    h = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(os.path.join(d, h), "wb") as f:
        f.write(data)
    print(h)
PY
start_nginx "$W/www"
printf '[cache]\ndir = "%s"\nmax_size = "%sMiB"\n[[upstream]]\nregistry = "bench"\nurl = "http://127.0.0.1:%s"\n' \
  "$W/cache" "$BUDGET_MIB" "$NGINX_PORT" >"$W/georeg.toml"
start_georeg --config "$W/georeg.toml"

i=0
max_ratio=0
: >"$W/speeds"
while read -r d; do
  speed=$(curl -s -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$GEOREG_PORT/v2/bench/blobs/$d")
  echo "$((i / per_round)) $(awk -v s="$speed" 'BEGIN{printf "%.0f", s/1048576}')" >>"$W/speeds"
  i=$((i + 1))
  if [ $((i % per_round)) = 0 ]; then
    size=$(stat -c %s "$W/cache/data.mdb")
    ratio=$(awk -v s="$size" -v b="$BUDGET_MIB" 'BEGIN{printf "%.3f", s/(b*1048576)}')
    echo "round $((i / per_round)): data.mdb $((size >> 20)) MiB = ${ratio} x budget"
    max_ratio=$(awk -v a="$max_ratio" -v b="$ratio" 'BEGIN{print (b > a) ? b : a}')
  fi
done <"$W/digests"
first=$(awk '$1 == 0 {print $2}' "$W/speeds" | median)
last=$(awk -v r=$((ROUNDS - 1)) '$1 == r {print $2}' "$W/speeds" | median)
evictions=$(grep -c "evicted (least recently used)" "$W/georeg.log" || true)
echo "budget ${BUDGET_MIB} MiB, ${ROUNDS} budgets written ($total blobs of ${BLOB_MIB} MiB), $evictions evictions"
echo "cold fill MiB/s, median per blob: first budget $first, last budget $last, last/first $(awk -v a="$first" -v b="$last" 'BEGIN{printf "%.2f", b/a}')"
echo "data.mdb at most ${max_ratio} x max_size"
