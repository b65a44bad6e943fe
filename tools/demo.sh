#!/usr/bin/env bash
# demo.sh: georeg on this machine alone. Starts an origin registry (Debian's
# docker-registry) with a sample image, three georeg nodes in three regions
# (eastus, westeurope, japaneast) on loopback, pulls the image through one,
# pushes one to the fleet's own registry at another, and prints
# `replication list -o table`, `status` and the map's URL. Ctrl-C stops
# everything it started and removes its files. DEMO_NO_WAIT=1: stop right
# after printing (the test of this script uses it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh demo
[ -f build/build.ninja ] || meson setup build --buildtype=release >/dev/null
ninja -C build src/georeg >/dev/null
GEOREG="$PWD/build/src/georeg"
WORK="$(mktemp -d /tmp/georeg-demo.XXXXXX)"
PIDS=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping: ${#PIDS[@]} process(es)"
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  # georeg drains in well under a second; docker-registry may sit on SIGTERM.
  for _ in $(seq 50); do
    local left=0
    for p in "${PIDS[@]}"; do [ "$(ps -o stat= -p "$p" 2>/dev/null)" ] && [[ "$(ps -o stat= -p "$p")" != Z* ]] && left=1; done
    [ $left = 0 ] && break
    sleep 0.1
  done
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  if [ "${DEMO_KEEP:-0}" = 1 ]; then echo "stopped; files kept in $WORK"; else rm -rf "$WORK"; echo "stopped; $WORK removed"; fi
}
trap stop EXIT
trap 'exit 130' INT TERM  # through the EXIT trap: stop, then leave
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_url() { for _ in $(seq 100); do curl -s -o /dev/null --max-time 1 "$1" && return 0; sleep 0.1; done; echo "demo: $1 did not come up" >&2; exit 1; }

# ---- the origin, with a sample image ----
OP=$(port)
cat >"$WORK/origin.yml" <<YML
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $WORK/origin-data}}
http: {addr: 127.0.0.1:$OP, secret: georeg-demo}
YML
docker-registry serve "$WORK/origin.yml" >"$WORK/origin.log" 2>&1 &
PIDS+=($!)
wait_url "http://127.0.0.1:$OP/v2/"
python3 tests/integration/lib/make_images.py "$WORK/images" --big-mb 4 >/dev/null
SK=(skopeo copy -q --src-tls-verify=false --dest-tls-verify=false)
"${SK[@]}" "oci:$WORK/images/team_app:1.0" "docker://127.0.0.1:$OP/team/app:1.0"
echo "origin registry on 127.0.0.1:$OP holds team/app:1.0"

# ---- three nodes, three regions ----
head -c 32 /dev/urandom | base64 >"$WORK/cluster.key"
printf 'demo\n' | "$GEOREG" registry htpasswd demo --cost 4 >"$WORK/htpasswd"
declare -A REGION=([n1]=eastus [n2]=westeurope [n3]=japaneast) PORT
for n in n1 n2 n3; do PORT[$n]=$(port); done
for n in n1 n2 n3; do
  cat >"$WORK/$n.toml" <<TOML
[server]
listen = "127.0.0.1:${PORT[$n]}"
[cache]
dir = "$WORK/$n.cache"
max_size = "1GiB"
[node]
name = "$n"
region = "${REGION[$n]}"
[cluster]
key_file = "$WORK/cluster.key"
advertise = "http://127.0.0.1:${PORT[$n]}"
seeds = ["http://127.0.0.1:${PORT[n1]}"]
[registry]
name = "fleet.local"
push_htpasswd = "$WORK/htpasswd"
max_size = "512MiB"
[log]
access = false
[[upstream]]
registry = "origin.local"
url = "http://127.0.0.1:$OP"
TOML
  "$GEOREG" serve --config "$WORK/$n.toml" >"$WORK/$n.log" 2>&1 &
  PIDS+=($!)
done
for n in n1 n2 n3; do wait_url "http://127.0.0.1:${PORT[$n]}/healthz"; done
echo "georeg n1 (eastus) 127.0.0.1:${PORT[n1]}, n2 (westeurope) 127.0.0.1:${PORT[n2]}, n3 (japaneast) 127.0.0.1:${PORT[n3]}"
for _ in $(seq 100); do
  [ "$("$GEOREG" status --endpoint "http://127.0.0.1:${PORT[n1]}" -o json | jq '[.peers[] | select(.state == "alive")] | length')" = 2 ] && break
  sleep 0.2
done

# ---- pull through n1 (the path names the upstream), push to n2 ----
"${SK[@]}" "docker://127.0.0.1:${PORT[n1]}/origin.local/team/app:1.0" "dir:$WORK/pulled"
echo "pulled origin.local/team/app:1.0 through n1 (now cached there)"
"${SK[@]}" --dest-creds demo:demo "oci:$WORK/images/team_app:1.0" "docker://127.0.0.1:${PORT[n2]}/demo/hello:1.0"
echo "pushed fleet.local/demo/hello:1.0 at n2 (westeurope): its region holds the first replication"
R=("$GEOREG" replication --registry fleet.local --endpoint "http://127.0.0.1:${PORT[n1]}" -u demo -p demo)
for _ in $(seq 100); do  # the first push's region becomes the first replication
  "${R[@]}" list -o json | jq -e '.[] | select(.name == "westeurope")' >/dev/null && break
  sleep 0.2
done
"${R[@]}" create --location japaneast >/dev/null
echo "replicated fleet.local to japaneast too (georeg replication create --location japaneast)"
for _ in $(seq 100); do
  [ "$("${R[@]}" list -o json | jq '[.[] | select(.status.displayStatus == "Ready")] | length')" = 2 ] && break
  sleep 0.3
done
echo
echo "\$ georeg replication list -o table"
"${R[@]}" list -o table
echo
echo "\$ georeg status --endpoint http://127.0.0.1:${PORT[n1]}"
"$GEOREG" status --endpoint "http://127.0.0.1:${PORT[n1]}"
echo
echo "Map: http://127.0.0.1:${PORT[n1]}/ui/  (select eastus to replicate there: user demo, password demo)"
echo "Metrics: none in this demo (set [metrics] listen); logs in $WORK/*.log"
[ "${DEMO_NO_WAIT:-0}" = 1 ] && exit 0
echo "Ctrl-C stops everything."
while true; do sleep 3600 & wait $!; done  # wait returns at once on a signal
