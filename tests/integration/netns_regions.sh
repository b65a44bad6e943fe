#!/usr/bin/env bash
# Three regions x two georeg nodes in network namespaces, with real latency
# (RTT r1-r2 40 ms, r2-r3 80 ms, r1-r3 120 ms, 2 ms inside a region) and the
# origin (docker-registry) 200 ms away from every region:
#   - an image pulled in region 1, then in region 2: region 2's blobs come
#     from region 1, not the origin; then region 3 takes them from region 2,
#     the nearer of the two that have them;
#   - two nodes of one region pulling one uncached image at once: one origin
#     request per blob;
#   - region 3 cut off, a tag moved at the origin and seen in region 1, the
#     cut healed: region 3 answers the new digest within the documented bound;
#   - a node killed: marked dead within the bound, and its region's requests
#     go elsewhere.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/cluster.sh"
source "$(dirname "$0")/lib/netns.sh"
need jq; need skopeo; need docker-registry
[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"

net_up 3 2 "1-2=40,2-3=80,1-3=120" 2 200
ORIGIN_NS=$(ns_of origin)
ORIGIN_BIND=0.0.0.0
start_origin
BIG_MB=8 push_fixtures
ORIGIN="$(ip_of origin):$ORIGIN_PORT"  # as the nodes reach it

c=$(connect_ms r1h1 origin "$ORIGIN_PORT")
check "the delay works: a TCP connect from region 1 to the origin takes ~200 ms (${c} ms)" test "$c" -ge 190 -a "$c" -le 400

# Gossip timing for the bounds below (lib/cluster.sh defaults).
PROBE_S=0.5 SUSPECT_S=2 SYNC_S=2 PEER_TIMEOUT_S=2
cluster_key
NODES=(r1h1 r1h2 r2h1 r2h2 r3h1 r3h2)
declare -A PID
seeds="\"http://$(ip_of r1h1):5000\", \"http://$(ip_of r2h1):5000\""
for n in "${NODES[@]}"; do
  region="region${n:1:1}"
  node_config "$n" "$region" "0.0.0.0:5000" "http://$(ip_of "$n"):5000" "$seeds" "$ORIGIN" "http://$ORIGIN"
  # Regions 1 and 2 revalidate tags after 2 s; region 3 keeps them 5 minutes,
  # so what it learns after the partition comes from gossip, not its own HEAD.
  if [ "$region" = region3 ]; then echo 'tag_ttl = "5m"' >>"$WORK/$n.toml"; else echo 'tag_ttl = "2s"' >>"$WORK/$n.toml"; fi
  start_bg "$n" "$WORK/$n.log" ip netns exec "$(ns_of "$n")" "$GEOREG" serve -c "$WORK/$n.toml"
  PID[$n]=$LAST_PID
done
for n in "${NODES[@]}"; do
  for _ in $(seq 100); do in_ns "$n" curl -s -o /dev/null --max-time 1 http://127.0.0.1:5000/v2/ && break; sleep 0.1; done
done

all_alive() { for n in "${NODES[@]}"; do [ "$(alive_count "$n")" = 6 ] || return 1; done; }
took=$(wait_until 30 all_alive)
check "all six nodes see six alive (${took}s)" test "$took" != timeout
rtt_to_region() {  # VIEWER REGION: the smallest measured RTT to that region's nodes
  peers_json "$1" | jq --arg r "region$2" '[.members[] | select(.region == $r and .self == false) | .min_rtt_ms | numbers] | min // 99999'
}
rtt_ordered() {
  local a b
  a=$(rtt_to_region r3h1 2) b=$(rtt_to_region r3h1 1)
  awk -v a="$a" -v b="$b" 'BEGIN { exit !(a >= 60 && b >= 100 && b < 99999 && a < b) }'
}
took=$(wait_until 20 rtt_ordered)
RTT2=$(rtt_to_region r3h1 2) RTT1=$(rtt_to_region r3h1 1)
check "r3h1 measured region 2 (${RTT2} ms) nearer than region 1 (${RTT1} ms)" test "$took" != timeout

# pull HOST REPO TAG: the manifest by tag, then the config and every layer, each
# checked against its digest. Prints nothing; records failures.
pull() {
  local host="$1" repo="$2" tag="$3" d code
  in_ns "$host" curl -sf -H "Accept: $ACCEPT_ALL" -o "$WORK/pull.$host.json" \
    "http://127.0.0.1:5000/v2/$repo/manifests/$tag?ns=$ORIGIN" || { fail "manifest $repo:$tag via $host"; return; }
  for d in $(jq -r '.config.digest, .layers[].digest' "$WORK/pull.$host.json"); do
    code=$(in_ns "$host" curl -s -o "$WORK/blob.$host" -w '%{http_code}' --max-time 60 \
      "http://127.0.0.1:5000/v2/$repo/blobs/$d?ns=$ORIGIN")
    [ "$code" = 200 ] && [ "sha256:$(sha_of "$WORK/blob.$host")" = "$d" ] || fail "blob $d via $host" "status $code"
  done
}
blobs_of() { jq -r '.config.digest, .layers[].digest' "$FIX/$1.json"; }
origin_blob_gets() {  # FIXTURE: GETs the origin saw for that image's blobs
  local total=0 d
  for d in $(blobs_of "$1"); do total=$((total + $(origin_count "/v2/[^ ]*/blobs/$d"))); done
  echo "$total"
}
summary_of() { peers_json "$1" | jq --arg m "$2" '.members[] | select(.name == $m) | .summary_version'; }
# summaries_current MEMBER VIEWERS...: every viewer holds MEMBER's current
# summary. A node republishes its summary at most once a second, so wait
# that long after a pull before reading the version to wait for.
summaries_current() {
  local member="$1" version v; shift
  version=$(summary_of "$member" "$member")
  for v in "$@"; do [ "$(summary_of "$v" "$member")" -ge "$version" ] || return 1; done
}

# ---- region 1 pulls, then region 2, then region 3 ----
app=team_app_1.0
pull r1h1 team/app 1.0
first=$(origin_blob_gets $app)
expect_eq "region 1's pull fetched each blob from the origin once" "$(blobs_of $app | wc -l)" "$first"
sleep 1.2
took=$(wait_until 10 summaries_current r1h1 r2h1 r2h2 r3h1 r3h2)
check "regions 2 and 3 hold r1h1's new digest summary (${took}s)" test "$took" != timeout
pull r2h1 team/app 1.0
expect_eq "region 2's pull: no new origin request for any blob" "$first" "$(origin_blob_gets $app)"
check "region 2 filled from region 1" grep -qh "fill: GET blob .* from peer r1h" "$WORK/r2h1.log" "$WORK/r2h2.log"
sleep 1.2
took=$(wait_until 10 summaries_current r2h1 r3h1 r3h2)
check "region 3 holds r2h1's new digest summary (${took}s)" test "$took" != timeout
pull r3h1 team/app 1.0
expect_eq "region 3's pull: no new origin request for any blob" "$first" "$(origin_blob_gets $app)"
from2=$(cat "$WORK/r3h1.log" "$WORK/r3h2.log" | grep -c "fill: GET blob .* from peer r2h" || true)
from1=$(cat "$WORK/r3h1.log" "$WORK/r3h2.log" | grep -c "fill: GET blob .* from peer r1h" || true)
check "region 3 took the blobs from region 2 (80 ms; $from2 fills), not region 1 (120 ms; $from1 fills)" \
  test "$from2" -ge "$(blobs_of $app | wc -l)" -a "$from1" = 0

# ---- two nodes of region 2 pull one uncached image at once ----
big=team_big_1.0
declare -A before_big
for d in $(blobs_of $big); do before_big[$d]=$(origin_count "/v2/[^ ]*/blobs/$d"); done
pull r2h1 team/big 1.0 & p1=$!
pull r2h2 team/big 1.0 & p2=$!
wait $p1 $p2
over=0
for d in $(blobs_of $big); do
  delta=$(($(origin_count "/v2/[^ ]*/blobs/$d") - ${before_big[$d]}))
  [ "$delta" -le 1 ] || over=$((over + 1))
done
expect_eq "two nodes of one region pulling at once: at most one origin request per blob" 0 "$over"
expect_eq "the uncached big layer was fetched from the origin exactly once" 1 \
  "$(($(origin_count "/v2/[^ ]*/blobs/$(fix big_layer)") - ${before_big[$(fix big_layer)]}))"

# ---- partition: region 3 cut off while a tag moves ----
digest_at() {  # HOST REPO TAG: the digest the node answers for the tag
  in_ns "$1" curl -s -m 10 -D - -o /dev/null -H "Accept: $ACCEPT_ALL" "http://127.0.0.1:5000/v2/$2/manifests/$3?ns=$ORIGIN" |
    tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}'
}
in_ns origin skopeo copy -q --src-tls-verify=false --dest-tls-verify=false --preserve-digests \
  "docker://127.0.0.1:$ORIGIN_PORT/team/app:1.0" "docker://127.0.0.1:$ORIGIN_PORT/team/app:moving" || die "tag moving"
old=$(fix team_app_1.0.digest) new=$(fix team_app_1.0-docker.digest)
for n in r1h1 r2h1 r3h1 r3h2; do expect_eq "$n answers team/app:moving = the old digest" "$old" "$(digest_at $n team/app moving)"; done
net_cut 3
log "region 3 cut off"
in_ns origin skopeo copy -q --src-tls-verify=false --dest-tls-verify=false --preserve-digests \
  "docker://127.0.0.1:$ORIGIN_PORT/team/app:1.0-docker" "docker://127.0.0.1:$ORIGIN_PORT/team/app:moving" || die "move tag"
sleep 2.5  # region 1's tag_ttl: its next request revalidates
expect_eq "region 1 sees the moved tag" "$new" "$(digest_at r1h1 team/app moving)"
sleep 3
expect_eq "during the cut, region 3 still answers the old digest" "$old" "$(digest_at r3h1 team/app moving)"
net_heal
log "healed"
origin_lines=$(wc -l <"$ORIGIN_LOG")
# docs/gossip.md: 2 sync_interval + (ceil(log4 6) + ceil(ln 6 / 3) + 2) (gossip_interval + max RTT),
# plus one peer_timeout for a connection the cut left hanging.
bound=$(awk -v s=$SYNC_S -v p=$PEER_TIMEOUT_S 'BEGIN { printf "%.1f", 2 * s + 5 * (0.2 + 0.2) + p }')
new_in_3() { [ "$(digest_at r3h1 team/app moving)" = "$new" ] && [ "$(digest_at r3h2 team/app moving)" = "$new" ]; }
took=$(wait_until "$bound" new_in_3)
check "after the heal, region 3 answers the new digest in ${took}s (bound ${bound}s)" test "$took" != timeout
expect_eq "region 3 learned it by gossip: no manifest request from region 3 reached the origin after the heal" 0 \
  "$(tail -n +$((origin_lines + 1)) "$ORIGIN_LOG" | grep -E '"(GET|HEAD) /v2/team/app/manifests/' | grep -c "^10\.$NET_OCTET\.3\." || true)"

# ---- a node dies ----
lines_before=$(cat "$WORK/r2h1.log" | wc -l)
kill -KILL "${PID[r2h2]}"
dead_bound=$(awk -v p=$PROBE_S -v s=$SUSPECT_S 'BEGIN { printf "%.1f", (2 * 5 + 1) * p + s }')
dead_everywhere() { for n in r1h1 r2h1 r3h1; do [ "$(member_state $n r2h2)" = dead ] || return 1; done; }
took=$(wait_until "$dead_bound" dead_everywhere)
check "the killed r2h2 is dead everywhere in ${took}s (bound (2(n-1)+1) probe periods + suspect timeout = ${dead_bound}s)" \
  test "$took" != timeout
start=$(date +%s)
pull r2h1 team/app 1.0-docker
check "region 2 still pulls a new image quickly ($(($(date +%s) - start))s)" test $(($(date +%s) - start)) -le 10
check "and never asks the dead node" bash -c "! tail -n +$((lines_before + 1)) '$WORK/r2h1.log' | grep -q 'from peer r2h2'"
it_finish
