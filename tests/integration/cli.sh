#!/usr/bin/env bash
# The command line: --help everywhere, version, `config check` (exit 0 for a
# valid file; non-zero and one line naming the key for an invalid one), and
# serve refusing bad flags with one line.
source "$(dirname "$0")/lib/common.sh"

for cmd in "" "serve" "config" "config check" "version"; do
  # shellcheck disable=SC2086
  out=$("$GEOREG" $cmd --help 2>&1)
  rc=$?
  check "georeg $cmd --help exits 0 and prints usage" test "$rc" = 0 -a -n "$(echo "$out" | grep -i usage)"
done
check "version prints the version" bash -c "'$GEOREG' version | grep -qE '^georeg [0-9]+\.[0-9]+\.[0-9]+'"
check "the shipped example config is valid" "$GEOREG" config check --config "$(dirname "$0")/../../config/georeg.toml"

bad() {  # NAME EXPECTED-PREFIX TOML
  printf '%s\n' "$3" >"$WORK/bad.toml"
  "$GEOREG" config check --config "$WORK/bad.toml" >"$WORK/out" 2>"$WORK/err"
  local rc=$?
  check "$1: non-zero exit" test "$rc" -ne 0
  expect_eq "$1: one line on stderr" 1 "$(wc -l <"$WORK/err")"
  check "$1: names '$2'" grep -qF "$2" "$WORK/err"
  expect_eq "$1: nothing on stdout" "" "$(cat "$WORK/out")"
}
UP=$'[[upstream]]\nregistry = "docker.io"\nurl = "https://registry-1.docker.io"'
bad "unknown key" "server.lisen: unknown key" "$(printf '[server]\nlisen = "127.0.0.1:5000"\n%s' "$UP")"
bad "bad address" "server.listen:" "$(printf '[server]\nlisten = "localhost"\n%s' "$UP")"
bad "bad size" "cache.max_size:" "$(printf '[cache]\nmax_size = "20 gigs"\n%s' "$UP")"
bad "no upstream" "upstream:" "$(printf '[cache]\ndir = "/tmp/x"\n')"
bad "bad duration" "upstream[0].tag_ttl:" "$(printf '%s\ntag_ttl = "forever"' "$UP")"
bad "TOML syntax" "bad.toml:1" "[server"
"$GEOREG" config check --config "$WORK/missing.toml" 2>"$WORK/err"
check "missing file: non-zero exit and one line" test $? -ne 0 -a "$(wc -l <"$WORK/err")" = 1

"$GEOREG" serve --listen nowhere --cache-dir "$WORK/c" 2>"$WORK/err"
check "serve with a bad --listen: non-zero, one line" test $? -ne 0 -a "$(wc -l <"$WORK/err")" = 1
"$GEOREG" serve --upstream nourl --cache-dir "$WORK/c" 2>"$WORK/err"
check "serve with a bad --upstream: non-zero, one line" test $? -ne 0 -a "$(wc -l <"$WORK/err")" = 1
"$GEOREG" serve --metrics-listen 9464 --cache-dir "$WORK/c" 2>"$WORK/err"
check "serve with a bad --metrics-listen: non-zero, one line naming metrics.listen" \
  test $? -ne 0 -a "$(wc -l <"$WORK/err")" = 1 -a "$(grep -c metrics.listen "$WORK/err")" = 1
check "a refused start created no cache" test ! -e "$WORK/c"
bad "bad peer network" "cluster.peer_networks:" "$(printf '[cluster]\npeer_networks = ["10.0.0.0/33"]\n%s' "$UP")"
bad "bad request deadline" "upstream[0].request_deadline:" "$(printf '%s\nrequest_deadline = "0s"' "$UP")"

# The test library's own stop helper must be able to fail: a process that
# is already gone is not "stopped by SIGTERM".
start_bg "short-lived" "$WORK/short.log" true
sleep 0.3
stop_pid "$LAST_PID"
expect_eq "stop_pid of a process already gone fails (125)" 125 "$?"
start_bg "long-lived" "$WORK/long.log" sleep 30
stop_pid "$LAST_PID"
expect_eq "stop_pid of a live process returns its status (TERM: 143)" 143 "$?"
it_finish
