#!/usr/bin/env bash
# Three regions x two georeg nodes in network namespaces, with real latency
# (RTT r1-r2 40 ms, r2-r3 80 ms, r1-r3 120 ms, 2 ms inside a region) and the
# origin (docker-registry) 200 ms away from every region:
#   (1) an image pulled in region 1, then at once in regions 2 and 3: no new
#       origin request (no waiting for summaries);
#   (2) all six nodes pulling one uncached image at once: one origin GET per
#       blob, and each region receives each blob across regions at most once;
#   (4) HEAD of an uncached blob: HEAD requests only, the real size and digest;
#   (3) the node filling a large blob from the origin killed while clients in
#       the two other regions stream it through peers: they finish with the
#       right bytes (the fills resume with a Range elsewhere);
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
HUGE_MB=64
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
# checked against its digest. Records failures; returns non-zero after one
# (a pull run in the background is counted by its wait).
pull() {
  local host="$1" repo="$2" tag="$3" d code bad=0
  in_ns "$host" curl -sf -H "Accept: $ACCEPT_ALL" -o "$WORK/pull.$host.json" \
    "http://127.0.0.1:5000/v2/$repo/manifests/$tag?ns=$ORIGIN" || { fail "manifest $repo:$tag via $host"; return 1; }
  for d in $(jq -r '.config.digest, .layers[].digest' "$WORK/pull.$host.json"); do
    code=$(in_ns "$host" curl -s -o "$WORK/blob.$host" -w '%{http_code}' --max-time 60 \
      "http://127.0.0.1:5000/v2/$repo/blobs/$d?ns=$ORIGIN")
    [ "$code" = 200 ] && [ "sha256:$(sha_of "$WORK/blob.$host")" = "$d" ] || { fail "blob $d via $host" "status $code"; bad=1; }
  done
  return $bad
}
blobs_of() { jq -r '.config.digest, .layers[].digest' "$FIX/$1.json"; }
origin_blob_gets() {  # FIXTURE: GETs the origin saw for that image's blobs
  local total=0 d
  for d in $(blobs_of "$1"); do total=$((total + $(origin_count "/v2/[^ ]*/blobs/$d"))); done
  echo "$total"
}
region_of() { echo "region${1:1:1}"; }
# stat_sum KEY NODES...: the sum of a `peers ls -o json` counter over NODES.
stat_sum() {
  local key="$1" total=0 n; shift
  for n in "$@"; do total=$((total + $(peers_json "$n" | jq --arg k "$key" '.stats[$k]'))); done
  echo "$total"
}
# cross_region_fills REGION DIGEST: fill requests the region's nodes sent to peers of other regions for DIGEST.
cross_region_fills() {
  local r="$1" d="$2" total=0 n c
  for n in "r${r}h1" "r${r}h2"; do
    c=$(grep "fill: GET blob $d from peer " "$WORK/$n.log" | grep -vc "from peer r${r}h" || true)
    total=$((total + c))
  done
  echo "$total"
}

# ---- (1) region 1 pulls, then at once region 2, then region 3: no lag window ----
# Nothing waits for a digest summary: every blob the fleet fetched sits at
# its fleet owner, which every region's owner asks before the upstream.
app=team_app_1.0
pull r1h1 team/app 1.0
end1=$(date +%s%N)
first=$(origin_blob_gets $app)
expect_eq "region 1's pull fetched each blob from the origin once" "$(blobs_of $app | wc -l)" "$first"
start2=$(date +%s%N)
pull r2h1 team/app 1.0
log "region 2's pull began $(( (start2 - end1) / 1000000 )) ms after region 1's ended"
expect_eq "region 2's pull right after region 1's: no new origin request for any blob" "$first" "$(origin_blob_gets $app)"
pull r3h2 team/app 1.0
expect_eq "region 3's pull right after: no new origin request for any blob" "$first" "$(origin_blob_gets $app)"

# ---- (2) all six nodes pull one uncached image at the same moment ----
big=team_big_1.0
declare -A cross_before
for r in 1 2 3; do cross_before[$r]=$(stat_sum peer_gets_cross_region "r${r}h1" "r${r}h2"); done
declare -A pulling
for n in "${NODES[@]}"; do pull "$n" team/big 1.0 & pulling[$n]=$!; done
for n in "${NODES[@]}"; do wait "${pulling[$n]}" || fail "$n's pull of team/big (in the background)"; done
over=0 counts=""
for d in $(blobs_of $big); do
  c=$(origin_count "/v2/[^ ]*/blobs/$d")
  counts="$counts $c"
  [ "$c" = 1 ] || over=$((over + 1))
done
log "origin GETs per blob of team/big after six simultaneous pulls:$counts"
expect_eq "six nodes in three regions pulling at once: exactly one origin GET per blob (all time)" 0 "$over"
nblobs=$(blobs_of $big | wc -l)
for r in 1 2 3; do
  worst=0
  for d in $(blobs_of $big); do c=$(cross_region_fills $r "$d"); [ "$c" -gt "$worst" ] && worst=$c; done
  got=$(($(stat_sum peer_gets_cross_region "r${r}h1" "r${r}h2") - ${cross_before[$r]}))
  check "region $r received each blob across regions at most once ($got transfers for $nblobs blobs; at most $worst request(s) per blob)" \
    test "$worst" -le 1 -a "$got" -le "$nblobs"
done

# ---- (4) HEAD of an uncached blob: HEADs, never a GET ----
headblob="$WORK/headblob"
head -c 300000 /dev/urandom >"$headblob"
hd="sha256:$(sha_of "$headblob")"
push_blob() {  # FILE DIGEST REPO: a monolithic upload to the origin
  local loc
  loc=$(in_ns origin curl -sf -X POST -D - -o /dev/null "http://127.0.0.1:$ORIGIN_PORT/v2/$3/blobs/uploads/" |
    tr -d '\r' | awk -F': ' 'tolower($1)=="location"{print $2}')
  [ -n "$loc" ] || die "upload to the origin"
  case "$loc" in http*) ;; *) loc="http://127.0.0.1:$ORIGIN_PORT$loc" ;; esac
  in_ns origin curl -sf -X PUT -H "Content-Type: application/octet-stream" --data-binary "@$1" \
    "$loc&digest=$2" -o /dev/null || die "upload PUT to the origin"
}
push_blob "$headblob" "$hd" team/head
in_ns r3h1 curl -s -I -o /dev/null -D "$WORK/head.h" -w '%{http_code}\n' "http://127.0.0.1:5000/v2/team/head/blobs/$hd?ns=$ORIGIN" >"$WORK/head.code"
expect_eq "HEAD of an uncached blob: 200" 200 "$(cat "$WORK/head.code")"
expect_eq "with its real size" 300000 "$(tr -d '\r' <"$WORK/head.h" | awk -F': ' 'tolower($1)=="content-length"{print $2}')"
expect_eq "and its digest" "$hd" "$(tr -d '\r' <"$WORK/head.h" | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')"
sleep 1  # the origin logs a request when its response ends: a GET started behind the HEAD's back shows by now
expect_eq "the origin saw no GET of it" 0 "$(origin_count "/v2/[^ ]*/blobs/$hd")"
check "the origin was asked with HEAD" test "$(origin_count "/v2/[^ ]*/blobs/$hd" HEAD)" -ge 1

# ---- (3) the node filling a large blob from the origin dies mid-body ----
huge="$WORK/huge"
head -c $((HUGE_MB << 20)) /dev/urandom >"$huge"
hgd="sha256:$(sha_of "$huge")"
push_blob "$huge" "$hgd" team/huge
# A first client starts the fill; the node that asks the origin is the fleet owner.
in_ns r1h1 curl -s -o /dev/null --max-time 120 "http://127.0.0.1:5000/v2/team/huge/blobs/$hgd?ns=$ORIGIN" &
trigger=$!
owner_of_huge() { for n in "${NODES[@]}"; do grep -q "fill: GET blob $hgd from upstream" "$WORK/$n.log" && echo "$n" && return 0; done; return 1; }
took=$(wait_until 10 eval 'owner_of_huge >/dev/null')
F=$(owner_of_huge)
check "one node started the fill from the origin (${F:-none}, ${took}s)" test -n "$F"
# One client in each of the two other regions, streaming through their region's owner.
declare -a far=()
for r in 1 2 3; do
  [ "$(region_of "$F")" = "region$r" ] && continue
  far+=("r${r}h2")
done
cpids=()
for n in "${far[@]}"; do
  in_ns "$n" curl -s -o "$WORK/huge.$n" -w '%{http_code}' --max-time 180 \
    "http://127.0.0.1:5000/v2/team/huge/blobs/$hgd?ns=$ORIGIN" >"$WORK/huge.$n.code" & cpids+=($!)
done
streaming() { for n in "${far[@]}"; do [ "$(stat -c %s "$WORK/huge.$n" 2>/dev/null || echo 0)" -ge $((2 << 20)) ] || return 1; done; }
took=$(wait_until 60 streaming)
sizes=""
for n in "${far[@]}"; do sizes="$sizes $n:$(stat -c %s "$WORK/huge.$n" 2>/dev/null || echo 0)"; done
kill -KILL "${PID[$F]}"
log "killed the filling node $F; bytes the far clients had:$sizes of $((HUGE_MB << 20))"
check "the far clients were streaming through peers when $F died (${took}s)" test "$took" != timeout
mid=1
for n in "${far[@]}"; do [ "$(stat -c %s "$WORK/huge.$n")" -lt $((HUGE_MB << 20)) ] || mid=0; done
expect_eq "and had not got the whole blob yet (the kill came mid-body)" 1 "$mid"
wait "${cpids[@]}"
for n in "${far[@]}"; do
  expect_eq "$n's client finished with status 200" 200 "$(cat "$WORK/huge.$n.code")"
  expect_eq "with the right bytes" "$hgd" "sha256:$(sha_of "$WORK/huge.$n")"
done
resumed=0
for n in "${NODES[@]}"; do [ "$n" = "$F" ] || resumed=$((resumed + $(peers_json "$n" | jq '.stats.fills_resumed // 0'))); done
check "a fill was resumed with a Range from another source ($resumed)" test "$resumed" -ge 1
wait "$trigger" 2>/dev/null || true
# The dead node comes back for the sections below.
start_bg "$F" "$WORK/$F.log" ip netns exec "$(ns_of "$F")" "$GEOREG" serve -c "$WORK/$F.toml"
PID[$F]=$LAST_PID
took=$(wait_until 30 all_alive)
check "$F restarted and all six are alive again (${took}s)" test "$took" != timeout

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
