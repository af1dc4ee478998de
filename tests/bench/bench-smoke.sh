#!/usr/bin/env bash
# Smoke run of the issue benchmarks, so that they cannot rot unseen: each must
# finish without an error and print every row it promises.  No figure is
# checked (this shared machine is too noisy for timed assertions; the
# figures come from full runs, docs/engine.md and docs/runtime.md).
# Usage: bench-smoke.sh BENCH_DIR
set -euo pipefail
dir=$1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/urt-bench-smoke.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail() { echo "bench-smoke: $*" >&2; exit 1; }
# expect FILE PATTERN COUNT: FILE has exactly COUNT lines matching PATTERN.
expect() {
	local n
	n=$(grep -cE "$2" "$1" || true)
	[ "$n" -eq "$3" ] || { cat "$1" >&2; fail "$1: $n lines match '$2', expected $3"; }
}

"$dir/bench_commit" -f "$tmp/commit.dat" -s 1 -m all > "$tmp/commit.out" || fail "bench_commit exited $?"
for who in engine/file base/file engine/sim base/sim; do
	expect "$tmp/commit.out" "^$who +N=(1|16|64|256) +[0-9]+ commits/s" 4
done
expect "$tmp/commit.out" "^ratio +N=[0-9]+ .* engine/base" 4
[ ! -e "$tmp/commit.dat" ] || fail "bench_commit left its file behind"

env -u BENCH_WORKLOAD -u BENCH_ONLY "$dir/bench_runtime" 20000 1 "$tmp/rt.dat" > "$tmp/rt.out" || fail "bench_runtime exited $?"
expect "$tmp/rt.out" "^nop +(1|32) +[0-9]+ +[0-9]+ +[0-9.]+x" 2
expect "$tmp/rt.out" "^pagecache +(1|32) +[0-9]+ +[0-9]+ +[0-9.]+x" 2
echo "bench-smoke: bench_commit and bench_runtime ran and printed every row"
