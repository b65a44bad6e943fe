#!/usr/bin/env bash
# check_format.sh: the house rules on every C++ (and C) source git knows:
# clang-format (the root's .clang-format, Debian 12's clang-format 14)
# finds no difference, and no line is over 100 columns (clang-format leaves
# long literals alone). Prints each offence and exits 1 when there is one.
set -uo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "check_format: clang-format is not installed" >&2; exit 1; }
mapfile -t files < <(git ls-files '*.cc' '*.h' '*.c')
[ ${#files[@]} -gt 0 ] || { echo "check_format: no sources found (not a git checkout?)" >&2; exit 1; }
status=0
if ! clang-format --dry-run --Werror "${files[@]}"; then
  echo "check_format: clang-format finds differences (run: git ls-files '*.cc' '*.h' '*.c' | xargs clang-format -i)"
  status=1
fi
long=$(awk 'length > 100 { print FILENAME ":" FNR ": " length " columns" }' "${files[@]}")
if [ -n "$long" ]; then
  echo "$long"
  echo "check_format: lines over 100 columns"
  status=1
fi
[ $status = 0 ] && echo "check_format: ${#files[@]} files formatted, no line over 100 columns"
exit $status
