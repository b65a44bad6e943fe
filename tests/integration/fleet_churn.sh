#!/usr/bin/env bash
# A fleet that keeps answering (issue 22): four nodes in three regions (n1,
# n2 in eu; n3 in us; n4 in ap) mirror a real origin (docker-registry) and
# serve the own registry. Clients at the nodes pull cached and uncached
# mirrored blobs, HEAD blobs nobody has and push images without a pause
# (lib/fleet_load.py) while n3 is killed with SIGKILL and started again,
# then n2 is restarted with SIGTERM. Every response counts: the clients of
# the other nodes must never see an error they would have to retry, and
# the origin serves a blob at most once per region while an owner is away.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/cluster.sh"
need jq

start_origin
python3 "$IT_LIB/fleet_load.py" seed "$ORIGIN" team/churn 20 65536 "$WORK/cached" || die "seeding the origin"
python3 "$IT_LIB/fleet_load.py" seed "$ORIGIN" team/churn 400 32768 "$WORK/uncached" || die "seeding the origin"

# The window the clients once saw (503 until a dead member is declared
# dead) lasts suspect_timeout: 5 s here, as in production defaults' order.
SUSPECT_TIMEOUT=5s
FLEET_UPSTREAM_REGISTRY="$ORIGIN" FLEET_UPSTREAM_URL="http://$ORIGIN"
fleet_registry fleet.local 256MiB
fleet_start n1=eu n2=eu n3=us n4=ap

for d in $(cat "$WORK/cached"); do
  for n in "${NODES[@]}"; do curl -sf -o /dev/null "${URL[$n]}/v2/team/churn/blobs/$d?ns=$ORIGIN" || die "warming $d at $n"; done
done

control() { echo "$*" >"$WORK/control"; sleep 1; }  # the nodes loaded from now on; in-flight requests finish
jq -n --arg ns "$ORIGIN" --arg control "$WORK/control" --arg report "$WORK/report" \
  --argjson nodes "$(for n in "${NODES[@]}"; do echo "{\"$n\": \"${URL[$n]}\"}"; done | jq -s add)" \
  --argjson cached "$(jq -R . <"$WORK/cached" | jq -s .)" --argjson uncached "$(jq -R . <"$WORK/uncached" | jq -s .)" \
  '{nodes: $nodes, ns: $ns, repo: "team/churn", cached: $cached, uncached: $uncached,
    push_repo: "team/pushed", creds: "alice:s3cret", workers: 2, control: $control, report: $report}' >"$WORK/plan.json"
control n1 n2 n3 n4
python3 "$IT_LIB/fleet_load.py" run "$WORK/plan.json" &
LOADER=$!
IT_PIDS+=("$LOADER")
sleep 3

log "SIGKILL n3"
control n1 n2 n4
kill -KILL "${PID[n3]}"
n3_dead() { [ "$(member_state n1 n3)" = dead ] && [ "$(member_state n4 n3)" = dead ]; }
took=$(wait_until 20 n3_dead)
check "n1 and n4 declare n3 dead (${took}s), under load" test "$took" != timeout
sleep 1
log "n3 starts again"
fleet_start_node n3
took=$(wait_until 30 fleet_all_alive)
check "n3 is back and every node sees four alive (${took}s)" test "$took" != timeout
control n1 n2 n3 n4
sleep 2

log "SIGTERM n2, then start it again"
control n1 n3 n4
stop_pid "${PID[n2]}"
expect_eq "n2 exits 0 on SIGTERM under load" 0 "$?"
sleep 2
fleet_start_node n2
took=$(wait_until 30 fleet_all_alive)
check "n2 is back and every node sees four alive (${took}s)" test "$took" != timeout
control n1 n2 n3 n4
sleep 2

echo stop >"$WORK/control"
wait "$LOADER"
cat "$WORK/report" | tail -25
summary=$(tail -1 "$WORK/report")
log "load: $summary; $(tail -2 "$WORK/report" | head -1)"
check "the load ran ($summary)" test "$(echo "$summary" | awk '{print $2}')" -gt 500
expect_eq "no client of a surviving node saw an error" "failed 0" "$(echo "$summary" | awk '{print $3, $4}')"
for kind in "GET_cached" "GET_uncached" "HEAD_absent" "push_manifest"; do
  check "  the load had $kind requests" grep -q "$kind=[1-9]" "$WORK/report"
done
most=0
for d in $(cat "$WORK/uncached"); do
  c=$(origin_count "/v2/team/churn/blobs/$d")
  [ "$c" -gt "$most" ] && most=$c
done
check "the origin served every blob at most once per region (at most $most times; 3 regions)" test "$most" -le 3

fleet_stop
it_finish
