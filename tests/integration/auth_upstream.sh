#!/usr/bin/env bash
# Authenticated upstreams, real registry: docker-registry with htpasswd
# (Basic, over TLS) and with token auth (a token server in this test,
# signing with a key the test makes). Pulls work with credentials from
# password_file and fail cleanly without; a bearer token is reused across
# requests of one scope and renewed after it expires.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/pki.sh"
need htpasswd
need openssl

start_origin plain
push_fixtures
stop_origin
make_ca ca
make_cert ca good localhost
printf 's3cret-pass\n' >"$WORK/password"
chmod 600 "$WORK/password"
layer=$(fix app_layer)
M=team/app/manifests/1.0

georeg_with() {  # URL [extra upstream keys...]
  write_config "$ORIGIN" "$@"
  start_georeg --config "$WORK/georeg.toml"
}
get() { curl -s -o "$WORK/body" -w '%{http_code}' -H "Accept: $ACCEPT_ALL" "$GEOREG_URL/v2/$1"; }

# ---- Basic auth (htpasswd) over TLS ----
htpasswd -Bbn georeg s3cret-pass >"$WORK/htpasswd" 2>/dev/null || die "htpasswd"
ORIGIN_HOST=localhost ORIGIN_SCHEME=https \
  ORIGIN_HTTP_EXTRA=$'  tls:\n    certificate: '"$PKI/good.crt"$'\n    key: '"$PKI/good.key" \
  start_origin basic $'auth:\n  htpasswd:\n    realm: georeg-test\n    path: '"$WORK/htpasswd"
georeg_with "https://$ORIGIN" "ca_file = \"$PKI/ca.crt\"" 'username = "georeg"' "password_file = \"$WORK/password\""
expect_eq "basic auth: manifest with credentials" 200 "$(get "$M")"
expect_eq "basic auth: blob with credentials" 200 "$(get "team/app/blobs/$layer")"
expect_eq "basic auth: blob bytes" "$layer" "sha256:$(sha_of "$WORK/body")"
check "basic auth: the password never appears in georeg's log" bash -c "! grep -q 's3cret' '$GEOREG_LOG'"
stop_georeg
georeg_with "https://$ORIGIN" "ca_file = \"$PKI/ca.crt\""
expect_eq "basic auth without credentials: blob fails cleanly" 503 "$(get "team/app/blobs/$layer")"
expect_eq "basic auth without credentials: manifest fails cleanly" 503 "$(get "$M")"
check "basic auth without credentials: the log says so" grep -q "requires credentials" "$GEOREG_LOG"
stop_georeg
printf 'wrong\n' >"$WORK/wrong"
georeg_with "https://$ORIGIN" "ca_file = \"$PKI/ca.crt\"" 'username = "georeg"' "password_file = \"$WORK/wrong\""
expect_eq "basic auth with a wrong password: fails cleanly" 503 "$(get "team/app/blobs/$layer")"
stop_georeg
stop_origin

# ---- Token auth ----
make_ca tokensigner
TLOG="$WORK/token.requests"
: >"$TLOG"
start_bg "token server" "$WORK/token.log" python3 "$IT_LIB/token_server.py" --port-file "$WORK/token.port" \
  --log "$TLOG" --key "$PKI/tokensigner.key" --cert "$PKI/tokensigner.crt" --issuer georeg-test-issuer \
  --service georeg-test --expires 4 --user georeg --password s3cret-pass
for _ in $(seq 50); do [ -s "$WORK/token.port" ] && break; sleep 0.1; done
TOKEN_URL="http://127.0.0.1:$(cat "$WORK/token.port")/token"
start_origin token "$(printf 'auth:\n  token:\n    realm: %s\n    service: georeg-test\n    issuer: georeg-test-issuer\n    rootcertbundle: %s' "$TOKEN_URL" "$PKI/tokensigner.crt")"
check "the registry demands a token" bash -c "curl -sI http://$ORIGIN/v2/ | grep -q '^HTTP/1.1 401'"
# The realm is on a loopback address: refused (SSRF, credential leak) unless
# the upstream allows private addresses.
georeg_with "http://$ORIGIN" 'username = "georeg"' "password_file = \"$WORK/password\""
expect_eq "token realm on loopback without allow_private_addresses: refused" 503 "$(get "$M")"
expect_eq "token realm refused: nothing was sent to it, credentials included" 0 "$(grep -c . "$TLOG")"
check "token realm refused: the log says why" grep -q "refused: 127.0.0.1 resolves to a loopback address" "$GEOREG_LOG"
stop_georeg
georeg_with "http://$ORIGIN" 'username = "georeg"' "password_file = \"$WORK/password\"" 'allow_private_addresses = true'
scope_count() { grep -c "scope=repository:team/app:pull auth=yes status=200" "$TLOG"; }
expect_eq "token auth: manifest" 200 "$(get "$M")"
expect_eq "token auth: blob" 200 "$(get "team/app/blobs/$layer")"
expect_eq "token auth: blob bytes" "$layer" "sha256:$(sha_of "$WORK/body")"
other=$(jq -r '.config.digest' "$FIX/team_app_1.0.json")
expect_eq "token auth: another blob" 200 "$(get "team/app/blobs/$other")"
expect_eq "token auth: one token for the scope, reused across requests" 1 "$(scope_count)"
check "token auth: credentials went to the realm" grep -q "auth=yes" "$TLOG"
sleep 4.5
last=$(jq -r '.layers[0].digest' "$FIX/team_app_1.0.json")
expect_eq "token auth: a blob after the token expired" 200 "$(get "team/app/blobs/$last")"
expect_eq "token auth: the token was renewed" 2 "$(scope_count)"
check "token auth: no token in georeg's log" bash -c "! grep -qi 'eyJ' '$GEOREG_LOG'"
stop_georeg
georeg_with "http://$ORIGIN" 'allow_private_addresses = true'
expect_eq "token auth without credentials: fails cleanly" 503 "$(get "team/app/blobs/$layer")"
check "token auth without credentials: the log says why" grep -q "token request for .* answered 401" "$GEOREG_LOG"
stop_georeg
stop_origin

# ---- A 401 with a cached token (scripted upstream: the real registry honours
# tokens 60 s past their exp): one new token and a retry; if that one is
# refused as well, the request fails instead of looping. ----
mapfile -t BL < <(make_blobs "$WORK/bblobs" 3 1 bearer)
start_fake bearer --dir "$WORK/bblobs" --token-valid 2
write_config fake "http://$FAKE"
start_georeg --config "$WORK/georeg.toml"
tokens() { grep -c "TOKEN issued" "$FAKE_LOG"; }
g() { curl -s -o "$WORK/b" -w '%{http_code}' "$GEOREG_URL/v2/x/blobs/$1"; }
expect_eq "scripted bearer: first blob" "200 1" "$(g "${BL[0]}") $(tokens)"
expect_eq "scripted bearer: the cached token is reused" "200 1" "$(g "${BL[1]}") $(tokens)"
sleep 2.5  # the registry now refuses that token although it claims 300 s
expect_eq "scripted bearer: a 401 with the cached token fetches one new token" "200 2" "$(g "${BL[2]}") $(tokens)"
expect_eq "scripted bearer: right bytes" "${BL[2]}" "sha256:$(sha_of "$WORK/b")"
stop_georeg
stop_pid "$FAKE_PID"
start_fake bearer --dir "$WORK/bblobs" --token-valid -1
write_config fake "http://$FAKE"
start_georeg --config "$WORK/georeg.toml"
expect_eq "scripted bearer: every token refused: the request fails" 503 "$(g "${BL[0]}")"
expect_eq "scripted bearer: after exactly one token request (no loop)" 1 "$(tokens)"
expect_eq "scripted bearer: a later request retries once more, then fails" "503 2" "$(g "${BL[1]}") $(tokens)"
stop_georeg
stop_pid "$FAKE_PID"

# ---- A realm naming a 300-byte host: the resolver refuses it at once, and
# that early failure must reach the token waiters on a later turn (it was a
# use-after-free: the token fetch was freed inside its own start). ----
start_fake bearer --dir "$WORK/bblobs" --realm "http://$(printf 'a%.0s' $(seq 300)).example/token"
write_config fake "http://$FAKE" 'allow_private_addresses = true'
start_georeg --config "$WORK/georeg.toml"
expect_eq "300-byte realm host: the pull fails cleanly" 503 "$(g "${BL[0]}")"
expect_eq "300-byte realm host: again (a cached failure path)" 503 "$(g "${BL[1]}")"
check "300-byte realm host: the daemon is alive" curl -sf -o /dev/null "$GEOREG_URL/v2/"
check "300-byte realm host: the log names the resolver's refusal" grep -q "resolve a\{20\}" "$GEOREG_LOG"
stop_georeg
expect_eq "300-byte realm host: georeg exits 0 on SIGTERM" 0 "$?"
it_finish
