#!/usr/bin/env bash
# Writes tests/compat anew from this release: a gossip message, a kept
# fleet record, a digest summary and an LMDB cache (tests/unit/compat_test.cc
# says what each holds). Run it when a format changes on purpose (and raise
# peers::kProtocolVersion, peers/protocol.h); commit the files: the next
# release's unit tests read them.
#   tools/compat.sh [BUILD_DIR]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
ninja -C "$build" tests/unit_tests >/dev/null
GEOREG_COMPAT_WRITE=1 GEOREG_COMPAT_DIR="$PWD/tests/compat" \
  "$build/tests/unit_tests" "[.compat-write]" >/dev/null
ls -l tests/compat tests/compat/cache
