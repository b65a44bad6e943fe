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
