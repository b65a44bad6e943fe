#!/usr/bin/env bash
# Bad input gets the right status and OCI error code and changes nothing in
# the cache; HTTP/1.1 behaviour: limits, pipelining, keep-alive, timeouts,
# graceful shutdown with a response in flight.
source "$(dirname "$0")/lib/common.sh"
need mdb_dump

start_origin
push_fixtures
SERVER_TOML=$'header_timeout = "2s"\nidle_timeout = "3s"\nshutdown_grace = "20s"' write_config "$ORIGIN" "http://$ORIGIN"
start_georeg --config "$WORK/georeg.toml"
CACHE=$(sed -n 's/^dir = "\(.*\)"/\1/p' "$WORK/georeg.toml")
U="$GEOREG_URL"

# Warm the cache with one image so "unchanged" means something.
skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$GEOREG_PORT/team/app:1.0" "dir:$WORK/app" || die "warm-up copy failed"
before=$(cache_dump "$CACHE")

expect_code() {  # NAME STATUS CODE CURL-ARGS...
  local name="$1" want_status="$2" want_code="$3"; shift 3
  local got
  got=$(curl -s -o "$WORK/body" -w '%{http_code}' "$@")
  expect_eq "$name: status" "$want_status" "$got"
  if [ -n "$want_code" ]; then
    expect_eq "$name: code" "$want_code" "$(jq -r '.errors[0].code' "$WORK/body" 2>/dev/null)"
  fi
}
H=$(printf 'a%.0s' $(seq 64))
expect_code "GET /v2/" 200 "" "$U/v2/"
check "GET /v2/ carries the API version header" bash -c "curl -sI '$U/v2/' | grep -qi '^docker-distribution-api-version: registry/2.0'"
expect_code "uppercase name" 400 NAME_INVALID "$U/v2/Team/app/manifests/1.0"
expect_code "name with .." 400 NAME_INVALID --path-as-is "$U/v2/team/../app/blobs/sha256:$H"
expect_code "short digest" 400 DIGEST_INVALID "$U/v2/team/app/blobs/sha256:1234"
expect_code "uppercase digest" 400 DIGEST_INVALID "$U/v2/team/app/blobs/sha256:$(printf 'A%.0s' $(seq 64))"
expect_code "unsupported algorithm" 400 DIGEST_INVALID "$U/v2/team/app/blobs/sha512:$H$H"
expect_code "manifest by bad digest" 400 DIGEST_INVALID "$U/v2/team/app/manifests/sha256:xyz"
expect_code "unknown ns" 404 NAME_UNKNOWN "$U/v2/team/app/manifests/1.0?ns=evil.example.com"
expect_code "unknown ns on a blob" 404 NAME_UNKNOWN "$U/v2/team/app/blobs/sha256:$H?ns=169.254.169.254"
expect_code "unknown tag" 404 MANIFEST_UNKNOWN "$U/v2/team/app/manifests/nope"
expect_code "unknown blob" 404 BLOB_UNKNOWN "$U/v2/team/app/blobs/sha256:$H"
expect_code "push: PUT manifest" 405 UNSUPPORTED -X PUT --data-binary '{}' "$U/v2/team/app/manifests/2.0"
expect_code "push: POST upload" 405 UNSUPPORTED -X POST "$U/v2/team/app/blobs/uploads/"
expect_code "push: DELETE" 405 UNSUPPORTED -X DELETE "$U/v2/team/app/manifests/1.0"
layer=$(fix app_layer)
expect_code "range past the end" 416 UNSUPPORTED -H "Range: bytes=999999999-" "$U/v2/team/app/blobs/$layer"
expect_code "malformed range" 416 UNSUPPORTED -H "Range: bytes=9-2" "$U/v2/team/app/blobs/$layer"
expect_code "OCI manifest not in Accept" 404 MANIFEST_UNKNOWN -H "Accept: application/vnd.docker.distribution.manifest.v2+json" "$U/v2/team/app/manifests/1.0"
expect_code "manifest with */* accepted" 200 "" -H "Accept: */*" "$U/v2/team/app/manifests/1.0"
expect_eq "bad requests left the cache unchanged" "$before" "$(cache_dump "$CACHE")"
expect_eq "no upstream request for the unknown ns" 0 "$(grep -c 'evil.example.com\|169.254' "$ORIGIN_LOG")"

# HTTP/1.1 behaviour, from raw sockets.
for scenario in limits pipeline header-timeout idle-timeout; do
  while IFS= read -r line; do
    case "$line" in
      "ok - "*) ok "${line#ok - }" ;;
      "not ok - "*) fail "${line#not ok - }" ;;
    esac
  done < <(python3 "$IT_LIB/raw_http.py" "$GEOREG_PORT" "$scenario")
done

# SIGTERM with a download in flight: it completes, then georeg exits 0.
big=$(fix big_layer)
curl -s -o /dev/null "$U/v2/team/big/blobs/$big"   # cache it
curl -s --limit-rate 20M -o "$WORK/inflight" -w '%{http_code}' "$U/v2/team/big/blobs/$big" >"$WORK/inflight.code" &
cpid=$!
sleep 1
kill -TERM "$GEOREG_PID"
sleep 0.5
check "new connections are refused while draining" bash -c "! curl -s --max-time 2 -o /dev/null '$U/v2/'"
wait "$cpid"
expect_eq "the in-flight download completed" "200 $big" "$(cat "$WORK/inflight.code") sha256:$(sha_of "$WORK/inflight")"
# It was sent SIGTERM above: its own exit, not stop_pid's, is the answer.
for _ in $(seq 100); do running "$GEOREG_PID" || break; sleep 0.1; done
wait "$GEOREG_PID"
expect_eq "georeg exits 0 after draining" 0 $?
it_finish
