#!/bin/bash
# urkv's expiry, string and keyspace commands, side by side with Redis.
#
# 1. Differential: every command of the list below goes to urkv and to a
#    redis-server 7 (started here, Unix socket only, no persistence), and
#    the two replies (redis-cli --no-raw: type and text) must be equal.
#    Lines starting with "~" have replies that depend on elapsed time
#    (TTL of a relative expiry): their digits are masked before comparing;
#    "^" lines (KEYS) are compared as sorted sets (Redis answers in hash
#    order, urkv in key order).
# 2. urkv alone, on its controllable clock (DEBUG CLOCK-ADVANCE): keys
#    disappear for GET, EXISTS, MGET, SCAN, KEYS and DBSIZE once their time
#    passes; the active pass frees 3000 expired keys that no client touches
#    (INFO's expired_keys and keys=); one expiry in real time (PX 1000).
# 3. Durability: SETs with expiries, kill -9 mid-load, restart: every
#    acknowledged expiry is back exactly (PEXPIRETIME), expired keys stay
#    gone, and the clock's advance after the restart expires the rest.
# Needs redis-cli (skip otherwise); the differential part needs
# redis-server (skipped alone, reported, when missing).

. "$(dirname "$0")/urkv_lib.sh"
need_redis_tools redis-cli

REDIS_SOCK="$WORK/redis.sock"

start_redis() {
	local i
	redis-server --port 0 --unixsocket "$REDIS_SOCK" --save '' --appendonly no \
		--dir "$WORK" > "$WORK/redis.log" 2>&1 &
	PIDS+=("$!")
	for i in $(seq 1 100); do
		[ -S "$REDIS_SOCK" ] && return 0
		sleep 0.05
	done
	echo "redis-server did not start"
	cat "$WORK/redis.log"
	return 1
}

# The commands compared.  redis-cli reads each line as its prompt does
# ("\xff" escapes in double quotes are bytes).
COMMANDS=$(cat <<'EOF'
SET a hello
APPEND a " world"
APPEND newkey abc
STRLEN a
STRLEN nokey
GETRANGE a 0 4
GETRANGE a -5 -1
GETRANGE a 5 2
GETRANGE a -1 -5
GETRANGE nokey 0 10
GETRANGE a x 1
SUBSTR a 2 100
SETRANGE a 6 W
GET a
SETRANGE sr 5 x
GET sr
SETRANGE sr 0 ""
SETRANGE nokey2 3 ""
EXISTS nokey2
SETRANGE a -1 x
SETRANGE a x y
GETSET a new
GETSET gs x
~SET t v EX 100
~TTL t
SET t2 v EXAT 4102444800
EXPIRETIME t2
PEXPIRETIME t2
SET t3 v PXAT 4102444800123
PEXPIRETIME t3
EXPIRETIME t3
SET t3 w KEEPTTL
PEXPIRETIME t3
GETSET t3 x
PEXPIRETIME t3
SET t2 v
TTL t2
SET x v EX 0
SET x v EX -1
SET x v PX 0
SET x v EX abc
SET x v EX 10 PX 10
SET x v EX 10 KEEPTTL
SET rep v EX 10 EX 20
~TTL rep
SET rep v KEEPTTL KEEPTTL
~TTL rep
SET rep v EXAT 4102444800 EXAT 4102444801
EXPIRETIME rep
SET rep v PXAT 4102444800000 PXAT 4102444800001
PEXPIRETIME rep
SET rep v EX abc EX 4000000000
~TTL rep
SET rep v EX 10 EX abc
SET rep v EX 10 EX
SET rep v EX 10 KEEPTTL KEEPTTL
GETEX rep EXAT 4102444800 EXAT 4102444802
EXPIRETIME rep
GETEX rep EX abc PERSIST
GETEX rep PERSIST PERSIST
TTL rep
SET x v NX XX
SET x v EX
SET x v FOO
SET x v GET
SET x w GET
SET x y NX GET
SET x z XX GET
SET nx2 y XX GET
GET nx2
SET x v GET EXAT 4102444800
EXPIRETIME x
EXPIRE x 100 NX
PEXPIREAT x 4102444800000 NX
PERSIST x
EXPIREAT x 4102444800 NX
EXPIREAT x 4102444700 GT
EXPIREAT x 4102444900 GT
EXPIRETIME x
EXPIREAT x 4102445000 LT
EXPIREAT x 4102440000 LT
EXPIRETIME x
EXPIREAT x 4102440000 XX
PERSIST x
EXPIREAT x 4102440000 XX
EXPIREAT x 4102440000 LT
EXPIRETIME x
PERSIST x
PERSIST x
EXPIREAT x 4102440000 GT
TTL x
EXPIRE nokey 10
PEXPIRE nokey 10
EXPIRE x 10 NX XX
EXPIRE x 10 NX GT
EXPIRE x 10 GT LT
EXPIRE x 10 FOO
EXPIRE x abc
EXPIRE x 9223372036854775807
PEXPIRE x 9223372036854775807
EXPIREAT x -1
EXISTS x
TTL nokey
PTTL nokey
EXPIRETIME nokey
PEXPIRETIME nokey
SET nottl v
TTL nottl
PTTL nottl
EXPIRETIME nottl
~SETEX s 100 v
~TTL s
SETEX s 0 v
SETEX s -5 v
PSETEX s 0 v
SETEX s abc v
SETEX s 1 v extra
GETEX s
GETEX s PERSIST
TTL s
GETEX s EXAT 4102444800
EXPIRETIME s
GETEX s EX 0
GETEX s PX -1
GETEX s EX abc
GETEX s FOO
GETEX s EX 10 PX 10
GETEX s PERSIST EX 10
GETEX s KEEPTTL
GETEX nokey EX 0
GETEX nokey
GETEX s PXAT 1
EXISTS s
SET gd v
GETDEL gd
GETDEL gd
EXISTS gd
MSETNX m1 1 m2 2
MSETNX m2 3 m3 3
MGET m1 m2 m3
MSETNX m4 1 m4 2
GET m4
MSETNX m5
MSETNX m5 1 m6
INCRBYFLOAT f 10.5
INCRBYFLOAT f 0.1
INCRBYFLOAT f -5.0e3
INCRBYFLOAT f abc
INCRBYFLOAT f " 1"
INCRBYFLOAT a 1
SET f2 3.0e3
INCRBYFLOAT f2 200
INCRBYFLOAT f2 1e400
SET i 10
INCRBYFLOAT i 1.5
INCRBYFLOAT i -11.5
SET fl 1.5 EXAT 4102444800
INCRBYFLOAT fl 1
EXPIRETIME fl
SETBIT b 7 1
SETBIT b 7 1
SETBIT b 7 0
SETBIT b 100 1
GET b
GETBIT b 100
GETBIT b 99
GETBIT b 1000
GETBIT nokey 3
GETBIT b -1
GETBIT b x
SETBIT b 1 2
SETBIT b 1 -1
SETBIT b x 1
SETBIT b -1 1
SETBIT b 4294967296 1
BITCOUNT b
SET bc foobar
BITCOUNT bc
BITCOUNT bc 0 0
BITCOUNT bc 1 1
BITCOUNT bc 1 1 BYTE
BITCOUNT bc 5 30 BIT
BITCOUNT bc -10 -1 BIT
BITCOUNT bc 0 -1
BITCOUNT bc 0
BITCOUNT nokey 0
BITCOUNT bc 0 1 FOO
BITCOUNT bc a 1
BITCOUNT bc -3 -1
BITCOUNT bc -1 -3
BITCOUNT bc 100 200
SET bp "\xff\xf0\x00"
BITPOS bp 0
BITPOS bp 1
SET bp2 "\x00\xff\xf0"
BITPOS bp2 1 0
BITPOS bp2 1 2 -1 BYTE
BITPOS bp2 1 7 15 BIT
BITPOS bp2 0 0 -1
BITPOS bp2 0 8 15 BIT
BITPOS bp2 1 100
BITPOS bp2 2
BITPOS bp2 x
BITPOS bp2 1 0 1 FOO
BITPOS nokey 1
BITPOS nokey 0
SET allone "\xff\xff"
BITPOS allone 0
BITPOS allone 0 0
BITPOS allone 0 0 -1
BITPOS allone 1 5 1
BITPOS allone 0 1 0 BIT
SET empty ""
BITPOS empty 0
BITPOS empty 1
BITCOUNT empty
GETRANGE empty 0 -1
TYPE allone
TYPE nokey
TOUCH allone nokey bp
RENAME allone ren
GET ren
RENAME nokey x
RENAME ren ren
RENAMENX ren ren
RENAMENX nokey ren
SET other 1
RENAMENX ren other
RENAMENX ren fresh
GET fresh
EXISTS ren
SET ttlsrc v EXAT 4102444800
RENAME ttlsrc ttldst
EXPIRETIME ttldst
EXISTS ttlsrc
COPY ttldst cp
EXPIRETIME cp
COPY ttldst cp
COPY ttldst cp REPLACE
COPY ttldst ttldst
COPY ttldst cp DB x
COPY ttldst cp DB
COPY ttldst cp DB 0 REPLACE
COPY ttldst cp FOO
COPY nokey cp
DEL cp
COPY ttldst cp DB 0
GET cp
EXPIRE
SETEX a b
TTL
GETEX
FLUSHALL
MSET k1 1 k2 2 kx 3 other 4
^KEYS k?
^KEYS *
KEYS nomatch*
^KEYS [ko]*
FLUSHALL
RANDOMKEY
KEYS *
SET only one
RANDOMKEY
COMMAND GETKEYS get a
COMMAND GETKEYS GET A
COMMAND GETKEYS get a b
COMMAND GETKEYS mset a 1 b 2
COMMAND GETKEYS mset a 1 b
COMMAND GETKEYS msetnx a 1 b 2
COMMAND GETKEYS del a b c
COMMAND GETKEYS rename a b
COMMAND GETKEYS copy a b
COMMAND GETKEYS set k v EX 10
COMMAND GETKEYS getex k
COMMAND GETKEYS mget a
COMMAND GETKEYS mget
COMMAND GETKEYS ping x
COMMAND GETKEYS dbsize x
COMMAND GETKEYS nosuch a
COMMAND GETKEYS
TIME x
LASTSAVE x
EOF
)

# replies CLI-ARGS...: runs every command of $COMMANDS in one redis-cli
# session, an ECHO marker after each, and prints the replies separated by
# the marker lines.
MARK="--urkv-test-mark--"
replies() {
	local line
	while IFS= read -r line; do
		line=${line#[~^]}
		printf '%s\nECHO %s\n' "$line" "$MARK"
	done <<< "$COMMANDS" | timeout 60 redis-cli --no-raw "$@" 2>&1
}

# Lines starting with "~": digits masked; "^": reply lines compared sorted.
normalize() {
	case "$1" in
	"~"*) tr '0-9' 'N' | tr -s 'N' ;;
	"^"*) sed 's/^ *[0-9]*) //' | sort ;;
	*) cat ;;
	esac
}

if command -v redis-server > /dev/null; then
	start_redis || exit 1
	start_urkv diff --data "$WORK/diff.urkv" --size 64M --cores 2 || exit 1
	replies -p "$PORT" > "$WORK/urkv.replies"
	replies -s "$REDIS_SOCK" > "$WORK/redis.replies"
	mapfile -t CMDS <<< "$COMMANDS"
	split_replies() {
		awk -v mark="\"$MARK\"" -v dir="$WORK" -v who="$2" '
			$0 == mark { n++; next }
			{ print > (dir "/" who "." n) }' "$1"
	}
	split_replies "$WORK/urkv.replies" u
	split_replies "$WORK/redis.replies" r
	compared=0
	for i in "${!CMDS[@]}"; do
		u=$(cat "$WORK/u.$i" 2>/dev/null | normalize "${CMDS[$i]}")
		r=$(cat "$WORK/r.$i" 2>/dev/null | normalize "${CMDS[$i]}")
		expect "urkv vs redis: ${CMDS[$i]}" "$r" "$u"
		compared=$((compared + 1))
	done
	echo "compared $compared commands with redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')"
	# urkv has one database: COPY ... DB n refuses n != 0 (Redis has 16).
	expect "copy to db 1" "ERR DB index is out of range" "$(cli COPY ttldst cp DB 1)"
	stop_urkv || fail "urkv (differential) did not stop cleanly"
else
	skip_part "the differential part needs redis-server (Debian package redis-server)"
fi

# 2. The controllable clock, visibility, and the active pass.
start_urkv clock --data "$WORK/clock.urkv" --size 64M --cores 2 --enable-debug-command || exit 1
expect "debug allowed with the option" OK "$(cli DEBUG CLOCK-ADVANCE 0)"
expect "set e1" OK "$(cli SET e1 v EX 100)"
expect "set e2" OK "$(cli SET e2 v PX 160000)"
expect "set keep" OK "$(cli SET keep v)"
expect "dbsize before" 3 "$(cli DBSIZE)"
expect "advance 100 s" OK "$(cli DEBUG CLOCK-ADVANCE 100000)"
expect "e1 gone for GET" "" "$(cli GET e1)"
expect "e1 gone for EXISTS" 0 "$(cli EXISTS e1)"
expect "e1 gone for TTL" -2 "$(cli TTL e1)"
expect "e2 still there" 1 "$(cli EXISTS e2)"
pttl=$(cli PTTL e2)
[ "$pttl" -gt 0 ] && [ "$pttl" -le 60000 ] || fail "e2's pttl after the advance: want 1..60000, got $pttl"
expect "dbsize after" 2 "$(cli DBSIZE)"
expect "mget" "$(printf '\nv\nv')" "$(cli MGET e1 e2 keep)"
expect "keys" "$(printf 'e2\nkeep')" "$(cli KEYS '*' | sort)"
expect "scan" "$(printf 'e2\nkeep')" "$(cli --scan | sort)"
expect "advance 60 s" OK "$(cli DEBUG CLOCK-ADVANCE 60000)"
expect "e2 gone" 0 "$(cli EXISTS e2)"
expect "dbsize" 1 "$(cli DBSIZE)"
expect "scan after" keep "$(cli --scan)"
expect "set nx over expired" OK "$(cli SET e2 new NX)"
expect "new value has no ttl" -1 "$(cli TTL e2)"
expect "debug bad argument" "ERR value is not an integer or out of range" \
	"$(cli DEBUG CLOCK-ADVANCE x)"
# 3000 keys with a 10 s expiry that nobody reads after the clock passes it.
for i in $(seq 1 3000); do
	printf 'SET act:%05d v EX 10\r\n' "$i"
done | timeout 60 redis-cli -p "$PORT" --pipe > "$WORK/pipe.log" 2>&1 ||
	fail "redis-cli --pipe of 3000 SETs: $(tail -2 "$WORK/pipe.log")"
expect "stored with expiries" "keys=3002,expires=3000" \
	"$(cli INFO keyspace | tr -d '\r' | sed -n 's/^db0:\(keys=[0-9]*,expires=[0-9]*\).*/\1/p')"
expected_before=$(cli INFO stats | tr -d '\r' | sed -n 's/^expired_keys://p')
expect "advance 11 s" OK "$(cli DEBUG CLOCK-ADVANCE 11000)"
for i in $(seq 1 100); do
	stored=$(cli INFO keyspace | tr -d '\r' | sed -n 's/^db0:keys=\([0-9]*\).*/\1/p')
	[ "$stored" = 2 ] && break
	sleep 0.1
done
expect "active expiry freed the unread keys" 2 "$stored"
expired_after=$(cli INFO stats | tr -d '\r' | sed -n 's/^expired_keys://p')
expect "expired_keys counted them" 3000 "$((expired_after - expected_before))"
# One expiry in real time.
# SET and GET go in one connection, so a slow start of redis-cli on a busy
# machine cannot eat the TTL between them.
expect "px 1000, there at once" "OK v" \
	"$(printf 'SET rt v PX 1000\nGET rt\n' | timeout 20 redis-cli -p "$PORT" | tr '\n' ' ' | sed 's/ $//')"
sleep 1.3
expect "gone after 1300 ms" "" "$(cli GET rt)"
stop_urkv || fail "urkv (clock) did not stop cleanly"

# DEBUG without --enable-debug-command is Redis's refusal.
start_urkv nodebug --data "$WORK/nodebug.urkv" --size 64M --cores 1 || exit 1
expect "debug refused" "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server." \
	"$(cli DEBUG CLOCK-ADVANCE 1)"
stop_urkv || fail "urkv (nodebug) did not stop cleanly"

# 3. Expiries survive kill -9 mid-load.  One redis-cli writer alternates
#    SET far:i vi PXAT (2100-01-01 + i ms) and SET gone:i v PXAT (1970 + i);
#    redis-cli runs one command at a time, so its k-th "OK" acknowledges
#    its k-th SET.  urkv is killed once 400 are acknowledged; after the
#    restart every acknowledged far:i has its value and exact PEXPIRETIME,
#    an unacknowledged one is absent or exact, and no gone:i is visible.
FAR=4102444800000
start_urkv crash --data "$WORK/crash.urkv" --size 64M --cores 2 --enable-debug-command || exit 1
for i in $(seq 1 20000); do
	echo "SET far:$i v$i PXAT $((FAR + i))"
	echo "SET gone:$i v PXAT $((1000 + i))"
done > "$WORK/crash.cmds"
stdbuf -oL timeout 60 redis-cli -p "$PORT" < "$WORK/crash.cmds" > "$WORK/crash.out" 2>&1 &
writer=$!
PIDS+=("$writer")
for t in $(seq 1 200); do
	n=$(awk '$0 != "OK" { exit } { n++ } END { print n + 0 }' "$WORK/crash.out")
	[ "$n" -ge 400 ] && break
	sleep 0.05
done
kill -KILL "$URKV_PID"
wait "$URKV_PID" 2>/dev/null
wait "$writer" 2>/dev/null
acked=$(awk '$0 != "OK" { exit } { n++ } END { print n + 0 }' "$WORK/crash.out")
far_acked=$(( (acked + 1) / 2 ))
# With nothing acknowledged every check below holds trivially (a SET ... PXAT
# refused from its first reply on would pass): the writer must have got replies.
[ "$far_acked" -gt 0 ] || fail "kill -9 mid-load: no SET ... PXAT was acknowledged: $(head -3 "$WORK/crash.out")"
# After the acknowledged SETs, only the kill: an error reply would end the count early, unnoticed.
awk -v n="$acked" 'NR > n && !/^(Error: (Server closed the connection|Connection reset by peer|Broken pipe)|Could not connect to Redis at )/ {
	print "reply " NR " after the last acknowledged one: [" $0 "]"; bad++
	if (bad == 3) exit } END { exit bad > 0 }' "$WORK/crash.out" ||
	fail "kill -9 mid-load: a reply that is neither OK nor the kill (see above)"
start_urkv crash2 --data "$WORK/crash.urkv" --cores 2 --enable-debug-command || exit 1
for i in $(seq 1 $((far_acked + 50))); do
	echo "PEXPIRETIME far:$i"
	echo "GET far:$i"
	echo "EXISTS gone:$i"
done | timeout 60 redis-cli -p "$PORT" > "$WORK/crash.check" 2>&1
awk -v n="$far_acked" -v far="$FAR" '
	{ i = int((NR - 1) / 3) + 1; f = (NR - 1) % 3 }
	f == 0 { exp_ok = ($0 == far + i); missing = ($0 == "-2")
		 if (i <= n && !exp_ok) { print "far:" i " expiry [" $0 "]"; bad++ }
		 if (i > n && !exp_ok && !missing) { print "unacknowledged far:" i " expiry [" $0 "]"; bad++ } }
	f == 1 && (i <= n || !missing) && $0 != "v" i { print "far:" i " value [" $0 "]"; bad++ }
	f == 2 && $0 != "0" { print "gone:" i " is visible"; bad++ }
	END { if (NR < 3 * n) { print "read back " NR " lines"; bad++ } exit bad > 0 }
' "$WORK/crash.check" || fail "expiries after kill -9 mid-load (see above)"
echo "kill -9: $acked acknowledged SETs with expiries checked after restart"
live=$(cli DBSIZE)
[ "$live" -ge "$far_acked" ] || fail "dbsize after kill -9: $live, want >= $far_acked"
expect "advance past 2100" OK "$(cli DEBUG CLOCK-ADVANCE $((FAR + 100000 - $(date +%s%3N))))"
expect "all gone after 2100" 0 "$(cli DBSIZE)"
stop_urkv || fail "urkv (crash) did not stop cleanly"

finish
