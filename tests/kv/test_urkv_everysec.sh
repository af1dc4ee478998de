#!/bin/bash
# appendfsync everysec under kill -9 (docs/kv.md, durability contract): a
# writer logs when each SET was acknowledged; urkv is killed mid-load twice;
# after each restart every write acknowledged more than about one second
# before the kill must be there with its value.  Loopback only.
. "$(dirname "$0")/urkv_lib.sh"
need_redis_tools redis-cli
command -v python3 > /dev/null || { echo "SKIP: python3 is not installed"; exit 77; }
ACKLOG="python3 $(dirname "$0")/urkv_acklog.py"
BOUND=${BOUND:-1.2}	# Seconds: "at most about one second" (1 s plus a log flush and timer slack).

for round in 1 2; do
	echo "== round $round"
	start_urkv ev$round --data "$WORK/ev.urkv" --size 256M --cores 2 --appendfsync everysec || exit 1
	expect "policy" "everysec" "$(cli CONFIG GET appendfsync | tail -1)"
	$ACKLOG write "$PORT" "$WORK/acks$round" "r$round" > "$WORK/writer$round.out" 2>&1 &
	WPID=$!
	PIDS+=("$WPID")
	# The once-a-second durable write of each shard a core writes to runs while the
	# load goes on: at least 4 of them (2 shards x 2 s) before the kill.  Polled, not
	# slept on, so a slow start of the writer on a loaded machine does not fail it.
	pts=0
	for _ in $(seq 1 60); do
		sleep 0.5
		pts=$(cli INFO persistence | tr -d '\r' | sed -n 's/^urkv_everysec_durable_writes://p')
		[ "${pts:-0}" -ge 4 ] && break
	done
	[ "${pts:-0}" -ge 4 ] || fail "round $round: everysec durable writes in 30 s: [$pts]"
	sleep 1
	kill -KILL "$URKV_PID"
	KILLED=$(date +%s.%N)
	wait "$URKV_PID" 2>/dev/null
	# The writer ends cleanly when the server goes away; it exits 1 on an
	# error reply, which the count of acknowledged writes alone would miss.
	wait "$WPID" || fail "round $round: the writer failed: $(cat "$WORK/writer$round.out")"
	cat "$WORK/writer$round.out"
	[ "$(wc -l < "$WORK/acks$round")" -gt 1000 ] || fail "round $round: too few writes acknowledged"
	start_urkv ev${round}b --data "$WORK/ev.urkv" --cores 2 || exit 1
	$ACKLOG check "$PORT" "$WORK/acks$round" "r$round" "$KILLED" "$BOUND" || fail "round $round: bound broken"
	stop_urkv || fail "round $round: stop"
done
finish
