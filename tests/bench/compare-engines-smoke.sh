#!/usr/bin/env bash
# Smoke run of bench/kv/compare-engines --quick: every engine (urt, urt-local, RocksDB,
# LMDB, WiredTiger) must run every workload without an error and print its
# row, and the ratio table must have every workload.  No figure is checked:
# this shared machine is too noisy for timed assertions (the figures come
# from full runs, docs/engine.md).
# Usage: compare-engines-smoke.sh COMPARE_ENGINES_BINARY
set -euo pipefail
bin=$1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/urt-compare-engines-smoke.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail() { echo "compare-engines-smoke: $*" >&2; exit 1; }

status=0
"$bin" --quick --dir "$tmp" > "$tmp/out" 2> "$tmp/err" || status=$?
if [ "$status" -eq 3 ]; then
	# The data directory cannot take O_DIRECT (tmpfs): skipped, not passed.
	cat "$tmp/err"
	exit 77
fi
if [ "$status" -ne 0 ] || [ -s "$tmp/err" ]; then
	cat "$tmp/out" "$tmp/err" >&2
	fail "compare-engines exited $status$( [ -s "$tmp/err" ] && echo ' and wrote to stderr')"
fi
for e in urt urt-local rocksdb lmdb wiredtiger; do
	grep -qE "^load engine=$e +keys=[0-9]+ " "$tmp/out" || { cat "$tmp/out" >&2; fail "no load line for $e"; }
	for w in put-1 put-16 put-64 get-cached get-10x scan-10k; do
		n=$(grep -cE "^row round=1 engine=$e +workload=$w +workers=[0-9]+ +ops/s=[0-9]+ " "$tmp/out" || true)
		[ "$n" -eq 1 ] || { cat "$tmp/out" >&2; fail "$n rows for $e $w, expected 1"; }
	done
done
for w in put-1 put-16 put-64 get-cached get-10x scan-10k; do
	n=$(grep -cE "^\| $w \| [0-9.]+[kM]? \([0-9]+\) \|" "$tmp/out" || true)
	[ "$n" -eq 1 ] || { cat "$tmp/out" >&2; fail "the ratio table has $n rows for $w, expected 1"; }
done
# The run removes its store files.
[ -z "$(ls -A "$tmp" | grep -v -e '^out$' -e '^err$')" ] || fail "compare-engines left files in $tmp"
echo "compare-engines-smoke: 5 engines x 6 workloads ran and printed their rows and the ratio table"
