#!/usr/bin/env bash
# Bad input loses no data.  ps-example (urt_ps_open with create) on a file
# that holds someone else's data refuses with a message naming the file and
# leaves the bytes as they were; on a new file it formats and commits.
# urkv (the kv store) on a file whose first 4 KiB are blank but whose shard
# region holds old data (a device wiped with dd of its first MiB) makes its
# store: the kv header owns the regions, and kv blanks their superblocks.
#
# usage: test_ps_no_overwrite.sh PS_EXAMPLE URKV
set -uo pipefail
ps_example=$1
urkv=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/urt-ps-no-overwrite.XXXXXX")
pid=
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

head -c $((8 << 20)) /dev/urandom > "$tmp/other"
cp "$tmp/other" "$tmp/other.orig"
"$ps_example" "$tmp/other" > "$tmp/out" 2>&1
rc=$?
[ "$rc" -eq 1 ] || fail "ps-example on another program's data: exit $rc, want 1 ($(cat "$tmp/out"))"
grep -q "$tmp/other: .*holds data but no urt page store.*not formatting over it" "$tmp/out" ||
	fail "ps-example's message does not say it refused to format over the data: $(cat "$tmp/out")"
cmp -s "$tmp/other" "$tmp/other.orig" || fail "ps-example changed the file it refused"

"$ps_example" "$tmp/new" > "$tmp/out" 2>&1 || fail "ps-example on a new file: $(cat "$tmp/out")"
grep -q "0 transactions found, 16 more committed" "$tmp/out" || fail "new file: $(cat "$tmp/out")"
"$ps_example" "$tmp/new" > "$tmp/out" 2>&1 || fail "ps-example reopening its store: $(cat "$tmp/out")"
grep -q "16 transactions found, 16 more committed" "$tmp/out" || fail "reopen: $(cat "$tmp/out")"

# 64 MiB of old data with the first MiB zeroed: urkv's store header is blank.
head -c $((64 << 20)) /dev/urandom > "$tmp/wiped"
dd if=/dev/zero of="$tmp/wiped" bs=1M count=1 conv=notrunc status=none
"$urkv" --data "$tmp/wiped" --cores 1 --cache 16M --port 0 --port-file "$tmp/port" --quiet 2> "$tmp/urkv.log" &
pid=$!
for _ in $(seq 1 200); do
	[ -s "$tmp/port" ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.05
done
if [ -s "$tmp/port" ]; then
	kill -TERM "$pid"
	wait "$pid" || fail "urkv on the wiped file did not stop cleanly: $(cat "$tmp/urkv.log")"
else
	fail "urkv refused a file whose first MiB was wiped: $(cat "$tmp/urkv.log")"
fi
pid=
[ "$fails" -eq 0 ] || exit 1
echo "ps-example left other data alone; urkv made its store over a wiped file"
