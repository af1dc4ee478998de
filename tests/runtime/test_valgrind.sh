#!/usr/bin/env bash
# A urt program runs to the end under valgrind (src/runtime/wait_poll.h):
# valgrind 3.19 keeps its big lock across io_uring_enter, so before the
# poll-wait mode every multi-threaded urt program hung at its first idle
# wait.  Runs the cross-core stress program (reactors that sleep, posts,
# fibers, I/O) under valgrind's no-op tool with a time limit; a hang fails.
# Skipped (77) when valgrind is not installed.
set -euo pipefail
stress=$1
command -v valgrind > /dev/null || { echo "valgrind not installed: skipped"; exit 77; }
out=$(timeout 150 valgrind --tool=none -q "$stress" 2>&1) || {
	echo "stress_runtime under valgrind failed or hung (exit $?):"
	echo "$out" | tail -5
	exit 1
}
echo "$out" | tail -1
echo "$out" | grep -q '^stress_runtime: hops' || { echo "no summary line: the program did not finish"; exit 1; }
