# Helpers of the urkv cluster tests (sourced after urkv_lib.sh).
#
# Nodes listen on fixed loopback ports (a restarted node must come back at
# the address the topology names), picked free at the start.

URKV_CLUSTER=${URKV_CLUSTER:?path of the urkv-cluster binary}
PYCL="python3 $(dirname "${BASH_SOURCE[0]}")/urkv_cluster.py"
declare -A NODE_PORT NODE_PID


# A free loopback port (not listened on, not handed out before in this test).
USED_PORTS=" "
free_port() {
	local p
	for _ in $(seq 1 200); do
		# Below the ephemeral range (32768 and up), so no outgoing connection holds it.
		p=$((20000 + RANDOM % 12000))
		case "$USED_PORTS" in *" $p "*) continue ;; esac
		if ! ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then
			USED_PORTS="$USED_PORTS$p "
			echo "$p"
			return 0
		fi
	done
	echo "no free port" >&2
	return 1
}

# node_start NAME [urkv options...]: starts (or restarts) node NAME on its
# port with its data file; waits until it answers PING.
node_start() {
	local name=$1 i
	shift
	[ -n "${NODE_PORT[$name]:-}" ] || NODE_PORT[$name]=$(free_port) || return 1
	rm -f "$WORK/$name.port"
	"$URKV" --port "${NODE_PORT[$name]}" --port-file "$WORK/$name.port" --data "$WORK/$name.data" \
		--size 128M --cache 16M --cores 1 --no-pin --quiet --cluster-enabled yes "$@" \
		2>> "$WORK/$name.log" &
	NODE_PID[$name]=$!
	PIDS+=("$!")
	for i in $(seq 1 600); do
		if [ -s "$WORK/$name.port" ]; then
			return 0
		fi
		if ! kill -0 "${NODE_PID[$name]}" 2>/dev/null; then
			echo "node $name exited at start:"
			cat "$WORK/$name.log"
			return 1
		fi
		sleep 0.05
	done
	echo "node $name did not start within 30 s"
	return 1
}

# node_stop NAME: SIGTERM, exit status 0 within 20 s.
node_stop() {
	local pid=${NODE_PID[$1]} i
	kill -TERM "$pid"
	for i in $(seq 1 400); do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			return $?
		fi
		sleep 0.05
	done
	echo "node $1 did not stop within 20 s of SIGTERM"
	kill -KILL "$pid"
	return 1
}

node_kill9() {
	kill -KILL "${NODE_PID[$1]}"
	wait "${NODE_PID[$1]}" 2>/dev/null
}

# ncli NAME ARGS...: redis-cli against one node, no redirects followed.
ncli() {
	local name=$1
	shift
	timeout 20 redis-cli -p "${NODE_PORT[$name]}" "$@" 2>&1
}

# ccli NAME ARGS...: redis-cli -c (follows -MOVED and -ASK) entering at node NAME;
# its "-> Redirected" notes are left out.
ccli() {
	local name=$1
	shift
	timeout 60 redis-cli -c -p "${NODE_PORT[$name]}" "$@" 2>&1 | grep -v '^-> Redirected'
}

node_id() { ncli "$1" CLUSTER MYID; }
addr() { echo "127.0.0.1:${NODE_PORT[$1]}"; }
ports() { local n out=""; for n in "$@"; do out="$out${out:+,}${NODE_PORT[$n]}"; done; echo "$out"; }

# tool ARGS...: urkv-cluster, its output in $WORK/tool.out, its status in TOOL_RC.
tool() {
	timeout 120 "$URKV_CLUSTER" "$@" > "$WORK/tool.out" 2>&1
	TOOL_RC=$?
}

# expect_tool NAME WANT_RC [GREP]: the last tool run's status, and a line of its output.
expect_tool() {
	if [ "$TOOL_RC" != "$2" ]; then
		fail "$1: urkv-cluster exited $TOOL_RC, want $2; output:"
		sed 's/^/    /' "$WORK/tool.out" | head -30
	elif [ -n "${3:-}" ] && ! grep -q -- "$3" "$WORK/tool.out"; then
		fail "$1: urkv-cluster output lacks '$3':"
		sed 's/^/    /' "$WORK/tool.out" | head -30
	fi
}
