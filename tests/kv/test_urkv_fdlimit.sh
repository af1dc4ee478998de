#!/usr/bin/env bash
# urkv under an open file limit (ulimit -n) lower than --max-clients
# (docs/kv.md, "Limits of hostile or unlucky clients").
#  - At start urkv lowers max-clients to what the limit fits, says so on
#    stderr with both figures, and CONFIG GET maxclients reports it.
#  - 60 connections at once: each gets +PONG or Redis's "-ERR max number
#    of clients reached"; none is left waiting without an answer.  (Before
#    the fix the connections past the limit hung in the listen queue while
#    both cores re-armed a failing accept in a loop, writing millions of
#    "Too many open files" lines a second.)
#  - No more than a few accept messages on stderr; after the clients
#    leave, the fds and connected_clients are back where they were.
#  - A limit too low for even one client is refused at start, naming it.
#
# usage: URKV=path/to/urkv test_urkv_fdlimit.sh
. "$(dirname "$0")/urkv_lib.sh"
need_redis_tools redis-cli
command -v python3 > /dev/null || { echo "SKIP: python3 is not installed"; exit 77; }

# start_limited NAME NOFILE [urkv options...]: urkv under ulimit -n NOFILE,
# not --quiet (the message is the point); sets PORT and URKV_PID, or returns 1.
start_limited() {
	local name=$1 nofile=$2 i
	shift 2
	rm -f "$WORK/$name.port"
	(ulimit -n "$nofile" && exec "$URKV" --port 0 --port-file "$WORK/$name.port" \
		--data "$WORK/$name.data" --size 64M --cache 16M --no-pin "$@") 2> "$WORK/$name.log" &
	URKV_PID=$!
	PIDS+=("$URKV_PID")
	for i in $(seq 1 200); do
		if [ -s "$WORK/$name.port" ]; then
			PORT=$(cat "$WORK/$name.port")
			return 0
		fi
		kill -0 "$URKV_PID" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

if ! start_limited low 64 --cores 2 --max-clients 1024; then
	cat "$WORK/low.log"
	fail "urkv did not start under ulimit -n 64"
	finish
fi
lowered=$(sed -n 's/^urkv: --max-clients lowered from 1024 to \([0-9]*\): .*/\1/p' "$WORK/low.log")
if [ -z "$lowered" ]; then
	fail "no 'max-clients lowered' message at start under ulimit -n 64: $(cat "$WORK/low.log")"
	lowered=0
fi
expect "CONFIG GET maxclients" "$lowered" "$(cli config get maxclients | sed -n 2p)"
if [ "$lowered" -lt 1 ] || [ "$lowered" -gt 63 ]; then
	fail "max-clients lowered to $lowered under ulimit -n 64"
fi
fds0=$(ls /proc/"$URKV_PID"/fd | wc -l)

# 60 connections held open together; each sends PING and waits up to 5 s.
got=$(timeout 60 python3 - "$PORT" 60 <<'EOF'
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(n)]
time.sleep(0.5)
seen = {}
for s in socks:
    try:
        s.sendall(b"PING\r\n")
        d = s.recv(100)
        key = "pong" if d == b"+PONG\r\n" else \
              "max" if d == b"-ERR max number of clients reached\r\n" else "other:%r" % d
    except OSError as e:
        key = "error:%s" % e
    seen[key] = seen.get(key, 0) + 1
print(" ".join("%s=%d" % kv for kv in sorted(seen.items())))
EOF
)
expect "60 connections under ulimit -n 64" "max=$((60 - lowered)) pong=$lowered" "$got"

# The clients are gone: fds and clients back to where they were (bounded wait).
for i in $(seq 1 100); do
	[ "$(ls /proc/"$URKV_PID"/fd | wc -l)" -le "$fds0" ] && break
	sleep 0.1
done
expect "fds after the clients left" "$fds0" "$(ls /proc/"$URKV_PID"/fd | wc -l)"
expect "connected_clients after" "connected_clients:1" \
	"$(cli info clients | tr -d '\r' | grep connected_clients)"
msgs=$(grep -c "accept on core" "$WORK/low.log")
if [ "$msgs" -gt 4 ]; then
	fail "$msgs accept messages on stderr (a failing accept re-armed in a loop?)"
fi
stop_urkv || fail "urkv under ulimit -n 64 did not stop cleanly"

# Not even one client fits (8 cores hold ~47 fds; the runtime alone needs
# a limit of 64): the start is refused with the reason, its new file removed.
if start_limited tiny 72 --cores 8 --size 256M; then
	fail "urkv started under ulimit -n 72 with 8 cores"
else
	wait "$URKV_PID"
	expect "exit status under ulimit -n 72" 1 "$?"
	grep -q "so no client could connect" "$WORK/tiny.log" ||
		fail "no clear message under ulimit -n 72: $(cat "$WORK/tiny.log")"
	[ -e "$WORK/tiny.data" ] && fail "the refused start left its new data file"
fi

finish
