#!/usr/bin/env bash
# A member that holds the cluster key and attacks (lib/fake_peer.py): an
# endless summary, a fellow "member" advertised at the cloud metadata
# address, a tag update whose HLC would wrap, a record declaring n1 left at
# incarnation 2^64-1, a tag update in n1's name and a record moving n1 to
# the attacker (signed with the attacker's own node key), a request sent in
# n1's name. n1 must bound the summary, never connect to the metadata
# address, refuse and count the forgeries, and stay alive.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/cluster.sh"
need jq
rss_bounded

start_origin
cluster_key
port=$(free_port)
url="http://127.0.0.1:$port"
CLUSTER_EXTRA='max_summary_bytes = "1MiB"' NODE_EXTRA_TOML=$'[log]\nlevel = "debug"' \
  node_config n1 eu "127.0.0.1:$port" "$url" "" "$ORIGIN" "http://$ORIGIN"
start_bg n1 "$WORK/n1.log" "$GEOREG" serve -c "$WORK/n1.toml"
N1=$LAST_PID
wait_http "$url/v2/" 30 || die "n1 did not start"
rss() { awk '/^VmRSS/{print $2}' "/proc/$N1/status"; }
before=$(rss)
: >"$WORK/evil.requests"
start_bg evil "$WORK/evil.log" python3 "$IT_LIB/fake_peer.py" --key "$WORK/cluster.key" --name evil --region eu \
  --port-file "$WORK/evil.port" --log "$WORK/evil.requests" --join "$url" --summary endless \
  --extra-member meta=http://169.254.169.254:80 --forge

joined() { peers_json n1 | jq -e '.members[] | select(.name == "evil") | .state == "alive"' >/dev/null; }
took=$(wait_until 15 joined)
check "the hostile member joined (${took}s)" test "$took" != timeout
cut() { grep -q "endless summary cut off" "$WORK/evil.requests"; }
took=$(wait_until 15 cut)
check "n1 cut the endless summary off (${took}s)" test "$took" != timeout
sent=$(sed -n 's/.*cut off after \([0-9]*\) bytes.*/\1/p' "$WORK/evil.requests" | head -1)
check "after ${sent:-?} bytes (max_summary_bytes 1 MiB; kernel buffers on top)" test "${sent:-999999999}" -lt $((16 << 20))
sleep 3  # more summaries and syncs
growth=$((($(rss) - before) / 1024))
log "rss: hostile member (endless summaries): +$growth MiB"
check "n1's RSS grew by $growth MiB (at most 16)" test "$growth" -le 16
check "counted as oversized" test "$(peers_json n1 | jq '.stats.oversized')" -ge 1

check "the metadata address was refused, never connected to" \
  grep -q "refused: 169.254.169.254 resolves to a link-local or metadata address" "$WORK/n1.log"
check "n1 never held a connection to it" bash -c "! ss -tn | grep -q '169.254.169.254:80'"

check "the wrapping HLC was refused and counted" test "$(peers_json n1 | jq '.stats.tags_refused_invalid')" -ge 1
check "the forged left record was refused and counted" test "$(peers_json n1 | jq '.stats.members_refused')" -ge 1
check "the tag update in n1's name was refused and counted" \
  test "$(peers_json n1 | jq '.stats.tags_refused_signature')" -ge 1
check "the record moving n1 was refused and counted" \
  test "$(peers_json n1 | jq '.stats.records_refused_signature')" -ge 1
said() { grep -q "impersonation answered" "$WORK/evil.requests"; }
wait_until 10 said >/dev/null
expect_eq "a message sent in n1's name (the attacker's node key) is refused" \
  "impersonation answered 401" "$(grep -o 'impersonation answered .*' "$WORK/evil.requests" | head -1)"
expect_eq "n1 is still alive in its own view" alive "$(peers_json n1 | jq -r '.members[] | select(.self) | .state')"
expect_eq "no forged tag is in n1's table" 0 "$(peers_json n1 | jq '.tags')"
check "n1 still serves" curl -sf -o /dev/null "$url/v2/"

# A peer speaking a protocol version n1 does not (a release far ahead):
# refused with 400 PROTOCOL, counted and logged naming both versions.
PR=(python3 "$IT_LIB/peer_request.py" "$url")
expect_eq "a peer request in protocol 99 is refused: 400" 400 \
  "$("${PR[@]}" GET /_georeg/v1/summary "$WORK/cluster.key" evil --header 'X-Georeg-Protocol: 99')"
msg='{"pv":99,"type":"ping","from":"evil","seq":1,"target":"","sv":0,"members":[],"tags":[],"revocations":[],"summaries":[]}'
expect_eq "a gossip message of protocol 99 is refused: 400" 400 \
  "$("${PR[@]}" POST /_georeg/v1/msg "$WORK/cluster.key" evil --body "$msg")"
check "  both counted" test "$(peers_json n1 | jq '.stats.protocol_refused')" -ge 2
check "  and logged, naming the versions" grep -q "protocol 99; this node speaks 1 to 1" "$WORK/n1.log"
check "n1 still serves after them" curl -sf -o /dev/null "$url/v2/"
stop_pid "$N1"
expect_eq "n1 exits 0 on SIGTERM" 0 "$?"
it_finish
