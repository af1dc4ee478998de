#!/usr/bin/env bash
# Online slot moves in a three-node urkv cluster, checked against the
# record of a writer that follows -MOVED/-ASK (urkv_cluster.py write):
#   1. reshard half of node a's slots to node b while the writer and
#      redis-benchmark --cluster write: afterwards every acknowledged key
#      reads (redis-cli -c and the writer's client) as its last acknowledged
#      value, and each node's own SCAN shows every key on exactly one node,
#      the owner of its slot (urkv_cluster.py verify);
#   2. kill -9 of the source (node b) in the middle of a reshard to node c,
#      while the writer writes: after the restart the slot is still open on
#      b (MIGRATING is durable), `urkv-cluster fix` finishes it, a rerun of
#      fix changes nothing, check passes, and the same verification holds.
#
# usage: URKV=path/to/urkv URKV_CLUSTER=path/to/urkv-cluster test_urkv_cluster_move.sh
. "$(dirname "$0")/urkv_lib.sh"
. "$(dirname "$0")/urkv_cluster_lib.sh"
need_redis_tools redis-cli redis-benchmark

for n in a b c; do
	node_start $n || exit 1
done
ida=$(node_id a); idb=$(node_id b); idc=$(node_id c)
tool create "$(addr a)" "$(addr b)" "$(addr c)"
expect_tool create 0 "OK: 3 nodes agree"

# start_writer ROUND: the recording writer, until $WORK/stop.ROUND exists.
start_writer() {
	rm -f "$WORK/stop.$1"
	$PYCL write "${NODE_PORT[a]}" "$WORK/acks.$1" "$WORK/stop.$1" 4 4000 "r$1" > "$WORK/writer.$1.out" 2>&1 &
	WRITER_PID=$!
	PIDS+=("$!")
}
stop_writer() {
	touch "$WORK/stop.$1"
	wait "$WRITER_PID"
	WRITER_RC=$?
	cat "$WORK/writer.$1.out"
}

# check_by_redis_cli ROUND: every key whose last write was acknowledged (and
# not followed by an unacknowledged one) reads as that value via redis-cli -c
# (the keys in slot order: a redirect at each change of node, not at each key).
check_by_redis_cli() {
	awk '$1 == "A" { v[$2] = $3; u[$2] = 0 } $1 == "U" { u[$2] = 1 }
	     END { for (k in v) if (!u[k]) print k, v[k] }' "$WORK/acks.$1" | $PYCL slotsort > "$WORK/want.$1"
	cut -d' ' -f1 "$WORK/want.$1" | sed 's/^/GET /' | ccli c > "$WORK/got.$1"
	paste -d' ' <(cut -d' ' -f1 "$WORK/want.$1") "$WORK/got.$1" > "$WORK/gotkv.$1"
	if ! cmp -s "$WORK/want.$1" "$WORK/gotkv.$1"; then
		fail "round $1: redis-cli -c reads differ from the last acknowledged values:"
		diff "$WORK/want.$1" "$WORK/gotkv.$1" | head -10
	fi
	echo "round $1: $(wc -l < "$WORK/want.$1") keys read back through redis-cli -c"
}

echo "== 1. reshard half of a's slots to b under load"
start_writer 1
timeout 120 redis-benchmark --cluster -p "${NODE_PORT[c]}" -t set -n 30000 -c 8 -r 20000 -d 32 -q \
	> "$WORK/bench1.out" 2>&1 &
BENCH_PID=$!
PIDS+=("$!")
sleep 1
tool reshard "$(addr a)" --from "${ida:0:8}" --to "$idb" --slots 2730 --slots-per-round 256
expect_tool reshard 0 "OK: moved 2730 slots"
cat "$WORK/tool.out" | tail -3
wait "$BENCH_PID"
expect "redis-benchmark during the reshard" 0 "$?"
stop_writer 1
expect "writer round 1" 0 "$WRITER_RC"
ncli a CLUSTER NODES | grep myself | grep -q " connected 2730-5460$" || fail "a's slots: $(ncli a CLUSTER NODES | grep myself)"
ncli b CLUSTER NODES | grep myself | grep -q " connected 0-2729 5461-10921$" || fail "b's slots: $(ncli b CLUSTER NODES | grep myself)"
tool check "$(addr c)"; expect_tool "check after reshard" 0 "every key on its slot's owner"
$PYCL verify "$(ports a b c)" "$WORK/acks.1" || fail "round 1: verify"

echo "== 2. kill -9 of the source in the middle of a reshard"
# Keys in the slots about to move (about 8 per slot), so that a round spends
# most of its time in MIGRATE, where the kill should land.
$PYCL fill "${NODE_PORT[b]}" "$WORK/acks.fill" f 16000 0 1999 || fail "fill of b"
start_writer 2
sleep 0.5
# Small rounds: many topology pushes, and a round open most of the time.
"$URKV_CLUSTER" reshard "$(addr a)" --from "$idb" --to "$idc" --slots 2000 --slots-per-round 32 --batch 10 \
	> "$WORK/reshard2.out" 2>&1 &
RESHARD_PID=$!
PIDS+=("$!")
killed=0
for _ in $(seq 1 1000); do
	# Kill once b has a round of slots open, a moment into its MIGRATEs.
	if ncli b CLUSTER NODES | grep -q -- '->-'; then
		sleep 0.$((RANDOM % 3))
		node_kill9 b
		killed=1
		break
	fi
	sleep 0.02
done
expect "b killed while a slot was MIGRATING" 1 "$killed"
wait "$RESHARD_PID"
rc=$?
expect "reshard fails when its source dies" 1 "$rc"
grep -q "urkv-cluster fix" "$WORK/reshard2.out" || fail "reshard's failure does not point at fix: $(tail -3 "$WORK/reshard2.out")"
sleep 0.5
node_start b || exit 1
expect "b restarts with its slots still MIGRATING (durable)" 1 \
	"$(ncli b CLUSTER NODES | grep -c -- "->-$idc")"
echo "at the kill: $(ncli b CLUSTER NODES | grep myself | grep -o -- '->-' | wc -l) slots MIGRATING on b," \
	"$(ncli c CLUSTER NODES | grep myself | grep -o -- '-<-' | wc -l) IMPORTING on c"
tool check "$(addr a)"; expect_tool "check sees the open slots" 1 "is open: MIGRATING to $idc"
tool fix "$(addr a)"
expect_tool "fix after kill -9" 0 "OK: 3 nodes agree"
tail -4 "$WORK/tool.out"
tool fix "$(addr b)"; expect_tool "fix rerun" 0 "fix: 0 keys moved"
sleep 0.5
stop_writer 2
expect "writer round 2" 0 "$WRITER_RC"
tool check "$(addr c)"; expect_tool "check after fix" 0 "every key on its slot's owner"
cat "$WORK/acks.1" "$WORK/acks.fill" "$WORK/acks.2" > "$WORK/acks.all"
$PYCL verify "$(ports a b c)" "$WORK/acks.all" || fail "round 2: verify"
check_by_redis_cli all

for n in a b c; do
	node_stop $n || fail "SIGTERM of $n: exit status not 0"
done
finish
