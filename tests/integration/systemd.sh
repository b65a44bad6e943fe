#!/usr/bin/env bash
# georeg as a systemd service, without systemd running: the unit meson
# installs (generated with the install paths) passes `systemd-analyze
# verify` and rates 2.0 or better in `systemd-analyze security`; the
# notify protocol on a socket this test owns (READY=1 once it serves,
# STATUS=, RELOADING=1 with MONOTONIC_USEC, STOPPING=1); SIGHUP applies a
# good config and refuses a bad one; sockets passed by
# systemd-socket-activate are served; the open-files limit is raised.
source "$(dirname "$0")/lib/common.sh"
need systemd-analyze; need systemd-socket-activate; need python3; need prlimit

BUILD_DIR="$(cd "$(dirname "$GEOREG")/.." && pwd)"
DEST="$WORK/dest"
check "meson install into a staging directory" meson install -C "$BUILD_DIR" --destdir "$DEST" --no-rebuild --quiet
unit=$(find "$DEST" -name georeg.service -path '*systemd/system*' | head -1)
check "the unit is installed under lib/systemd/system" test -n "$unit"
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
bin=${exec_start%% *}
check "ExecStart names the installed binary ($bin)" test -x "$DEST$bin"
check "  not a path of the build tree" bash -c "! grep -q '$BUILD_DIR' '$unit'"
check "Type=notify, DynamicUser, CacheDirectory, StateDirectory, ExecReload" \
  bash -c "grep -qx Type=notify '$unit' && grep -qx DynamicUser=yes '$unit' && grep -qx CacheDirectory=georeg '$unit' &&
           grep -qx StateDirectory=georeg '$unit' && grep -q '^ExecReload=.*-HUP' '$unit'"
# verify resolves ExecStart= on this machine: point it at the staged binary.
mkdir -p "$WORK/units"
sed "s|$bin|$DEST$bin|g" "$unit" >"$WORK/units/georeg.service"
check "systemd-analyze verify passes" systemd-analyze verify "$WORK/units/georeg.service"
systemd-analyze security --offline=yes "$WORK/units/georeg.service" >"$WORK/security.txt" 2>&1
score=$(sed -n 's/.*Overall exposure level for georeg.service: \([0-9.]*\).*/\1/p' "$WORK/security.txt")
log "systemd-analyze security: exposure $score"
check "systemd-analyze security rates it 2.0 or better (got ${score:-nothing})" \
  awk -v s="$score" 'BEGIN { exit !(s != "" && s + 0 <= 2.0) }'

# ---- the notify protocol ----
NOTES="$WORK/notify.lines"
start_bg notify "$NOTES" python3 "$IT_LIB/notify_socket.py" "$WORK/notify.sock"
for _ in $(seq 50); do grep -q listening "$NOTES" && break; sleep 0.1; done
# wait_note REGEX [N]: until the N-th (default 1st) notification matching REGEX.
wait_note() { for _ in $(seq "$START_WAIT_TENTHS"); do [ "$(grep -cE "$1" "$NOTES")" -ge "${2:-1}" ] && return 0; sleep 0.1; done; return 1; }
start_origin
cfg() {  # LEVEL [EXTRA]: the config, with [log] level LEVEL
  printf '[cache]\ndir = "%s"\nmax_size = "1GiB"\n[log]\nlevel = "%s"\n%s\n[[upstream]]\nregistry = "%s"\nurl = "http://%s"\n' \
    "$WORK/cache" "$1" "${2:-}" "$ORIGIN" "$ORIGIN" >"$WORK/georeg.toml"
}
cfg info
NOTIFY_SOCKET="$WORK/notify.sock" start_georeg --config "$WORK/georeg.toml"
check "READY=1 arrives" wait_note '^READY=1'
check "  and the registry answers at once" curl -sf -o /dev/null --max-time 1 "$GEOREG_URL/v2/"
check "  with a STATUS= line naming the address and the cache" \
  grep -qE "^READY=1 \| STATUS=serving on 127.0.0.1:$GEOREG_PORT; cache 0 blob" "$NOTES"

cfg warn
kill -HUP "$GEOREG_PID"
check "SIGHUP: RELOADING=1 with MONOTONIC_USEC" wait_note '^RELOADING=1 \| MONOTONIC_USEC=[0-9]+ \|'
check "  then READY=1 again" wait_note '^READY=1 .*reloaded$'
before=$(grep -c ' access ' "$GEOREG_LOG")
curl -s -o /dev/null "$GEOREG_URL/v2/"
curl -s -o /dev/null "$GEOREG_URL/v2/"
sleep 0.2
expect_eq "  the new log level applies (level warn: no more access lines)" "$before" "$(grep -c ' access ' "$GEOREG_LOG")"
printf '[cache\nbroken' >"$WORK/georeg.toml"
kill -HUP "$GEOREG_PID"
check "a bad config: refused, named in the log" \
  bash -c "for i in \$(seq 50); do grep -q 'reload: .*the running configuration is kept' '$GEOREG_LOG' && exit 0; sleep 0.1; done; exit 1"
check "  READY=1 follows, saying so" wait_note '^READY=1 .*reload refused$'
check "  and the daemon still serves" curl -sf -o /dev/null --max-time 2 "$GEOREG_URL/v2/"
cfg info '[metrics]
listen = "127.0.0.1:0"'
kill -HUP "$GEOREG_PID"
check "a change that needs a restart is named" \
  bash -c "for i in \$(seq 50); do grep -q 'reload: \[log\] applied; changes to metrics.listen take effect at the next restart' '$GEOREG_LOG' && exit 0; sleep 0.1; done; exit 1"
stop_georeg
expect_eq "SIGTERM: exits 0" 0 $?
check "  after STOPPING=1" grep -q '^STOPPING=1' "$NOTES"

# ---- socket activation: the manager binds, georeg serves what it is given ----
P=$(free_port) M=$(free_port)
cfg info
ACT_LOG="$WORK/activated.log"
start_bg activate "$ACT_LOG" systemd-socket-activate -l "127.0.0.1:$P" -l "127.0.0.1:$M" --fdname=http:metrics \
  "$GEOREG" serve --config "$WORK/georeg.toml" --listen 127.0.0.1:1
ACT_PID=$LAST_PID
for _ in $(seq 50); do grep -q "Listening on" "$ACT_LOG" && break; sleep 0.1; done
check "the first connection starts it and is served" curl -sf -o /dev/null --max-time 10 "http://127.0.0.1:$P/v2/"
check "  on the socket it was given (server.listen unused)" grep -q "listening on 127.0.0.1:$P (socket from the service manager)" "$ACT_LOG"
check "  and the socket named metrics serves /metrics" bash -c "curl -sf --max-time 5 http://127.0.0.1:$M/metrics | grep -q '^georeg_build_info'"
stop_pid "$ACT_PID"
expect_eq "  SIGTERM: exits 0" 0 $?

# ---- the soft open-files limit goes up to the hard one ----
GEOREG_LOG_SAVED="$GEOREG_LOG"
start_bg limited "$WORK/limited.log" prlimit --nofile=1024:8192 "$GEOREG" serve --config "$WORK/georeg.toml" --listen 127.0.0.1:0
LIM_PID=$LAST_PID
for _ in $(seq "$START_WAIT_TENTHS"); do grep -q "listening on" "$WORK/limited.log" && break; sleep 0.1; done
expect_eq "soft open-files limit raised to the hard limit" "8192 8192" \
  "$(awk '/Max open files/ {print $4, $5}' "/proc/$LIM_PID/limits")"
stop_pid "$LIM_PID"
expect_eq "  SIGTERM: exits 0" 0 $?
it_finish
