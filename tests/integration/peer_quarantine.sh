#!/usr/bin/env bash
# A peer that holds the cluster key but serves wrong bytes (lib/fake_peer.py:
# it joins, answers probes, claims every digest, sends garbage). georeg must
# verify the peer's bytes, reset the client rather than pass them on, store
# nothing, quarantine and count the peer, and serve the next request from the
# real origin (docker-registry) without asking that peer again.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/cluster.sh"
need jq

BIG_MB=1
start_origin
push_fixtures
cluster_key
port=$(free_port)
url="http://127.0.0.1:$port"
node_config n1 eu "127.0.0.1:$port" "$url" "" "$ORIGIN" "http://$ORIGIN"
start_bg n1 "$WORK/n1.log" "$GEOREG" serve -c "$WORK/n1.toml"
wait_http "$url/v2/" 30 || die "n1 did not start"
: >"$WORK/evil.requests"
start_bg evil "$WORK/evil.log" python3 "$IT_LIB/fake_peer.py" --key "$WORK/cluster.key" --name evil --region eu \
  --port-file "$WORK/evil.port" --log "$WORK/evil.requests" --join "$url"

evil_ready() {
  peers_json n1 | jq -e '.members[] | select(.name == "evil") | .state == "alive" and .summary_version >= 1' >/dev/null
}
took=$(wait_until 15 evil_ready)
check "the lying peer joined and published its summary (${took}s)" test "$took" != timeout

layer=$(fix app_layer)
path="/v2/team/app/blobs/$layer?ns=$ORIGIN"
code=$(curl -s -o "$WORK/first" -w '%{http_code}' "$url$path")
rc=$?
check "the client of the poisoned fill got an error, not a clean end (curl exit $rc)" test "$rc" -ne 0
check "and no byte of it passed for the blob" test "sha256:$(sha_of "$WORK/first")" != "$layer"
expect_eq "the peer was asked once" 1 "$(grep -c 'blob request' "$WORK/evil.requests")"
check "the log names the peer and the quarantine" grep -q "peer evil sent bad bytes .*quarantined" "$WORK/n1.log"
expect_eq "quarantined in georeg peers ls" true "$(peers_json n1 | jq '.members[] | select(.name == "evil") | .quarantined')"
expect_eq "counted: peer_bad_bytes" 1 "$(peers_json n1 | jq '.stats.peer_bad_bytes')"

before=$(origin_count "/v2/team/app/blobs/$layer")
curl -sf -o "$WORK/second" "$url$path" || fail "second request"
expect_eq "the next request gets the right bytes" "$layer" "sha256:$(sha_of "$WORK/second")"
expect_eq "from the origin" 1 "$(($(origin_count "/v2/team/app/blobs/$layer") - before))"
expect_eq "the quarantined peer was not asked again" 1 "$(grep -c 'blob request' "$WORK/evil.requests")"
"$GEOREG" cache verify -o json --cache-dir "$WORK/n1.cache" >"$WORK/verify.json"
expect_eq "nothing corrupt was stored" 0 "$(jq '.corrupt | length' "$WORK/verify.json")"
it_finish
