#!/usr/bin/env bash
# A three-node urkv cluster driven by redis-py's cluster client
# (redis.cluster.RedisCluster, Debian's python3-redis), a client library
# applications use, whose slot map, -MOVED/-ASK handling, pipeline split
# and fan-out are its own code, not urkv's (urkv_redispy.py):
#   1. a tour of the commands an application uses, every result checked;
#   2. a reshard of half of node a's slots to node b while redis-py writes:
#      the writer never gets an error, and afterwards every acknowledged
#      key reads back its last acknowledged value through a new client;
#      the slots moved (CLUSTER NODES), the nodes answered -MOVED or -ASK
#      (INFO errorstats: the client did meet the moving slots), and check
#      finds every key on its slot's owner.
#
# usage: URKV=path/to/urkv URKV_CLUSTER=path/to/urkv-cluster test_urkv_cluster_redispy.sh
. "$(dirname "$0")/urkv_lib.sh"
. "$(dirname "$0")/urkv_cluster_lib.sh"

# Debian's python3-redis is for Debian's python3 (a pyenv or venv python3 first in PATH lacks it).
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
if ! "$PY" -c 'import redis.cluster' 2> /dev/null; then
	echo "SKIP: redis-py with cluster support is not installed for $PY (Debian package python3-redis)"
	exit 77
fi
REDISPY="$PY $(dirname "$0")/urkv_redispy.py"

for n in a b c; do
	node_start $n || exit 1
done
ida=$(node_id a); idb=$(node_id b)
tool create "$(addr a)" "$(addr b)" "$(addr c)"
expect_tool create 0 "OK: 3 nodes agree"

echo "== 1. the commands an application uses"
timeout 60 $REDISPY basic "${NODE_PORT[c]}" 2> "$WORK/basic.err"
rc=$?
expect "redis-py command tour" 0 "$rc"
[ "$rc" = 0 ] || tail -20 "$WORK/basic.err"

echo "== 2. reshard under redis-py writes"
rm -f "$WORK/stop"
timeout 120 $REDISPY write "${NODE_PORT[c]}" "$WORK/acks" "$WORK/stop" > "$WORK/writer.out" 2> "$WORK/writer.err" &
WRITER=$!
PIDS+=("$!")
sleep 1
tool reshard "$(addr a)" --from "${ida:0:8}" --to "$idb" --slots 2730 --slots-per-round 128
expect_tool reshard 0 "OK: moved 2730 slots"
before=$(wc -l < "$WORK/acks")
sleep 1
touch "$WORK/stop"
wait "$WRITER"
expect "redis-py writer during the reshard" 0 "$?"
cat "$WORK/writer.out"
[ -s "$WORK/writer.err" ] && { echo "writer's stderr:"; tail -20 "$WORK/writer.err"; }
[ "$before" -gt 500 ] || fail "only $before acknowledged writes by the end of the reshard"
ncli a CLUSTER NODES | grep myself | grep -q " connected 2730-5460$" || fail "a's slots: $(ncli a CLUSTER NODES | grep myself)"
timeout 60 $REDISPY check "${NODE_PORT[a]}" "$WORK/acks"
expect "every acknowledged write reads back through redis-py" 0 "$?"
# The writer met the moving slots: -ASK or -MOVED replies, counted by kind in INFO errorstats.
redirects=0
for n in a b c; do
	for kind in MOVED ASK TRYAGAIN; do
		c=$(ncli $n INFO errorstats | tr -d '\r' | sed -n "s/^errorstat_$kind:count=//p")
		[ -n "$c" ] && echo "node $n: $kind $c"
		[ "$kind" != TRYAGAIN ] && redirects=$((redirects + ${c:-0}))
	done
done
[ "$redirects" -gt 0 ] || fail "no -MOVED or -ASK reply during the reshard: redis-py never met a moving slot"
tool check "$(addr c)"; expect_tool "check after the reshard" 0 "every key on its slot's owner"
finish
