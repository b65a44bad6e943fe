#!/usr/bin/env bash
# HTTPS upstreams: docker-registry serving TLS with a certificate from a CA
# this test makes. Pulls through georeg succeed with `ca_file`; the wrong CA,
# the wrong host name and an expired certificate fail cleanly: a 503 to the
# client, quickly, and a log line saying what was wrong with the certificate.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/pki.sh"
need openssl

start_origin plain
push_fixtures
stop_origin

make_ca ca
make_ca other
make_cert ca good localhost
make_cert ca wronghost wrong.example
make_cert ca expired localhost 20200101000000Z 20200201000000Z

layer=$(fix app_layer)
tls_origin() {  # CERT
  ORIGIN_HOST=localhost ORIGIN_SCHEME=https \
    ORIGIN_HTTP_EXTRA=$'  tls:\n    certificate: '"$PKI/$1.crt"$'\n    key: '"$PKI/$1.key" start_origin "tls-$1"
}
georeg_for() {  # CA_FILE
  write_config "$ORIGIN" "https://$ORIGIN" "ca_file = \"$1\""
  start_georeg --config "$WORK/georeg.toml"
}

tls_origin good
georeg_for "$PKI/ca.crt"
code=$(curl -s -o "$WORK/m.json" -w '%{http_code}' -H "Accept: $ACCEPT_ALL" "$GEOREG_URL/v2/team/app/manifests/1.0")
expect_eq "https upstream with ca_file: manifest" 200 "$code"
expect_eq "https upstream: manifest bytes" "$(fix team_app_1.0.digest)" "sha256:$(sha_of "$WORK/m.json")"
curl -s -o "$WORK/layer" "$GEOREG_URL/v2/team/app/blobs/$layer"
expect_eq "https upstream: blob bytes" "$layer" "sha256:$(sha_of "$WORK/layer")"
mkdir -p "$WORK/copy"
check "skopeo copy through georeg from an https upstream" \
  skopeo copy -q --all --src-tls-verify=false "docker://127.0.0.1:$GEOREG_PORT/library/alpine:3.19" "dir:$WORK/copy/alpine"
stop_georeg

expect_reject() {  # NAME CA_FILE LOG_PATTERN
  georeg_for "$2"
  local start code ms
  start=$(date +%s%N)
  code=$(curl -s -o "$WORK/err.json" -w '%{http_code}' --max-time 30 "$GEOREG_URL/v2/team/app/blobs/$layer")
  ms=$((($(date +%s%N) - start) / 1000000))
  expect_eq "$1: the client gets 503" 503 "$code"
  check "$1: quickly (${ms} ms)" test "$ms" -lt 5000
  check "$1: OCI error body" grep -q UNAVAILABLE "$WORK/err.json"
  check "$1: the log says why" grep -qiE "$3" "$GEOREG_LOG"
  stop_georeg
}
expect_reject "unknown CA" "$PKI/other.crt" "certificate of localhost rejected.*not correctly signed"
stop_origin
tls_origin wronghost
expect_reject "wrong host name" "$PKI/ca.crt" "certificate of localhost rejected.*(CN|name)"
stop_origin
tls_origin expired
expect_reject "expired certificate" "$PKI/ca.crt" "certificate of localhost rejected.*expired"
stop_origin

# insecure_skip_verify exists, is off by default, and warns when on.
tls_origin wronghost
write_config "$ORIGIN" "https://$ORIGIN" "insecure_skip_verify = true"
start_georeg --config "$WORK/georeg.toml"
check "insecure_skip_verify logs a warning" grep -q "insecure_skip_verify is on" "$GEOREG_LOG"
code=$(curl -s -o /dev/null -w '%{http_code}' "$GEOREG_URL/v2/team/app/blobs/$layer")
expect_eq "insecure_skip_verify: the pull works despite the wrong host" 200 "$code"
stop_georeg
it_finish
