#!/bin/bash
# A cluster node's start that fails leaves no cluster file it created
# behind, as a failed start leaves no data file it created (main.c):
#  - port in use, new data file: neither <data> nor <data>.cluster is left;
#  - a data file urkv refuses (an empty file): the new <data>.cluster and a
#    new --cluster-config-file are removed, the refused data file stays;
#  - a cluster file that was there before the failed start stays, byte for
#    byte (its node id is the node's identity).
# Loopback only; one node holds the port the failed starts ask for.
. "$(dirname "$0")/urkv_lib.sh"
. "$(dirname "$0")/urkv_cluster_lib.sh"
need_redis_tools redis-cli

node_start a || exit 1
A_PORT=${NODE_PORT[a]}
[ -s "$WORK/a.data.cluster" ] || fail "the running node has no cluster file"
SMALL=(--size 64M --cache 16M --cores 1 --no-pin --cluster-enabled yes)

echo "== port in use: no new data file, no new cluster file"
out=$(timeout 20 "$URKV" --port "$A_PORT" --data "$WORK/b.data" "${SMALL[@]}" 2>&1)
expect "port in use: exit status" 1 "$?"
case "$out" in
*"cannot listen on 127.0.0.1:$A_PORT: the address is in use"*) ;;
*) fail "port in use: message [$out]" ;;
esac
[ -e "$WORK/b.data" ] && fail "port in use: the new data file was left"
[ -e "$WORK/b.data.cluster" ] && fail "port in use: the new cluster file was left: $(head -2 "$WORK/b.data.cluster")"
echo "$out" | grep -qxF "urkv: removed the cluster file $WORK/b.data.cluster, which this failed start created" ||
	fail "port in use: no line about the removed cluster file: [$out]"
out=$(timeout 20 "$URKV" --port "$A_PORT" --data "$WORK/b.data" "${SMALL[@]}" --quiet 2>&1)
expect "port in use, --quiet: exit status" 1 "$?"
[ -e "$WORK/b.data.cluster" ] && fail "port in use, --quiet: the new cluster file was left"
case "$out" in *"removed"*) fail "--quiet: removal said [$out]" ;; esac

echo "== a refused data file: the new cluster file goes, the data file stays"
: > "$WORK/empty.data"
out=$(timeout 20 "$URKV" --port 0 --data "$WORK/empty.data" "${SMALL[@]}" 2>&1)
expect "empty data file: exit status" 1 "$?"
case "$out" in
*"empty.data is an empty file (0 bytes), not a store"*) ;;
*) fail "empty data file: message [$out]" ;;
esac
[ -e "$WORK/empty.data.cluster" ] && fail "empty data file: the new cluster file was left"
[ -e "$WORK/empty.data" ] || fail "empty data file: removed, but this start did not create it"
out=$(timeout 20 "$URKV" --port 0 --data "$WORK/empty.data" "${SMALL[@]}" --quiet \
	--cluster-config-file "$WORK/given.cluster" 2>&1)
expect "empty data file, --cluster-config-file: exit status" 1 "$?"
[ -e "$WORK/given.cluster" ] && fail "empty data file: the new --cluster-config-file was left"

echo "== a cluster file that was there before stays"
cp "$WORK/a.data.cluster" "$WORK/c.data.cluster"
sum=$(md5sum < "$WORK/c.data.cluster")
out=$(timeout 20 "$URKV" --port "$A_PORT" --data "$WORK/c.data" "${SMALL[@]}" 2>&1)
expect "port in use, old cluster file: exit status" 1 "$?"
[ -e "$WORK/c.data" ] && fail "port in use, old cluster file: the new data file was left"
expect "the old cluster file, unchanged" "$sum" "$(md5sum < "$WORK/c.data.cluster" 2>&1)"
case "$out" in *"removed the cluster file"*) fail "old cluster file: [$out]" ;; esac
out=$(timeout 20 "$URKV" --port 0 --data "$WORK/empty.data" "${SMALL[@]}" --quiet \
	--cluster-config-file "$WORK/c.data.cluster" 2>&1)
expect "empty data file, old --cluster-config-file: exit status" 1 "$?"
expect "the old --cluster-config-file, unchanged" "$sum" "$(md5sum < "$WORK/c.data.cluster" 2>&1)"

echo "== a successful start keeps its new cluster file"
node_start d || exit 1
[ -s "$WORK/d.data.cluster" ] || fail "a started node has no cluster file"
expect "node d's id is its file's" "myid $(ncli d CLUSTER MYID)" "$(grep '^myid' "$WORK/d.data.cluster")"
node_stop d || fail "stop d"
[ -s "$WORK/d.data.cluster" ] || fail "a node that served removed its cluster file at stop"
node_stop a || fail "stop a"
finish
