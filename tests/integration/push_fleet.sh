#!/usr/bin/env bash
# Multi-master pushes on a three-node cluster on loopback (n1, n2 in region
# eu; n3 in region us), every node serving the own registry: a push at n1
# is pulled at n3 the moment skopeo returns (read your writes: the tag's
# owner in every region is told before the 201, and the blobs come from
# the node that holds them); tags gossip everywhere; two pushes of one tag
# at once in two regions converge to one digest on every node; a tag
# deleted in one region is gone in all (a tombstone anti-entropy keeps);
# a restarted node keeps the fleet state.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/cluster.sh"
need jq; need skopeo

python3 "$IT_LIB/make_images.py" "$WORK/layouts" --big-mb 8 >/dev/null || die "building images failed"
LAYOUTS="$WORK/layouts"
fleet_registry fleet.local 256MiB 'blob_delete = true'
fleet_start n1=eu n2=eu n3=us

SK=(skopeo copy -q --dest-tls-verify=false --src-tls-verify=false)
dir_sums() { (cd "$1" && find . -type f ! -name version -print0 | sort -z | xargs -0 sha256sum); }
host() { echo "127.0.0.1:${PORT[$1]}"; }
digest_at() {  # NODE REPO TAG: the digest NODE answers for the tag, or its status code
  local out
  out=$(curl -s -o /dev/null -D - -w '%{http_code}' -H "Accept: $ACCEPT_ALL" "${URL[$1]}/v2/$2/manifests/$3" | tr -d '\r')
  local d
  d=$(echo "$out" | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')
  [ -n "$d" ] && echo "$d" || echo "$out" | tail -1
}

# ---- read your writes across regions ----
mkdir -p "$WORK/direct" "$WORK/n3"
"${SK[@]}" "oci:$LAYOUTS/team_app:1.0" "dir:$WORK/direct/app" || die "local copy failed"
check "skopeo pushes team/app:1.0 to n1 (eu)" "${SK[@]}" --dest-creds alice:s3cret "oci:$LAYOUTS/team_app:1.0" "docker://$(host n1)/team/app:1.0"
check "and n3 (us) pulls it the moment skopeo returned" "${SK[@]}" "docker://$(host n3)/team/app:1.0" "dir:$WORK/n3/app"
expect_eq "  byte-identical" "$(dir_sums "$WORK/direct/app")" "$(dir_sums "$WORK/n3/app")"
check "n1 logged the tag reaching every region's owner" bash -c "! grep -q 'region owner(s) directly' '$WORK/n1.log'"
check "n3 took the blobs from n1 (peer, cross-region)" \
  test "$(peers_json n3 | jq '.stats.peer_gets_cross_region')" -ge 2
check "a multi-platform index pushed to n3" "${SK[@]}" --all --dest-creds alice:s3cret "oci:$LAYOUTS/library_alpine:3.19" "docker://$(host n3)/library/alpine:3.19"
mkdir -p "$WORK/n2"
check "  pulls whole at n2 right after" "${SK[@]}" --all "docker://$(host n2)/library/alpine:3.19" "dir:$WORK/n2/alpine"
"${SK[@]}" --all "oci:$LAYOUTS/library_alpine:3.19" "dir:$WORK/direct/alpine"
expect_eq "  byte-identical" "$(dir_sums "$WORK/direct/alpine")" "$(dir_sums "$WORK/n2/alpine")"
everyone_lists() {  # REPO TAGS
  local n
  for n in n1 n2 n3; do
    [ "$(curl -s "${URL[$n]}/v2/$1/tags/list" | jq -r '.tags | join(" ")')" = "$2" ] || return 1
  done
}
took=$(wait_until 10 everyone_lists team/app 1.0)
check "every node lists team/app's tag (${took}s)" test "$took" != timeout

# ---- two pushes of one tag at once, in two regions ----
"${SK[@]}" --dest-creds alice:s3cret "oci:$LAYOUTS/team_app:1.0" "docker://$(host n1)/team/app:race" &
a=$!
"${SK[@]}" --dest-creds alice:s3cret "oci:$LAYOUTS/team_big:1.0" "docker://$(host n3)/team/app:race" &
b=$!
wait $a; ra=$?
wait $b; rb=$?
expect_eq "both concurrent pushes succeed" "0 0" "$ra $rb"
same_everywhere() {
  local d1 d2 d3
  d1=$(digest_at n1 team/app race) d2=$(digest_at n2 team/app race) d3=$(digest_at n3 team/app race)
  [[ "$d1" == sha256:* ]] && [ "$d1" = "$d2" ] && [ "$d2" = "$d3" ]
}
took=$(wait_until 15 same_everywhere)
check "every node answers one digest for team/app:race (${took}s)" test "$took" != timeout
winner=$(digest_at n1 team/app race)
sleep 2
expect_eq "  and keeps answering it" "$winner $winner $winner" \
  "$(digest_at n1 team/app race) $(digest_at n2 team/app race) $(digest_at n3 team/app race)"

# ---- a delete in one region reaches all ----
expect_eq "DELETE team/app:race at n3: 202" 202 \
  "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE -u alice:s3cret "${URL[n3]}/v2/team/app/manifests/race")"
gone_everywhere() { for n in n1 n2 n3; do [ "$(digest_at $n team/app race)" = 404 ] || return 1; done; }
took=$(wait_until 15 gone_everywhere)
check "the tag is gone on every node (${took}s)" test "$took" != timeout

# ---- deletes by digest stay deleted, fleet-wide (issue 22) ----
# Before, a blob DELETE answered 202 and the next GET at the same node 200,
# from the node holding the durable copy.
check "skopeo pushes team/del:1.0 to n1" "${SK[@]}" --dest-creds alice:s3cret "oci:$LAYOUTS/team_app:1.0" "docker://$(host n1)/team/del:1.0"
mdigest=$(digest_at n1 team/del 1.0)
layer=$(curl -s -H "Accept: $ACCEPT_ALL" "${URL[n1]}/v2/team/del/manifests/1.0" | jq -r '.layers[0].digest')
code_at() { curl -s -o /dev/null -w '%{http_code}' -H "Accept: $ACCEPT_ALL" "${URL[$1]}$2"; }
expect_eq "DELETE of its layer at n2: 202" 202 \
  "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE -u alice:s3cret "${URL[n2]}/v2/team/del/blobs/$layer")"
expect_eq "  the next GET at n2: 404" 404 "$(code_at n2 "/v2/team/del/blobs/$layer")"
all_say() {  # CODE PATH: every node answers CODE for PATH
  for n in n1 n2 n3; do [ "$(code_at $n "$2")" = "$1" ] || return 1; done
}
took=$(wait_until 15 all_say 404 "/v2/team/del/blobs/$layer")
check "  every node answers 404 for it (${took}s)" test "$took" != timeout
sleep 2
check "  and keeps answering 404 after anti-entropy" all_say 404 "/v2/team/del/blobs/$layer"
expect_eq "DELETE of the manifest by digest at n3: 202" 202 \
  "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE -u alice:s3cret "${URL[n3]}/v2/team/del/manifests/$mdigest")"
took=$(wait_until 15 all_say 404 "/v2/team/del/manifests/$mdigest")
check "  every node answers 404 for the manifest (${took}s)" test "$took" != timeout
check "  and for its tag" all_say 404 "/v2/team/del/manifests/1.0"
check "pushed again at n3" "${SK[@]}" --dest-creds alice:s3cret "oci:$LAYOUTS/team_app:1.0" "docker://$(host n3)/team/del:1.0"
took=$(wait_until 15 all_say 200 "/v2/team/del/blobs/$layer")
check "  the layer is back on every node (${took}s)" test "$took" != timeout
check "  and the manifest" all_say 200 "/v2/team/del/manifests/$mdigest"

# ---- durability: the node that took the push dies right after its 201 ----
check "the push to n1 was held by n3 (another region) before its 201" grep -q "holding .* for n1" "$WORK/n3.log"
"${SK[@]}" "oci:$LAYOUTS/team_big:1.0" "dir:$WORK/direct/big" || die "local copy failed"
check "skopeo pushes team/big:1.0 to n1" "${SK[@]}" --dest-creds alice:s3cret "oci:$LAYOUTS/team_big:1.0" "docker://$(host n1)/team/big:1.0"
kill -KILL "${PID[n1]}"
wait "${PID[n1]}" 2>/dev/null
mkdir -p "$WORK/n2"
check "n1 SIGKILLed at once; n2 (n1's region) pulls team/big:1.0" "${SK[@]}" "docker://$(host n2)/team/big:1.0" "dir:$WORK/n2/big"
expect_eq "  byte-identical" "$(dir_sums "$WORK/direct/big")" "$(dir_sums "$WORK/n2/big")"
fleet_start_node n1
took=$(wait_until 15 fleet_all_alive)
check "n1 rejoined (${took}s)" test "$took" != timeout

# ---- a restart keeps the fleet state ----
fleet_stop n2
fleet_start_node n2
check "n2 restored the own registry's tags" grep -q "tag version(s) of '$REG' restored" "$WORK/n2.log"
expect_eq "after its restart n2 answers team/app:1.0" "$(digest_at n1 team/app 1.0)" "$(digest_at n2 team/app 1.0)"
expect_eq "  and still not the deleted tag" 404 "$(digest_at n2 team/app race)"
sleep 3  # an anti-entropy round with a node that kept the tombstone
expect_eq "  nor after anti-entropy" 404 "$(digest_at n2 team/app race)"

fleet_stop
it_finish
