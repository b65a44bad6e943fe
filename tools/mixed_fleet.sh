#!/usr/bin/env bash
# mixed_fleet.sh [COMMIT]: a rolling upgrade half done. Builds georeg at
# COMMIT (the earlier release; default ffa0300, the last before protocol
# versions were named) in a worktree beside this one, builds this tree, and
# runs tests/integration/mixed_fleet.sh: two nodes of each, in two regions.
# Slow (a second build); not part of tools/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh test
commit="$(git rev-parse --short "${1:-ffa0300}")"
wt="${TMPDIR:-/tmp}/georeg-previous-$commit"
[ -d "$wt" ] || git worktree add --detach "$wt" "$commit" >/dev/null
[ -f "$wt/build/build.ninja" ] || meson setup "$wt/build" "$wt" --buildtype=release >/dev/null
ninja -C "$wt/build" src/georeg >/dev/null
[ -f build/build.ninja ] || meson setup build --buildtype=release >/dev/null
ninja -C build src/georeg >/dev/null
GEOREG="$PWD/build/src/georeg" GEOREG_PREVIOUS="$wt/build/src/georeg" \
  bash tests/integration/mixed_fleet.sh
