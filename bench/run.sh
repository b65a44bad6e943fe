#!/usr/bin/env bash
# run.sh [suite.py options]: the benchmark suite, one command. Installs what
# is missing (tools/deps.sh bench), builds georeg optimized in build-release/,
# and runs bench/suite.py, which starts every server it measures on loopback
# and stops them when it ends. About 12 minutes with the default 3 rounds.
#   bash bench/run.sh --out /tmp/report.md --chart docs/performance.svg
# Never part of the test command. Needs root (nginx).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh build
bash tools/deps.sh bench
[ -f build-release/build.ninja ] || meson setup build-release --buildtype=release >/dev/null
ninja -C build-release src/georeg >/dev/null
exec python3 bench/suite.py "$@"
