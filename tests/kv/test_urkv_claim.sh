#!/usr/bin/env bash
# One store per data file, and no store over someone's data: a second urkv
# on a file the first one serves is refused (and the first one's writes
# survive), and a file whose first 4 KiB are zero but which holds data
# further in is refused and left byte for byte as it was (src/kv/layout.c,
# kv_layout_claim).  A --log-size below the smallest log leaves no file.
#
# usage: URKV=path/to/urkv test_urkv_claim.sh
. "$(dirname "$0")/urkv_lib.sh"
need_redis_tools redis-cli

start_urkv first --data "$WORK/data" --size 64M --cache 16M --cores 1 || exit 1
expect "SET on the first server" OK "$(cli SET a first)"
out=$(timeout 20 "$URKV" --port 0 --quiet --data "$WORK/data" --cache 16M --cores 1 2>&1)
rc=$?
expect "second urkv on the same file: exit status" 1 "$rc"
case "$out" in
*"is in use by another store"*) ;;
*) fail "second urkv on the same file: message [$out]" ;;
esac
expect "SET on the first server after the refused second" OK "$(cli SET b first)"
stop_urkv || fail "the first urkv did not stop cleanly"
start_urkv again --data "$WORK/data" --cache 16M --cores 1 || exit 1
expect "first server's writes after a restart" "first first" "$(cli MGET a b | tr '\n' ' ' | sed 's/ $//')"
stop_urkv || fail "the restarted urkv did not stop cleanly"

# Someone's data behind a zeroed first block.
head -c 8M /dev/urandom > "$WORK/foreign"
dd if=/dev/zero of="$WORK/foreign" bs=4096 count=1 conv=notrunc status=none
sum=$(md5sum < "$WORK/foreign")
out=$(timeout 20 "$URKV" --port 0 --quiet --data "$WORK/foreign" --cache 16M --cores 1 2>&1)
rc=$?
expect "urkv on a blank-headed file with data: exit status" 1 "$rc"
case "$out" in
*"holds data at offset 4096"*) ;;
*) fail "urkv on a blank-headed file with data: message [$out]" ;;
esac
expect "the blank-headed file is unchanged" "$sum" "$(md5sum < "$WORK/foreign")"

# A log too small for any transaction: refused before the file is made.
out=$(timeout 20 "$URKV" --port 0 --quiet --data "$WORK/tiny" --size 64M --log-size 16K --cores 1 2>&1)
expect "--log-size 16K: exit status" 1 "$?"
case "$out" in
*"below the smallest log of a shard, 256 KiB"*) ;;
*) fail "--log-size 16K: message [$out]" ;;
esac
[ -e "$WORK/tiny" ] && fail "--log-size 16K left a data file behind"

# A sim: data path is the simulated device, never a file of that name.
cd "$WORK" || exit 1
out=$(timeout 20 "$URKV" --port 0 --quiet --data sim:abc --cores 1 --cache 16M 2>&1)
expect "--data sim:abc: exit status" 1 "$?"
case "$out" in
*"is not sim:SIZE"*) ;;
*) fail "--data sim:abc: message [$out]" ;;
esac
[ -e "$WORK/sim:abc" ] && fail "--data sim:abc created a file named sim:abc"
start_urkv sim --data sim:64M --cache 16M --cores 1 || exit 1
expect "SET on a sim: store" OK "$(cli SET s 1)"
stop_urkv || fail "urkv on sim:64M did not stop cleanly"
[ -e "$WORK/sim:64M" ] && fail "--data sim:64M created a file named sim:64M"
finish
