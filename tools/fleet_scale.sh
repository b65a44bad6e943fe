#!/usr/bin/env bash
# fleet_scale.sh [NODES] [REGIONS]: a real fleet of daemons on this machine
# (loopback), started all in the same instant with the same three seeds,
# and what it costs (issue 22; docs/gossip.md, "A real fleet"). Prints:
#   converge   seconds until every node sees every other alive
#   push       seconds from a push's 201 at n0 until every node answers its tag
#   detect     seconds until every survivor holds 10 % of the nodes, killed
#              with SIGKILL, dead
#   idle       per node over 30 s of a converged, quiet fleet: CPU %, RSS MiB,
#              gossip body bytes sent per second, messages sent per second
# Slow (minutes) and heavy: not part of tools/test.sh. Defaults: 48 nodes, 6
# regions; the production-like protocol periods (1 s probes, 5 s suspicion,
# 5 s anti-entropy). RUNS=N repeats the start (each must converge).
set -uo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh test
if [ -z "${GEOREG:-}" ]; then  # GEOREG=path measures another build
  [ -f build/build.ninja ] || meson setup build --buildtype=release >/dev/null
  ninja -C build src/georeg >/dev/null
  export GEOREG="$PWD/build/src/georeg"
fi
source tests/integration/lib/common.sh
source tests/integration/lib/cluster.sh
N="${1:-48}" R="${2:-6}" RUNS="${RUNS:-1}"

fleet_registry fleet.scale 64MiB
for ((i = 0; i < N; i++)); do PORT[n$i]=$(free_port); done
seeds="\"http://127.0.0.1:${PORT[n0]}\", \"http://127.0.0.1:${PORT[n1]}\", \"http://127.0.0.1:${PORT[n2]}\""
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
alive_everywhere() {  # COUNT: every running node sees COUNT alive (itself included)
  local i
  for ((i = 0; i < N; i++)); do
    kill -0 "${PID[n$i]}" 2>/dev/null || continue
    [ "$(alive_count "n$i")" = "$1" ] || return 1
  done
}

for ((run = 1; run <= RUNS; run++)); do
  for ((i = 0; i < N; i++)); do
    rm -rf "$WORK/n$i.cache"
    # sendfile pinned: N start-up probes at once on one machine would
    # measure each other, not the fleet.
    SERVER_EXTRA='sendfile = "off"' \
      PROBE_INTERVAL=1s PROBE_TIMEOUT=500ms SUSPECT_TIMEOUT=5s SYNC_INTERVAL=5s PEER_TIMEOUT=2s \
      node_config "n$i" "r$((i % R))" "127.0.0.1:${PORT[n$i]}" "http://127.0.0.1:${PORT[n$i]}" \
      "$seeds" mirror.invalid http://127.0.0.1:9
  done
  t0=$(now)
  for ((i = 0; i < N; i++)); do
    "$GEOREG" serve -c "$WORK/n$i.toml" >"$WORK/n$i.log" 2>&1 &
    PID[n$i]=$!
    IT_PIDS+=("$!")
  done
  if wait_until 300 alive_everywhere "$N" >/dev/null; then
    echo "run $run: converge $(since "$t0") s ($N nodes, $R regions, all started at once)"
  else
    echo "run $run: NOT CONVERGED after 300 s"
    for ((i = 0; i < N; i++)); do echo "  n$i sees $(alive_count "n$i") alive"; done | sort | uniq -c | head
  fi
  [ "$run" -lt "$RUNS" ] && for ((i = 0; i < N; i++)); do kill -KILL "${PID[n$i]}"; wait "${PID[n$i]}" 2>/dev/null; done
done

# A push at n0, then every node answers the tag.
blob='{"scale":true}'
d="sha256:$(printf '%s' "$blob" | sha256sum | cut -d' ' -f1)"
curl -sf -o /dev/null -u alice:s3cret -X POST --data-binary "$blob" \
  "http://127.0.0.1:${PORT[n0]}/v2/scale/app/blobs/uploads/?digest=$d" || echo "blob upload failed"
manifest="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"$d\",\"size\":${#blob}},\"layers\":[]}"
t0=$(now)
code=$(curl -s -o /dev/null -w '%{http_code}' -u alice:s3cret -X PUT -H "Content-Type: application/vnd.oci.image.manifest.v1+json" \
  --data-binary "$manifest" "http://127.0.0.1:${PORT[n0]}/v2/scale/app/manifests/1.0")
t201=$(now)
answered_everywhere() {
  local i
  for ((i = 0; i < N; i++)); do
    curl -sf -o /dev/null -H "Accept: $ACCEPT_ALL" "http://127.0.0.1:${PORT[n$i]}/v2/scale/app/manifests/1.0" || return 1
  done
}
wait_until 120 answered_everywhere >/dev/null
echo "push: manifest PUT $code in $(awk -v a="$t0" -v b="$t201" 'BEGIN { printf "%.2f", b - a }') s; every node answers the tag $(since "$t201") s after the 201"

# Idle: CPU, RSS and gossip per node over 30 s.
sleep 5
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
sent() { peers_json "$1" | jq -r '[.stats.messages_sent, (.stats.gossip_bytes_sent // 0)] | join(" ")'; }
declare -A T0 M0 B0
for ((i = 0; i < N; i++)); do
  T0[n$i]=$(ticks "${PID[n$i]}")
  read -r M0[n$i] B0[n$i] <<<"$(sent "n$i")"
done
sleep 30
hz=$(getconf CLK_TCK)
cpu=0 rss=0 msgs=0 bytes=0
for ((i = 0; i < N; i++)); do
  cpu=$((cpu + $(ticks "${PID[n$i]}") - T0[n$i]))
  rss=$((rss + $(awk '/^VmRSS/ { print $2 }' "/proc/${PID[n$i]}/status")))
  read -r m b <<<"$(sent "n$i")"
  msgs=$((msgs + m - M0[n$i])) bytes=$((bytes + b - B0[n$i]))
done
awk -v c="$cpu" -v hz="$hz" -v n="$N" -v r="$rss" -v m="$msgs" -v b="$bytes" 'BEGIN {
  printf "idle per node: CPU %.2f %%, RSS %.1f MiB, gossip sent %.1f messages/s, %.0f body bytes/s\n",
    100 * c / hz / 30 / n, r / 1024 / n, m / 30 / n, b / 30 / n }'

# 10 % killed with SIGKILL: every survivor holds them dead.
k=$((N / 10))
t0=$(now)
for ((i = N - k; i < N; i++)); do kill -KILL "${PID[n$i]}"; wait "${PID[n$i]}" 2>/dev/null; done
dead_everywhere() {
  local i j
  for ((i = 0; i < N - k; i++)); do
    local json
    json=$(peers_json "n$i")
    for ((j = N - k; j < N; j++)); do
      [ "$(echo "$json" | jq -r --arg m "n$j" '.members[] | select(.name == $m) | .state')" = dead ] || return 1
    done
  done
}
if wait_until 120 dead_everywhere >/dev/null; then
  echo "detect: $k of $N killed, dead everywhere after $(since "$t0") s"
else
  echo "detect: NOT everywhere after 120 s"
fi
for ((i = 0; i < N - k; i++)); do kill -TERM "${PID[n$i]}" 2>/dev/null; done
for ((i = 0; i < N - k; i++)); do wait "${PID[n$i]}" 2>/dev/null; done
IT_PIDS=()
