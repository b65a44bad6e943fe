#!/usr/bin/env bash
# Full disks and a full LMDB map never fail a request the upstream can serve
# and never corrupt the cache: georeg passes bytes through unstored, logs it,
# and stores again once space returns. The cache lives on a small tmpfs this
# test mounts.
source "$(dirname "$0")/lib/common.sh"
need mdb_dump
[ "$(id -u)" = 0 ] || die "needs root (mount)"

mapfile -t B < <(make_blobs "$WORK/blobs" 8 10 full)   # 8 x 10 MiB
start_fake files --dir "$WORK/blobs"
FS="$WORK/fs"
mkdir -p "$FS"
mount -t tmpfs -o size=48m georeg-test "$FS" || die "cannot mount a tmpfs"
trap 'umount "$FS" 2>/dev/null; it_cleanup' EXIT
get() { curl -s -o "$WORK/got" -w '%{http_code}' "$GEOREG_URL/v2/x/blobs/$1"; }
cached_count() { blob_keys "$1" | wc -l; }
served_all() {  # every blob in "$@" served whole
  local d bad=0
  for d in "$@"; do [ "$(get "$d") sha256:$(sha_of "$WORK/got")" = "200 $d" ] || bad=$((bad + 1)); done
  return $bad
}

# ---- ENOSPC: min_free 0% so the file system really fills ----
head -c $((12 << 20)) /dev/zero >"$FS/filler"  # the disk's other tenant
# Cached bytes go out by writes from the map, whatever the start-up probe
# would choose here: sent by sendfile they are lent to their readers, whose
# pages LMDB reuses only a second or more later, and the min_free part
# below measures the file system right after back-to-back fills
# (docs/config.md, min_free).
SERVER_TOML='sendfile = "off"'
write_config fake "http://$FAKE"
sed -i "s|^dir = .*|dir = \"$FS/cache\"|; s|^max_size = .*|max_size = \"1GiB\"\nmin_free = \"0%\"|" "$WORK/georeg.toml"
start_georeg --config "$WORK/georeg.toml"
check "disk full: all eight blobs (80 MiB into 48 MiB) served whole" served_all "${B[@]}"
check "disk full: logged once as out of space" test "$(grep -c 'out of space' "$GEOREG_LOG")" = 1
check "disk full: nothing failed" bash -c "! grep -q 'fill: .* failed' '$GEOREG_LOG'"
n=$(cached_count "$FS/cache")
check "disk full: some blobs were stored before the disk filled ($n)" test "$n" -gt 0 -a "$n" -lt 8
check "disk full: what is stored is whole" bash -c "mdb_dump -s blobs '$FS/cache' >/dev/null"
rm -f "$FS/filler"  # space returns
mapfile -t C < <(make_blobs "$WORK/blobs" 1 8 later)
check "space returned: a new blob is served" served_all "${C[0]}"
check "space returned: and stored again" bash -c "mdb_dump -s blobs '$FS/cache' | grep -q ' ${C[0]#sha256:}$'"
stop_georeg
expect_eq "disk full: clean stop" 0 $?
cp "$GEOREG_LOG" "$WORK/enospc.log"
start_georeg --config "$WORK/georeg.toml"
check "disk full: after a restart every stored blob is still served whole" \
  bash -c "mdb_dump -s blobs '$FS/cache' | grep -E '^ [0-9a-f]{64}$' | awk 'NR % 2 == 1 { print \"sha256:\" \$1 }' |
           python3 '$IT_LIB/verify_blobs.py' 127.0.0.1:$GEOREG_PORT x=1"
stop_georeg
rm -rf "$FS/cache"

# ---- min_free: the cache stops growing and makes room by evicting ----
sed -i 's|^min_free = .*|min_free = "50%"|' "$WORK/georeg.toml"
start_georeg --config "$WORK/georeg.toml"
check "min_free: all blobs served whole" served_all "${B[@]}"
check "min_free: the low-space stop is logged" grep -q "below min_free" "$GEOREG_LOG"
check "min_free: older blobs were evicted to make room" grep -q "evicted (least recently used)" "$GEOREG_LOG"
avail=$(df --output=avail -B1 "$FS" | tail -1)
check "min_free: the file system keeps free space ($((avail >> 20)) MiB)" test "$avail" -gt $((8 << 20))
check "min_free: the newest blob is cached" bash -c "mdb_dump -s blobs '$FS/cache' | grep -q ' ${B[-1]#sha256:}$'"
stop_georeg
cp "$GEOREG_LOG" "$WORK/min_free.log"
rm -rf "$FS/cache"

# ---- MDB_MAP_FULL: a map smaller than what is asked of it ----
sed -i 's|^min_free = .*|min_free = "0%"\nmap_size = "24MiB"|' "$WORK/georeg.toml"
start_georeg --config "$WORK/georeg.toml"
check "map full: all blobs served whole" served_all "${B[@]}"
check "map full: logged as out of space" grep -q "out of space.*MDB_MAP_FULL" "$GEOREG_LOG"
n=$(cached_count "$FS/cache")
check "map full: some blobs stored ($n), the rest passed through" test "$n" -gt 0 -a "$n" -lt 8
check "map full: passed-through blobs logged" grep -q "through unstored" "$GEOREG_LOG"
stop_georeg
expect_eq "map full: clean stop" 0 $?
it_finish
