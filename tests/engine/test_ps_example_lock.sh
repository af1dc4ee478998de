#!/usr/bin/env bash
# One writer per store.  The page store takes no lock (the caller owns the
# device), so ps-example, as the owner of its file, holds an exclusive
# flock(2) on it for its whole run:
#  - while another process holds the lock (flock(1) here), ps-example exits 1
#    with a message saying the file is in use, and the file is unchanged;
#  - six ps-example runs started at once on one store: each either commits
#    its 16 transactions (exit 0) or is refused (exit 1, "in use"), and the
#    store then holds 16 transactions for every run that said it committed.
#    Without the lock they all exit 0 and the store holds far fewer.
#
# usage: test_ps_example_lock.sh PS_EXAMPLE
set -uo pipefail
ps_example=$1
if ! command -v flock > /dev/null; then
	echo "SKIP: flock(1) (util-linux) is not installed"
	exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/urt-ps-example-lock.XXXXXX")
holder=
cleanup() {
	[ -n "$holder" ] && kill -KILL "$holder" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# What a run printed, for a failure message; never empty.
said() { if [ -s "$1" ]; then printf 'it said: %s' "$(cat "$1")"; else printf 'it printed nothing'; fi; }
store=$tmp/store

"$ps_example" "$store" > "$tmp/out" 2>&1 || fail "first run: $(said "$tmp/out")"
grep -q "0 transactions found, 16 more committed" "$tmp/out" || fail "first run: $(said "$tmp/out")"
cp "$store" "$tmp/store.orig"

# Another process holds the lock: refused, nothing written.  The holder keeps
# it until $tmp/release appears (at most 60 s).
flock "$store" sh -c ': > "$1/held"; for _ in $(seq 1 1200); do { [ -e "$1/release" ] || [ ! -d "$1" ]; } && exit 0; sleep 0.05; done' \
	sh "$tmp" &
holder=$!
for _ in $(seq 1 200); do
	[ -e "$tmp/held" ] && break
	sleep 0.05
done
[ -e "$tmp/held" ] || fail "flock(1) did not take the lock on $store"
"$ps_example" "$store" > "$tmp/out" 2>&1
rc=$?
[ "$rc" -eq 1 ] || fail "ps-example on a locked store: exit $rc, want 1 ($(said "$tmp/out"))"
grep -q "$store is in use: another process .*holds its lock" "$tmp/out" ||
	fail "ps-example's message does not say the store is in use: $(said "$tmp/out")"
cmp -s "$store" "$tmp/store.orig" || fail "ps-example wrote to a store another process holds locked"
: > "$tmp/release"
wait "$holder" || fail "flock(1) holding the lock failed"
holder=

# Six at once: the store holds exactly what the runs that exited 0 committed.
pids=()
for i in 1 2 3 4 5 6; do
	"$ps_example" "$store" > "$tmp/conc$i" 2>&1 &
	pids+=($!)
done
committed=16
for i in 1 2 3 4 5 6; do
	wait "${pids[$((i - 1))]}"
	rc=$?
	if [ "$rc" -eq 0 ]; then
		committed=$((committed + 16))
	elif [ "$rc" -ne 1 ] || ! grep -q "is in use" "$tmp/conc$i"; then
		fail "concurrent run $i: exit $rc: $(said "$tmp/conc$i")"
	fi
done
"$ps_example" "$store" > "$tmp/out" 2>&1 || fail "run after the concurrent ones: $(said "$tmp/out")"
grep -q "^ps-example: $committed transactions found, 16 more committed" "$tmp/out" ||
	fail "runs that exited 0 committed $committed transactions in all, but: $(said "$tmp/out")"

[ "$fails" -eq 0 ] || exit 1
echo "ps-example refused a locked store; concurrent runs lost no committed transaction ($committed)"
