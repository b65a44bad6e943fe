# shellcheck shell=bash
# Regions as network namespaces, with real latency between them. Source after common.sh.
#
# net_up REGIONS HOSTS "A-B=RTT,..." INTRA_RTT ORIGIN_RTT builds:
#   $NET_PREFIX-hub        a router (no bridge, so no br_netfilter needed): every
#                          packet between hosts is forwarded here, where iptables
#                          sends it to NFQUEUE and lib/netdelay.py holds it for
#                          half the RTT of its region pair (this kernel has no netem)
#   $NET_PREFIX-rRhH       host H of region R: eth0 = 10.$NET_OCTET.R.H
#   $NET_PREFIX-origin     10.$NET_OCTET.100.1 (region 100), ORIGIN_RTT from every region
# Every host reaches every other through the hub. net_cut R drops everything
# between region R and the rest (silently, as a real partition); net_heal undoes it.
# Namespaces, the delay process and everything started inside are removed by
# net_down, which the test's cleanup runs.

NET_PREFIX="grg$$"
NET_OCTET=88
NET_HUB="$NET_PREFIX-hub"
declare -a NET_NAMESPACES=()

ns_of() { echo "$NET_PREFIX-$1"; }
ip_of() {
  case "$1" in
    origin) echo "10.$NET_OCTET.100.1" ;;
    r*h*) local r="${1#r}"; echo "10.$NET_OCTET.${r%h*}.${1#*h}" ;;
  esac
}
# in_ns HOST CMD...: runs CMD inside HOST's namespace.
in_ns() { local h="$1"; shift; ip netns exec "$(ns_of "$h")" "$@"; }

net_add_ns() {
  ip netns add "$1" || die "cannot create namespace $1"
  NET_NAMESPACES+=("$1")
  ip -n "$1" link set lo up
}

net_add_host() {  # NAME
  local name="$1" ns ip port
  ns=$(ns_of "$name") ip=$(ip_of "$name") port="v$name"
  net_add_ns "$ns"
  ip link add eth0 netns "$ns" type veth peer name "$port" netns "$NET_HUB" || die "veth for $name"
  ip -n "$ns" addr add "$ip/32" dev eth0
  ip -n "$ns" link set eth0 up
  # The hub answers as 10.X.254.1 on every port; everything goes through it.
  ip -n "$ns" route add "10.$NET_OCTET.254.1" dev eth0
  ip -n "$ns" route add "10.$NET_OCTET.0.0/16" via "10.$NET_OCTET.254.1" dev eth0
  ip -n "$NET_HUB" addr add "10.$NET_OCTET.254.1/32" dev "$port"
  ip -n "$NET_HUB" link set "$port" up
  ip -n "$NET_HUB" route add "$ip/32" dev "$port"
}

net_up() {  # REGIONS HOSTS RTT_PAIRS INTRA_RTT ORIGIN_RTT
  local regions="$1" hosts="$2" pairs="$3" intra="$4" origin_rtt="$5" r h a b
  need ip; need iptables
  IT_AFTER_CLEANUP=net_down
  net_add_ns "$NET_HUB"
  ip netns exec "$NET_HUB" sysctl -qw net.ipv4.ip_forward=1
  for ((r = 1; r <= regions; r++)); do for ((h = 1; h <= hosts; h++)); do net_add_host "r${r}h${h}"; done; done
  net_add_host origin
  # One-way delay = RTT / 2 for each ordered region pair.
  {
    printf '{"oneway_ms": {'
    local first=1 sep
    for ((a = 1; a <= regions; a++)); do
      [ $first = 1 ] && sep="" || sep=","
      first=0
      printf '%s"%d-%d": %s, "%d-100": %s, "100-%d": %s' "$sep" "$a" "$a" "$(awk -v v="$intra" 'BEGIN{print v/2}')" \
        "$a" "$(awk -v v="$origin_rtt" 'BEGIN{print v/2}')" "$a" "$(awk -v v="$origin_rtt" 'BEGIN{print v/2}')"
    done
    local p
    IFS=',' read -ra items <<<"$pairs"
    for p in "${items[@]}"; do
      [[ "$p" =~ ^([0-9]+)-([0-9]+)=([0-9.]+)$ ]] || die "bad RTT pair '$p'"
      local half
      half=$(awk -v v="${BASH_REMATCH[3]}" 'BEGIN{print v/2}')
      printf ', "%s-%s": %s, "%s-%s": %s' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "$half" \
        "${BASH_REMATCH[2]}" "${BASH_REMATCH[1]}" "$half"
    done
    printf '}}\n'
  } >"$WORK/delays.json"
  python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$WORK/delays.json" || die "bad delays.json"
  start_bg netdelay "$WORK/netdelay.log" ip netns exec "$NET_HUB" nice -n -10 python3 "$IT_LIB/netdelay.py" \
    --config "$WORK/delays.json"
  NET_DELAY_PID=$LAST_PID
  for _ in $(seq 50); do grep -q 'holding packets' "$WORK/netdelay.log" && break; sleep 0.1; done
  grep -q 'holding packets' "$WORK/netdelay.log" || die "the delay process did not start"
  # Partitions first, then the queue. If netdelay dies, forwarding stops (fail closed).
  ip netns exec "$NET_HUB" iptables -N GRG-CUT
  ip netns exec "$NET_HUB" iptables -A FORWARD -j GRG-CUT
  ip netns exec "$NET_HUB" iptables -A FORWARD -j NFQUEUE --queue-num 0
  log "network: $regions regions x $hosts hosts + origin, RTT intra $intra ms, $pairs, origin $origin_rtt ms"
}

net_cut() {  # REGION: drop everything between it and the other regions (and the origin)
  local sub="10.$NET_OCTET.$1.0/24"
  ip netns exec "$NET_HUB" iptables -A GRG-CUT -s "$sub" ! -d "$sub" -j DROP
  ip netns exec "$NET_HUB" iptables -A GRG-CUT -d "$sub" ! -s "$sub" -j DROP
}
net_heal() { ip netns exec "$NET_HUB" iptables -F GRG-CUT; }

# connect_ms FROM TO PORT: TCP connect time from host FROM to host TO (one round trip), in ms.
connect_ms() {
  in_ns "$1" curl -s -o /dev/null --max-time 5 -w '%{time_connect}' "http://$(ip_of "$2"):$3/" |
    awk '{ printf "%d\n", $1 * 1000 }'
}

net_down() {
  local ns p
  for ns in "${NET_NAMESPACES[@]}"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  done
  for ((i = ${#NET_NAMESPACES[@]} - 1; i >= 0; i--)); do ip netns del "${NET_NAMESPACES[$i]}" 2>/dev/null; done
}
