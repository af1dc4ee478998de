#!/usr/bin/env bash
# urkv survives kill -9: every SET whose reply a client received is there
# after a restart, with its value.
#
# Four redis-cli writers (one connection each, so their SETs share log
# batches) write their own keys; redis-cli handles one command at a time,
# so the k-th "OK" it prints acknowledges its k-th SET.  urkv is killed
# with SIGKILL mid-load, restarted on the same data file (recovery), and
# every acknowledged key is read back.  Round 2 overwrites the keys of
# round 1 with new values and is killed the same way: an acknowledged
# overwrite must show its new value, an unacknowledged one either value.
#
# usage: URKV=path/to/urkv test_urkv_durability.sh
. "$(dirname "$0")/urkv_lib.sh"
need_redis_tools redis-cli

WRITERS=4
KEYS=40000		# Per writer: far more than a writer gets through before the kill.
ACK_MIN=300		# Kill once every writer has at least this many acknowledged SETs...
KILL_AFTER=8		# ...or after this many seconds.
SALT=$RANDOM$RANDOM

# acked FILE: the number of leading OK lines (acknowledged SETs in order).
acked() { awk '$0 != "OK" { exit } { n++ } END { print n + 0 }' "$1"; }

# write_round ROUND: starts the writers, kills urkv mid-load, waits for the writers.
write_round() {
	local round=$1 w i t pids=()
	for w in $(seq 1 $WRITERS); do
		for i in $(seq 1 $KEYS); do
			echo "SET d:$w:$i r$round:$w:$i:$SALT"
		done > "$WORK/cmds.$w"
		stdbuf -oL timeout 60 redis-cli -p "$PORT" < "$WORK/cmds.$w" > "$WORK/out.$round.$w" 2>&1 &
		pids+=($!)
		PIDS+=($!)
	done
	for t in $(seq 1 $((KILL_AFTER * 20))); do
		local low=0
		for w in $(seq 1 $WRITERS); do
			[ "$(acked "$WORK/out.$round.$w")" -lt $ACK_MIN ] && low=1
		done
		[ $low = 0 ] && break
		sleep 0.05
	done
	kill -KILL "$URKV_PID"
	wait "$URKV_PID" 2>/dev/null
	for w in "${pids[@]}"; do
		wait "$w" 2>/dev/null
	done
}

# check_round ROUND: every acknowledged SET of the round is there; others hold a value of some round.
check_round() {
	local round=$1 w n total=0
	for w in $(seq 1 $WRITERS); do
		n=$(acked "$WORK/out.$round.$w")
		total=$((total + n))
		[ "$n" -gt 0 ] || fail "round $round writer $w: no SET was acknowledged"
		# After the acknowledged ones, only the kill: an error reply (or an OK
		# after the connection was lost) would end the count early, unnoticed.
		awk -v n=$n 'NR > n && !/^(Error: (Server closed the connection|Connection reset by peer|Broken pipe)|Could not connect to Redis at )/ {
			print "round " r " writer " w ": reply " NR " after the last acknowledged one: [" $0 "]"; bad++
			if (bad == 3) exit } END { exit bad > 0 }' r=$round w=$w "$WORK/out.$round.$w" ||
			fail "round $round writer $w: a reply that is neither OK nor the kill (see above)"
		# The acknowledged keys and 50 more (in flight or never sent): MGET in chunks of 200.
		awk -v w=$w -v n=$((n + 50)) 'BEGIN {
			for (i = 1; i <= n; i += 200) {
				line = "MGET"
				for (j = i; j < i + 200 && j <= n; j++) line = line " d:" w ":" j
				print line
			}
		}' > "$WORK/get.$w"
		timeout 60 redis-cli -p "$PORT" < "$WORK/get.$w" > "$WORK/got.$round.$w" 2>&1
		awk -v w=$w -v n=$n -v round=$round -v salt=$SALT '
			{ i = NR; want = "r" round ":" w ":" i ":" salt }
			i <= n && $0 != want { print "acknowledged key d:" w ":" i " holds [" $0 "], want [" want "]"; bad++ }
			i > n && $0 != "" && $0 != want && $0 !~ ("^r[0-9]+:" w ":" i ":" salt "$") {
				print "unacknowledged key d:" w ":" i " holds garbage [" $0 "]"; bad++ }
			END { if (NR < n) { print "only " NR " values read back of " n; bad++ } exit bad > 0 }
		' "$WORK/got.$round.$w" || fail "round $round writer $w: acknowledged SETs lost (see above)"
	done
	echo "round $round: $total acknowledged SETs checked after kill -9 and restart"
}

start_urkv dur --data "$WORK/data" --size 256M --cache 32M || exit 1
write_round 1
start_urkv dur2 --data "$WORK/data" --cache 32M || exit 1
check_round 1
write_round 2
start_urkv dur3 --data "$WORK/data" --cache 32M || exit 1
check_round 2
# Keys that round 2 did not reach still hold their acknowledged round 1 value.
for w in $(seq 1 $WRITERS); do
	n1=$(acked "$WORK/out.1.$w")
	n2=$(acked "$WORK/out.2.$w")
	if [ "$n1" -gt $((n2 + 60)) ]; then
		k=$((n1 - 5))
		expect "round 1 value of d:$w:$k" "r1:$w:$k:$SALT" "$(cli GET d:$w:$k)"
	fi
done
info=$(cli INFO urt | tr -d '\r')
echo "$info" | grep -q 'recovered_batches=[1-9]' || fail "no log batch was recovered: $info"
stop_urkv || fail "SIGTERM after recovery: urkv exited non-zero"
finish
