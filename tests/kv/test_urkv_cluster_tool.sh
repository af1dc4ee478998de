#!/usr/bin/env bash
# A three-node urkv cluster made by urkv-cluster create, used by real
# cluster clients:
#   - the tool's usage and refusals (exit 2 / 1, messages naming the node);
#   - create, info, check;
#   - redis-cli -c sets and gets one key in every one of the 16384 slots,
#     following -MOVED, and each node holds exactly the keys of its slots;
#   - multi-key commands with a hash tag work, without one they get -CROSSSLOT;
#   - redis-benchmark --cluster completes without an error;
#   - malformed topology pushes are refused with a clear error and the old
#     topology stays in force (version, map, routing);
#   - check finds a node left behind and an open slot, fix repairs both;
#   - the topology and node id survive a restart;
#   - with a password: create without -a is refused with a hint, with -a the
#     tool creates, reshards (MIGRATE ... AUTH) and checks.
#
# usage: URKV=path/to/urkv URKV_CLUSTER=path/to/urkv-cluster test_urkv_cluster_tool.sh
. "$(dirname "$0")/urkv_lib.sh"
. "$(dirname "$0")/urkv_cluster_lib.sh"
need_redis_tools redis-cli redis-benchmark

# Durability is urkv_cluster_move's subject: here SETs reply once applied, so that
# 16384 of them one at a time through redis-cli take seconds, not a minute.
FAST="--appendfsync everysec"
for n in a b c; do
	node_start $n $FAST || exit 1
done
ida=$(node_id a); idb=$(node_id b); idc=$(node_id c)
echo "$ida" | grep -qE '^[0-9a-f]{40}$' || { echo "CLUSTER MYID of a: [$ida]"; exit 1; }

echo "== tool usage and refusals"
tool; expect_tool "no command" 2 usage
tool frob "$(addr a)"; expect_tool "unknown command" 2 "unknown command 'frob'"
tool check; expect_tool "check without node" 2 "exactly one host:port"
tool check nosuchhost.invalid:1; expect_tool "bad host" 2 "not host:port"
tool reshard "$(addr a)" --from x; expect_tool "reshard without --to" 2 "--from ID --to ID --slots N"
tool info "$(addr a)" --slots 3; expect_tool "--slots outside reshard" 2 "belong to reshard"
tool check "$(addr a)"; expect_tool "check before create" 1 "run urkv-cluster create first"
tool create "$(addr a)" "$(addr a)"; expect_tool "create same node twice" 2 "is the same node as"
# An unspecified address would be what MOVED sends clients to.
for any in "0.0.0.0:${NODE_PORT[a]}" "[::]:${NODE_PORT[a]}"; do
	tool create "$any" "$(addr b)"
	expect_tool "create $any" 2 "is no address a client can connect to (MOVED and ASK replies send clients to the addresses given to create): give the node's address on the network, or 127.0.0.1 when every client runs on this host"
done
expect "no topology pushed by a create with 0.0.0.0" 0 "$(ncli a CLUSTERX VERSION)"
# A node that accepts but never answers: the tool says it timed out, and where.
# (The kernel completes the handshakes of its backlog; it never reads.)
python3 -c 'import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True)
time.sleep(120)' > "$WORK/mute.port" &
PIDS+=("$!")
for _ in $(seq 1 200); do [ -s "$WORK/mute.port" ] && break; sleep 0.05; done
mute=$(cat "$WORK/mute.port")
tool --timeout 500 check "127.0.0.1:$mute"
expect_tool "a node that does not answer" 1 \
	"urkv-cluster: node 127.0.0.1:$mute: CLUSTER MYID: no reply within 500 ms (timed out; --timeout MS sets the limit)"
# Node d first runs without cluster support: the tool names it and says why.
NODE_PORT[d]=$(free_port)
"$URKV" --port "${NODE_PORT[d]}" --data "$WORK/d.data" --size 128M --cache 16M --cores 1 --no-pin --quiet \
	2>> "$WORK/d.log" &
NODE_PID[d]=$!
PIDS+=("$!")
for _ in $(seq 1 600); do [ "$(ncli d PING)" = PONG ] && break; sleep 0.05; done
expect "CLUSTER on a node without cluster support" "ERR This instance has cluster support disabled" \
	"$(ncli d CLUSTER INFO)"
tool create "$(addr a)" "$(addr d)"
expect_tool "create with a non-cluster node" 1 \
	"node $(addr d): CLUSTER MYID: ERR This instance has cluster support disabled (start it with --cluster-enabled yes)"
# Then with its one key and cluster support: create refuses a node that holds keys.
expect "SET on d" OK "$(ncli d SET stray x)"
node_stop d || fail "SIGTERM of d"
node_start d $FAST || exit 1
tool create "$(addr a)" "$(addr b)" "$(addr d)"
expect_tool "create with a non-empty node" 1 "node $(addr d): holds 1 keys"
expect "no topology pushed by a refused create" 0 "$(ncli a CLUSTERX VERSION)"
expect "a key without a topology: CLUSTERDOWN" "CLUSTERDOWN Hash slot not served" "$(ncli a GET x)"
node_stop d || fail "SIGTERM of d"

echo "== create, info, check"
tool create "$(addr a)" "$(addr b)" "$(addr c)"
expect_tool create 0 "OK: 3 nodes agree on topology version 1"
for n in a b c; do
	expect "version on $n" 1 "$(ncli $n CLUSTERX VERSION)"
	ncli $n CLUSTER INFO | tr -d '\r' | grep -q '^cluster_state:ok' || fail "cluster_state of $n is not ok"
done
nodes=$(ncli a CLUSTER NODES)
echo "$nodes" | grep -q "^$ida 127.0.0.1:${NODE_PORT[a]}@[0-9]* myself,master - 0 0 [0-9]* connected 0-5460" ||
	fail "CLUSTER NODES line of a: $nodes"
echo "$nodes" | grep -q "^$idb 127.0.0.1:${NODE_PORT[b]}@[0-9]* master - 0 0 [0-9]* connected 5461-10921" ||
	fail "CLUSTER NODES line of b: $nodes"
echo "$nodes" | grep -q "^$idc 127.0.0.1:${NODE_PORT[c]}@[0-9]* master - 0 0 [0-9]* connected 10922-16383" ||
	fail "CLUSTER NODES line of c: $nodes"
tool info "$(addr b)"
expect_tool info 0 "topology version 1, 3 nodes, 16384 of 16384 slots covered"
grep -q "^$idc 127.0.0.1:${NODE_PORT[c]} version 1 slots 5462 keys 0" "$WORK/tool.out" ||
	fail "info line of c: $(cat "$WORK/tool.out")"
tool check "$(addr c)"; expect_tool check 0 "OK: 3 nodes agree"
# Rerunning create pushes the same split at a newer version.
tool create "$(addr a)" "$(addr b)" "$(addr c)"; expect_tool "create again" 0 "version 2"

echo "== redis-cli -c in every slot"
$PYCL slotkeys 'k' > "$WORK/slotkeys"
# A random order first: most commands land on the wrong node and follow -MOVED.
shuf -n 300 --random-source=<(yes) "$WORK/slotkeys" | awk '{ print "SET", $1, "v" $2 }' > "$WORK/set-rand"
ccli a < "$WORK/set-rand" | grep -v '^-> Redirected' | sort | uniq -c | awk '{ print $1, $2 }' > "$WORK/set-rand.out"
expect "SET of 300 keys in random slots" "300 OK" "$(cat "$WORK/set-rand.out")"
awk '{ print "SET", $1, "v" $2 }' "$WORK/slotkeys" | ccli b | grep -v '^-> Redirected' | sort | uniq -c | awk '{ print $1, $2 }' > "$WORK/set-all.out"
expect "SET in all 16384 slots" "16384 OK" "$(cat "$WORK/set-all.out")"
awk '{ print "GET", $1 }' "$WORK/slotkeys" | ccli c | grep -v '^-> Redirected' > "$WORK/get-all.out"
awk '{ print "v" $2 }' "$WORK/slotkeys" > "$WORK/get-all.want"
cmp -s "$WORK/get-all.out" "$WORK/get-all.want" || fail "GET in all slots: $(diff "$WORK/get-all.want" "$WORK/get-all.out" | head -5)"
expect "DBSIZE a (its 5461 slots)" 5461 "$(ncli a DBSIZE)"
expect "DBSIZE b" 5461 "$(ncli b DBSIZE)"
expect "DBSIZE c" 5462 "$(ncli c DBSIZE)"
key0=$(sed -n 1p "$WORK/slotkeys" | cut -d' ' -f1)
expect "MOVED reply" "MOVED 0 127.0.0.1:${NODE_PORT[a]}" "$(ncli c GET "$key0")"
expect "KEYSLOT" 0 "$(ncli c CLUSTER KEYSLOT "$key0")"
expect "COUNTKEYSINSLOT" 1 "$(ncli a CLUSTER COUNTKEYSINSLOT 0)"
expect "GETKEYSINSLOT" "$key0" "$(ncli a CLUSTER GETKEYSINSLOT 0 10)"

echo "== multi-key commands"
expect "MSET with a tag" OK "$(ccli a MSET '{u1}a' 1 '{u1}b' 2)"
expect "MGET with a tag" "$(printf '1\n2')" "$(ccli b MGET '{u1}a' '{u1}b')"
expect "EXISTS with a tag" 2 "$(ccli c EXISTS '{u1}a' '{u1}b' '{u1}c')"
expect "DEL with a tag" 2 "$(ccli a DEL '{u1}a' '{u1}b')"
cross="CROSSSLOT Keys in request don't hash to the same slot"
expect "MSET across slots" "$cross" "$(ccli a MSET a 1 b 2)"
expect "MGET across slots" "$cross" "$(ccli a MGET a b)"
expect "DEL across slots" "$cross" "$(ccli a DEL a b)"
expect "CROSSSLOT wrote nothing" 0 "$(ccli a EXISTS a)"

echo "== redis-benchmark --cluster"
timeout 120 redis-benchmark --cluster -p "${NODE_PORT[a]}" -t set,get -n 20000 -c 16 -r 10000 -d 16 \
	> "$WORK/bench.out" 2>&1
rc=$?
expect "redis-benchmark exit status" 0 "$rc"
grep -q "Cluster has 3 master nodes" "$WORK/bench.out" || fail "redis-benchmark did not see 3 masters: $(head -5 "$WORK/bench.out")"
tr '\r' '\n' < "$WORK/bench.out" | grep -E "^ *[0-9.]+ requests per second|throughput summary" > /dev/null ||
	fail "redis-benchmark printed no throughput"
if grep -qiE "error|configuration changed" "$WORK/bench.out"; then
	fail "redis-benchmark reported errors: $(grep -iE 'error|configuration changed' "$WORK/bench.out" | head -3)"
fi
for n in a b c; do
	[ "$(ncli $n DBSIZE)" -gt 5461 ] || fail "redis-benchmark keys did not reach node $n"
done
tool check "$(addr a)"; expect_tool "check after the benchmark" 0 "every key on its slot's owner"

echo "== malformed topology pushes are refused; the old one stays in force"
v=$(ncli a CLUSTERX VERSION)
before=$(ncli a CLUSTER NODES)
line_a="$ida 127.0.0.1 ${NODE_PORT[a]} master -"
line_b="$idb 127.0.0.1 ${NODE_PORT[b]} master -"
line_c="$idc 127.0.0.1 ${NODE_PORT[c]} master -"
good="$line_a 0-5460"$'\n'"$line_b 5461-10921"$'\n'"$line_c 10922-16383"
# push WHAT TEXT VERSION GREP: refused, with GREP in the error.
push_refused() {
	local out
	out=$(ncli a CLUSTERX SETNODES "$2" "$3")
	case "$out" in
	ERR*) echo "$out" | grep -qi -- "$4" || fail "$1: the error does not say '$4': [$out]" ;;
	*) fail "$1: accepted: [$out]" ;;
	esac
	echo "$out" | grep -q '()' && fail "$1: the error has an empty (): [$out]"
}
push_refused "overlapping ranges" "$line_a 0-5460"$'\n'"$line_b 5000-10921"$'\n'"$line_c 10922-16383" $((v + 1)) overlap
push_refused "duplicate node" "$line_a 0-5460"$'\n'"$line_a 5461-10921"$'\n'"$line_c 10922-16383" $((v + 1)) duplicate
push_refused "bad node id" "xyz 127.0.0.1 ${NODE_PORT[a]} master - 0-16383" $((v + 1)) "id"
push_refused "slot out of range" "$line_a 0-16384" $((v + 1)) "16384"
push_refused "A > B" "$line_a 10-5" $((v + 1)) "10-5"
push_refused "bad port" "$ida 127.0.0.1 70000 master - 0-16383" $((v + 1)) "port"
push_refused "older version" "$good" $((v - 1)) "topology version $((v - 1)) is older than the current version $v"
push_refused "same version, other content" "$line_a 0-16383"$'\n'"$line_b"$'\n'"$line_c" "$v" "version"
push_refused "version 0" "$good" 0 "version"
expect "idempotent push of the same version" OK "$(ncli a CLUSTERX SETNODES "$good" "$v")"
expect "SETSLOT to an unknown node" 1 "$(ncli a CLUSTER SETSLOT 1 MIGRATING 0123456789012345678901234567890123456789 | grep -c '^ERR')"
expect "version kept" "$v" "$(ncli a CLUSTERX VERSION)"
expect "map kept" "$before" "$(ncli a CLUSTER NODES)"
expect "routing kept" "v0" "$(ccli c GET "$key0")"
tool check "$(addr b)"; expect_tool "check after refused pushes" 0 "OK"

echo "== check finds problems, fix repairs them"
# Node c left behind: a and b get version v+1 (same map) directly.
expect "push v+1 to a" OK "$(ncli a CLUSTERX SETNODES "$good" $((v + 1)))"
expect "push v+1 to b" OK "$(ncli b CLUSTERX SETNODES "$good" $((v + 1)))"
tool check "$(addr a)"; expect_tool "check: node behind" 1 "node $(addr c): has topology version $v, another node has $((v + 1))"
# An open slot: 100 IMPORTING on b, MIGRATING on a, its key still on a.
slot100=$(awk '$2 == 100 { print $1 }' "$WORK/slotkeys")
expect "IMPORTING" OK "$(ncli b CLUSTER SETSLOT 100 IMPORTING "$ida")"
expect "MIGRATING" OK "$(ncli a CLUSTER SETSLOT 100 MIGRATING "$idb")"
ncli a CLUSTER NODES | grep -q "\[100->-$idb\]" || fail "CLUSTER NODES lacks [100->-id]: $(ncli a CLUSTER NODES)"
ncli b CLUSTER NODES | grep -q "\[100-<-$ida\]" || fail "CLUSTER NODES lacks [100-<-id]: $(ncli b CLUSTER NODES)"
expect "key of a migrating slot still served by its source" "v100" "$(ncli a GET "$slot100")"
expect "new key of a migrating slot: ASK" "ASK 100 127.0.0.1:${NODE_PORT[b]}" \
	"$(ncli a SET "$(awk '$2 == 100 { print $1 }' "$WORK/slotkeys" | sed 's/^k/z/')" x)"
tool check "$(addr a)"; expect_tool "check: open slot" 1 "slot 100 is open: MIGRATING to $idb"
tool reshard "$(addr a)" --from "$ida" --to "$idc" --slots 1; expect_tool "reshard refuses an open cluster" 1 "run \`urkv-cluster fix"
tool fix "$(addr c)"
expect_tool fix 0 "OK: 3 nodes agree on topology version $((v + 2))"
expect "slot 100 now on b" "v100" "$(ncli b GET "$slot100")"
expect "slot 100 gone from a" 0 "$(ncli a CLUSTER COUNTKEYSINSLOT 100)"
expect "MOVED to b" "MOVED 100 127.0.0.1:${NODE_PORT[b]}" "$(ncli a GET "$slot100")"
tool fix "$(addr a)"; expect_tool "fix again: nothing to do" 0 "fix: 0 keys moved"

echo "== restart keeps id and topology"
v=$(ncli a CLUSTERX VERSION)
node_stop b || fail "SIGTERM of b"
tool check "$(addr a)"; expect_tool "check with b down" 1 "node $(addr b): cannot connect"
node_start b $FAST || exit 1
expect "id after restart" "$idb" "$(node_id b)"
expect "version after restart" "$v" "$(ncli b CLUSTERX VERSION)"
expect "key after restart" "v100" "$(ccli a GET "$slot100")"
tool check "$(addr b)"; expect_tool "check after restart" 0 "OK"

echo "== nodes with a password: -a"
for n in e f; do
	node_start $n $FAST --requirepass s3cret || exit 1
done
tool create "$(addr e)" "$(addr f)"
expect_tool "create without -a" 1 "(give the password with -a)"
tool -a s3cret create "$(addr e)" "$(addr f)"; expect_tool "create -a" 0 "OK: 2 nodes agree"
for i in $(seq 1 200); do echo "SET p:$i v$i"; done |
	timeout 60 redis-cli -c -a s3cret --no-auth-warning -p "${NODE_PORT[e]}" | grep -v '^-> Redirected' |
	sort | uniq -c | awk '{ print $1, $2 }' > "$WORK/pw-set.out"
expect "SET through redis-cli -c -a" "200 OK" "$(cat "$WORK/pw-set.out")"
ide=$(ncli e -a s3cret --no-auth-warning CLUSTER MYID); idf=$(ncli f -a s3cret --no-auth-warning CLUSTER MYID)
tool -a s3cret reshard "$(addr f)" --from "$ide" --to "$idf" --slots 4096
expect_tool "reshard -a (MIGRATE ... AUTH)" 0 "OK: moved 4096 slots"
tool -a s3cret check "$(addr e)"; expect_tool "check -a" 0 "every key on its slot's owner"
expect "keys after the reshard" "v1 v200" \
	"$(timeout 20 redis-cli -c -a s3cret --no-auth-warning -p "${NODE_PORT[e]}" MGET p:1 | tr -d '\n') $(timeout 20 redis-cli -c -a s3cret --no-auth-warning -p "${NODE_PORT[e]}" GET p:200 | grep -v '^->')"

for n in a b c e f; do
	node_stop $n || fail "SIGTERM of $n: exit status not 0"
done
finish
