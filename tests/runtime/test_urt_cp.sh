#!/usr/bin/env bash
# urt-cp (examples/copy) on a bad command line and on a failing write.
#  - timeout_ms must be a whole number of milliseconds from 1 to 86400000
#    (one day): "-1" and "18446744073709" used to crash urt-cp (their
#    nanoseconds overflowed) and "abc" used to mean no deadline.  Each bad
#    value exits 2 with a message quoting it, and DST is not created.
#  - An I/O error names the operation and the file: a write that fails with
#    EFBIG (RLIMIT_FSIZE of 64 KiB, SIGXFSZ ignored) exits 1 with
#    "writing DST at offset 0: File too large", not a bare errno string.
#
# usage: test_urt_cp.sh URT_CP
set -uo pipefail
urt_cp=$1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/urt-cp-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# What a run printed, for a failure message; never empty.
said() { if [ -s "$1" ]; then printf 'it said: %s' "$(cat "$1")"; else printf 'it printed nothing'; fi; }

head -c $((1 << 20)) /dev/urandom > "$tmp/src"

for t in -1 18446744073709 abc 0 "" 5x 1.5 " 5" +5 86400001 99999999999999999999999; do
	rm -f "$tmp/dst"
	"$urt_cp" "$tmp/src" "$tmp/dst" "$t" > "$tmp/out" 2>&1
	rc=$?
	[ "$rc" -eq 2 ] || fail "timeout \"$t\": exit $rc, want 2 ($(said "$tmp/out"))"
	grep -qF "urt-cp: bad timeout_ms \"$t\": want a whole number of milliseconds from 1 to 86400000" "$tmp/out" ||
		fail "timeout \"$t\": the message does not explain the refusal: $(said "$tmp/out")"
	[ ! -e "$tmp/dst" ] || fail "timeout \"$t\": DST was created although the command line was refused"
done
"$urt_cp" "$tmp/src" "$tmp/dst" 5000 extra > "$tmp/out" 2>&1
rc=$?
[ "$rc" -eq 2 ] || fail "an extra argument: exit $rc, want 2 ($(said "$tmp/out"))"

# The bounds are accepted and copy.
for t in 1000 86400000; do
	rm -f "$tmp/dst"
	"$urt_cp" "$tmp/src" "$tmp/dst" "$t" > "$tmp/out" 2>&1 || fail "timeout $t: $(said "$tmp/out")"
	cmp -s "$tmp/src" "$tmp/dst" || fail "timeout $t: DST differs from SRC"
done

# A failing write names DST and the operation.
rm -f "$tmp/dst"
(
	ulimit -f 64	# KiB: the first 256 KiB write goes past it.
	trap '' XFSZ	# Ignored, so the write fails with EFBIG instead of killing urt-cp.
	exec "$urt_cp" "$tmp/src" "$tmp/dst" 5000
) > "$tmp/out" 2>&1
rc=$?
[ "$rc" -eq 1 ] || fail "a write past RLIMIT_FSIZE: exit $rc, want 1 ($(said "$tmp/out"))"
grep -qF "urt-cp: writing $tmp/dst at offset 0: File too large" "$tmp/out" ||
	fail "a failed write's message does not name the operation and DST: $(said "$tmp/out")"

[ "$fails" -eq 0 ] || exit 1
echo "urt-cp refused bad timeouts and named the file of a failed write"
