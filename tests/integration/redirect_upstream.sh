#!/usr/bin/env bash
# Blob redirects (lib/fake_upstream.py: the real registry with filesystem
# storage never redirects): an authenticated upstream answers 307 to a second
# host. The blob arrives and is cached, and the second host never sees an
# Authorization header. Loopback targets are refused unless the upstream
# allows private redirects; more than 5 hops fail cleanly.
source "$(dirname "$0")/lib/common.sh"

SIZE=$((2 * 1048576 + 99))
DIGEST="sha256:$(python3 -c "import random,hashlib,sys; sys.stdout.write(hashlib.sha256(random.Random('fake').randbytes($SIZE)).hexdigest())")"
printf 'pw-123\n' >"$WORK/password"

start_fake blobhost --size "$SIZE"
BLOBHOST="$FAKE"
BLOBHOST_LOG="$FAKE_LOG"
# The second host is named differently (localhost vs 127.0.0.1): a different host.
start_fake redirect --user reg --password pw-123 --redirect-to "http://localhost:${BLOBHOST#*:}"
REDIRECTOR_LOG="$FAKE_LOG"
config() {  # ALLOW_PRIVATE
  write_config fake "http://$FAKE" 'username = "reg"' "password_file = \"$WORK/password\"" \
    "allow_private_redirects = $1"
}

config true
start_georeg --config "$WORK/georeg.toml"
code=$(curl -s -o "$WORK/blob" -w '%{http_code}' "$GEOREG_URL/v2/x/blobs/$DIGEST")
expect_eq "redirected blob: 200" 200 "$code"
expect_eq "redirected blob: right bytes" "$DIGEST" "sha256:$(sha_of "$WORK/blob")"
check "the upstream got credentials" grep -q "GET /v2/x/blobs/$DIGEST auth=present" "$REDIRECTOR_LOG"
check "the redirect target was asked" grep -q "GET /blobs/$DIGEST?signature=abc" "$BLOBHOST_LOG"
check "the redirect target never saw an Authorization header" bash -c "! grep -q 'auth=present' '$BLOBHOST_LOG'"
n=$(wc -l <"$BLOBHOST_LOG")
code=$(curl -s -o "$WORK/blob2" -w '%{http_code}' "$GEOREG_URL/v2/x/blobs/$DIGEST")
expect_eq "the blob is cached: second request served locally" "200 $n" "$code $(wc -l <"$BLOBHOST_LOG")"
stop_georeg

config false
start_georeg --config "$WORK/georeg.toml"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 "$GEOREG_URL/v2/x/blobs/$DIGEST")
expect_eq "redirect to loopback without allow_private_redirects: 503" 503 "$code"
check "and the log says why" grep -q "refused: localhost resolves to a loopback address" "$GEOREG_LOG"
stop_georeg
stop_pid "$FAKE_PID"

start_fake redirect --user reg --password pw-123 --loop
config true
start_georeg --config "$WORK/georeg.toml"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 "$GEOREG_URL/v2/x/blobs/$DIGEST")
expect_eq "endless redirects: 503" 503 "$code"
check "endless redirects: stopped after 5 hops" grep -q "more than 5 redirects" "$GEOREG_LOG"
expect_eq "endless redirects: 6 requests reached the upstream with credentials" 6 "$(grep -c 'auth=present' "$FAKE_LOG")"
stop_georeg
it_finish
