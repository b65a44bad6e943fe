#!/usr/bin/env bash
# A three-node cluster on loopback (n1, n2 in region eu; n3 in region us)
# against a real origin (docker-registry): membership, peer authentication,
# blobs served by peers instead of the origin, one origin request per blob
# for a region, tag gossip, failure detection and graceful leave.
# The multi-region version with real latency is netns_regions.sh.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/cluster.sh"
need jq

BIG_MB=16
start_origin
push_fixtures
cluster_key
declare -A PORT URL PID
for n in n1 n2 n3; do PORT[$n]=$(free_port); URL[$n]="http://127.0.0.1:${PORT[$n]}"; done
for n in n1 n2 n3; do
  region=eu; [ $n = n3 ] && region=us
  node_config $n $region "127.0.0.1:${PORT[$n]}" "${URL[$n]}" "\"${URL[n1]}\"" "$ORIGIN" "http://$ORIGIN"
  start_bg "$n" "$WORK/$n.log" "$GEOREG" serve -c "$WORK/$n.toml"
  PID[$n]=$LAST_PID
done
for n in n1 n2 n3; do wait_http "${URL[$n]}/v2/" 30 || die "$n did not start"; done

three_alive() { for n in n1 n2 n3; do [ "$(alive_count $n)" = 3 ] || return 1; done; }
took=$(wait_until 15 three_alive)
check "every node sees all three alive (joined through one seed in ${took}s)" test "$took" != timeout
rtt_known() { peers_json n1 | jq -e '[.members[] | select(.self == false) | .rtt_ms | numbers] | length == 2' >/dev/null; }
took=$(wait_until 10 rtt_known)
check "n1 measured the RTT to both peers (${took}s)" test "$took" != timeout

# ---- authentication: nothing unsigned or wrongly signed gets in ----
evil='{"type":"push","from":"evil","seq":0,"target":"","sv":0,"members":[{"name":"evil","region":"eu","url":"http://127.0.0.1:9","state":"alive","inc":1}],"tags":[],"summaries":[]}'
expect_eq "unsigned gossip is refused" 401 "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d "$evil" "${URL[n1]}/_georeg/v1/msg")"
head -c 32 /dev/urandom | base64 >"$WORK/wrong.key"
expect_eq "gossip signed with another key is refused" 401 \
  "$(python3 "$IT_LIB/peer_request.py" "${URL[n1]}" POST /_georeg/v1/msg "$WORK/wrong.key" evil --body "$evil")"
expect_eq "a request from 10 minutes ago is refused" 401 \
  "$(python3 "$IT_LIB/peer_request.py" "${URL[n1]}" POST /_georeg/v1/msg "$WORK/cluster.key" evil --body "$evil" --time-offset-ms -600000)"
expect_eq "a peer blob request without a signature is refused" 401 \
  "$(curl -s -o /dev/null -w '%{http_code}' "${URL[n1]}/_georeg/v1/oci/v2/team/app/blobs/$(fix app_layer)?ns=$ORIGIN")"
expect_eq "the unsigned summary is refused" 401 "$(curl -s -o /dev/null -w '%{http_code}' "${URL[n1]}/_georeg/v1/summary")"
expect_eq "nothing changed: no member 'evil'" unknown "$(member_state n1 evil)"
# A correctly signed request passes once; the same request again is a replay.
replay=$(python3 "$IT_LIB/peer_request.py" "${URL[n1]}" GET /_georeg/v1/summary "$WORK/cluster.key" n2 --repeat 2 \
  --node-key "$WORK/n2.cache/node.key" | tr '\n' ' ')
expect_eq "a signed request is accepted once, its replay refused" "200 401 " "$replay"
# The cluster key alone does not let anyone speak as n2: its node key signs too.
expect_eq "a request in n2's name without n2's node signature is refused" 401 \
  "$(python3 "$IT_LIB/peer_request.py" "${URL[n1]}" GET /_georeg/v1/summary "$WORK/cluster.key" n2)"
expect_eq "or signed with n3's node key" 401 \
  "$(python3 "$IT_LIB/peer_request.py" "${URL[n1]}" GET /_georeg/v1/summary "$WORK/cluster.key" n2 --node-key "$WORK/n3.cache/node.key")"
check "each node made its key file 0600" bash -c "[ \"\$(stat -c %a '$WORK/n1.cache/node.key')\" = 600 ]"

# ---- a request marked as forwarded by a peer is never forwarded again ----
uncached=$(fix big_layer)
before=$(origin_count "/v2/team/big/blobs/$uncached")
expect_eq "hop=peer for a blob this node lacks: 404, not a fetch" 404 \
  "$(python3 "$IT_LIB/peer_request.py" "${URL[n2]}" GET "/_georeg/v1/oci/v2/team/big/blobs/$uncached?ns=$ORIGIN&hop=peer" "$WORK/cluster.key" n1 \
     --node-key "$WORK/n1.cache/node.key")"
expect_eq "and nothing reached the origin" 0 "$(($(origin_count "/v2/team/big/blobs/$uncached") - before))"

# ---- a blob pulled in region us is found at once from region eu: no origin request ----
layer=$(fix app_layer)
path="/v2/team/app/blobs/$layer?ns=$ORIGIN"
before=$(origin_count "/v2/team/app/blobs/$layer")
curl -sf -o "$WORK/l3" "${URL[n3]}$path" || fail "pull through n3"
expect_eq "n3's pull: the origin was asked once" 1 "$(($(origin_count "/v2/team/app/blobs/$layer") - before))"
# No pause: the digest's fleet owner holds it (docs/gossip.md), whichever node that is.
curl -sf -o "$WORK/l1" "${URL[n1]}$path" || fail "pull through n1"
expect_eq "n1 got the right bytes" "$layer" "sha256:$(sha_of "$WORK/l1")"
expect_eq "the origin saw no new request for it" 1 "$(($(origin_count "/v2/team/app/blobs/$layer") - before))"
check "n1 had it or filled it from a peer" grep -Eq "fill: (GET blob $layer from peer n[23]|cached blob $layer)" "$WORK/n1.log"
# Digest summaries are followed inside a region only: no n^2 traffic in a big fleet.
summary_v() { peers_json n1 | jq --arg m "$1" '.members[] | select(.name == $m) | .summary_version'; }
has_n2_summary() { [ "$(summary_v n2)" -ge 1 ]; }
took=$(wait_until 10 has_n2_summary)
check "n1 holds the summary of n2, in its region (${took}s)" test "$took" != timeout
expect_eq "and none of n3, in another" 0 "$(summary_v n3)"

# ---- one region, one origin request: n1 and n2 ask for an uncached blob at once ----
big=$(fix big_layer)
bpath="/v2/team/big/blobs/$big?ns=$ORIGIN"
before=$(origin_count "/v2/team/big/blobs/$big")
pids=()
for i in 1 2 3 4; do
  for n in n1 n2; do curl -s -o "$WORK/big.$n.$i" "${URL[$n]}$bpath" & pids+=($!); done
done
for p in "${pids[@]}"; do wait "$p"; done
good=0
for i in 1 2 3 4; do for n in n1 n2; do [ "sha256:$(sha_of "$WORK/big.$n.$i")" = "$big" ] && good=$((good + 1)); done; done
expect_eq "8 clients on two nodes of one region got the right bytes" 8 "$good"
expect_eq "the origin saw exactly one GET for the blob" 1 "$(($(origin_count "/v2/team/big/blobs/$big") - before))"

# ---- tag gossip: a tag resolved at n1 is answered by n3 without the origin ----
tag_before=$(origin_count "/v2/team/app/manifests/" "(GET|HEAD)")
curl -sf -H "Accept: $ACCEPT_ALL" -D "$WORK/m1.h" -o /dev/null "${URL[n1]}/v2/team/app/manifests/1.0?ns=$ORIGIN" || fail "manifest via n1"
expect_eq "n1 asked the origin once for the tag" 1 "$(($(origin_count "/v2/team/app/manifests/" "(GET|HEAD)") - tag_before))"
has_tag() { peers_json n3 | jq -e '.tags >= 1' >/dev/null; }
took=$(wait_until 10 has_tag)
check "n3 learned the tag by gossip (${took}s)" test "$took" != timeout
# It fetches the tag's manifest from the node the tag came from, before any pull.
prefetched() { grep -q "manifest: cached .*team/app@$(fix team_app_1.0.digest)" "$WORK/n3.log"; }
took=$(wait_until 10 prefetched)
check "n3 prefetched the tag's manifest from a peer before any pull (${took}s)" test "$took" != timeout
check "from n1, the node the tag came from" grep -q "manifest: GET $(fix team_app_1.0.digest) from peer n1" "$WORK/n3.log"
curl -sf -H "Accept: $ACCEPT_ALL" -D "$WORK/m3.h" -o "$WORK/m3" "${URL[n3]}/v2/team/app/manifests/1.0?ns=$ORIGIN" || fail "manifest via n3"
digest_of() { tr -d '\r' <"$1" | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}'; }
expect_eq "n3 answers the tag with the digest n1 saw" "$(fix team_app_1.0.digest)" "$(digest_of "$WORK/m3.h")"
expect_eq "n3's manifest bytes are right" "$(fix team_app_1.0.digest)" "sha256:$(sha_of "$WORK/m3")"
expect_eq "the origin was not asked again (no HEAD, no GET)" 1 "$(($(origin_count "/v2/team/app/manifests/" "(GET|HEAD)") - tag_before))"

# ---- an index learned by gossip: its platform manifests are prefetched too ----
idx=$(fix library_alpine_3.19.digest)
amd64=$(jq -r '.manifests[] | select(.platform.architecture == "amd64") | .digest' "$FIX/library_alpine_3.19.json")
# The platform manifest first: n1 holds it before the tag gossips (the other
# order raced n3's prefetch of the children against this second pull).
curl -sf -H "Accept: $ACCEPT_ALL" -o /dev/null "${URL[n1]}/v2/library/alpine/manifests/$amd64?ns=$ORIGIN" || fail "amd64 manifest via n1"
curl -sf -H "Accept: $ACCEPT_ALL" -o /dev/null "${URL[n1]}/v2/library/alpine/manifests/3.19?ns=$ORIGIN" || fail "index via n1"
child_prefetched() { grep -q "manifest: cached .*library/alpine@$amd64" "$WORK/n3.log"; }
took=$(wait_until 10 child_prefetched)
check "n3 prefetched the index and the platform manifest n1 holds (${took}s)" test "$took" != timeout
check "the index too" grep -q "manifest: cached .*library/alpine@$idx" "$WORK/n3.log"
manifests_before=$(origin_count "/v2/library/alpine/manifests/" "(GET|HEAD)")
curl -sf -H "Accept: $ACCEPT_ALL" -o "$WORK/amd64.n3" "${URL[n3]}/v2/library/alpine/manifests/$amd64?ns=$ORIGIN" || fail "amd64 via n3"
expect_eq "n3 serves it with the right bytes" "$amd64" "sha256:$(sha_of "$WORK/amd64.n3")"
expect_eq "without asking the origin" "$manifests_before" "$(origin_count "/v2/library/alpine/manifests/" "(GET|HEAD)")"

# ---- georeg peers remove: n4 joins, sets a tag, is removed fleet-wide ----
tags_before_n4=$(peers_json n3 | jq '.tags')
PORT[n4]=$(free_port); URL[n4]="http://127.0.0.1:${PORT[n4]}"
node_config n4 us "127.0.0.1:${PORT[n4]}" "${URL[n4]}" "\"${URL[n1]}\"" "$ORIGIN" "http://$ORIGIN"
start_bg n4 "$WORK/n4.log" "$GEOREG" serve -c "$WORK/n4.toml"
PID[n4]=$LAST_PID
wait_http "${URL[n4]}/v2/" 30 || die "n4 did not start"
four_alive() { for n in n1 n3; do [ "$(alive_count $n)" = 4 ] || return 1; done; }
took=$(wait_until 15 four_alive)
check "n4 joined (${took}s)" test "$took" != timeout
curl -sf -H "Accept: $ACCEPT_ALL" -o /dev/null "${URL[n4]}/v2/team/big/manifests/1.0?ns=$ORIGIN" || fail "manifest via n4"
n4_tag_known() { peers_json n3 | jq -e --argjson t "$tags_before_n4" '.tags >= $t + 1' >/dev/null; }
took=$(wait_until 10 n4_tag_known)
check "n3 learned n4's tag (${took}s)" test "$took" != timeout
expect_eq "removing a member that does not exist: exit 4" 4 "$("$GEOREG" peers remove nobody --cache-dir "$WORK/n1.cache" 2>/dev/null; echo $?)"
expect_eq "a node cannot remove itself: exit 2" 2 "$("$GEOREG" peers remove n1 --cache-dir "$WORK/n1.cache" 2>/dev/null; echo $?)"
check "georeg peers remove n4 (on n1)" "$GEOREG" peers remove n4 --cache-dir "$WORK/n1.cache"
n4_gone() { for n in n1 n2 n3; do [ "$(member_state $n n4)" = unknown ] || return 1; done; }
took=$(wait_until 10 n4_gone)
check "n4 is gone from every node's membership (${took}s)" test "$took" != timeout
tags_withdrawn() {
  for n in n1 n2 n3; do peers_json $n | jq -e --argjson t "$tags_before_n4" '.tags == $t and .revocations == 1' >/dev/null || return 1; done
}
took=$(wait_until 10 tags_withdrawn)
check "the tag n4 set is withdrawn everywhere; n1's stays (${took}s)" test "$took" != timeout
check "n3 logs the withdrawal" grep -q "tag $ORIGIN/team/big:1.0 withdrawn (its origin n4 was removed)" "$WORK/n3.log"
n4_knows() { grep -q "this node's key was revoked" "$WORK/n4.log"; }
took=$(wait_until 10 n4_knows)
check "n4 was told, and says so in its log (${took}s)" test "$took" != timeout
expect_eq "n4 requests in its own name are refused now" 401 \
  "$(python3 "$IT_LIB/peer_request.py" "${URL[n1]}" GET /_georeg/v1/summary "$WORK/cluster.key" n4 --node-key "$WORK/n4.cache/node.key")"
stop_pid "${PID[n4]}"
expect_eq "the removed n4 exits 0 on SIGTERM" 0 "$?"
# Restarted with the same key: still out. With a new key: back in.
start_bg n4 "$WORK/n4b.log" "$GEOREG" serve -c "$WORK/n4.toml"
PID[n4]=$LAST_PID
wait_http "${URL[n4]}/v2/" 30 || die "n4 did not restart"
sleep 3
expect_eq "n4 restarted with its revoked key stays out" unknown "$(member_state n1 n4)"
stop_pid "${PID[n4]}"
expect_eq "n4 exits 0 on SIGTERM" 0 "$?"
rm "$WORK/n4.cache/node.key"
start_bg n4 "$WORK/n4c.log" "$GEOREG" serve -c "$WORK/n4.toml"
PID[n4]=$LAST_PID
wait_http "${URL[n4]}/v2/" 30 || die "n4 did not restart"
took=$(wait_until 15 four_alive)
check "n4 with a new key joins again (${took}s)" test "$took" != timeout
stop_pid "${PID[n4]}"
expect_eq "n4 exits 0 on SIGTERM" 0 "$?"
n4_left() { [ "$(member_state n1 n4)" = left ]; }
wait_until 5 n4_left >/dev/null

# ---- failure detection: n2 is killed ----
lines_before=$(wc -l <"$WORK/n1.log")
kill -KILL "${PID[n2]}"
n2_dead() { [ "$(member_state n1 n2)" = dead ] && [ "$(member_state n3 n2)" = dead ]; }
took=$(wait_until 15 n2_dead)
check "n1 and n3 mark the killed n2 dead (${took}s; bound 2*(n-1)+1 probe periods + suspect timeout = 4.5s)" test "$took" != timeout
# Misses in region eu no longer route to n2.
for d in $(jq -r '.layers[].digest' "$FIX/team_app_1.0-docker.json"); do
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "${URL[n1]}/v2/team/app/blobs/$d?ns=$ORIGIN")
  [ "$code" = 200 ] || fail "blob $d via n1 after n2 died" "$code"
done
ok "n1 serves misses with n2 dead"
check "n1 did not try the dead n2" bash -c "! tail -n +$((lines_before + 1)) '$WORK/n1.log' | grep -q 'from peer n2'"

# ---- graceful leave ----
stop_pid "${PID[n3]}"
rc=$?
expect_eq "n3 exits 0 on SIGTERM" 0 "$rc"
took=$(wait_until 5 bash -c "[ \"\$('$GEOREG' peers ls -o json --cache-dir '$WORK/n1.cache' | jq -r '.members[] | select(.name == \"n3\") | .state')\" = left ]")
check "n1 sees n3 as left at once (${took}s)" test "$took" != timeout
it_finish
