#!/usr/bin/env bash
# test.sh: installs what is missing, builds, and runs every test twice: with
# the normal build and with AddressSanitizer + UndefinedBehaviorSanitizer.
# Needs root (integration tests run docker-registry, containerd, skopeo).
set -uo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh test || exit 1

export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1

status=0
run_suite() {  # BUILD_DIR [meson setup options]
  local dir="$1"; shift
  echo "==== $dir: build"
  if [ ! -f "$dir/build.ninja" ]; then meson setup "$dir" "$@" >/dev/null || return 1; fi
  ninja -C "$dir" || return 1
  echo "==== $dir: test"
  meson test -C "$dir" --print-errorlogs
}
run_suite build || status=1
run_suite build-asan -Db_sanitize=address,undefined -Db_lundef=false || status=1
echo "==== overall: $([ $status = 0 ] && echo PASS || echo FAIL)"
exit $status
