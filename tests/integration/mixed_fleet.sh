#!/usr/bin/env bash
# A rolling upgrade half done: four nodes in two regions, n1 and n3 this
# build ($GEOREG), n2 and n4 an earlier release ($GEOREG_PREVIOUS, built by
# tools/mixed_fleet.sh), mirroring a real origin and serving the own
# registry. The fleet converges and serves across the versions: every node
# sees four alive, a push at either kind of node is pulled at the other
# kind in the other region, its tag reaches every node, mirrored blobs
# come through owners of the other kind, and a new node restarted keeps
# reading what it kept. Not in the 20-minute suite (it needs a second
# build); tools/mixed_fleet.sh runs it.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/cluster.sh"
need jq; need skopeo
PREVIOUS="${GEOREG_PREVIOUS:?GEOREG_PREVIOUS must point at georeg of the earlier release}"

start_origin
BIG_MB=8 push_fixtures
python3 "$IT_LIB/make_images.py" "$WORK/layouts" --big-mb 8 >/dev/null || die "building images failed"
LAYOUTS="$WORK/layouts"
FLEET_UPSTREAM_REGISTRY="$ORIGIN" FLEET_UPSTREAM_URL="http://$ORIGIN"
fleet_registry fleet.local 256MiB
GEOREG_FOR[n2]="$PREVIOUS"
GEOREG_FOR[n4]="$PREVIOUS"
log "this build: $GEOREG; earlier release: $PREVIOUS"
fleet_start n1=eu n2=eu n3=us n4=us

SK=(skopeo copy -q --dest-tls-verify=false --src-tls-verify=false)
host() { echo "127.0.0.1:${PORT[$1]}"; }
dir_sums() { (cd "$1" && find . -type f ! -name version -print0 | sort -z | xargs -0 sha256sum); }
"${SK[@]}" "oci:$LAYOUTS/team_app:1.0" "dir:$WORK/direct" || die "local copy failed"

check "a push at n1 (this build)" "${SK[@]}" --dest-creds alice:s3cret "oci:$LAYOUTS/team_app:1.0" "docker://$(host n1)/team/app:new"
check "  is pulled at n4 (earlier, other region)" "${SK[@]}" "docker://$(host n4)/team/app:new" "dir:$WORK/at-n4"
expect_eq "  byte-identical" "$(dir_sums "$WORK/direct")" "$(dir_sums "$WORK/at-n4")"
check "a push at n2 (earlier)" "${SK[@]}" --dest-creds alice:s3cret "oci:$LAYOUTS/team_app:1.0" "docker://$(host n2)/team/app:old"
check "  is pulled at n3 (this build, other region)" "${SK[@]}" "docker://$(host n3)/team/app:old" "dir:$WORK/at-n3"
expect_eq "  byte-identical" "$(dir_sums "$WORK/direct")" "$(dir_sums "$WORK/at-n3")"
tags_at() { curl -s "${URL[$1]}/v2/team/app/tags/list" | jq -r '.tags | join(" ")'; }
everyone_lists() {
  local n
  for n in n1 n2 n3 n4; do [ "$(tags_at $n)" = "new old" ] || return 1; done
}
took=$(wait_until 20 everyone_lists)
check "both tags reach every node (${took}s)" test "$took" != timeout

blob=$(fix big_layer)
for n in n2 n3 n1 n4; do
  code=$(curl -s -o "$WORK/big.$n" -w '%{http_code}' "${URL[$n]}/v2/team/big/blobs/$blob?ns=$ORIGIN")
  expect_eq "mirrored blob at $n: 200 and the right bytes" "200 $blob" "$code sha256:$(sha_of "$WORK/big.$n")"
done
check "the origin served it at most once per region" test "$(origin_count "/v2/team/big/blobs/$blob")" -le 2

check "no node refused a peer's protocol" bash -c "! grep -h 'protocol this node does not speak' $WORK/n1.log $WORK/n3.log"
fleet_stop n1
fleet_start_node n1
took=$(wait_until 20 fleet_all_alive)
check "n1 (this build) restarted and rejoined the mixed fleet (${took}s)" test "$took" != timeout
expect_eq "  and answers both tags" "new old" "$(tags_at n1)"

fleet_stop
it_finish
