#!/usr/bin/env bash
# deps.sh build|test|demo|bench: installs the Debian 12 packages georeg needs, only the
# missing ones (apt-get update runs only when something is missing).
# build: compiler, meson and the libraries. test: also the real components
# the integration tests and benchmarks run (docker-registry, skopeo, containerd...).
set -euo pipefail

BUILD=(meson ninja-build pkg-config g++ libuv1-dev node-llhttp liblmdb-dev libxxhash-dev libmbedtls-dev ca-certificates
       libtomlplusplus-dev nlohmann-json3-dev libcli11-dev nettle-dev catch2 libcrypt-dev libsystemd-dev)
TEST=(lmdb-utils docker-registry skopeo containerd curl jq python3 iproute2 iptables procps openssl
      nginx-light apache2-utils util-linux clang-14 libclang-rt-14-dev python3-cryptography prometheus
      podman docker.io chromium python3-websocket clang-format)

DEMO=(docker-registry skopeo curl jq python3)
BENCH=(docker-registry nginx-light curl python3 wrk gnuplot-nox linux-perf git)
want=("${BUILD[@]}")
[ "${1:-build}" = test ] && want+=("${TEST[@]}")
[ "${1:-build}" = demo ] && want+=("${DEMO[@]}")
[ "${1:-build}" = bench ] && want+=("${BENCH[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "deps.sh: missing packages (${missing[*]}); run as root to install them" >&2
  exit 1
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
# policy-rc.d keeps the packages' own services (nginx, containerd) from being
# started by the install: the tests start their own instances.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; created_policy=1; fi
apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
[ $created_policy = 1 ] && rm -f "$policy"
exit 0
