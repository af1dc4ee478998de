#!/usr/bin/env bash
# A data file renamed, replaced or deleted under a running urkv (watch.c):
# urkv compares the path's (st_dev, st_ino) with the open file's once a
# second; while they differ, writes get a -MISCONF reply naming the path
# and the reason (the next start would not see them), reads go on, INFO
# persistence says so, and stderr has one line per change.  A file put
# back at its path takes writes again.  The stat runs on a thread of its
# own (urkv-watch), not on a reactor.
#
# usage: URKV=path/to/urkv test_urkv_data_moved.sh
. "$(dirname "$0")/urkv_lib.sh"
need_redis_tools redis-cli

D="$WORK/w.urkv"
GONE="MISCONF the data file $D was deleted or renamed while urkv ran (no file has that path now): writes are refused, since the next start would not see them; reads still work. Put the file back at its path, or see docs/kv.md"
REPLACED="MISCONF the data file $D was replaced while urkv ran (that path names another file now): writes are refused, since the next start would not see them; reads still work. Put the file back at its path, or see docs/kv.md"
LINE_GONE="urkv: the data file $D was deleted or renamed (no file has that path now) while urkv ran: writes are refused from now on (MISCONF) and reads still work; writes acknowledged before this went to the open file, which the next start will not open"
LINE_REPLACED="urkv: the data file $D was replaced (that path names another file now) while urkv ran: writes are refused from now on (MISCONF) and reads still work; writes acknowledged before this went to the open file, which the next start will not open"
LINE_BACK="urkv: the data file $D is back at its path: writes are accepted again"

# until_set WANT: SETs probe keys until one answers WANT (at most 5 s: the watch looks once a second).
until_set() {
	local i got
	for i in $(seq 1 50); do
		got=$(cli SET "probe$i" x)
		[ "$got" = "$1" ] && return 0
		sleep 0.1
	done
	fail "no SET answered [$1] within 5 s; the last said [$got]"
	return 1
}
status() { cli INFO persistence | tr -d '\r' | sed -n "s/^$1://p"; }

start_urkv w --data "$D" --size 64M --cache 16M --cores 2 || exit 1
expect "SET before" OK "$(cli SET k1 v1)"
expect "INFO: the data file" "$D" "$(status urkv_data_file)"
expect "INFO: its status" ok "$(status urkv_data_file_status)"
# The stat runs on a thread of its own, never on a reactor (it can block on a hung network file system).
expect "the watch thread" 1 "$(cat /proc/"$URKV_PID"/task/*/comm 2>/dev/null | grep -cx urkv-watch)"

echo "== renamed away: writes refused, reads served"
mv "$D" "$WORK/w.keep"
until_set "$GONE"
expect "GET of a key written before" v1 "$(cli GET k1)"
expect "EXISTS" 1 "$(cli EXISTS k1)"
expect "TTL" -1 "$(cli TTL k1)"
expect "PING" PONG "$(cli PING)"
for cmd in "SET k2 v" "SET k1 v GET" "MSET a 1 b 2" "DEL k1" "INCR n" "EXPIRE k1 100" "APPEND k1 x" \
	"FLUSHALL" "GETDEL k1" "RENAME k1 k3" "SAVE"; do
	# shellcheck disable=SC2086
	expect "$cmd refused" "$GONE" "$(cli $cmd)"
done
expect "the key kept its value" v1 "$(cli GET k1)"
expect "INFO: deleted" deleted "$(status urkv_data_file_status)"
expect "INFO: aof_last_write_status" err "$(status aof_last_write_status)"
expect "refusals count as rejected calls" 1 \
	"$(cli INFO commandstats | tr -d '\r' | grep -c '^cmdstat_flushall:calls=0,.*rejected_calls=1,')"

echo "== another file at the path: still refused, as replaced"
cp "$WORK/w.keep" "$D"
until_set "$REPLACED"
expect "INFO: replaced" replaced "$(status urkv_data_file_status)"
expect "GET while replaced" v1 "$(cli GET k1)"
rm "$D"
until_set "$GONE"

echo "== moved back: writes accepted again, and kept"
mv "$WORK/w.keep" "$D"
until_set OK
expect "INFO: ok again" ok "$(status urkv_data_file_status)"
expect "aof_last_write_status ok again" ok "$(status aof_last_write_status)"
expect "SET after the move back" OK "$(cli SET k2 after)"
expect "one line per change" "$LINE_GONE
$LINE_REPLACED
$LINE_GONE
$LINE_BACK" "$(grep '^urkv: the data file' "$WORK/w.log")"
stop_urkv || fail "stop"
start_urkv w2 --data "$D" --cache 16M --cores 2 || exit 1
expect "after restart: the key written before" v1 "$(cli GET k1)"
expect "after restart: the key written after the move back" after "$(cli GET k2)"
stop_urkv || fail "stop after restart"

echo "== rm of the data file"
R="$WORK/r.urkv"
start_urkv r --data "$R" --size 64M --cache 16M --cores 1 || exit 1
expect "SET before rm" OK "$(cli SET rk v)"
rm "$R"
until_set "${GONE//$D/$R}"
expect "GET after rm" v "$(cli GET rk)"
expect "the line after rm" "${LINE_GONE//$D/$R}" "$(grep '^urkv: the data file' "$WORK/r.log")"
grep -q "()" "$WORK/r.log" && fail "a message with (): $(grep '()' "$WORK/r.log")"
stop_urkv || fail "stop after rm"
finish
