#!/usr/bin/env bash
# test.sh: installs what is missing, builds, and runs every test twice: with
# the normal build and with AddressSanitizer + UndefinedBehaviorSanitizer;
# then builds the libFuzzer harnesses with clang and runs each for
# fuzz_seconds (meson_options.txt). Warnings are errors in every build.
# Needs root (integration tests run docker-registry, containerd, skopeo).
set -uo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh test || exit 1

export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1

status=0
run_suite() {  # BUILD_DIR [meson setup options]
  local dir="$1"; shift
  rm -f "$dir/meson-logs/testlog.json"  # counted at the end: never a stale one
  echo "==== $dir: build"
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >/dev/null || return 1
  else
    meson configure "$dir" "$@" >/dev/null || return 1  # an older checkout's options
  fi
  ninja -C "$dir" || return 1
  echo "==== $dir: test"
  meson test -C "$dir" --print-errorlogs
}
run_suite build -Dwerror=true || status=1
# Unoptimized: the sanitizers at -O2 take 7 minutes to compile here, at -O0
# 1.5; the tests take the same time either way (they wait on I/O and peers).
run_suite build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false -Doptimization=0 || status=1
# The fuzzers: clang's libFuzzer with ASan and UBSan; only the fuzz suite runs
# there (the others ran twice above).
run_fuzz() {
  local dir=build-fuzz
  rm -f "$dir/meson-logs/testlog.json"
  echo "==== $dir: build"
  if [ ! -f "$dir/build.ninja" ]; then
    CC=clang-14 CXX=clang++-14 meson setup "$dir" -Dfuzz=true -Dwerror=true -Db_sanitize=address,undefined \
      -Db_lundef=false -Doptimization=1 >/dev/null || return 1
  fi
  ninja -C "$dir" || return 1
  echo "==== $dir: fuzz"
  meson test -C "$dir" --suite fuzz --print-errorlogs --verbose
}
run_fuzz || status=1
# One closing line for CI, counting every meson test of both builds
# (a build that failed to compile counts as one failure).
python3 - build build-asan build-fuzz <<'PY'
import json, os, sys
passed = failed = 0
for d in sys.argv[1:]:
    path = os.path.join(d, "meson-logs", "testlog.json")
    if not os.path.exists(path):
        failed += 1
        continue
    for line in open(path):
        if line.strip():
            ok = json.loads(line).get("result") == "OK"
            passed += ok
            failed += not ok
print(f"overall: {passed} passed, {failed} failed")
PY
exit $status
