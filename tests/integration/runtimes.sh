#!/usr/bin/env bash
# Pointing real runtimes at georeg with its own set-up commands:
#   - `georeg containerd configure` writes hosts.toml (georeg first, the
#     existing host kept after it), a second run changes nothing, and a
#     real containerd pulls through georeg with it (ns= given);
#   - `georeg podman configure` writes a registries.conf.d drop-in, and a
#     real `podman pull` reaches the non-default upstream through a path
#     prefix (podman sends no ns=);
#   - a real dockerd with `registry-mirrors` pulls docker.io images through
#     georeg's default upstream.
source "$(dirname "$0")/lib/common.sh"
need ctr; need podman; need dockerd; need jq
[ "$(id -u)" = 0 ] || die "needs root (containerd, dockerd)"
DOCKER=/usr/bin/docker  # Debian's, not whatever else is on PATH
[ -x "$DOCKER" ] || die "$DOCKER not found (docker.io package)"

start_origin
push_fixtures
# docker.io (the default) and the origin under its own name, both served by the origin.
cat >"$WORK/georeg.toml" <<TOML
[cache]
dir = "$WORK/cache"
max_size = "1GiB"
[[upstream]]
registry = "docker.io"
url = "http://$ORIGIN"
default = true
[[upstream]]
registry = "$ORIGIN"
url = "http://$ORIGIN"
TOML
start_georeg --config "$WORK/georeg.toml"
served() { grep -cF " path=$1 status=200" "$GEOREG_LOG"; }  # GET or HEAD

# ---- containerd ----
C="$WORK/containerd"
start_containerd "$C"
mkdir -p "$C/certs.d/$ORIGIN"
printf 'server = "http://%s"\n\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n  # the site mirror\n' \
  "$ORIGIN" "$ORIGIN" >"$C/certs.d/$ORIGIN/hosts.toml"
configure() { "$GEOREG" containerd configure --config "$WORK/georeg.toml" --endpoint "$GEOREG_URL" --dir "$C/certs.d" "$@"; }
check "containerd configure" configure --registry "$ORIGIN" >"$WORK/configure.1"
check "  says what it changed" grep -q "^$ORIGIN: updated $C/certs.d/$ORIGIN/hosts.toml" "$WORK/configure.1"
first_host=$(grep -m1 -o '^\[host\."[^"]*"\]' "$C/certs.d/$ORIGIN/hosts.toml")
expect_eq "  georeg is the first host" "[host.\"$GEOREG_URL\"]" "$first_host"
check "  the existing host is kept after it, with its comment" \
  bash -c "grep -A2 'host.\"http://$ORIGIN\"' '$C/certs.d/$ORIGIN/hosts.toml' | grep -q 'the site mirror'"
check "  the server line is kept" grep -qx "server = \"http://$ORIGIN\"" "$C/certs.d/$ORIGIN/hosts.toml"
cp "$C/certs.d/$ORIGIN/hosts.toml" "$WORK/hosts.1"
check "a second run" configure --registry "$ORIGIN" >"$WORK/configure.2"
check "  changes nothing and says so" grep -q "^$ORIGIN: .* is up to date" "$WORK/configure.2"
check "  (the file is byte-identical)" cmp -s "$WORK/hosts.1" "$C/certs.d/$ORIGIN/hosts.toml"
check "  nothing left behind by the atomic write" test "$(ls "$C/certs.d/$ORIGIN")" = hosts.toml
check "every upstream by default" configure >"$WORK/configure.3"
check "  docker.io too" test -f "$C/certs.d/docker.io/hosts.toml"
expect_eq "a bad capability: refused" 1 "$(configure --capabilities pull,delete >/dev/null 2>&1; echo $?)"
check "containerd is still the same process" running "$CONTAINERD_PID"
ns_enc=${ORIGIN/:/%3A}  # containerd escapes the ':'
before=$(served "/v2/team/app/manifests/1.0?ns=$ns_enc")
check "ctr pulls through georeg with the written hosts.toml" \
  timeout 120 ctr --address "$CONTAINERD_SOCK" --namespace georeg-it images pull --hosts-dir "$C/certs.d" "$ORIGIN/team/app:1.0"
check "  georeg answered it (ns=$ORIGIN)" test "$(served "/v2/team/app/manifests/1.0?ns=$ns_enc")" -gt "$before"

# ---- podman: no ns=, a path prefix names the upstream ----
# In a private mount namespace, a scratch directory stands in for
# /etc/containers/registries.conf.d: configure writes its default path, and
# podman reads it as it would on any host.
P="$WORK/podman"
mkdir -p "$P/conf.d"
cat >"$P/steps.sh" <<SH
set -e
mount --bind "$P/conf.d" /etc/containers/registries.conf.d
"$GEOREG" podman configure --config "$WORK/georeg.toml" --endpoint "$GEOREG_URL" >"$P/configure.1"
"$GEOREG" podman configure --config "$WORK/georeg.toml" --endpoint "$GEOREG_URL" >"$P/configure.2"
p() { timeout 180 podman --root "$P/root" --runroot "$P/run" --storage-driver vfs --cgroup-manager cgroupfs --events-backend none "\$@"; }
p pull -q "$ORIGIN/team/app:1.0" >"$P/pull.1"
p pull -q docker.io/library/alpine:3.19 >"$P/pull.2"
SH
unshare -m bash "$P/steps.sh" >"$P/steps.log" 2>&1
steps_rc=$?
[ $steps_rc = 0 ] || log "podman steps: $(tail -3 "$P/steps.log")"
check "podman configure wrote its drop-in at the default path" grep -q "^podman: wrote /etc/containers/registries.conf.d/50-georeg.conf" "$P/configure.1"
check "  a second run changes nothing" grep -q "is up to date" "$P/configure.2"
check "  the host's own directory is untouched" test ! -e /etc/containers/registries.conf.d/50-georeg.conf
check "podman pulled both images" test "$steps_rc" = 0 -a -s "$P/pull.1" -a -s "$P/pull.2"
check "  the non-default upstream's through georeg, by the path prefix" \
  test "$(served "/v2/${ORIGIN/:/_}/team/app/manifests/1.0")" -ge 1
check "  its layers too" test "$(grep -c " access method=GET path=/v2/${ORIGIN/:/_}/team/app/blobs/sha256:[0-9a-f]* status=200" "$GEOREG_LOG")" -ge 1
check "  the docker.io one through georeg the same way" test "$(served "/v2/docker.io/library/alpine/manifests/3.19")" -ge 1

# ---- dockerd with registry-mirrors ----
D="$WORK/docker"
mkdir -p "$D"
printf '{"registry-mirrors": ["%s"]}\n' "$GEOREG_URL" >"$D/daemon.json"
start_bg dockerd "$WORK/dockerd.log" dockerd --config-file "$D/daemon.json" --data-root "$D/root" --exec-root "$D/exec" \
  --pidfile "$D/dockerd.pid" --host "unix://$D/docker.sock" --bridge none --iptables=false --ip-masq=false \
  --storage-driver vfs
DOCKERD_PID=$LAST_PID
docker_() { timeout 180 "$DOCKER" -H "unix://$D/docker.sock" "$@"; }
for _ in $(seq 150); do docker_ version >/dev/null 2>&1 && break; sleep 0.2; done
check "dockerd started" docker_ version
before=$(served "/v2/library/alpine/manifests/3.19")
check "docker pulls alpine:3.19 through the mirror" docker_ pull -q alpine:3.19
check "  georeg answered it (its default upstream, no ns=)" test "$(served "/v2/library/alpine/manifests/3.19")" -gt "$before"
stop_pid "$DOCKERD_PID"
expect_eq "dockerd stops" 0 $?

stop_georeg
expect_eq "georeg exits 0 on SIGTERM" 0 $?
it_finish
