#!/usr/bin/env bash
# Starting urkv: one server per address, and no data file left behind by a
# start that failed (docs/kv.md, "Starting").
#  - A second urkv on the port of a running one (the first one picked it
#    with --port 0) is refused: exit 1, a message naming the address, no
#    data file made; meanwhile the first serves every key on every new
#    connection (SO_REUSEPORT would let the second join the first's
#    listeners and take part of the connections to a store of its own).
#  - The same for a second one on 0.0.0.0, whose address covers the first's.
#  - A start that fails to listen (an address not on this host, a port in
#    use) or to write --port-file removes the data file it created, and
#    keeps one that was there before.
#  - --data "" is refused at option parsing.
#
# usage: URKV=path/to/urkv test_urkv_listen.sh
. "$(dirname "$0")/urkv_lib.sh"
need_redis_tools redis-cli

SMALL=(--size 64M --cache 16M --cores 2 --no-pin)

# second NAME [urkv options...]: runs a urkv that should be refused, in the
# background with --port-file; sets RC (124: still running after 10 s, then
# killed) and OUT.  While it runs (it should not), check_keys runs, so a
# second server that did start shows as keys missing on the first's port.
second() {
	local name=$1 pid i
	shift
	rm -f "$WORK/$name.port"
	"$URKV" --port-file "$WORK/$name.port" --quiet "$@" > "$WORK/$name.out" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	for i in $(seq 1 200); do
		kill -0 "$pid" 2>/dev/null || break
		[ -s "$WORK/$name.port" ] && break
		sleep 0.05
	done
	check_keys "while $name ran"
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid"
		wait "$pid" 2>/dev/null
		RC=124
	else
		wait "$pid"
		RC=$?
	fi
	OUT=$(cat "$WORK/$name.out")
}

# check_keys WHEN: each of the 40 keys, each GET on a connection of its own, from the first server.
check_keys() {
	local i got missing=0
	for i in $(seq 1 40); do
		got=$(cli GET "key$i")
		[ "$got" = "value$i" ] || missing=$((missing + 1))
	done
	expect "keys served on the first server's port $1 (missing ones)" 0 "$missing"
}

echo "== a second server on the port of a running one"
start_urkv first --data "$WORK/first.data" "${SMALL[@]}" || exit 1
for i in $(seq 1 40); do cli SET "key$i" "value$i" > /dev/null; done
second same --port "$PORT" --data "$WORK/same.data" "${SMALL[@]}"
expect "second urkv on 127.0.0.1:$PORT: exit status" 1 "$RC"
case "$OUT" in
"urkv: cannot listen on 127.0.0.1:$PORT: the address is in use (another server listens on it"*) ;;
*) fail "second urkv on 127.0.0.1:$PORT: message [$OUT]" ;;
esac
[ -e "$WORK/same.data" ] && fail "the refused second urkv left its new data file"
second wild --bind 0.0.0.0 --port "$PORT" --data "$WORK/wild.data" "${SMALL[@]}"
expect "second urkv on 0.0.0.0:$PORT: exit status" 1 "$RC"
case "$OUT" in
"urkv: cannot listen on 0.0.0.0:$PORT: the address is in use"*) ;;
*) fail "second urkv on 0.0.0.0:$PORT: message [$OUT]" ;;
esac
check_keys "after the refused starts"
expect "SET on the first server after them" OK "$(cli SET after yes)"
FIRST_PORT=$PORT FIRST_PID=$URKV_PID

echo "== failed starts leave no new data file"
out=$(timeout 20 "$URKV" --bind 1.2.3.4 --port 0 --data "$WORK/bind.data" "${SMALL[@]}" --quiet 2>&1)
expect "--bind 1.2.3.4: exit status" 1 "$?"
case "$out" in
*"cannot listen on 1.2.3.4:0: Cannot assign requested address"*) ;;
*) fail "--bind 1.2.3.4: message [$out]" ;;
esac
[ -e "$WORK/bind.data" ] && fail "--bind 1.2.3.4 left its new data file"
out=$(timeout 20 "$URKV" --port 0 --port-file "$WORK/no/such/dir/port" --data "$WORK/pf.data" \
	"${SMALL[@]}" --quiet 2>&1)
expect "--port-file in a missing directory: exit status" 1 "$?"
[ -e "$WORK/pf.data" ] && fail "--port-file in a missing directory left its new data file"
# A data file that was there before the failed start stays, with its keys.
start_urkv kept --data "$WORK/kept.data" "${SMALL[@]}" || exit 1
expect "SET on the kept store" OK "$(cli SET kk kept)"
stop_urkv || fail "stop of the kept store"
out=$(timeout 20 "$URKV" --port "$FIRST_PORT" --data "$WORK/kept.data" "${SMALL[@]}" --quiet 2>&1)
expect "existing store, port in use: exit status" 1 "$?"
[ -e "$WORK/kept.data" ] || fail "a failed start removed a data file it did not create"
start_urkv kept2 --data "$WORK/kept.data" "${SMALL[@]}" || exit 1
expect "the kept store's key" kept "$(cli GET kk)"
stop_urkv || fail "stop of the kept store, again"

echo "== --data \"\""
out=$(timeout 20 "$URKV" --port 0 --data "" "${SMALL[@]}" --quiet 2>&1)
expect "--data '': exit status" 2 "$?"
expect "--data '': message" "urkv: bad value '' for data (want a path of a data file or block device, not empty) (--data)" "$out"
URKV_PID=$FIRST_PID
stop_urkv || fail "stop of the first server"
finish
