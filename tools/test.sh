#!/usr/bin/env bash
# test.sh: installs what is missing, builds, and runs the tests twice: the
# normal build (GCC, as shipped) runs the unit tests, the gossip simulator
# and the end-to-end integration tests (tests/meson.build, release_too); the
# sanitized build (clang, AddressSanitizer + UndefinedBehaviorSanitizer,
# libFuzzer's coverage) runs the unit tests, every integration test, and
# each fuzzer for fuzz_seconds (meson_options.txt). Warnings are errors in
# every build, under both compilers. Each phase prints how long it took.
# Needs root (integration tests run docker-registry, containerd, skopeo).
set -uo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh test || exit 1

export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1

status=0
started=$SECONDS
phase() { echo "==== $1 (at $((SECONDS - started)) s)"; }
build_dir() {  # BUILD_DIR [meson setup options]
  local dir="$1"; shift
  rm -f "$dir"/meson-logs/*.json  # counted at the end: never a stale one
  phase "$dir: build"
  # A directory set up with another compiler (an older checkout's) starts over.
  if [ -f "$dir/build.ninja" ] && [ "$(cat "$dir/.compiler" 2>/dev/null)" != "${CXX:-c++}" ]; then
    rm -rf "$dir"
  fi
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >/dev/null || return 1
    echo "${CXX:-c++}" >"$dir/.compiler"
  else
    meson configure "$dir" "$@" >/dev/null || return 1  # an older checkout's options
  fi
  ninja -C "$dir"
}
test_dir() {  # BUILD_DIR [meson test options]
  local dir="$1"; shift
  phase "$dir: test"
  meson test -C "$dir" --no-rebuild --print-errorlogs "$@"
}
# Test builds carry line tables only (-g1): sanitizer reports and stack
# traces keep file:line, and the builds are about 15% faster than with full
# debug information.
debug_lines=(-Dc_args=-g1 -Dcpp_args=-g1)
# At -O3, as the release build tools/run.sh makes: a warning only that
# optimization finds fails here too.
normal_built=0
build_dir build -Dwerror=true -Doptimization=3 "${debug_lines[@]}" && normal_built=1
[ $normal_built = 1 ] || status=1
# Then three things at once, so the two cores are never idle while tests
# wait on I/O and peers:
# - the 1000-node gossip simulator (one core, three to four minutes);
# - the normal build's tests;
# - the sanitized build, at the lowest: it takes only what the other two
#   leave. Unoptimized (the libraries the fuzzers run stay at -O1,
#   meson.build): the tests take the same time either way. One clang build
#   serves the sanitized tests and the fuzzers.
# The sanitized tests start once all three are done: no integration test
# under the sanitizers shares the machine with the simulator.
sim_pid=
if [ $normal_built = 1 ] && [ -f build/tests/gossip_sim ]; then
  meson test -C build --no-rebuild --suite sim --logbase simlog >build/meson-logs/sim.out 2>&1 &
  sim_pid=$!
fi
asan_out=$(mktemp /tmp/georeg-asan-build.XXXXXX)
(
  renice -n 19 -p $BASHPID >/dev/null
  CC=clang-14 CXX=clang++-14 build_dir build-asan -Dwerror=true "${debug_lines[@]}" \
    -Db_sanitize=address,undefined -Db_lundef=false -Doptimization=0 -Dfuzz=true
) >"$asan_out" 2>&1 &
asan_pid=$!
if [ $normal_built = 1 ]; then test_dir build --no-suite sim || status=1; fi
asan_built=0
wait "$asan_pid" && asan_built=1
phase "build-asan: built (at lowest priority beside the tests above)"
cat "$asan_out"
rm -f "$asan_out"
[ $asan_built = 1 ] || status=1
if [ -n "$sim_pid" ]; then
  wait "$sim_pid" || status=1
  phase "build: gossip simulator"
  cat build/meson-logs/sim.out
fi
# Two tests at a time (tests/meson.build says which may share the machine).
if [ $asan_built = 1 ]; then test_dir build-asan --num-processes 2 || status=1; fi
phase "done"
# One closing line for CI, counting every meson test of both builds
# (a build that failed to compile counts as one failure).
python3 - build build-asan <<'PY'
import json, os, sys
passed = failed = 0
for d in sys.argv[1:]:
    path = os.path.join(d, "meson-logs", "testlog.json")
    if not os.path.exists(path):
        failed += 1
        print(f"FAILED {d}: no test log (the build failed)")
        continue
    logs = [path] + ([os.path.join(d, "meson-logs", "simlog.json")] if d == "build" else [])
    for log in logs:
        if not os.path.exists(log):
            failed += 1  # the simulator's log is missing: it did not run
            print(f"FAILED {d}: {os.path.basename(log)} is missing")
            continue
        for line in open(log):
            if line.strip():
                rec = json.loads(line)
                ok = rec.get("result") == "OK"
                passed += ok
                failed += not ok
                if not ok:  # named at the end, with its last lines, where a log's tail shows it
                    print(f"FAILED {d}: {rec.get('name')} ({rec.get('result')}, {rec.get('duration', 0):.0f} s)")
                    # Sanitizers report on stderr, which meson keeps apart when the test did not merge it.
                    lines = ((rec.get("stdout") or "") + "\n" + (rec.get("stderr") or "")).strip().splitlines()
                    # What failed first (a test's own verdicts and fatal lines, a
                    # sanitizer's report), then the last lines: logs a test dumps
                    # on failure would otherwise push its verdict out of view.
                    marks = ("not ok", "FATAL", "Sanitizer", "runtime error", "FAILED")
                    for out in [l for l in lines if any(m in l for m in marks)][:12]:
                        print(f"  ! {out[:300]}")
                    for out in lines[-25:]:
                        print(f"  | {out[:300]}")
print(f"overall: {passed} passed, {failed} failed")
PY
exit $status
