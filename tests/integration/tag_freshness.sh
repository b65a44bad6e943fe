#!/usr/bin/env bash
# Tag freshness and outages against the real registry: a tag younger than
# tag_ttl is answered from the cache; an older one is revalidated with HEAD
# (no GET while the digest is unchanged); a moved tag shows after tag_ttl;
# with the origin stopped, tags younger than max_stale and digests are still
# served, with a staleness header; an unknown tag gets a fast 503.
source "$(dirname "$0")/lib/common.sh"

start_origin
push_fixtures
write_config "$ORIGIN" "http://$ORIGIN" 'tag_ttl = "2s"' 'max_stale = "8s"'
start_georeg --config "$WORK/georeg.toml"
M="$GEOREG_URL/v2/team/app/manifests/1.0"
digest_of() { curl -s -D - -o /dev/null -H "Accept: $ACCEPT_ALL" "$1" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}'; }
gets() { origin_count "/v2/team/app/manifests/[^ ]*" GET; }
heads() { origin_count "/v2/team/app/manifests/1.0" HEAD; }

old=$(fix team_app_1.0.digest)
g0=$(gets); h0=$(heads)
expect_eq "first pull: the tag's digest" "$old" "$(digest_of "$M")"
expect_eq "first pull: one GET at the origin" 1 "$(($(gets) - g0))"
digest_of "$M" >/dev/null
expect_eq "within tag_ttl: no origin request" "1 0" "$(($(gets) - g0)) $(($(heads) - h0))"
sleep 2.5
expect_eq "after tag_ttl: same digest" "$old" "$(digest_of "$M")"
expect_eq "after tag_ttl: revalidated with a HEAD, no GET" "1 1" "$(($(gets) - g0)) $(($(heads) - h0))"

# Move the tag at the origin.
skopeo copy -q --src-tls-verify=false --dest-tls-verify=false \
  "docker://$ORIGIN/team/app:1.0-docker" "docker://$ORIGIN/team/app:1.0" || die "retag failed"
new=$(fix team_app_1.0-docker.digest)
expect_eq "moved tag: still the old digest within tag_ttl" "$old" "$(digest_of "$M")"
sleep 2.5
expect_eq "moved tag: the new digest after tag_ttl" "$new" "$(digest_of "$M")"
check "moved tag: the manifest was fetched with GET" test "$(($(gets) - g0))" -ge 2

# Outage.
sleep 2.5   # let the tag expire again
stop_origin
curl -s -D "$WORK/stale.h" -o "$WORK/stale.body" -H "Accept: $ACCEPT_ALL" "$M"
expect_eq "origin down: the cached tag is served" "$new" "sha256:$(sha_of "$WORK/stale.body")"
check "origin down: with X-Georeg-Stale" grep -qi '^x-georeg-stale: age=[0-9]*s' "$WORK/stale.h"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Accept: $ACCEPT_ALL" "$GEOREG_URL/v2/team/app/manifests/$old")
expect_eq "origin down: a cached digest is served" 200 "$code"
start=$(date +%s%N)
code=$(curl -s -o "$WORK/unknown.body" -w '%{http_code}' "$GEOREG_URL/v2/team/app/manifests/never-seen")
ms=$((($(date +%s%N) - start) / 1000000))
expect_eq "origin down: an unseen tag gets 503" 503 "$code"
check "origin down: and fast (${ms} ms)" test "$ms" -lt 5000
sleep 8
code=$(curl -s -o /dev/null -w '%{http_code}' "$M")
expect_eq "origin down: past max_stale the tag is no longer served" 503 "$code"

stop_georeg
expect_eq "georeg exits 0 on SIGTERM" 0 $?
it_finish
