# Helpers of the urkv end-to-end tests (sourced by bash scripts).
#
# Every process a test starts is recorded and killed on exit; every wait
# is bounded in time; everything listens on loopback only.

set -uo pipefail

URKV=${URKV:?path of the urkv binary}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/urkv-test.XXXXXX")
PIDS=()
FAILS=0
SKIPS=()	# Parts not run on this host (skip_part): the test then reports Skipped, not Passed.

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill -KILL "$pid" 2>/dev/null
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

need_redis_tools() {
	local t
	for t in "$@"; do
		if ! command -v "$t" > /dev/null; then
			echo "SKIP: $t is not installed (Debian package redis-tools)"
			exit 77
		fi
	done
}

fail() {
	echo "FAIL: $*"
	FAILS=$((FAILS + 1))
}

# skip_part WHY: a part of the test cannot run here; the rest runs, and
# finish exits 77 (ctest: Skipped) unless something failed.
skip_part() {
	echo "SKIP (part): $*"
	SKIPS+=("$*")
}

# expect NAME WANT GOT
expect() {
	if [ "$2" != "$3" ]; then
		fail "$1: want [$2], got [$3]"
	fi
}

# start_urkv NAME [urkv options...]: starts urkv on a free loopback port; sets PORT and URKV_PID.
start_urkv() {
	local name=$1 i
	shift
	rm -f "$WORK/$name.port"
	"$URKV" --port 0 --port-file "$WORK/$name.port" --quiet "$@" 2> "$WORK/$name.log" &
	URKV_PID=$!
	PIDS+=("$URKV_PID")
	for i in $(seq 1 200); do
		if [ -s "$WORK/$name.port" ]; then
			PORT=$(cat "$WORK/$name.port")
			return 0
		fi
		if ! kill -0 "$URKV_PID" 2>/dev/null; then
			echo "urkv $name exited at start:"
			cat "$WORK/$name.log"
			return 1
		fi
		sleep 0.05
	done
	echo "urkv $name did not start within 10 s"
	return 1
}

# stop_urkv: SIGTERM, then the exit status must be 0 within 20 s.
stop_urkv() {
	local i
	kill -TERM "$URKV_PID"
	for i in $(seq 1 400); do
		if ! kill -0 "$URKV_PID" 2>/dev/null; then
			wait "$URKV_PID"
			return $?
		fi
		sleep 0.05
	done
	echo "urkv did not stop within 20 s of SIGTERM"
	kill -KILL "$URKV_PID"
	return 1
}

# cli ARGS...: one redis-cli command against the current server, bounded in time.
cli() {
	timeout 20 redis-cli -p "$PORT" "$@" 2>&1
}

finish() {
	if [ "$FAILS" -ne 0 ]; then
		echo "$FAILS failures"
		exit 1
	fi
	if [ "${#SKIPS[@]}" -ne 0 ]; then
		echo "the checks that ran passed, but ${#SKIPS[@]} part(s) were skipped:"
		printf '  %s\n' "${SKIPS[@]}"
		exit 77
	fi
	echo "all checks passed"
	exit 0
}
