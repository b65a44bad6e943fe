#!/usr/bin/env bash
# peer_fetch.sh [SIZE_MB] [RUNS]: how fast a miss is filled from a peer,
# against a fill from the upstream, in the same run.
#
#   bash bench/peer_fetch.sh            # 256 MiB blob, 3 runs
#
# Two georeg nodes on loopback in one cluster, in different regions (so node
# b asks node a as the nearest region that has the blob), nginx (sendfile) as
# the upstream. Each run: the blob is removed from both caches; node a fills
# it from nginx (upstream fill: hash + store); once b holds a's new summary,
# b fills it from a (peer fill: a serves from its cache, b hashes and stores).
# Prints both medians and their ratio. Loopback hides the network: this is
# the cost of georeg on both ends, not of a WAN. Needs root (nginx) and build/.
cd "$(dirname "$0")/.."
SIZE_MB="${1:-256}"
RUNS="${2:-3}"
source bench/lib.sh

head -c "$((SIZE_MB << 20))" /dev/urandom >"$W/blob"
DIGEST="sha256:$(sha256sum "$W/blob" | cut -d' ' -f1)"
mkdir -p "$W/www/v2/bench/blobs"
mv "$W/blob" "$W/www/v2/bench/blobs/$DIGEST"
start_nginx "$W/www"

head -c 32 /dev/urandom | base64 >"$W/key"
PA=$(free_port) PB=$(free_port)
for n in a b; do
  port=$PA; [ $n = b ] && port=$PB
  cat >"$W/$n.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
[cache]
dir = "$W/$n.cache"
max_size = "$((SIZE_MB * 2 + 64))MiB"
scrub_rate = 0
[node]
name = "$n"
region = "region-$n"
[cluster]
key_file = "$W/key"
advertise = "http://127.0.0.1:$port"
seeds = ["http://127.0.0.1:$PA"]
probe_interval = "500ms"
probe_timeout = "200ms"
[[upstream]]
registry = "bench"
url = "http://127.0.0.1:$NGINX_PORT"
TOML
  "$GEOREG" serve -c "$W/$n.toml" 2>"$W/$n.log" &
  BENCH_PIDS+=($!)
done
sleep 2
PATH_Q="/v2/bench/blobs/$DIGEST?ns=bench"
summary_of() { "$GEOREG" peers ls -o json --cache-dir "$W/$1.cache" | jq --arg m "$2" '.members[] | select(.name == $m) | .summary_version'; }
wait_summary() {  # VIEWER MEMBER: until VIEWER holds MEMBER's current summary
  sleep 1.2
  local want
  want=$(summary_of "$2" "$2")
  for _ in $(seq 50); do [ "$(summary_of "$1" "$2")" -ge "$want" ] && return 0; sleep 0.1; done
  echo "summary of $2 did not reach $1" >&2
  exit 1
}
cached() { "$GEOREG" cache ls -o json --cache-dir "$W/$1.cache" | jq -e --arg d "$DIGEST" 'any(.[]; .digest == $d)' >/dev/null; }
wait_cached() { for _ in $(seq 100); do cached "$1" && return 0; sleep 0.1; done; echo "$1 did not cache the blob" >&2; exit 1; }
for i in $(seq "$RUNS"); do
  # A client has its last byte once the digest matched; the blob is published
  # a moment later. Remove it only once it is there.
  if [ "$i" -gt 1 ]; then wait_cached a; wait_cached b; fi
  for n in a b; do "$GEOREG" cache rm "$DIGEST" --cache-dir "$W/$n.cache" >/dev/null 2>&1 || true; done
  wait_summary a b
  curl -s -o /dev/null -w '%{speed_download}\n' "http://127.0.0.1:$PA$PATH_Q" | awk '{printf "%.0f\n", $1 / 1048576}' >>"$W/upstream.runs"
  wait_summary b a
  curl -s -o /dev/null -w '%{speed_download}\n' "http://127.0.0.1:$PB$PATH_Q" | awk '{printf "%.0f\n", $1 / 1048576}' >>"$W/peer.runs"
done
fills_from_a=$(grep -c "fill: GET blob $DIGEST from peer a" "$W/b.log" || true)
fills_b_upstream=$(grep -c "fill: GET blob $DIGEST from upstream" "$W/b.log" || true)
u=$(median <"$W/upstream.runs") p=$(median <"$W/peer.runs")
echo "blob: ${SIZE_MB} MiB, ${RUNS} runs, loopback, same invocation"
echo "upstream fill at a (nginx -> georeg) MiB/s: $(tr '\n' ' ' <"$W/upstream.runs") -> median $u"
echo "peer fill at b (georeg a -> georeg b) MiB/s: $(tr '\n' ' ' <"$W/peer.runs") -> median $p"
echo "peer / upstream fill: $(awk -v a="$p" -v b="$u" 'BEGIN{printf "%.2f", a/b}')"
echo "b filled from peer a $fills_from_a time(s), from the upstream $fills_b_upstream time(s)"
