# shellcheck shell=bash
# Helpers for tests with several georeg nodes in a cluster. Source after common.sh.

# cluster_key: writes a fresh shared secret to $WORK/cluster.key.
cluster_key() { head -c 32 /dev/urandom | base64 >"$WORK/cluster.key"; }

# node_config NAME REGION LISTEN ADVERTISE_URL SEEDS_TOML UPSTREAM_REGISTRY UPSTREAM_URL:
# writes $WORK/NAME.toml with its own cache directory $WORK/NAME.cache and
# $CLUSTER_EXTRA lines in [cluster], $NODE_EXTRA_TOML at the end, and
# short protocol periods (tests want failures seen in seconds).
node_config() {
  local name="$1" region="$2" listen="$3" advertise="$4" seeds="$5" registry="$6" url="$7"
  mkdir -p "$WORK/$name.cache"
  cat >"$WORK/$name.toml" <<TOML
[server]
listen = "$listen"
[cache]
dir = "$WORK/$name.cache"
max_size = "1GiB"
scrub_rate = 0
[node]
name = "$name"
region = "$region"
[cluster]
key_file = "$WORK/cluster.key"
advertise = "$advertise"
seeds = [$seeds]
probe_interval = "${PROBE_INTERVAL:-500ms}"
probe_timeout = "${PROBE_TIMEOUT:-300ms}"
suspect_timeout = "${SUSPECT_TIMEOUT:-2s}"
sync_interval = "${SYNC_INTERVAL:-2s}"
peer_timeout = "${PEER_TIMEOUT:-2s}"
${CLUSTER_EXTRA:-}
[[upstream]]
registry = "$registry"
url = "$url"
connect_timeout = "3s"
${NODE_EXTRA_TOML:-}
TOML
}

# peers_json NAME: the cluster as node NAME sees it (georeg peers ls -o json).
peers_json() { "$GEOREG" peers ls -o json --cache-dir "$WORK/$1.cache" 2>/dev/null; }
# member_state VIEWER MEMBER: alive, suspect, dead, left, or "unknown".
member_state() {
  peers_json "$1" | jq -r --arg m "$2" '[.members[] | select(.name == $m) | .state][0] // "unknown"'
}
# alive_count VIEWER: members (self included) VIEWER sees alive.
alive_count() { peers_json "$1" | jq '[.members[] | select(.state == "alive")] | length'; }

# wait_until SECONDS CMD...: polls CMD every 0.2 s; prints the seconds it took, fails on timeout.
wait_until() {
  local limit="$1"; shift
  local start end
  start=$(date +%s.%N)
  while true; do
    if "$@"; then
      end=$(date +%s.%N)
      awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f\n", b - a }'
      return 0
    fi
    if awk -v a="$start" -v b="$(date +%s.%N)" -v l="$limit" 'BEGIN { exit !(b - a > l) }'; then
      echo "timeout"
      return 1
    fi
    sleep 0.2
  done
}
