#!/usr/bin/env bash
# Bad input loses no data.  ps-example (urt_ps_open with create) on a file
# that holds someone else's data refuses with a message naming the file and
# leaves the bytes as they were, whatever the file's size (a 6-byte text
# file, a 64 KiB one: never grown to a store's 8 MiB); on a new file it
# formats and commits.  Its options are never file names: -h/--help prints
# the usage and creates nothing (exit 0), an unknown option is refused
# (exit 2) and creates nothing.
# urkv (the kv store) on a file whose first 4 KiB are blank but whose shard
# region holds old data (a device wiped with dd of its first MiB) makes its
# store: the kv header owns the regions, and kv blanks their superblocks.
#
# usage: test_ps_no_overwrite.sh PS_EXAMPLE URKV
set -uo pipefail
ps_example=$(readlink -f "$1")	# Absolute: some runs below cd.
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
# What a run printed, for a failure message; never empty.
said() { if [ -s "$1" ]; then printf 'it said: %s' "$(cat "$1")"; else printf 'it printed nothing'; fi; }

head -c $((8 << 20)) /dev/urandom > "$tmp/other"
cp "$tmp/other" "$tmp/other.orig"
"$ps_example" "$tmp/other" > "$tmp/out" 2>&1
rc=$?
[ "$rc" -eq 1 ] || fail "ps-example on another program's data: exit $rc, want 1 ($(said "$tmp/out"))"
grep -q "$tmp/other: .*holds data but no urt page store.*not formatting over it" "$tmp/out" ||
	fail "ps-example's message does not say it refused to format over the data: $(said "$tmp/out")"
cmp -s "$tmp/other" "$tmp/other.orig" || fail "ps-example changed the file it refused"

# Short text files: refused at their own size, not grown first.
printf 'hello\n' > "$tmp/text6"
cp "$tmp/text6" "$tmp/text6.orig"
"$ps_example" "$tmp/text6" > "$tmp/out" 2>&1
rc=$?
[ "$rc" -eq 1 ] || fail "ps-example on a 6-byte text file: exit $rc, want 1 ($(said "$tmp/out"))"
grep -q "$tmp/text6 holds 6 bytes, too few for a urt page store" "$tmp/out" ||
	fail "ps-example's message does not say why it refused the 6-byte file: $(said "$tmp/out")"
[ "$(stat -c %s "$tmp/text6")" -eq 6 ] || fail "ps-example resized a 6-byte file to $(stat -c %s "$tmp/text6")"
cmp -s "$tmp/text6" "$tmp/text6.orig" || fail "ps-example changed the 6-byte file it refused"
yes "a line of someone's text" | head -c 65536 > "$tmp/text64k"
cp "$tmp/text64k" "$tmp/text64k.orig"
"$ps_example" "$tmp/text64k" > "$tmp/out" 2>&1
rc=$?
[ "$rc" -eq 1 ] || fail "ps-example on a 64 KiB text file: exit $rc, want 1 ($(said "$tmp/out"))"
grep -q "$tmp/text64k: .*holds data but no urt page store" "$tmp/out" ||
	fail "ps-example's message on the 64 KiB file: $(said "$tmp/out")"
cmp -s "$tmp/text64k" "$tmp/text64k.orig" || fail "ps-example changed (or grew) the 64 KiB file it refused"

# Options are not file names.
mkdir "$tmp/cwd"
for opt in --help -h; do
	(cd "$tmp/cwd" && "$ps_example" "$opt") > "$tmp/out" 2>&1
	rc=$?
	[ "$rc" -eq 0 ] || fail "ps-example $opt: exit $rc, want 0 ($(said "$tmp/out"))"
	grep -q "^usage: ps-example" "$tmp/out" || fail "ps-example $opt printed no usage: $(said "$tmp/out")"
done
for opt in --frobnicate -x -; do
	(cd "$tmp/cwd" && "$ps_example" "$opt") > "$tmp/out" 2>&1
	rc=$?
	[ "$rc" -eq 2 ] || fail "ps-example $opt: exit $rc, want 2 ($(said "$tmp/out"))"
	grep -q "^ps-example: unknown option $opt" "$tmp/out" ||
		fail "ps-example $opt: the message does not name the unknown option: $(said "$tmp/out")"
done
[ -z "$(ls -A "$tmp/cwd")" ] || fail "ps-example given only options created files: $(ls -A "$tmp/cwd")"
# A file whose name starts with '-' is still reachable after "--".
(cd "$tmp/cwd" && "$ps_example" -- -store) > "$tmp/out" 2>&1 || fail "ps-example -- -store: $(said "$tmp/out")"
[ -s "$tmp/cwd/-store" ] || fail "ps-example -- -store made no store named -store"

"$ps_example" "$tmp/new" > "$tmp/out" 2>&1 || fail "ps-example on a new file: $(said "$tmp/out")"
grep -q "0 transactions found, 16 more committed" "$tmp/out" || fail "new file: $(said "$tmp/out")"
"$ps_example" "$tmp/new" > "$tmp/out" 2>&1 || fail "ps-example reopening its store: $(said "$tmp/out")"
grep -q "16 transactions found, 16 more committed" "$tmp/out" || fail "reopen: $(said "$tmp/out")"

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
	wait "$pid" || fail "urkv on the wiped file did not stop cleanly: $(said "$tmp/urkv.log")"
else
	fail "urkv refused a file whose first MiB was wiped: $(said "$tmp/urkv.log")"
fi
pid=
[ "$fails" -eq 0 ] || exit 1
echo "ps-example left other data alone; urkv made its store over a wiped file"
