#!/usr/bin/env bash
# run.sh [serve flags...]: installs what is missing, builds, and runs georeg in
# the foreground with its embedded default configuration (127.0.0.1:5000,
# cache in /var/cache/georeg, docker.io as the default upstream).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh build
[ -f build/build.ninja ] || meson setup build --buildtype=release >/dev/null
ninja -C build src/georeg >/dev/null
exec build/src/georeg serve "$@"
