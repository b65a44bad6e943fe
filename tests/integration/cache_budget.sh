#!/usr/bin/env bash
# The cache's budget and integrity: whole blobs evicted least recently used
# first when max_size is crossed; a blob larger than the budget is passed
# through unstored; data.mdb stays near max_size under churn; a flipped byte
# in data.mdb is caught on read (reset, removed, fetched again); a second
# daemon on the same cache refuses to start, naming the first one's PID.
source "$(dirname "$0")/lib/common.sh"

mapfile -t B < <(make_blobs "$WORK/blobs" 4 20)          # four blobs of 20 MiB
mapfile -t CHURN < <(make_blobs "$WORK/blobs" 24 12 churn) # 24 x 12 MiB = 4.5 budgets
mapfile -t HUGE < <(make_blobs "$WORK/blobs" 1 70 huge)    # larger than the budget
start_fake files --dir "$WORK/blobs"
# Cached bytes go out by writes from the map, whatever the start-up probe
# would choose here: lent by sendfile, pages freed under churn are reused
# only a second or more later and data.mdb outgrows the budget checked
# below (docs/config.md, sendfile: a known limit).
SERVER_TOML='sendfile = "off"'
write_config fake "http://$FAKE"
# The scrub stays off until its own part below: it could otherwise find the
# flipped byte before the read this test makes, which is what must catch it.
sed -i 's/max_size = "1GiB"/max_size = "64MiB"\nscrub_rate = "0"/' "$WORK/georeg.toml"
CACHE=$(sed -n 's/^dir = "\(.*\)"/\1/p' "$WORK/georeg.toml")
start_georeg --config "$WORK/georeg.toml"
get() { curl -s -o "$WORK/got" -w '%{http_code}' "$GEOREG_URL/v2/x/blobs/$1"; }
upstream_gets() { grep -c "GET /v2/x/blobs/$1" "$FAKE_LOG"; }
cached() { blob_keys "$CACHE" | grep -qx "$1"; }
not_cached() { ! cached "$1"; }
wait_cached() { for _ in $(seq 50); do cached "$1" && return 0; sleep 0.1; done; return 1; }

for d in "${B[0]}" "${B[1]}" "${B[2]}"; do
  expect_eq "fill ${d:7:12}" "200 $d" "$(get "$d") sha256:$(sha_of "$WORK/got")"
  wait_cached "$d"
done
sleep 0.2
expect_eq "warm read of the first blob makes it recent" 200 "$(get "${B[0]}")"
sleep 0.2
expect_eq "a fourth blob crosses the budget" 200 "$(get "${B[3]}")"
wait_cached "${B[3]}"
check "the least recently used blob was evicted" not_cached "${B[1]}"
check "the recently read blob stayed" cached "${B[0]}"
check "the newest blob stayed" cached "${B[2]}"
check "the eviction is logged" grep -q "evicted (least recently used) ${B[1]}" "$GEOREG_LOG"
n=$(upstream_gets "${B[1]}")
expect_eq "the evicted blob is fetched again" "200 $((n + 1))" "$(get "${B[1]}") $(upstream_gets "${B[1]}")"
n=$(upstream_gets "${B[0]}")
expect_eq "a kept blob is served from the cache" "200 $n" "$(get "${B[0]}") $(upstream_gets "${B[0]}")"

# Larger than the whole budget: served, not stored.
expect_eq "a blob larger than the budget is served" "200 ${HUGE[0]}" "$(get "${HUGE[0]}") sha256:$(sha_of "$WORK/got")"
check "and passed through unstored" grep -q "passed blob ${HUGE[0]} through unstored" "$GEOREG_LOG"
check "and not in the cache" not_cached "${HUGE[0]}"

# Churn: 4.5 budgets' worth through the cache.
bad=0
for d in "${CHURN[@]}"; do [ "$(get "$d")" = 200 ] && [ "sha256:$(sha_of "$WORK/got")" = "$d" ] || bad=$((bad + 1)); done
expect_eq "churn: every blob served correctly" 0 "$bad"
sleep 0.5
size=$(stat -c %s "$CACHE/data.mdb")
stored=$(blob_keys "$CACHE" | wc -l)
check "churn: data.mdb is $((size >> 20)) MiB, within 1.1 x the 64 MiB budget" test "$size" -le $((64 * 1048576 * 11 / 10))
check "churn: the cache holds $stored blobs, within budget" test $((stored * 12)) -le 64

# A flipped byte in data.mdb: caught on read, never served.
victim="${CHURN[-1]}"
offset=$(python3 - "$CACHE/data.mdb" "$WORK/blobs/${victim#sha256:}" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
needle = open(sys.argv[2], "rb").read()[4096:4096 + 64]
print(data.find(needle))
PY
)
check "found the blob's bytes in data.mdb" test "$offset" -gt 0
python3 - "$CACHE/data.mdb" "$offset" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
off = int(sys.argv[2]) + 10
b = os.pread(fd, 1, off)
os.pwrite(fd, bytes([b[0] ^ 0x01]), off)
os.close(fd)
PY
n=$(upstream_gets "$victim")
curl -s -o "$WORK/bad" "$GEOREG_URL/v2/x/blobs/$victim"
rc=$?
check "flipped byte: the client is reset (curl $rc), not served bad bytes" test "$rc" = 18 -o "$rc" = 56
check "flipped byte: logged" bash -c "grep 'fails its checksum' '$GEOREG_LOG' | grep -qv 'scrub:'"
expect_eq "flipped byte: the next request fetches it again" "200 $victim $((n + 1))" \
  "$(get "$victim") sha256:$(sha_of "$WORK/got") $(upstream_gets "$victim")"

# The cache CLI, through the running daemon's admin socket.
C=("$GEOREG" cache --cache-dir "$CACHE")
"${C[@]}" ls -o json >"$WORK/ls.json"
CACHED=$(jq -r '[.[] | select(.kind == "blob")][0].digest' "$WORK/ls.json")
check "cache ls: lists the cached blobs" jq -e --arg d "${CHURN[-1]}" 'any(.[]; .digest == $d and .kind == "blob" and .size > 0)' "$WORK/ls.json"
"${C[@]}" stats -o json >"$WORK/stats.json"
check "cache stats: budget, counts and hit ratio from the daemon" \
  jq -e '.daemon == true and .budget == 67108864 and .blobs > 0 and .hit_ratio > 0 and .bytes_used <= .budget' "$WORK/stats.json"
check "cache ls -o table: a header and a row per entry" bash -c "'${C[0]}' cache --cache-dir '$CACHE' ls -o table | grep -q '^DIGEST.*KIND.*SIZE.*LAST ACCESS'"
check "cache rm: removes a blob" "${C[@]}" rm "$CACHED" -o json
check "cache rm: it is gone from the listing" bash -c "! '${C[0]}' cache --cache-dir '$CACHE' ls -o json | grep -q '$CACHED'"
"${C[@]}" rm "$CACHED" 2>"$WORK/rm.err"
expect_eq "cache rm of an absent digest: exit 4" 4 $?
"${C[@]}" rm sha256:nothex 2>"$WORK/rm.err"
expect_eq "cache rm of a malformed digest: exit 2" 2 $?
expect_eq "cache rm errors: one line on stderr" 1 "$(wc -l <"$WORK/rm.err")"
check "cache gc: evicts down to 20MiB" bash -c "'${C[0]}' cache --cache-dir '$CACHE' gc 20MiB -o json | jq -e '.bytes_used <= 20971520'"
"${C[@]}" verify -o json >"$WORK/verify.json"
expect_eq "cache verify beside the daemon: exit 0" 0 $?
check "cache verify: checked every blob" jq -e '.checked > 0 and (.corrupt | length) == 0' "$WORK/verify.json"

# One daemon per cache directory.
"$GEOREG" serve --listen 127.0.0.1:0 --config "$WORK/georeg.toml" 2>"$WORK/second.err"
rc=$?
check "a second daemon on the same cache refuses to start" test "$rc" -ne 0
check "naming the running one's PID" grep -q "in use by georeg pid $GEOREG_PID" "$WORK/second.err"
expect_eq "in one line" 1 "$(wc -l <"$WORK/second.err")"

stop_georeg
expect_eq "georeg exits 0 on SIGTERM" 0 $?

# The cache CLI with the daemon stopped: it opens the cache itself.
"${C[@]}" stats -o json >"$WORK/stats.json"
check "cache stats offline" jq -e '.daemon == false and .blobs > 0' "$WORK/stats.json"
survivor=$("${C[@]}" ls -o json | jq -r '[.[] | select(.kind == "blob")][0].digest')
offset=$(python3 - "$CACHE/data.mdb" "$WORK/blobs/${survivor#sha256:}" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
print(data.find(open(sys.argv[2], "rb").read()[8192:8192 + 64]))
PY
)
python3 -c "import os,sys; fd=os.open(sys.argv[1], os.O_RDWR); o=int(sys.argv[2])+3; b=os.pread(fd,1,o); os.pwrite(fd, bytes([b[0]^0x80]), o)" \
  "$CACHE/data.mdb" "$offset"
"${C[@]}" verify -o json >"$WORK/verify.json"
expect_eq "cache verify finds the flipped byte: exit 1" 1 $?
check "cache verify names and removes the corrupt blob" \
  jq -e --arg d "$survivor" '(.corrupt | map(.digest) | index($d)) != null and (.removed | index($d)) != null' "$WORK/verify.json"
check "the corrupt blob is gone" bash -c "! '${C[0]}' cache --cache-dir '$CACHE' ls -o json | grep -q '$survivor'"
expect_eq "cache verify afterwards: exit 0" 0 "$("${C[@]}" verify -o json >/dev/null; echo $?)"

# The background scrub finds corruption without any client asking.
victim="${B[2]}"
start_georeg --config "$WORK/georeg.toml"
expect_eq "scrub: a blob to corrupt" 200 "$(get "$victim")"
wait_cached "$victim"
stop_georeg
offset=$(python3 - "$CACHE/data.mdb" "$WORK/blobs/${victim#sha256:}" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
print(data.find(open(sys.argv[2], "rb").read()[2 << 20:(2 << 20) + 64]))
PY
)
python3 -c "import os,sys; fd=os.open(sys.argv[1], os.O_RDWR); o=int(sys.argv[2])+5; b=os.pread(fd,1,o); os.pwrite(fd, bytes([b[0]^0x10]), o)" \
  "$CACHE/data.mdb" "$offset"
sed -i 's/^scrub_rate = "0"/scrub_rate = "1GiB"/' "$WORK/georeg.toml"
start_georeg --config "$WORK/georeg.toml"
for _ in $(seq 50); do grep -q "scrub: .*fails its checksum" "$GEOREG_LOG" && break; sleep 0.1; done
check "scrub: found the flipped byte on its own" grep -q "scrub: chunk [0-9]* of $victim fails its checksum" "$GEOREG_LOG"
check "scrub: the corrupt blob was removed" bash -c "! '${C[0]}' cache --cache-dir '$CACHE' ls -o json | grep -q '$victim'"
"${C[@]}" stats -o json >"$WORK/stats.json"
check "scrub: counted in stats" jq -e '.corrupt_blobs == 1' "$WORK/stats.json"
stop_georeg
it_finish
