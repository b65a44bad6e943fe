#!/usr/bin/env bash
# An upstream that is slow rather than down, or that announces too much:
# every conversation has a deadline, a stale tag is served when revalidating
# takes too long (counted from the request), a 2 GiB manifest is refused at
# its head, and clients that give up on a stuck fetch cost nothing.
# (Scripted upstream: a real registry cannot be told to drip.)
source "$(dirname "$0")/lib/common.sh"
rss_bounded

mkdir -p "$WORK/m"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%064d","size":2},"layers":[]}' 0 >"$WORK/m/1.0"
cp "$WORK/m/1.0" "$WORK/m/other"
BEH="$WORK/behaviour"
echo normal >"$BEH"
start_fake manifests --dir "$WORK/m" --behaviour-file "$BEH"
write_config fake "http://$FAKE" 'tag_ttl = "1s"' 'connect_timeout = "1s"' 'response_timeout = "2s"'
start_georeg --config "$WORK/georeg.toml"
M="$GEOREG_URL/v2/team/app/manifests"
get() {  # REF: prints "status seconds", headers in $WORK/h
  curl -s -o "$WORK/b" -D "$WORK/h" -w '%{http_code} %{time_total}' -H "Accept: $ACCEPT_ALL" "$M/$1"
}
within() { python3 -c "import sys; sys.exit(0 if float('$1') < float('$2') else 1)"; }
rss() { awk '/^VmRSS/{print $2}' "/proc/$GEOREG_PID/status"; }

read -r code t <<<"$(get 1.0)"
expect_eq "a tag from a healthy upstream" 200 "$code"

# Drip: one byte a second. Each pause is shorter than response_timeout, so
# only the conversation's deadline ends it.
echo drip >"$BEH"
sleep 1.5  # the tag is stale now
read -r code t <<<"$(get 1.0)"
expect_eq "drip: the stale tag is served" 200 "$code"
check "drip: and marked stale" grep -qi '^x-georeg-stale: age=' "$WORK/h"
check "drip: after response_timeout (2 s), not the drip's pace (took ${t}s)" within "$t" 4
read -r code t <<<"$(get other)"
expect_eq "drip: an uncached tag fails" 503 "$code"
check "drip: within the manifest deadline, 1 s + 2 x 2 s (took ${t}s)" within "$t" 7
check "drip: the log names the deadline" grep -q "passed its deadline" "$GEOREG_LOG"

# Huge: a manifest announced as 2 GiB is refused at the head.
echo huge >"$BEH"
before=$(rss)
read -r code t <<<"$(get huge)"
expect_eq "a manifest announced as 2 GiB: refused" 502 "$code"
check "refused at once (took ${t}s)" within "$t" 2
check "and the daemon did not read it (RSS +$((($(rss) - before) / 1024)) MiB)" test $(($(rss) - before)) -lt 16384

# Hang: 1000 clients ask for a manifest the upstream never answers, and leave.
echo hang >"$BEH"
before=$(rss)
python3 "$IT_LIB/attack.py" "$GEOREG_PORT" abandon /v2/team/app/manifests/stuck 1000 | tail -1
sleep 1
growth=$((($(rss) - before) / 1024))
log "rss: 1000 abandoned manifest requests: +$growth MiB"
check "1000 abandoned requests on a stuck fetch: RSS +$growth MiB (at most 8; it was +14.5 MB per 1000)" test "$growth" -le 8
check "the daemon still answers" curl -sf -o /dev/null --max-time 5 "$GEOREG_URL/v2/"
stop_georeg
expect_eq "georeg exits 0 on SIGTERM" 0 "$?"
it_finish
