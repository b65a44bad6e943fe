#!/usr/bin/env bash
# Geo-replication of the fleet's own registry across three regions in
# network namespaces (one node each: eastus, westeurope, japaneast; RTT
# 40/80/120 ms between them), policy "full", pre-fetch capped at 4 MiB/s:
#   - an image pushed at A (eastus) makes eastus the first replication;
#     `replication status --image` shows japaneast without it;
#   - `replication create --location japaneast` through A; `replication
#     list -o table` through B shows it Syncing, then Ready, in the managed
#     registry's exact layout; the status then shows japaneast holding it;
#   - a push at A is pulled by containerd (ctr) at C the moment skopeo
#     returns; after C is Ready, a ctr pull there moves no byte across regions;
#   - routing to westeurope disabled: the other regions fetch nothing from it;
#   - concurrent pushes of one tag at A and C converge on every node;
#   - A SIGKILLed right after a 201: the pull at C gets the right bytes, and
#     eastus shows Unavailable;
#   - refusals: unknown registry, invalid and unknown regions, no
#     credentials, deleting the last replication.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/cluster.sh"
source "$(dirname "$0")/lib/netns.sh"
need jq; need skopeo; need containerd; need ctr
[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"

net_up 3 1 "1-2=40,2-3=80,1-3=120" 2 200
python3 "$IT_LIB/make_images.py" "$WORK/layouts" --big-mb 12 >/dev/null || die "building images failed"
LAYOUTS="$WORK/layouts"
fleet_registry fleet.example 512MiB 'policy = "full"
prefetch_rate = "4MiB/s"'
FLEET_NETNS=1
fleet_start r1h1=eastus r2h1=westeurope r3h1=japaneast

R() {  # NODE ARGS...: georeg replication through NODE, with the push credentials
  local n="$1"; shift
  in_ns "$n" env GEOREG_USERNAME=alice GEOREG_PASSWORD=s3cret "$GEOREG" replication "$@" --registry "$REG" \
    --endpoint http://127.0.0.1:5000
}
SK=(skopeo copy -q --dest-tls-verify=false --src-tls-verify=false)
push() {  # NODE LAYOUT REF: skopeo push through NODE
  in_ns "$1" "${SK[@]}" --dest-creds alice:s3cret "oci:$LAYOUTS/$2" "docker://127.0.0.1:5000/$3"
}
cross_bytes() { peers_json "$1" | jq '.stats.peer_bytes_cross_region'; }
served() { peers_json "$1" | jq '.stats.served_to_peers'; }
state_of() {  # NODE REGION: "provisioningState displayStatus" as NODE lists it
  R "$1" list -o json | jq -r --arg r "$2" '.[] | select(.name == $r) | "\(.provisioningState) \(.status.displayStatus)"'
}
present_in() {  # NODE IMAGE REGION: true/false
  R "$1" status --image "$2" -o json | jq -r --arg r "$3" '.regions[] | select(.region == $r) | .present'
}

# ---- the first push makes the first replication ----
check "skopeo pushes team/app:1.0 at A (eastus)" push r1h1 team_app:1.0 team/app:1.0
names_are() { [ "$(R "$1" list -o json | jq -r '[.[].name] | join(" ")')" = "$2" ]; }
took=$(wait_until 20 names_are r2h1 eastus)
check "eastus, where the registry was first written, is its first replication (${took}s)" test "$took" != timeout
expect_eq "status --image: japaneast (not replicated) does not hold it" false "$(present_in r2h1 team/app:1.0 japaneast)"
R r2h1 status --image team/app:1.0 -o table >"$WORK/status.table"
check "status --image -o table: one row per region" \
  bash -c "grep -q '^REGION  *REPLICATED  *MANIFESTS  *BLOBS  *PRESENT$' '$WORK/status.table' && grep -c '^\(eastus\|westeurope\|japaneast\) ' '$WORK/status.table' | grep -qx 3"

# ---- create through A, watch through B ----
R r1h1 create --location japaneast >"$WORK/create.json"
expect_eq "replication create through A exits 0" 0 $?
check "  prints the resource" jq -e --arg reg "$REG" '.name == "japaneast" and .location == "japaneast" and
  (.id | contains($reg) and endswith("/replications/japaneast")) and .type == "georeg/registries/replications" and
  (.provisioningState | IN("Creating", "Succeeded")) and (.status.displayStatus | IN("Syncing", "Ready")) and
  (.status.timestamp | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+\\+00:00$")) and .tags == {} and
  has("resourceGroup")' "$WORK/create.json"
R r2h1 create --location japaneast >"$WORK/create2.json"
expect_eq "create again (through B) is idempotent: exit 0" 0 $?
expect_eq "  the same replication" "$(jq -r .id "$WORK/create.json")" "$(jq -r .id "$WORK/create2.json")"
saw_syncing=0
ready() {
  local s
  s=$(state_of r2h1 japaneast)
  [ "$s" = "Succeeded Syncing" ] || [ "$s" = "Creating Syncing" ] && saw_syncing=1
  [ "$s" = "Succeeded Ready" ]
}
took=timeout
for i in $(seq 300); do if ready; then took=$((i / 5)); break; fi; sleep 0.2; done
check "list through B: japaneast Syncing, then Ready (${took}s)" \
  test "$took" != timeout -a "$saw_syncing" = 1
R r2h1 list -o table >"$WORK/list.table"
expect_eq "list -o table: the header" "NAME       LOCATION    PROVISIONING STATE    STATUS" "$(sed -n 1p "$WORK/list.table")"
expect_eq "list -o table: the separator" "---------  ----------  --------------------  --------" "$(sed -n 2p "$WORK/list.table")"
check "list -o table: a row per replication" \
  bash -c "grep -qx 'japaneast  japaneast   Succeeded             Ready' '$WORK/list.table' && grep -qx 'eastus     eastus      Succeeded             Ready' '$WORK/list.table'"
expect_eq "status --image: japaneast holds it now" true "$(present_in r2h1 team/app:1.0 japaneast)"
R r3h1 show --location japaneast | jq -e '.status.displayStatus == "Ready" and .status.message == null' >/dev/null
expect_eq "show through C: Ready, no message" 0 $?

# ---- containerd at C ----
C="$WORK/containerd"
start_containerd "$C" ip netns exec "$(ns_of r3h1)"
mkdir -p "$C/certs.d/$REG"
cat >"$C/certs.d/$REG/hosts.toml" <<TOML
server = "http://127.0.0.1:5000"

[host."http://127.0.0.1:5000"]
  capabilities = ["pull", "resolve"]
TOML
# ctr fetches in its own process: it runs in C's namespace too.
ctr_() { timeout 120 ip netns exec "$(ns_of r3h1)" ctr --address "$C/containerd.sock" --namespace georeg-it "$@"; }

before=$(cross_bytes r3h1)
check "ctr pulls team/app:1.0 at C (Ready, policy full)" ctr_ images pull --plain-http --hosts-dir "$C/certs.d" "$REG/team/app:1.0"
expect_eq "  no byte crossed regions for that pull" "$before" "$(cross_bytes r3h1)"

check "skopeo pushes team/big:1.0 at A" push r1h1 team_big:1.0 team/big:1.0
# From the 201 (skopeo returning) to the tag answered in japaneast, 120 ms away.
t0=$(date +%s%N)
code=$(in_ns r3h1 curl -s -o /dev/null -w '%{http_code}' -H "Accept: $ACCEPT_ALL" http://127.0.0.1:5000/v2/team/big/manifests/1.0)
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "  C answers the tag at once: ${ms} ms after the 201 (one request)" test "$code" = 200
check "  and ctr pulls it at C the moment skopeo returned" ctr_ images pull --plain-http --hosts-dir "$C/certs.d" "$REG/team/big:1.0"

# ---- drain westeurope ----
R r1h1 create --location westeurope >/dev/null
state_is() { [ "$(state_of "$1" "$2")" = "$3" ]; }
took=$(wait_until 60 state_is r3h1 westeurope "Succeeded Ready")
check "westeurope replicated and Ready (${took}s)" test "$took" != timeout
R r1h1 update --location westeurope --routing disabled >"$WORK/update.json"
expect_eq "update --routing disabled exits 0" 0 $?
check "  the resource says so" jq -e '.regionEndpointEnabled == false' "$WORK/update.json"
drained_at() { R "$1" show --location westeurope | jq -e '.regionEndpointEnabled == false' >/dev/null; }
took=$(wait_until 10 drained_at r3h1)
check "  C learns it by gossip (${took}s)" test "$took" != timeout
sleep 1.5  # every node's once-a-second work applies it
drained_served=$(served r2h1)
check "skopeo pushes library/alpine:3.19 (an index) at A" in_ns r1h1 "${SK[@]}" --all --dest-creds alice:s3cret \
  "oci:$LAYOUTS/library_alpine:3.19" "docker://127.0.0.1:5000/library/alpine:3.19"
check "  ctr pulls it at C" ctr_ images pull --plain-http --hosts-dir "$C/certs.d" "$REG/library/alpine:3.19"
replicated_hold() { [ "$(R "$1" status --image "$2" -o json | jq -r '[.regions[] | select(.replicated) | .present] | all')" = true ]; }
took=$(wait_until 60 replicated_hold r2h1 library/alpine:3.19)
check "  every replicated region holds it, drained westeurope too (${took}s)" test "$took" != timeout
expect_eq "  nobody fetched anything from drained westeurope" "$drained_served" "$(served r2h1)"
R r1h1 update --location westeurope --routing enabled >/dev/null
expect_eq "routing enabled again" 0 $?

# ---- concurrent pushes of one tag in two regions ----
push r1h1 team_app:1.0 team/race:1 &
pa=$!
push r3h1 team_big:1.0 team/race:1 &
pc=$!
wait $pa; ra=$?
wait $pc; rc=$?
expect_eq "two pushes of team/race:1 at A and C at once both succeed" "0 0" "$ra $rc"
digest_at() {
  in_ns "$1" curl -s -o /dev/null -D - -H "Accept: $ACCEPT_ALL" "http://127.0.0.1:5000/v2/team/race/manifests/1" |
    tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}'
}
converged() {
  local a b c
  a=$(digest_at r1h1) b=$(digest_at r2h1) c=$(digest_at r3h1)
  [ -n "$a" ] && [ "$a" = "$b" ] && [ "$b" = "$c" ]
}
took=$(wait_until 30 converged)
check "every node answers the same digest for team/race:1 (${took}s)" test "$took" != timeout

# ---- refusals ----
in_ns r1h1 "$GEOREG" replication list --registry other.example --endpoint http://127.0.0.1:5000 2>"$WORK/err"
rc=$?
check "unknown registry: non-zero exit, one line" test "$rc" -ne 0 -a "$(wc -l <"$WORK/err")" = 1
R r1h1 create --location "Japan_East" 2>"$WORK/err"
rc=$?
check "invalid region name: non-zero exit, one line" test "$rc" -ne 0 -a "$(wc -l <"$WORK/err")" = 1
R r1h1 create --location 'Bad Region!' 2>"$WORK/err"
rc=$?
check "invalid region name with a space: exit 2, says which characters are allowed" bash -c \
  "test $rc -eq 2 && test \$(wc -l <'$WORK/err') = 1 && grep -q \"invalid region name 'Bad Region!': 1-63 lowercase letters\" '$WORK/err'"
in_ns r1h1 "$GEOREG" replication list --registry 'bad name' --endpoint http://127.0.0.1:5000 2>"$WORK/err"
rc=$?
check "invalid registry name: exit 2, one line naming the rule" bash -c \
  "test $rc -eq 2 && test \$(wc -l <'$WORK/err') = 1 && grep -q 'invalid registry name' '$WORK/err'"
R r1h1 create --location southpole 2>"$WORK/err"
rc=$?
check "a region with no node: non-zero exit naming the known regions" bash -c "test $rc -ne 0 && grep -q 'eastus' '$WORK/err'"
in_ns r1h1 "$GEOREG" replication create --location westeurope --registry "$REG" --endpoint http://127.0.0.1:5000 2>"$WORK/err"
rc=$?
check "create without credentials: refused (401)" bash -c "test $rc -ne 0 && grep -qi 'credentials' '$WORK/err'"
check "delete japaneast" R r2h1 delete --location japaneast
check "delete westeurope" R r2h1 delete --location westeurope
R r2h1 delete --location eastus 2>"$WORK/err"
rc=$?
check "deleting the last replication is refused" bash -c "test $rc -ne 0 && grep -q 'last replication' '$WORK/err'"
R r1h1 create --location japaneast >/dev/null
took=$(wait_until 60 state_is r2h1 japaneast "Succeeded Ready")
check "japaneast created again: Ready (${took}s)" test "$took" != timeout

# ---- the pusher dies right after its 201 ----
check "skopeo pushes team/app:2.0 at A" push r1h1 team_app:1.0 team/app:2.0
kill -KILL "${PID[r1h1]}"
mkdir -p "$WORK/c"
check "A killed; skopeo pulls team/app:2.0 at C" in_ns r3h1 "${SK[@]}" docker://127.0.0.1:5000/team/app:2.0 "dir:$WORK/c/app"
"${SK[@]}" "oci:$LAYOUTS/team_app:1.0" "dir:$WORK/direct" >/dev/null
dir_sums() { (cd "$1" && find . -type f ! -name version -print0 | sort -z | xargs -0 sha256sum); }
expect_eq "  byte-identical" "$(dir_sums "$WORK/direct")" "$(dir_sums "$WORK/c/app")"
took=$(wait_until 30 state_is r2h1 eastus "Succeeded Unavailable")
check "eastus shows Unavailable once A is dead (${took}s)" test "$took" != timeout

# ---- georeg status: one node's view of the fleet ----
in_ns r2h1 "$GEOREG" status --endpoint http://127.0.0.1:5000 -o json >"$WORK/status.json"
expect_eq "status: this node and its region" "r2h1 westeurope" "$(jq -r '.node.name + " " + .node.region' "$WORK/status.json")"
expect_eq "  every peer with its region" "r1h1 eastus,r3h1 japaneast" \
  "$(jq -r '[.peers[] | .name + " " + .region] | join(",")' "$WORK/status.json")"
expect_eq "  the live peer alive, with an RTT and a recent contact" "alive true true" \
  "$(jq -r '.peers[] | select(.name == "r3h1") | "\(.state) \(.min_rtt_ms != null) \(.last_contact_ms < 10000)"' "$WORK/status.json")"
check "  the killed one not alive ($(jq -r '.peers[] | select(.name == "r1h1") | .state' "$WORK/status.json"))" \
  test "$(jq -r '.peers[] | select(.name == "r1h1") | .state' "$WORK/status.json")" != alive
expect_eq "  the replications with their status (westeurope was deleted)" "eastus Unavailable,japaneast Ready" \
  "$(jq -r '[.replications[] | .name + " " + .status.displayStatus] | sort | join(",")' "$WORK/status.json")"
check "  cache use and upstream health" jq -e '.cache.budget > 0 and .cache.registry_bytes > 0 and (.upstreams[0].up | type) == "boolean"' "$WORK/status.json"
check "  own blobs counted apart from cached ones" jq -e '.cache.registry_blobs > 0 and (.cache.bytes > 0 or .cache.blobs == 0)' "$WORK/status.json"
in_ns r2h1 "$GEOREG" status --endpoint http://127.0.0.1:5000 >"$WORK/status.txt"
check "status -o table: peers and replications" bash -c "grep -q '^NODE r2h1  REGION westeurope' '$WORK/status.txt' &&
  grep -qE '^r3h1 +japaneast +alive' '$WORK/status.txt' && grep -qE '^eastus +eastus +Succeeded +Unavailable' '$WORK/status.txt'"
check "status -o table: cached and own blobs each beside their bytes" bash -c "grep -qE '^CACHE .* cached blob\(s\)' '$WORK/status.txt' &&
  grep -qE '^REGISTRY .* [1-9][0-9]* own blob\(s\)' '$WORK/status.txt'"
in_ns r2h1 "$GEOREG" status --endpoint http://127.0.0.1:9 >/dev/null 2>"$WORK/err"
expect_eq "status of a node that is not there: exit 3" 3 $?

stop_pid "$CONTAINERD_PID" >/dev/null
fleet_stop r2h1 r3h1  # r1h1 was killed above
it_finish
