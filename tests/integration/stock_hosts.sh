#!/usr/bin/env bash
# A stock Debian 12 /etc/hosts lists "::1 localhost" before "127.0.0.1
# localhost"; a machine that maps localhost to 127.0.0.1 only hides every
# client that connects to the first resolved address alone. This test runs
# in a private mount namespace with the stock hosts file bound over
# /etc/hosts, against origins on 127.0.0.1 only: georeg must try the next
# address (Happy Eyeballs), and the tests that name their origin "localhost"
# (TLS, auth, redirects) must pass there too.
source "$(dirname "$0")/lib/common.sh"
need unshare

if [ "${GEOREG_STOCK_HOSTS:-}" != 1 ]; then
  cat >"$WORK/hosts" <<'HOSTS'
::1		localhost ip6-localhost ip6-loopback
127.0.0.1	localhost
ff02::1		ip6-allnodes
ff02::2		ip6-allrouters
HOSTS
  # Re-run this script (and the named tests) inside the namespace.
  exec unshare --mount --propagation private bash -c \
    'mount --bind "$1" /etc/hosts && rm -rf "$3" && GEOREG_STOCK_HOSTS=1 exec bash "$2"' _ "$WORK/hosts" "$0" "$WORK"
fi

check "localhost resolves to ::1 first here" bash -c "getent ahosts localhost | head -1 | grep -q '^::1'"

# The origin listens on 127.0.0.1 only; the upstream is named by "localhost".
start_origin plain
push_fixtures
write_config "$ORIGIN" "http://localhost:$ORIGIN_PORT"
start_georeg --config "$WORK/georeg.toml"
layer=$(fix app_layer)
code=$(curl -s -o "$WORK/b" -w '%{http_code}' "$GEOREG_URL/v2/team/app/blobs/$layer?ns=$ORIGIN")
expect_eq "a blob from an origin on 127.0.0.1 named localhost (::1 refused first)" 200 "$code"
expect_eq "the right bytes" "$layer" "sha256:$(sha_of "$WORK/b")"
stop_georeg
expect_eq "georeg exits 0 on SIGTERM" 0 "$?"

# ::1 does not refuse but hangs (a listener whose accept queue is full drops
# every SYN, as a firewall or a dead route would): georeg must not wait for
# the connect timeout (10 s here) but race 127.0.0.1 after a short stagger.
cat >"$WORK/hole.py" <<'PY'
import socket, sys, time
port, ready = int(sys.argv[1]), sys.argv[2]
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s.bind(("::1", port))
s.listen(0)
fill = []
for _ in range(3):  # the accept queue fills; every SYN after that is dropped
    c = socket.socket(socket.AF_INET6)
    c.setblocking(False)
    c.connect_ex(("::1", port))
    fill.append(c)
time.sleep(0.5)
open(ready, "w").write("ok")
time.sleep(3600)
PY
start_bg "black hole on [::1]:$ORIGIN_PORT" "$WORK/hole.log" python3 "$WORK/hole.py" "$ORIGIN_PORT" "$WORK/hole.ready"
HOLE_PID=$LAST_PID
for _ in $(seq 50); do [ -s "$WORK/hole.ready" ] && break; sleep 0.1; done
timeout 2 bash -c "exec 3<>/dev/tcp/::1/$ORIGIN_PORT" 2>/dev/null
expect_eq "a connection to [::1]:$ORIGIN_PORT hangs (timeout's 124, not refused)" 124 "$?"
write_config "$ORIGIN" "http://localhost:$ORIGIN_PORT" 'connect_timeout = "10s"'
start_georeg --config "$WORK/georeg.toml"  # a new cache: the blob is a miss again
start=$(date +%s%N)
code=$(curl -s -o "$WORK/b2" -w '%{http_code}' "$GEOREG_URL/v2/team/app/blobs/$layer?ns=$ORIGIN")
ms=$((($(date +%s%N) - start) / 1000000))
expect_eq "a blob from the origin with ::1 hanging" 200 "$code"
expect_eq "the right bytes" "$layer" "sha256:$(sha_of "$WORK/b2")"
check "in ${ms} ms: 127.0.0.1 was raced after the stagger (250 ms), not tried after the 10 s connect timeout" \
  test "$ms" -ge 250 -a "$ms" -lt 5000
stop_georeg
expect_eq "georeg exits 0 on SIGTERM" 0 "$?"
stop_pid "$HOLE_PID"
expect_eq "the black hole stops on SIGTERM (python's default: 143)" 143 "$?"
stop_origin

# The tests that failed on a stock machine, run again under this hosts file.
dir="$(cd "$(dirname "$0")" && pwd)"
for t in tls_upstream auth_upstream redirect_upstream; do
  out=$(bash "$dir/$t.sh" 2>&1)
  rc=$?
  echo "$out" | grep -E '^not ok' | sed "s/^/  $t: /"
  expect_eq "$t passes with the stock hosts file ($(echo "$out" | tail -1))" 0 "$rc"
done
it_finish
