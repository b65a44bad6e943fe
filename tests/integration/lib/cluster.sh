# shellcheck shell=bash
# Helpers for tests with several georeg nodes in a cluster. Source after common.sh.

# cluster_key: writes a fresh shared secret to $WORK/cluster.key.
cluster_key() { head -c 32 /dev/urandom | base64 >"$WORK/cluster.key"; }

# node_config NAME REGION LISTEN ADVERTISE_URL SEEDS_TOML UPSTREAM_REGISTRY UPSTREAM_URL:
# writes $WORK/NAME.toml with its own cache directory $WORK/NAME.cache,
# $SERVER_EXTRA lines in [server], $CLUSTER_EXTRA lines in [cluster],
# $NODE_EXTRA_TOML at the end, and
# short protocol periods (tests want failures seen in seconds).
node_config() {
  local name="$1" region="$2" listen="$3" advertise="$4" seeds="$5" registry="$6" url="$7"
  mkdir -p "$WORK/$name.cache"
  cat >"$WORK/$name.toml" <<TOML
[server]
listen = "$listen"
${SERVER_EXTRA:-}
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

# ---- a fleet serving the own registry: the one set-up fleet tests share ----
# fleet_registry NAME MAX_SIZE [MORE_TOML]: every node will serve the own
# registry NAME (push user alice, password s3cret) within MAX_SIZE, with
# MORE_TOML lines in its [registry] table; writes the cluster key. Sets REG.
fleet_registry() {
  REG="$1"
  printf 's3cret\n' | "$GEOREG" registry htpasswd alice --cost 4 >"$WORK/htpasswd" ||
    die "registry htpasswd failed"
  cluster_key
  NODE_EXTRA_TOML="[registry]
name = \"$REG\"
push_htpasswd = \"$WORK/htpasswd\"
max_size = \"$2\"
${3:-}"
}

# fleet_start NODE=REGION...: starts the nodes, every one seeded with the
# first, and waits until each answers and sees all of them alive. On
# loopback each listens on a port of its own; with FLEET_NETNS=1 each NODE
# is a host of net_up (lib/netns.sh) and listens on port 5000 of its
# namespace. A function fleet_node_config, when defined, is called with the
# node's name after its config is written (to add to it). The nodes mirror
# $FLEET_UPSTREAM_REGISTRY at $FLEET_UPSTREAM_URL (default: an upstream
# nothing answers at). Sets NODES,
# REGION, URL (as the node's peers reach it), LOCAL (as a client on its
# host reaches it), PORT (loopback only) and PID.
declare -a NODES
declare -A REGION URL LOCAL PORT PID
# GEOREG_FOR[NODE]: another binary for that node (a mixed fleet); $GEOREG by default.
declare -A GEOREG_FOR
fleet_start() {
  local spec n
  NODES=()
  for spec in "$@"; do
    n="${spec%%=*}"
    NODES+=("$n")
    REGION[$n]="${spec#*=}"
    if [ "${FLEET_NETNS:-0}" = 1 ]; then
      URL[$n]="http://$(ip_of "$n"):5000"
      LOCAL[$n]="http://127.0.0.1:5000"
    else
      PORT[$n]=$(free_port)
      URL[$n]="http://127.0.0.1:${PORT[$n]}"
      LOCAL[$n]="${URL[$n]}"
    fi
  done
  for n in "${NODES[@]}"; do fleet_start_node "$n"; done
  local took
  took=$(wait_until 30 fleet_all_alive)
  check "the ${#NODES[@]} nodes see each other alive (${took}s)" test "$took" != timeout
}

# fleet_run NODE CMD...: CMD where NODE's clients run (its namespace, if any).
fleet_run() {
  local n="$1"; shift
  if [ "${FLEET_NETNS:-0}" = 1 ]; then in_ns "$n" "$@"; else "$@"; fi
}

# fleet_start_node NODE: (re)starts one node of the fleet as fleet_start did
# and waits until it answers.
fleet_start_node() {
  local n="$1" listen="127.0.0.1:${PORT[$1]:-}"
  [ "${FLEET_NETNS:-0}" = 1 ] && listen="0.0.0.0:5000"
  node_config "$n" "${REGION[$n]}" "$listen" "${URL[$n]}" "\"${URL[${NODES[0]}]}\"" \
    "${FLEET_UPSTREAM_REGISTRY:-mirror.invalid}" "${FLEET_UPSTREAM_URL:-http://127.0.0.1:9}"
  if declare -F fleet_node_config >/dev/null; then fleet_node_config "$n"; fi
  local bin="${GEOREG_FOR[$n]:-$GEOREG}"
  if [ "${FLEET_NETNS:-0}" = 1 ]; then
    start_bg "$n" "$WORK/$n.log" ip netns exec "$(ns_of "$n")" "$bin" serve -c "$WORK/$n.toml"
  else
    start_bg "$n" "$WORK/$n.log" "$bin" serve -c "$WORK/$n.toml"
  fi
  PID[$n]=$LAST_PID
  local _
  for _ in $(seq "$START_WAIT_TENTHS"); do
    fleet_run "$n" curl -s -o /dev/null --max-time 1 "${LOCAL[$n]}/healthz" && return 0
    sleep 0.1
  done
  die "$n did not start"
}

# fleet_all_alive: every node sees every node alive.
fleet_all_alive() {
  local n
  for n in "${NODES[@]}"; do [ "$(alive_count "$n")" = "${#NODES[@]}" ] || return 1; done
}

# fleet_stop [NODE...]: stops the nodes (all by default) by PID; each must
# still run and exit 0 on SIGTERM (a test that killed one names the others).
fleet_stop() {
  local n
  for n in "${@:-${NODES[@]}}"; do
    stop_pid "${PID[$n]}"
    expect_eq "$n exits 0 on SIGTERM" 0 $?
  done
}
