#!/usr/bin/env bash
# tools/demo.sh, as a newcomer runs it: an origin, three nodes in three
# regions, a pull, a push, the replication table, the status and the map's
# URL; then Ctrl-C (SIGINT) stops everything it started and removes its files.
source "$(dirname "$0")/lib/common.sh"
need docker-registry; need skopeo; need jq
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="$WORK/demo.out"
# As from a terminal: its own process group, SIGINT not ignored (a script's
# background jobs start with SIGINT ignored, and a shell cannot trap that).
setsid python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp("bash", ["bash", sys.argv[1]])' \
  "$ROOT/tools/demo.sh" >"$OUT" 2>&1 </dev/null &
DEMO=$!
IT_PIDS+=("$DEMO")
for _ in $(seq 600); do grep -q "Ctrl-C stops everything" "$OUT" && break; running "$DEMO" || break; sleep 0.1; done
check "the demo comes up and says how to stop it" grep -q "Ctrl-C stops everything" "$OUT"
check "  the image pulled through a node" grep -q "^pulled origin.local/team/app:1.0 through n1" "$OUT"
check "  an image pushed to another" grep -q "^pushed fleet.local/demo/hello:1.0 at n2" "$OUT"
check "  replication list -o table: westeurope and japaneast" \
  bash -c "grep -qE '^westeurope +westeurope +Succeeded' '$OUT' && grep -qE '^japaneast +japaneast +Succeeded' '$OUT'"
check "  the status: the node, its two peers" bash -c "grep -q '^NODE n1  REGION eastus' '$OUT' && grep -qE '^n2 +westeurope +alive' '$OUT' && grep -qE '^n3 +japaneast +alive' '$OUT'"
url=$(sed -n 's|^Map: \(http://[^ ]*\).*|\1|p' "$OUT")
check "  the map's URL, which answers ($url)" curl -sf -o /dev/null "$url"
dir=$(sed -n 's|.*logs in \(/tmp/georeg-demo\.[A-Za-z0-9]*\)/.*|\1|p' "$OUT")
check "  its files in one directory ($dir)" test -d "$dir"
kill -INT -- "-$DEMO"  # Ctrl-C goes to the terminal's whole process group
for _ in $(seq 300); do running "$DEMO" || break; sleep 0.1; done
running "$DEMO" && fail "Ctrl-C: the demo exits" || ok "Ctrl-C: the demo exits"
check "  every process it started is gone" bash -c "! pgrep -f '$dir/[n]' >/dev/null"
check "  and its directory" test ! -e "$dir"
check "  the map's address no longer answers" bash -c "! curl -s -o /dev/null --max-time 2 '$url'"
it_finish
