#!/usr/bin/env bash
# LATENCY HELP, as Redis answers it: an array of simple strings (redis-cli
# prints one per line) describing the subcommands, here only the ones urkv
# has (LATEST, RESET, HISTOGRAM, HELP).  Where redis-server is installed,
# the header line and the lines of HISTOGRAM and HELP are compared with
# what it prints; LATEST and RESET carry urkv's own notes (no latency
# monitor), so only their subcommand lines are compared.
#
# usage: URKV=path/to/urkv test_urkv_latency_help.sh
. "$(dirname "$0")/urkv_lib.sh"
need_redis_tools redis-cli
command -v python3 > /dev/null || { echo "SKIP: python3 is not installed"; exit 77; }
RAW="python3 $(dirname "$0")/urkv_raw.py"

start_urkv lat --data "$WORK/lat.urkv" --size 64M --cores 1 || exit 1
got=$(cli LATENCY HELP)
expect "LATENCY HELP" "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:
LATEST
    Return the latest latency samples for all events.
    urkv has no latency monitor, so it records no events: the reply is always empty.
RESET [<event> ...]
    Reset the command latency histograms and the INFO commandstats counters.
    urkv records no events, so the reply (events reset) is always 0.
HISTOGRAM [COMMAND ...]
    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.
    If no commands are specified then all histograms are replied.
HELP
    Prints this help." "$got"
expect "LATENCY help (any case)" "$got" "$(cli latency help)"
expect "LATENCY HELP as a RESP array of simple strings" "'*12\\r\\n+LATENCY <subcommand>" \
	"$(raw=$($RAW "$PORT" 'LATENCY HELP'); echo "${raw:0:29}")"
help_x=$(cli LATENCY HELP x)
expect "LATENCY HELP with an argument" "ERR wrong number of arguments for 'latency|help' command" \
	"$help_x"
# What the help promises holds.
expect "LATENCY LATEST" "" "$(cli LATENCY LATEST)"
expect "LATENCY RESET" 0 "$(cli LATENCY RESET)"
expect "LATENCY of an unknown subcommand still points at HELP" \
	"ERR unknown subcommand or wrong number of arguments for 'DOCTOR'. Try LATENCY HELP." \
	"$(cli LATENCY DOCTOR)"
stop_urkv || fail "stop"

# urkv answers with Redis 7's texts (Debian 12's redis-server, 7.0); Redis 8
# rewords its help lines ("Print this help."), so only a 7.x is compared.
redis_major=$(redis-server --version 2> /dev/null | sed -n 's/.* v=\([0-9]*\)\..*/\1/p')
if command -v redis-server > /dev/null && [ "$redis_major" != 7 ]; then
	skip_part "LATENCY HELP not compared: urkv follows Redis 7's texts and redis-server $redis_major.x is installed"
elif command -v redis-server > /dev/null; then
	redis-server --port 0 --unixsocket "$WORK/redis.sock" --save '' --appendonly no \
		--dir "$WORK" > "$WORK/redis.log" 2>&1 &
	PIDS+=("$!")
	for i in $(seq 1 100); do [ -S "$WORK/redis.sock" ] && break; sleep 0.05; done
	want=$(timeout 20 redis-cli -s "$WORK/redis.sock" LATENCY HELP)
	[ "$(echo "$want" | wc -l)" -ge 10 ] || fail "redis-server's LATENCY HELP: [$want]"
	expect "header line as redis-server's" "$(echo "$want" | head -1)" "$(echo "$got" | head -1)"
	# Every subcommand line of urkv's (no indent) is one of redis-server's.
	echo "$got" | grep -v '^ ' | tail -n +2 | while read -r line; do
		echo "$want" | grep -qxF -- "$line" || echo "FAIL: subcommand line [$line] is not redis-server's"
	done | grep FAIL && FAILS=$((FAILS + 1))
	# HISTOGRAM's and HELP's blocks are redis-server's, word for word.
	block() {	# block SUB: SUB's line and the indented lines under it
		awk -v sub_="$1" '/^[^ ]/ { on = index($0, sub_) == 1 } on'
	}
	for sub in HISTOGRAM HELP; do
		expect "$sub block as redis-server's" "$(echo "$want" | block "$sub")" \
			"$(echo "$got" | block "$sub")"
	done
	expect "HELP with an argument as redis-server's" \
		"$(timeout 20 redis-cli -s "$WORK/redis.sock" LATENCY HELP x)" "$help_x"
	timeout 20 redis-cli -s "$WORK/redis.sock" SHUTDOWN NOSAVE > /dev/null 2>&1
else
	skip_part "LATENCY HELP not compared: redis-server is not installed (Debian package redis-server)"
fi
finish
