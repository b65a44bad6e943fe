#!/usr/bin/env bash
# run_fuzzer.sh FUZZER CORPUS REGRESSIONS SECONDS: fuzzes for SECONDS from the
# seed corpus (new inputs go to a scratch dir, not the committed corpus),
# after replaying every regression. A crash fails the test and leaves the
# input in the scratch dir: add it to REGRESSIONS with the fix.
set -uo pipefail
fuzzer="$1" corpus="$2" regressions="$3" seconds="$4"
work="$(mktemp -d "/tmp/georeg-fuzz-$(basename "$fuzzer").XXXXXX")"
mkdir -p "$work/new"
"$fuzzer" -runs=0 "$regressions" "$corpus" 2>"$work/replay.log" || { tail -30 "$work/replay.log"; exit 1; }
"$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
  -artifact_prefix="$work/" "$work/new" "$corpus" >"$work/fuzz.log" 2>&1
rc=$?
grep -E "stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb|cov:" "$work/fuzz.log" | tail -4
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log")
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/fuzz.log")
echo "$(basename "$fuzzer"): $execs executions in ${seconds}s ($rate/s)"
if [ $rc -ne 0 ]; then
  tail -40 "$work/fuzz.log"
  echo "crash input kept in $work"
  exit 1
fi
rm -rf "$work"
exit 0
