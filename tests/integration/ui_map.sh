#!/usr/bin/env bash
# The map page (/ui/) in a real browser (Debian's chromium, headless, driven
# through the DevTools protocol by lib/browser.py): three nodes in three
# regions on loopback with the own registry; the page draws the world and
# every region with the status `replication list` gives it, loads nothing
# from elsewhere, and selecting a region that has nodes but no replication
# creates one with the push credentials (a wrong password creates nothing).
# UPDATE_SCREENSHOTS=1 copies the screenshots into docs/.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/cluster.sh"
need jq; need skopeo; need chromium
PY=/usr/bin/python3  # Debian's, with python3-websocket
$PY -c 'import websocket' 2>/dev/null || die "python3-websocket is not installed"

python3 "$IT_LIB/make_images.py" "$WORK/layouts" --big-mb 2 >/dev/null || die "building images failed"
fleet_registry fleet.local 256MiB
fleet_node_config() {  # n1 has its own place, from its config
  [ "$1" = n1 ] && sed -i 's/^region = .*/&\nlatitude = 38.0\nlongitude = -78.5/' "$WORK/n1.toml"
  return 0
}
fleet_start n1=eastus n2=westeurope n3=japaneast
check "a push at n1 (its region becomes the first replication)" skopeo copy -q --dest-tls-verify=false \
  --dest-creds alice:s3cret "oci:$WORK/layouts/team_app:1.0" "docker://127.0.0.1:${PORT[n1]}/team/app:1.0"
R() { GEOREG_USERNAME=alice GEOREG_PASSWORD=s3cret "$GEOREG" replication "$@" --registry "$REG" --endpoint "${URL[n1]}"; }
listed() { R list -o json | jq -r '[.[] | .name + "=" + .status.displayStatus] | sort | join(",")'; }
has_eastus() { listed | grep -q 'eastus='; }
took=$(wait_until 20 has_eastus)
check "replication list: eastus (${took}s)" test "$took" != timeout
rtts() { curl -s "${URL[n1]}/_georeg/v1/status" | jq -e '[.regions[] | select(.rtt_ms != null)] | length == 2' >/dev/null; }
took=$(wait_until 20 rtts)
check "n1 has measured the RTT to both other regions (${took}s)" test "$took" != timeout
status_of() { listed | tr ',' '\n' | sed -n "s/^$1=//p"; }
eastus_ready() { [ "$(status_of eastus)" = Ready ]; }
took=$(wait_until 30 eastus_ready)
check "eastus Ready (${took}s)" test "$took" != timeout

# ---- the browser ----
cat >"$WORK/steps.json" <<JSON
[
  {"wait": "document.body.dataset.ready === '1' && document.querySelectorAll('#regions g[data-region]').length === 3", "name": "drawn", "timeout": 30},
  {"wait": "document.getElementById('land').getAttribute('d').length > 10000", "name": "world", "timeout": 10},
  {"eval": "Object.fromEntries([...document.querySelectorAll('#regions g')].map(g => [g.dataset.region, g.dataset.status]))", "name": "statuses"},
  {"eval": "(() => { const g = document.querySelector('g[data-region=eastus] circle'); return [Math.round(+g.getAttribute('cx')), Math.round(+g.getAttribute('cy'))]; })()", "name": "eastus_xy"},
  {"eval": "(() => { const g = document.querySelector('g[data-region=japaneast] circle'); return [Math.round(+g.getAttribute('cx')), Math.round(+g.getAttribute('cy'))]; })()", "name": "japaneast_xy"},
  {"eval": "document.querySelectorAll('#links line').length", "name": "links"},
  {"eval": "[...document.querySelectorAll('#nodes tbody tr')].length", "name": "node_rows"},
  {"eval": "performance.getEntriesByType('resource').map(e => new URL(e.name).origin).filter(o => o !== location.origin).length", "name": "foreign"},
  {"screenshot": "$WORK/map-before.png", "name": "shot1"},
  {"click": "g[data-region=westeurope] circle", "name": "click_we"},
  {"wait": "getComputedStyle(document.getElementById('create')).display !== 'none'", "name": "form_we", "timeout": 5},
  {"type": "#user", "text": "alice", "name": "user_we"},
  {"type": "#password", "text": "wrong", "name": "pass_we"},
  {"click": "#create-button", "name": "submit_we"},
  {"wait": "document.getElementById('message').textContent.startsWith('not created')", "name": "refused_we", "timeout": 10},
  {"click": "#create-cancel", "name": "cancel"},
  {"click": "g[data-region=japaneast] circle", "name": "click_je"},
  {"wait": "getComputedStyle(document.getElementById('create')).display !== 'none' && document.getElementById('create-title').textContent.includes('japaneast')", "name": "form_je", "timeout": 5},
  {"type": "#user", "text": "alice", "name": "user_je"},
  {"type": "#password", "text": "s3cret", "name": "pass_je"},
  {"click": "#create-button", "name": "submit_je"},
  {"wait": "document.getElementById('message').textContent.includes('created')  && !document.getElementById('message').textContent.startsWith('not')", "name": "created_je", "timeout": 10},
  {"wait": "document.querySelector('g[data-region=japaneast]').dataset.status !== 'none'", "name": "redrawn_je", "timeout": 15},
  {"eval": "document.querySelector('g[data-region=japaneast]').dataset.status", "name": "je_status"},
  {"screenshot": "$WORK/map-after.png", "name": "shot2"}
]
JSON
before=$(listed)
timeout 180 $PY "$IT_LIB/browser.py" "${URL[n1]}/ui/" "$WORK/map.png" "$WORK/steps.json" >"$WORK/browser.out" 2>"$WORK/browser.err"
log "browser: $(tr '\n' ' ' <"$WORK/browser.out")"
val() { sed -n "s/^$1=//p" "$WORK/browser.out"; }
check "chromium started and opened the page" grep -qx browser=started "$WORK/browser.out"
check "the map draws the three regions (in $(val drawn) s)" test "$(val drawn)" != timeout -a -n "$(val drawn)"
check "  and the world outline" test "$(val world)" != timeout -a -n "$(val world)"
expect_eq "  each with the status replication list gives it" \
  "{\"eastus\": \"$(status_of eastus)\", \"japaneast\": \"none\", \"westeurope\": \"none\"}" "$(val statuses)"
expect_eq "  eastus where its config puts n1 (38.0, -78.5)" "[102, 52]" "$(val eastus_xy)"
expect_eq "  japaneast at its built-in place (35.7, 139.8)" "[320, 54]" "$(val japaneast_xy)"
expect_eq "  a line to each other region, with its RTT" 2 "$(val links)"
expect_eq "  a row per node" 3 "$(val node_rows)"
expect_eq "  nothing loaded from another origin" 0 "$(val foreign)"
check "selecting westeurope asks for the push credentials" test "$(val click_we) $(val form_we)" != "ok timeout" -a "$(val form_we)" != timeout
check "  a wrong password: refused on the page" test "$(val refused_we)" != timeout -a -n "$(val refused_we)"
check "selecting japaneast and giving the credentials" test "$(val form_je)" != timeout -a "$(val submit_je)" = ok
check "  the page says it was created" test "$(val created_je)" != timeout -a -n "$(val created_je)"
after=$(listed)
expect_eq "replication list gained japaneast, and only it" "$(printf '%s\n' "${before//,/$'\n'}" japaneast=X | sed 's/=.*//' | sort | tr '\n' ' ')" \
  "$(echo "${after//,/$'\n'}" | sed 's/=.*//' | sort | tr '\n' ' ')"
check "  the map redraws it with its status ($(val je_status))" test "$(val redrawn_je)" != timeout -a -n "$(val redrawn_je)"
check "screenshots taken" test -s "$WORK/map-before.png" -a -s "$WORK/map-after.png"
if [ "${UPDATE_SCREENSHOTS:-0}" = 1 ]; then
  cp "$WORK/map-before.png" "$(dirname "$0")/../../docs/ui-map.png"
  cp "$WORK/map-after.png" "$(dirname "$0")/../../docs/ui-map-replicated.png"
fi

fleet_stop
check "no chromium left running" bash -c "! pgrep -f 'user-data-dir=[^ ]*georeg-chromi[u]m-' >/dev/null"
it_finish
