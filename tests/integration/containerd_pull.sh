#!/usr/bin/env bash
# containerd pulls through georeg as a hosts.toml mirror: `ctr images pull`
# sends ?ns=<registry>, georeg picks the upstream of that name. By tag and by
# digest, for an OCI index, an OCI image, a Docker manifest list and a Docker
# schema2 image. Every blob the origin serves goes to georeg, none to containerd.
source "$(dirname "$0")/lib/common.sh"
need containerd
need ctr
[ "$(id -u)" = 0 ] || die "needs root (containerd)"

REG=registry.example.internal
start_origin
push_fixtures
# The default upstream leads nowhere: pulls only work if georeg follows ?ns=.
start_georeg --cache-dir "$WORK/cache" --upstream "unused.invalid=http://127.0.0.1:9" --upstream "$REG=http://$ORIGIN"

# A private containerd: its own root, state, socket and hosts dir.
C="$WORK/containerd"
start_containerd "$C"
mkdir -p "$C/certs.d/$REG"
# The mirror first, then the origin as the server containerd falls back to.
cat >"$C/certs.d/$REG/hosts.toml" <<TOML
server = "http://$ORIGIN"

[host."http://127.0.0.1:$GEOREG_PORT"]
  capabilities = ["pull", "resolve"]
TOML
ctr_() { timeout 120 ctr --address "$C/containerd.sock" --namespace georeg-it "$@"; }

check "ctr pull by tag: OCI image" ctr_ images pull --hosts-dir "$C/certs.d" "$REG/team/app:1.0"
check "ctr pull by tag: OCI index" ctr_ images pull --hosts-dir "$C/certs.d" "$REG/library/alpine:3.19"
check "ctr pull by tag: Docker manifest list" ctr_ images pull --hosts-dir "$C/certs.d" "$REG/library/alpine:3.19-docker"
check "ctr pull by tag: Docker schema2" ctr_ images pull --hosts-dir "$C/certs.d" "$REG/team/app:1.0-docker"
d=$(fix team_app_1.0.digest)
ctr_ images rm "$REG/team/app:1.0" >/dev/null
ctr_ content rm "$d" >/dev/null 2>&1
check "ctr pull by digest" ctr_ images pull --hosts-dir "$C/certs.d" "$REG/team/app@$d"
check "the pulled image is listed by digest" bash -c "ctr --address '$C/containerd.sock' --namespace georeg-it images ls | grep -q '$d'"
check "georeg chose the upstream named by ?ns=$REG" grep -q "fill: GET blob sha256:[0-9a-f]* from upstream $REG\$" "$GEOREG_LOG"
check "georeg cached the app manifest" grep -q "manifest: cached $REG/team/app:1.0" "$GEOREG_LOG"
n_ctr=$(grep -cE '"GET /v2/[^ ]*/blobs/[^"]*" 200 .*containerd' "$ORIGIN_LOG")
expect_eq "containerd fetched no blob from the origin directly" 0 "$n_ctr"
n_georeg=$(grep -cE '"GET /v2/[^ ]*/blobs/[^"]*" 200 .*georeg/' "$ORIGIN_LOG")
check "georeg fetched the blobs from the origin ($n_georeg GETs)" test "$n_georeg" -gt 0

# Again from a clean containerd with the origin stopped: all from georeg's cache.
stop_origin
ctr_ images rm "$REG/team/app:1.0-docker" "$REG/library/alpine:3.19" "$REG/team/app@$d" >/dev/null 2>&1
for c in $(ctr_ content ls -q); do ctr_ content rm "$c" >/dev/null 2>&1; done
check "ctr pull by tag with the origin stopped" ctr_ images pull --hosts-dir "$C/certs.d" "$REG/library/alpine:3.19"
check "ctr pull of a schema2 image with the origin stopped" ctr_ images pull --hosts-dir "$C/certs.d" "$REG/team/app:1.0-docker"

stop_georeg
expect_eq "georeg exits 0 on SIGTERM" 0 $?
it_finish
