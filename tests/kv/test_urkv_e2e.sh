#!/usr/bin/env bash
# urkv end to end with real Redis clients: every supported command through
# redis-cli, pipelining (raw and redis-cli --pipe), SCAN cursors, a short
# redis-benchmark, malformed and oversized requests (only that connection
# is closed), QUIT, max clients, the idle timeout, and a clean SIGTERM stop
# whose data a restart finds again.
#
# usage: URKV=path/to/urkv test_urkv_e2e.sh
. "$(dirname "$0")/urkv_lib.sh"
need_redis_tools redis-cli redis-benchmark

start_urkv main --data "$WORK/data" --size 256M --cache 32M --max-request 2M --read-prefetch-min 0 || exit 1

# Raw connections for exact replies: raw_open FD, raw_send FD BYTES, raw_read FD N.
raw_open() { eval "exec $1<>/dev/tcp/127.0.0.1/$PORT"; }
raw_send() { ( printf "%b" "$2" >&"$1" ) 2>/dev/null; }
raw_read() { timeout 5 head -c "$2" <&"$1" | od -An -c | tr -s ' \n' ' '; }
# raw_eof FD: 0 if the server closed the connection within 5 s (reads it to the end).
# A reset (the server closing with unread input) fails it: cat reports ECONNRESET.
raw_eof() { timeout 5 cat <&"$1" > /dev/null; }
# raw_tail FD: the last line the server sent before a clean end of stream,
# or "reset/timeout" when the stream did not end cleanly within 5 s.
raw_tail() {
	local out
	out=$(timeout 5 cat <&"$1" 2>/dev/null) || { echo "reset/timeout"; return; }
	printf '%s' "$out" | tr -d '\r' | tail -n 1
}
esc() { printf "%b" "$1" | od -An -c | tr -s ' \n' ' '; }

echo "== commands"
expect PING PONG "$(cli PING)"
expect "PING msg" hello "$(cli PING hello)"
expect ECHO "a b" "$(cli ECHO 'a b')"
expect SET OK "$(cli SET k1 v1)"
expect GET v1 "$(cli GET k1)"
expect "GET missing" "" "$(cli GET nope)"
expect "SET NX existing" "" "$(cli SET k1 other NX)"
expect "SET NX new" OK "$(cli SET k2 v2 NX)"
expect "SET XX missing" "" "$(cli SET k3 v3 XX)"
expect "SET XX existing" OK "$(cli SET k2 v2b XX)"
expect "GET after XX" v2b "$(cli GET k2)"
expect "SET NX XX" "ERR syntax error" "$(cli SET k2 x NX XX)"
# Expiry in detail: test_urkv_strings.sh.  A key with an expiry, then none left.
expect "SET EX" OK "$(cli SET k4 v EX 1000)"
# TTL rounds to the nearest second: 999 once half a second has passed (a loaded machine).
ttl=$(cli TTL k4)
case "$ttl" in 999|1000) ;; *) fail "SET EX ttl: want 999 or 1000, got [$ttl]" ;; esac
expect "SET EX bad" "ERR invalid expire time in 'set' command" "$(cli SET k4 v PX 0)"
expect "DEL k4" 1 "$(cli DEL k4)"
expect "SET arity" "ERR wrong number of arguments for 'set' command" "$(cli SET k4)"
expect MSET OK "$(cli MSET a 1 b 2 c 3)"
expect "MSET odd" "ERR wrong number of arguments for 'mset' command" "$(cli MSET a 1 b)"
expect MGET "$(printf '1\n2\n\n3')" "$(cli MGET a b nope c)"
expect EXISTS 3 "$(cli EXISTS a b nope a)"
expect DEL 2 "$(cli DEL a b nope)"
expect "DEL gone" 0 "$(cli EXISTS a b)"
expect INCR 1 "$(cli INCR n)"
expect INCRBY 11 "$(cli INCRBY n 10)"
expect DECR 10 "$(cli DECR n)"
expect DECRBY -5 "$(cli DECRBY n 15)"
expect "GET counter" -5 "$(cli GET n)"
expect "INCR text" "ERR value is not an integer or out of range" "$(cli INCR k1)"
expect "INCRBY bad" "ERR value is not an integer or out of range" "$(cli INCRBY n x)"
cli SET big 9223372036854775807 > /dev/null
expect "INCR overflow" "ERR increment or decrement would overflow" "$(cli INCR big)"
expect "SETNX" 0 "$(cli SETNX k1 z)"
expect DBSIZE 5 "$(cli DBSIZE)"
expect "unknown" "ERR unknown command 'NOSUCH', with args beginning with: 'x' 'y' " "$(cli NOSUCH x y)"
expect "CONFIG GET" "$(printf 'appendonly\nyes')" "$(cli CONFIG GET appendonly)"
expect "CONFIG GET *" 1 "$(cli CONFIG GET '*' | grep -c '^save$')"
expect "CONFIG SET save ''" "OK" "$(cli CONFIG SET save '')"
expect "COMMAND COUNT" 1 "$(cli COMMAND COUNT | grep -c '^[0-9][0-9]*$')"
expect "COMMAND DOCS" "" "$(cli COMMAND DOCS)"
# Every command is found whatever the case of its name (the lookup hashes
# names), and a name that is not a command is not.
names=$(cli COMMAND LIST)
[ "$(echo "$names" | wc -l)" -gt 50 ] || fail "COMMAND LIST: [$names]"
for name in $names; do
	mixed=$(echo "$name" | awk '{ s = ""; for (i = 1; i <= length($0); i++) { c = substr($0, i, 1); s = s (i % 2 ? toupper(c) : tolower(c)) } print s }')
	expect "COMMAND INFO $mixed" "$name" "$(cli COMMAND INFO "$mixed" | head -1)"
done
expect "COMMAND INFO nosuchcmd" "" "$(cli COMMAND INFO nosuchcmd | head -1)"
expect "SELECT 0" OK "$(cli SELECT 0)"
expect "SELECT 1" "ERR DB index is out of range" "$(cli SELECT 1)"
expect "CLIENT SETNAME" OK "$(cli CLIENT SETNAME me)"
expect "NOSYNC ON" OK "$(cli NOSYNC ON)"
info=$(cli INFO)
for field in redis_version connected_clients total_commands_processed urt_core0 urt_shard0 \
	db0:keys=5; do
	echo "$info" | grep -q "$field" || fail "INFO lacks $field"
done
expect "INFO keyspace" "db0:keys=5,expires=0,avg_ttl=0" "$(cli INFO keyspace | grep db0 | tr -d '\r')"
expect "QUIT" OK "$(cli QUIT)"

echo "== values around 1 MiB"
head -c 1048576 /dev/zero | tr '\0' 'x' > "$WORK/1m"
expect "SET 1 MiB" OK "$(timeout 20 redis-cli -p "$PORT" -x SET v1m < "$WORK/1m")"
expect "GET 1 MiB" 1048577 "$(cli GET v1m | wc -c)"
printf 'y' >> "$WORK/1m"
# Over 1 MiB: a large value, written in several transactions (test_urkv_big.sh goes to 64 MiB).
expect "SET 1 MiB + 1" OK "$(timeout 20 redis-cli -p "$PORT" -x SET v1m < "$WORK/1m")"
expect "GET 1 MiB + 1" 1048578 "$(cli GET v1m | wc -c)"
long=$(head -c 1025 /dev/zero | tr '\0' 'k')
expect "key 1025 bytes" "ERR key too large (urkv keys are at most 1024 bytes)" "$(cli SET "$long" v)"
expect "key 1024 bytes" OK "$(cli SET "${long:1}" v)"

echo "== pipelining"
raw_open 3
raw_send 3 'SET p1 hello\r\nGET p1\r\nINCR pc\r\nINCR pc\r\nGET nope\r\nEXISTS p1 pc\r\nDEL p1\r\nGET p1\r\n'
want='+OK\r\n$5\r\nhello\r\n:1\r\n:2\r\n$-1\r\n:2\r\n:1\r\n$-1\r\n'
expect "pipelined replies" "$(esc "$want")" "$(raw_read 3 $(printf "%b" "$want" | wc -c))"
# Reads after writes of the same pipeline see them, in both directions and across shards.
cmds='' ; want=''
for i in $(seq 1 40); do
	cmds+="*3\r\n\$3\r\nSET\r\n\$4\r\nq$((i + 100))\r\n\$1\r\n$((i % 10))\r\n"
	cmds+="*2\r\n\$3\r\nGET\r\n\$4\r\nq$((i + 100))\r\n"
	want+="+OK\r\n\$1\r\n$((i % 10))\r\n"
done
raw_send 3 "$cmds"
expect "read your writes" "$(esc "$want")" "$(raw_read 3 $(printf "%b" "$want" | wc -c))"
exec 3>&-
# 20000 commands through redis-cli --pipe (SETs and INCRs), then spot checks.
for i in $(seq 1 10000); do
	printf 'SET pk:%d val:%d\r\nINCR pcount\r\n' "$i" "$i"
done > "$WORK/pipe.txt"
out=$(timeout 60 redis-cli -p "$PORT" --pipe < "$WORK/pipe.txt" 2>&1)
echo "$out" | grep -q "errors: 0, replies: 20000" || fail "redis-cli --pipe: $out"
expect "pipe INCR" 10000 "$(cli GET pcount)"
expect "pipe SET" "val:7777" "$(cli GET pk:7777)"
expect "pipe MGET" "$(printf 'val:1\nval:10000')" "$(cli MGET pk:1 pk:10000)"
# The writers' memo of pinned pages answered repeated reads in those
# transactions (INFO urt; 0 would mean every read went back to the store).
hits=$(cli INFO urt | tr -d '\r' | sed -n 's/.*pager_memo_hits=\([0-9]*\).*/\1/p' | head -1)
[ -n "$hits" ] && [ "$hits" -gt 0 ] || fail "INFO urt: pager_memo_hits is [$hits] after 20000 piped writes"
# Pipelined GETs share a read transaction and have their leaves prefetched
# first (--read-prefetch-min 0 above: at any tree size; INFO urt
# read_prefetches, 0 would mean the batch ran unprefetched).
for i in $(seq 1 2000); do printf 'GET pk:%d\r\n' "$i"; done > "$WORK/gets.txt"
out=$(timeout 60 redis-cli -p "$PORT" --pipe < "$WORK/gets.txt" 2>&1)
echo "$out" | grep -q "errors: 0, replies: 2000" || fail "redis-cli --pipe GETs: $out"
pf=$(cli INFO urt | tr -d '\r' | sed -n 's/.*read_prefetches=\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
[ "$pf" -gt 0 ] || fail "INFO urt: read_prefetches is [$pf] after 2000 piped GETs"

echo "== SCAN"
cli FLUSHALL > /dev/null
expect "FLUSHALL" 0 "$(cli DBSIZE)"
for i in $(seq 1 500); do printf 'SET sk:%d %d\r\n' "$i" "$i"; done > "$WORK/scan.txt"
timeout 60 redis-cli -p "$PORT" --pipe < "$WORK/scan.txt" > /dev/null 2>&1
# A cursor loop by hand on one connection (cursors belong to their connection).
{
	cursor=0 rounds=0
	: > "$WORK/scanned"
	while :; do
		printf 'SCAN %s COUNT 7\n' "$cursor" >&4
		# Reply: *2, $len cursor, *n, n bulks.
		read -r line <&4; read -r line <&4; read -r cursor <&4; cursor=${cursor%$'\r'}
		read -r n <&4; n=${n#\*}; n=${n%$'\r'}
		for ((j = 0; j < n; j++)); do
			read -r line <&4; read -r key <&4; echo "${key%$'\r'}" >> "$WORK/scanned"
		done
		rounds=$((rounds + 1))
		[ "$cursor" = 0 ] && break
		[ $rounds -gt 1000 ] && { fail "SCAN did not end"; break; }
	done
} 4<>/dev/tcp/127.0.0.1/$PORT
expect "SCAN keys" 500 "$(sort -u "$WORK/scanned" | wc -l)"
expect "SCAN no duplicates" 500 "$(wc -l < "$WORK/scanned")"
expect "SCAN in key order" "$(sort "$WORK/scanned")" "$(cat "$WORK/scanned")"
expect "redis-cli --scan" 500 "$(timeout 20 redis-cli -p "$PORT" --scan | wc -l)"
expect "--scan --pattern" 111 "$(timeout 20 redis-cli -p "$PORT" --scan --pattern 'sk:1*' | wc -l)"
expect "SCAN bad cursor" "ERR invalid cursor (unknown on this connection, or expired)" "$(cli SCAN 12345)"

echo "== redis-benchmark"
for args in "-c 20" "-c 50 -P 16 -r 1000"; do
	out=$(timeout 120 redis-benchmark -p "$PORT" -n 2000 -t set,get $args -q 2>&1)
	st=$?
	[ $st -eq 0 ] || fail "redis-benchmark $args exited $st: $out"
	for t in SET GET; do
		echo "$out" | tr '\r' '\n' | grep -Eq "^$t: [0-9.]+ requests per second" ||
			fail "redis-benchmark $args: no $t result in: $out"
	done
done
expect "GET after benchmark" 3 "$(cli GET key:__rand_int__ | tr -d '\n' | wc -c)"

echo "== malformed and oversized requests close only their connection"
raw_open 5		# A good connection, open all along.
raw_send 5 'PING\r\n'
expect "good before" "$(esc '+PONG\r\n')" "$(raw_read 5 7)"
for bad in '*1\r\n$abc\r\n' '*2\r\n$3\r\nGET\r\n$99999999999\r\n' '*x\r\n' \
	'*2\r\n:3\r\n' '*99999999\r\n' 'SET "unbalanced\r\n'; do
	raw_open 6
	raw_send 6 "$bad"
	reply=$(timeout 5 head -c 200 <&6 | tr -d '\r')
	case "$reply" in
	-ERR*) ;;
	*) fail "malformed [$bad]: reply [$reply]" ;;
	esac
	raw_eof 6 || fail "malformed [$bad]: connection not closed"
	exec 6>&-
done
# A request larger than --max-request (2M): an error, then closed.
raw_open 6
# In a subshell: the server closes early, and the SIGPIPE must not end this script.
( { printf '*3\r\n$3\r\nSET\r\n$1\r\nz\r\n$3000000\r\n'; head -c 3000000 /dev/zero; printf '\r\n'; } >&6 ) 2>/dev/null
reply=$(timeout 10 head -c 200 <&6 | tr -d '\r')
case "$reply" in -ERR*) ;; *) fail "oversized request: reply [$reply]" ;; esac
exec 6>&-
# Inline commands have their own limit, 64 KiB (as Redis's): the error names
# it, not --max-request.  70 KiB with no newline, then a GET of a 1 MiB key
# (within --max-request 2M) sent inline.
INLINE_ERR="-ERR Protocol error: too big inline request (over urkv's inline limit of 65536 bytes; send larger commands as RESP arrays)"
inline_70k() { head -c 71680 /dev/zero | tr '\0' x; }
inline_get_1m() { printf 'GET '; head -c 1048576 /dev/zero | tr '\0' k; printf '\r\n'; }
for sender in inline_70k inline_get_1m; do
	raw_open 6
	"$sender" >&6 2>/dev/null &
	sender_pid=$!
	expect "$sender: the inline limit is named" "$INLINE_ERR" "$(raw_tail 6)"
	exec 6>&-
	wait $sender_pid
done
# error_then_eof NAME FUNC: FUNC writes to a new connection in the
# background; the server must answer a protocol error and then end the
# stream cleanly (the lingering close), even while FUNC is still sending.
error_then_eof() {
	local sender tail_line
	raw_open 6
	"$2" >&6 2>/dev/null &
	sender=$!
	tail_line=$(raw_tail 6)
	case "$tail_line" in
	"-ERR Protocol error"*) ;;
	*) fail "$1: want a protocol error, then end of stream; got [$tail_line]" ;;
	esac
	exec 6>&-
	wait $sender
}
# Random garbage, 256 KiB of it, still being sent when the server gives up.
garbage() { timeout 10 head -c 262144 /dev/urandom; }
error_then_eof garbage garbage
# A protocol error with a flood behind it.  Without a lingering close the
# server closes with unread input, the kernel sends a reset instead of an
# end of stream, and the client's read after the error reply fails.
error_flood() { printf '*x\r\n'; timeout 1 cat /dev/zero; }
error_then_eof "error then a flood" error_flood
# The same, step by step and without a race: after the error reply and the
# end of stream, the client can still send for a while (the server reads
# and discards).  After a plain close, the first late write draws a reset
# and the next one fails with EPIPE.
raw_open 6
raw_send 6 '*x\r\n'
tail_line=$(raw_tail 6)
case "$tail_line" in
"-ERR Protocol error"*) ;;
*) fail "lingering: want a protocol error, then end of stream; got [$tail_line]" ;;
esac
late=0
# Well inside the server's 2 s linger (CONN_LINGER_NS), even on a loaded machine.
for i in 1 2 3; do
	sleep 0.05
	( head -c 65536 /dev/zero >&6 ) 2>/dev/null && late=$((late + 1))
done
expect "late writes accepted during the lingering close" 3 "$late"
exec 6>&-
# QUIT with more commands behind it that the server never reads.
raw_open 6
( { printf 'PING\r\nQUIT\r\n'; head -c 200000 /dev/zero | tr '\0' 'x'; } >&6 ) 2>/dev/null &
sender=$!
expect "QUIT with unread input" "+OK" "$(raw_tail 6)"
exec 6>&-
wait $sender
raw_send 5 'PING\r\n'
expect "good after" "$(esc '+PONG\r\n')" "$(raw_read 5 7)"
exec 5>&-
expect "server alive" PONG "$(cli PING)"
pe=$(cli INFO stats | tr -d '\r' | sed -n 's/^protocol_errors://p')
[ "${pe:-0}" -ge 9 ] || fail "protocol_errors $pe, want >= 9"

echo "== QUIT closes after its reply"
raw_open 3
raw_send 3 'PING\r\nQUIT\r\nPING\r\n'
expect "QUIT" "$(esc '+PONG\r\n+OK\r\n')" "$(timeout 5 cat <&3 | od -An -c | tr -s ' \n' ' ')"
exec 3>&-

echo "== clean stop and restart"
cli SET persist yes > /dev/null
keys=$(cli DBSIZE)
stop_urkv || fail "SIGTERM: urkv exited non-zero"
start_urkv again --data "$WORK/data" --cache 32M || exit 1
expect "after restart" yes "$(cli GET persist)"
expect "after restart DBSIZE" "$keys" "$(cli DBSIZE)"
stop_urkv || fail "second SIGTERM"

echo "== max clients and idle timeout"
start_urkv limits --data "$WORK/data2" --size 64M --cache 8M --cores 1 --max-clients 2 \
	--idle-timeout 1 || exit 1
# Both connections within --max-clients are served; only the third is refused.
raw_open 3; raw_send 3 'PING\r\n'
expect "first of --max-clients 2" "$(esc '+PONG\r\n')" "$(raw_read 3 7)"
raw_open 4; raw_send 4 'PING\r\n'
expect "second of --max-clients 2" "$(esc '+PONG\r\n')" "$(raw_read 4 7)"
raw_open 5
expect "max clients" "-ERR max number of clients reached" "$(timeout 5 head -c 100 <&5 | tr -d '\r\n')"
exec 5>&-
# Closed by the server (not within a timed bound: a loaded host may be
# slow; a timeout that never fires still fails after 15 s).
timeout 15 cat <&3 > /dev/null || fail "idle connection not closed within 15 s"
exec 3>&- 4>&-
stop_urkv || fail "third SIGTERM"

finish
