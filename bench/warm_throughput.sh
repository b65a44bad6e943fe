#!/usr/bin/env bash
# warm_throughput.sh [SIZE_MB] [RUNS]: warm single-stream throughput of one
# blob served by georeg from its cache, against nginx serving the same bytes
# as a static file, in the same run; and georeg's memory while it serves.
#
#   bash bench/warm_throughput.sh            # 1 GiB blob, 5 runs each
#
# nginx is also the upstream georeg fills from (a blob URL is a static path).
# Each run is `curl -o /dev/null` over loopback; medians and the ratio are
# printed. Memory: georeg's peak RSS during the warm reads (VmHWM, reset with
# /proc/PID/clear_refs before them) and its peak anonymous RSS (sampled every
# 20 ms): file-backed pages of data.mdb that the kernel maps while georeg
# writes from the map count in RSS but are page cache, not georeg's heap.
# Needs root (nginx), and the build in build/ (tools/run.sh or tools/test.sh).
cd "$(dirname "$0")/.."
SIZE_MB="${1:-1024}"
RUNS="${2:-5}"
source bench/lib.sh

echo "making a ${SIZE_MB} MiB random blob..." >&2
head -c "$((SIZE_MB << 20))" /dev/urandom >"$W/blob"
DIGEST="sha256:$(sha256sum "$W/blob" | cut -d' ' -f1)"
mkdir -p "$W/www/v2/bench/blobs"
mv "$W/blob" "$W/www/v2/bench/blobs/$DIGEST"

start_nginx "$W/www"
start_georeg --cache-dir "$W/cache" --upstream "bench=http://127.0.0.1:$NGINX_PORT"
GPID=$GEOREG_PID
NGINX_URL="http://127.0.0.1:$NGINX_PORT/v2/bench/blobs/$DIGEST"
GEOREG_URL="http://127.0.0.1:$GEOREG_PORT/v2/bench/blobs/$DIGEST"

echo "filling georeg's cache (cold)..." >&2
cold=$(curl -s -o /dev/null -w '%{speed_download}' "$GEOREG_URL")
for _ in $(seq 100); do grep -q "cached blob" "$W/georeg.log" && break; sleep 0.1; done
# Warm the page cache for both sources before measuring.
curl -s -o /dev/null "$NGINX_URL"
curl -s -o /dev/null "$GEOREG_URL"

echo 5 >"/proc/$GPID/clear_refs" 2>/dev/null || true
peak_anon=0
( while kill -0 "$GPID" 2>/dev/null; do
    awk '/^RssAnon/{print $2}' "/proc/$GPID/status"; sleep 0.02
  done ) >"$W/anon.samples" &
sampler=$!

measure() {  # URL -> MB/s per run, one per line
  for _ in $(seq "$RUNS"); do
    curl -s -o /dev/null -w '%{speed_download}\n' "$1" | awk '{printf "%.0f\n", $1 / 1048576}'
  done
}
n_runs=$(measure "$NGINX_URL" | tee "$W/nginx.runs" | median)
g_runs=$(measure "$GEOREG_URL" | tee "$W/georeg.runs" | median)
hwm=$(awk '/^VmHWM/{print $2}' "/proc/$GPID/status")
kill "$sampler" 2>/dev/null || true
peak_anon=$(sort -n "$W/anon.samples" | tail -1)

echo "blob: ${SIZE_MB} MiB, ${RUNS} runs each, curl over loopback, same machine, same invocation"
echo "cold fill through georeg:         $(awk -v s="$cold" 'BEGIN{printf "%.0f", s/1048576}') MiB/s"
echo "nginx static (sendfile) MiB/s:    $(tr '\n' ' ' <"$W/nginx.runs") -> median $n_runs"
echo "georeg warm MiB/s:                $(tr '\n' ' ' <"$W/georeg.runs") -> median $g_runs"
echo "georeg / nginx:                   $(awk -v g="$g_runs" -v n="$n_runs" 'BEGIN{printf "%.2f", g/n}')"
echo "georeg peak RSS during warm reads: $((hwm / 1024)) MiB (VmHWM, includes mapped data.mdb pages)"
echo "georeg peak anonymous RSS:         $((peak_anon / 1024)) MiB"
