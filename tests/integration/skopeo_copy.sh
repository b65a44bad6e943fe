#!/usr/bin/env bash
# skopeo copies every fixture through georeg: first cold (through to the
# origin), then again with the origin stopped, served entirely from the
# cache; both copies must be byte-identical to a copy made from the origin.
source "$(dirname "$0")/lib/common.sh"
need skopeo

start_origin
push_fixtures
start_georeg --cache-dir "$WORK/cache" --upstream "$ORIGIN=http://$ORIGIN"

# tags/list through the mirror: asked of the origin each time, n and last
# passed on (this docker-registry ignores them: the answers must match its own).
origin_tags() { $(origin_exec) curl -s "http://$ORIGIN/v2/team/app/tags/list$1" | jq -c '.tags'; }
mirror_tags() { curl -s "$GEOREG_URL/v2/team/app/tags/list$1" | jq -c '.tags'; }
check "tags/list through the mirror: the origin's tags" test "$(origin_tags "")" != null
expect_eq "  the same as the origin's" "$(origin_tags "")" "$(mirror_tags "")"
expect_eq "  n=1: as the origin answers it" "$(origin_tags "?n=1")" "$(mirror_tags "?n=1")"
expect_eq "  n=1&last=1.0: as the origin answers it" "$(origin_tags "?n=1&last=1.0")" "$(mirror_tags "?n=1&last=1.0")"
expect_eq "  an unknown repository: the origin's 404" 404 \
  "$(curl -s -o /dev/null -w '%{http_code}' "$GEOREG_URL/v2/no/such/tags/list")"

REFS=(library/alpine:3.19 library/alpine:3.19-docker team/app:1.0 team/app:1.0-docker team/big:1.0)
copy_all() {  # FROM(host:port) DEST_DIR
  local ref
  mkdir -p "$2"
  for ref in "${REFS[@]}"; do
    skopeo copy -q --all --preserve-digests --src-tls-verify=false "docker://$1/$ref" "dir:$2/${ref//[\/:]/_}" ||
      return 1
  done
}
# dir_sums DIR: sha256 of every file, sorted by name.
dir_sums() { (cd "$1" && find . -type f ! -name version -print0 | sort -z | xargs -0 sha256sum); }

copy_all "$ORIGIN" "$WORK/direct" || die "copy from the origin failed"
before=$(origin_count "/v2/[^ ]*/blobs/")
check "skopeo copy through georeg, cold" copy_all "127.0.0.1:$GEOREG_PORT" "$WORK/cold"
expect_eq "cold copy is byte-identical to the origin's" "$(dir_sums "$WORK/direct")" "$(dir_sums "$WORK/cold")"
after=$(origin_count "/v2/[^ ]*/blobs/")
[ "$after" -gt "$before" ] && ok "cold copy reached the origin" || fail "cold copy reached the origin"
# Keep-alive: georeg's upstream requests share connections (distinct client
# ports in the origin's log are fewer than georeg's requests).
reqs=$(grep -c 'http.request.useragent=georeg/' "$ORIGIN_LOG")
conns=$(grep 'http.request.useragent=georeg/' "$ORIGIN_LOG" | grep -o 'remoteaddr="[^"]*"' | sort -u | wc -l)
check "upstream connections are reused ($reqs requests over $conns connections)" test "$conns" -lt "$reqs"

stop_origin
check "origin is stopped" bash -c "! curl -s --max-time 2 http://$ORIGIN/v2/"
check "skopeo copy through georeg, origin stopped" copy_all "127.0.0.1:$GEOREG_PORT" "$WORK/warm"
expect_eq "warm copy is byte-identical to the origin's" "$(dir_sums "$WORK/direct")" "$(dir_sums "$WORK/warm")"

# The same bytes by digest, HEAD carrying GET's headers.
d=$(fix team_app_1.0.digest)
curl -s -D "$WORK/get.h" -o "$WORK/get.body" -H "Accept: $ACCEPT_ALL" "$GEOREG_URL/v2/team/app/manifests/$d"
curl -s -I -o "$WORK/head.h" -H "Accept: $ACCEPT_ALL" "$GEOREG_URL/v2/team/app/manifests/$d"
strip() { tr -d '\r' <"$1" | grep -iE '^(content-type|content-length|docker-content-digest):' | sort; }
expect_eq "manifest HEAD has GET's headers" "$(strip "$WORK/get.h")" "$(strip "$WORK/head.h")"
expect_eq "manifest bytes by digest" "$d" "sha256:$(sha_of "$WORK/get.body")"

stop_georeg
expect_eq "georeg exits 0 on SIGTERM" 0 $?
it_finish
