#!/bin/bash
# urkv as a Redis Cluster node (docs/kv.md, "Cluster"): cluster disabled,
# node id and cluster file, CLUSTERX SETNODES validation (malformed pushes
# refused, the old topology kept), slot hashing, the exact -MOVED / -ASK /
# -CROSSSLOT / -CLUSTERDOWN / -TRYAGAIN texts, redis-cli -c following
# MOVED and ASK between two nodes, CLUSTER SLOTS/SHARDS/NODES/INFO,
# DUMP/RESTORE, MIGRATE with TTLs, online migration under a writer,
# restart and a damaged cluster file.  Loopback only; two nodes.
. "$(dirname "$0")/urkv_lib.sh"
need_redis_tools redis-cli
command -v python3 > /dev/null || { echo "SKIP: python3 is not installed"; exit 77; }
RAW="python3 $(dirname "$0")/urkv_raw.py"
MIG="python3 $(dirname "$0")/urkv_cluster_mig.py"
DISABLED="'-ERR This instance has cluster support disabled\\r\\n'"

# node NAME: the current server's port and pid under NAME (start_urkv sets PORT, URKV_PID).
save_node() { eval "PORT_$1=$PORT PID_$1=$URKV_PID"; }
use_node() { eval "PORT=\$PORT_$1 URKV_PID=\$PID_$1"; }
clip() { timeout 20 redis-cli -p "$1" "${@:2}" 2>&1; }

echo "== cluster disabled"
start_urkv plain --data "$WORK/plain.urkv" --size 64M --cores 2 || exit 1
expect "CLUSTER INFO" "$DISABLED" "$($RAW "$PORT" 'CLUSTER INFO')"
expect "CLUSTER NODES" "$DISABLED" "$($RAW "$PORT" 'CLUSTER NODES')"
expect "CLUSTERX VERSION" "$DISABLED" "$($RAW "$PORT" 'CLUSTERX VERSION')"
expect "ASKING" "$DISABLED" "$($RAW "$PORT" 'ASKING')"
expect "READONLY" "$DISABLED" "$($RAW "$PORT" 'READONLY')"
expect "INFO cluster" "cluster_enabled:0" "$(cli INFO cluster | tr -d '\r' | grep cluster_enabled)"
expect "no cluster file" "" "$(ls "$WORK" | grep 'plain.urkv.cluster')"
# DUMP / RESTORE work without the cluster, as in Redis.
cli SET dk hello > /dev/null
cli PEXPIRE dk 100000 > /dev/null
got=$(PYTHONPATH="$(dirname "$0")" python3 - "$PORT" <<'PY'
import sys
from resp_wire import Conn
q = Conn(int(sys.argv[1])).value
p = q(b"DUMP", b"dk")
out = [p[:1] == b"\x00" and p[1:6] == b"hello" and len(p) == 12]
out.append(q(b"RESTORE", b"dk", b"0", p))
out.append(q(b"RESTORE", b"dk2", b"0", p))
out.append(q(b"GET", b"dk2"))
out.append(q(b"RESTORE", b"dk2", b"50000", p, b"REPLACE"))
out.append(0 < int(q(b"PTTL", b"dk2")[1:]) <= 50000)
bad = bytearray(p); bad[2] ^= 1
out.append(q(b"RESTORE", b"dk3", b"0", bytes(bad)))
out.append(q(b"RESTORE", b"dk3", b"0", p[:-1]))
out.append(q(b"RESTORE", b"dk3", b"-1", p))
out.append(q(b"DUMP", b"nokey"))
print(" | ".join(x.decode() if isinstance(x, bytes) else str(x) for x in out))
PY
)
expect "DUMP/RESTORE" "True | -BUSYKEY Target key name already exists. | +OK | hello | +OK | True | -ERR DUMP payload version or checksum are wrong | -ERR DUMP payload version or checksum are wrong | -ERR Invalid TTL value, must be >= 0 | \$-1" "$got"
# RESTORE's bad TTLs and options, Redis's replies, nothing stored: a
# relative TTL whose sum with now passes 2^63 - 1 was stored and read back
# as PEXPIRETIME 0; FREQ 256 and IDLETIME with FREQ were accepted.
got=$(PYTHONPATH="$(dirname "$0")" python3 - "$PORT" <<'PY'
import sys
from resp_wire import Conn
q = Conn(int(sys.argv[1])).value
p = q(b"DUMP", b"dk")
out = [q(b"RESTORE", b"dk4", b"9223372036854775807", p),
       q(b"RESTORE", b"dk4", b"9223372036854775807", p, b"REPLACE"),
       q(b"RESTORE", b"dk4", b"0", p, b"FREQ", b"256"),
       q(b"RESTORE", b"dk4", b"0", p, b"IDLETIME", b"1", b"FREQ", b"1"),
       q(b"RESTORE", b"dk4", b"0", p, b"FREQ", b"1", b"IDLETIME", b"1"),
       q(b"RESTORE", b"dk4", b"0", p, b"IDLETIME", b"abc"),
       q(b"EXISTS", b"dk4"),
       q(b"RESTORE", b"dk4", b"9223372036854775807", p, b"ABSTTL"),
       q(b"PEXPIRETIME", b"dk4"),
       q(b"RESTORE", b"dk5", b"0", p, b"FREQ", b"255"),
       q(b"GET", b"dk5")]
print(" | ".join(x.decode() for x in out))
PY
)
expect "RESTORE bad TTLs and options" "-ERR invalid expire time in 'restore' command | -ERR invalid expire time in 'restore' command | -ERR Invalid FREQ value, must be >= 0 and <= 255 | -ERR syntax error | -ERR syntax error | -ERR value is not an integer or out of range | :0 | +OK | :9223372036854775807 | +OK | hello" "$got"
# MIGRATE to this very server is refused and the keys stay: it would
# RESTORE each key onto itself, get +OK, then delete it.
cli SET selfk precious > /dev/null
for host in 127.0.0.1 0.0.0.0 localhost; do
	expect "MIGRATE to itself at $host" "ERR Target instance is this instance ($host port $PORT is where this server listens): the keys stay here" \
		"$(cli MIGRATE "$host" "$PORT" selfk 0 1000 REPLACE)"
done
expect "MIGRATE KEYS to itself" "ERR Target instance is this instance (127.0.0.1 port $PORT is where this server listens): the keys stay here" \
	"$(cli MIGRATE 127.0.0.1 "$PORT" '' 0 1000 REPLACE KEYS selfk dk)"
expect "the keys after MIGRATEs to itself" "precious hello" "$(cli MGET selfk dk | tr '\n' ' ' | sed 's/ $//')"
# MIGRATE without the cluster, to a node with a password: AUTH and AUTH2.
save_node P
start_urkv pw --data "$WORK/pw.urkv" --size 64M --cores 1 --requirepass pw || exit 1
save_node Q
clip "$PORT_P" MSET m1 v1 m2 v2 m3 v3 > /dev/null
expect "MIGRATE without AUTH" "ERR Target instance replied with error: NOAUTH Authentication required." \
	"$(clip "$PORT_P" MIGRATE 127.0.0.1 "$PORT_Q" '' 0 5000 KEYS m1)"
expect "MIGRATE with a wrong AUTH" "ERR Target instance replied with error: WRONGPASS invalid username-password pair or user is disabled." \
	"$(clip "$PORT_P" MIGRATE 127.0.0.1 "$PORT_Q" '' 0 5000 AUTH bad KEYS m1)"
expect "MIGRATE AUTH KEYS" "OK" "$(clip "$PORT_P" MIGRATE 127.0.0.1 "$PORT_Q" '' 0 5000 AUTH pw KEYS m1 m2)"
expect "MIGRATE AUTH2, one key" "OK" "$(clip "$PORT_P" MIGRATE 127.0.0.1 "$PORT_Q" m3 0 5000 AUTH2 default pw)"
expect "moved to the target" "v1 v2 v3 " "$(clip "$PORT_Q" -a pw --no-auth-warning MGET m1 m2 m3 | tr '\n' ' ')"
expect "gone from the source" "0" "$(clip "$PORT_P" EXISTS m1 m2 m3)"
stop_urkv || fail "stop pw"
use_node P
stop_urkv || fail "stop plain"
# A server on every address (0.0.0.0) is also reached at 127.0.0.2 and at
# this host's own addresses; another loopback address does not reach one on 127.0.0.1.
start_urkv wild --data "$WORK/wild.urkv" --size 64M --cores 1 --bind 0.0.0.0 --protected-mode no || exit 1
cli SET selfk precious > /dev/null
hosts="127.0.0.2 0.0.0.0 ::ffff:127.0.0.1 $(ip -4 -o addr show scope global 2>/dev/null | awk '{ sub(/\/.*/, "", $4); print $4; exit }')"
for host in $hosts; do
	cli SET selfk precious > /dev/null	# Each host on its own: a lost key shows there.
	expect "MIGRATE to itself (on 0.0.0.0) at $host" "ERR Target instance is this instance ($host port $PORT is where this server listens): the keys stay here" \
		"$(cli MIGRATE "$host" "$PORT" selfk 0 1000 REPLACE)"
done
expect "the key after MIGRATEs to itself on 0.0.0.0" precious "$(cli GET selfk)"
stop_urkv || fail "stop wild"

echo "== two cluster nodes (one from a config file)"
printf 'cluster-enabled yes\nappendfsync everysec\n' > "$WORK/b.conf"
start_urkv a --data "$WORK/a.urkv" --size 64M --cores 2 --cluster-enabled yes || exit 1
save_node A
start_urkv b "$WORK/b.conf" --data "$WORK/b.urkv" --size 64M --cores 2 || exit 1
save_node B
ID_A=$(clip "$PORT_A" CLUSTER MYID)
ID_B=$(clip "$PORT_B" CLUSTERX MYID)
[[ "$ID_A" =~ ^[0-9a-f]{40}$ ]] || fail "CLUSTER MYID: [$ID_A]"
[[ "$ID_B" =~ ^[0-9a-f]{40}$ && "$ID_B" != "$ID_A" ]] || fail "CLUSTERX MYID: [$ID_B]"
expect "cluster file next to the data file" "myid $ID_A" "$(grep '^myid' "$WORK/a.urkv.cluster")"
expect "INFO cluster" "cluster_enabled:1" "$(clip "$PORT_A" INFO cluster | tr -d '\r' | grep cluster_enabled)"
expect "INFO redis_mode" "redis_mode:cluster" "$(clip "$PORT_A" INFO server | tr -d '\r' | grep redis_mode)"
expect "version before any push" "0" "$(clip "$PORT_A" CLUSTERX VERSION)"
expect "no slot before any push" "'-CLUSTERDOWN Hash slot not served\\r\\n'" "$($RAW "$PORT_A" 'GET foo')"

echo "== slot hashing (Redis's values)"
expect "KEYSLOT foo" "12182" "$(clip "$PORT_A" CLUSTER KEYSLOT foo)"
expect "KEYSLOT empty" "0" "$(clip "$PORT_A" CLUSTER KEYSLOT '')"
expect "KEYSLOT 123456789" "12739" "$(clip "$PORT_A" CLUSTER KEYSLOT 123456789)"
expect "KEYSLOT {user1000}.following" "$(clip "$PORT_A" CLUSTER KEYSLOT '{user1000}.followers')" \
	"$(clip "$PORT_A" CLUSTER KEYSLOT '{user1000}.following')"
expect "KEYSLOT {user1000}" "$(clip "$PORT_A" CLUSTER KEYSLOT user1000)" \
	"$(clip "$PORT_A" CLUSTER KEYSLOT '{user1000}.following')"
expect "KEYSLOT {}foo hashes the whole key" "$(python3 -c '
def crc16(b):
    c = 0
    for x in b:
        c ^= x << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021 if c & 0x8000 else c << 1) & 0xffff
    return c
print(crc16(b"{}foo") % 16384)')" "$(clip "$PORT_A" CLUSTER KEYSLOT '{}foo')"
expect "KEYSLOT foo{bar}{zap}" "$(clip "$PORT_A" CLUSTER KEYSLOT bar)" "$(clip "$PORT_A" CLUSTER KEYSLOT 'foo{bar}{zap}')"

echo "== CLUSTERX SETNODES validation"
LA="$ID_A 127.0.0.1 $PORT_A master -"
LB="$ID_B 127.0.0.1 $PORT_B master -"
# Version 1: slots 12000-12999 served by nobody.
T1="$LA 0-8191
$LB 8192-11999 13000-16383"
expect "push v1 to A" "OK" "$(clip "$PORT_A" CLUSTERX SETNODES "$T1" 1)"
expect "push v1 to B" "OK" "$(clip "$PORT_B" CLUSTERX SETNODES "$T1" 1)"
expect "push v1 again (idempotent)" "OK" "$(clip "$PORT_A" CLUSTERX SETNODES "$T1" 1)"
NODES1=$(clip "$PORT_A" CLUSTER NODES)
refused() {	# refused NAME WANT TOPOLOGY VERSION
	expect "$1" "$2" "$(clip "$PORT_A" CLUSTERX SETNODES "$3" "$4")"
	expect "$1: version kept" "1" "$(clip "$PORT_A" CLUSTERX VERSION)"
	expect "$1: topology kept" "$NODES1" "$(clip "$PORT_A" CLUSTER NODES)"
}
refused "overlap" "ERR Invalid cluster topology: line 2: slot 8191 overlaps: already given to node $ID_A on line 1" \
	"$LA 0-8191
$LB 8191-16383" 2
refused "start above end" "ERR Invalid cluster topology: line 1: invalid slot range '9-3' (start is above end)" \
	"$LA 9-3" 2
refused "slot out of range" "ERR Invalid cluster topology: line 1: invalid slot '16384' (slots are 0..16383)" \
	"$LA 16384" 2
refused "range out of range" "ERR Invalid cluster topology: line 1: invalid slot range '0-16384' (slots are 0..16383)" \
	"$LA 0-16384" 2
refused "bad node id" "ERR Invalid cluster topology: line 1: invalid node id 'xyz' (want 40 lowercase hex characters)" \
	"xyz 127.0.0.1 $PORT_A master - 0-10" 2
refused "duplicate node id" "ERR Invalid cluster topology: line 2: duplicate node id $ID_A" \
	"$LA 0-10
$ID_A 127.0.0.1 9 master - 11-20" 2
refused "bad port" "ERR Invalid cluster topology: line 1: invalid port '70000' (want 1..65535)" \
	"$ID_A 127.0.0.1 70000 master - 0-10" 2
refused "port 0" "ERR Invalid cluster topology: line 1: invalid port '0' (want 1..65535)" \
	"$ID_A 127.0.0.1 0 master - 0-10" 2
# The ip goes to clients as it is (-MOVED, -ASK, CLUSTER NODES): a numeric address, nothing saved.
for ip in 999.0.0.1 not..an..ip 1.2.3.4:5 '::1::2' localhost; do
	refused "ip $ip" "ERR Invalid cluster topology: line 2: invalid ip '$ip' (want an IPv4 or IPv6 address, such as 10.0.0.7 or fd00::7)" \
		"$LA 0-8191
$ID_B $ip $PORT_B master - 8192-16383" 2
	grep -qF -- " $ip " "$WORK/a.urkv.cluster" && fail "ip $ip: written to the cluster file"
done
refused "malformed line" "ERR Invalid cluster topology: line 1 is malformed: want '<node-id> <ip> <port> master - [<slot>|<start>-<end> ...]', got 3 fields" \
	"$ID_A 127.0.0.1 $PORT_A" 2
refused "replica role" "ERR Invalid cluster topology: line 1: role 'slave' is not supported (urkv nodes are all 'master': no replicas)" \
	"$ID_A 127.0.0.1 $PORT_A slave $ID_B" 2
refused "empty topology" "ERR Invalid cluster topology: no node" "" 2
refused "bad version" "ERR Invalid version 'x' (want a positive integer)" "$T1" x
refused "version 0" "ERR Invalid version '0' (want a positive integer)" "$T1" 0
refused "same version, other map" "ERR topology version 1 is the current version with a different topology (push it with a higher version)" \
	"$LA 0-8191" 1
expect "SETNODES arity" "ERR wrong number of arguments for 'clusterx|setnodes' command" "$(clip "$PORT_A" CLUSTERX SETNODES "$T1")"

echo "== redirects (exact texts)"
SLOT_FOO=12182
expect "CLUSTERDOWN" "'-CLUSTERDOWN Hash slot not served\\r\\n'" "$($RAW "$PORT_A" 'GET foo')"
# Version 2 covers every slot; version 1 is then older.
T2="$LA 0-8191
$LB 8192-16383"
expect "push v2 to A" "OK" "$(clip "$PORT_A" CLUSTERX SETNODES "$T2" 2)"
expect "push v2 to B" "OK" "$(clip "$PORT_B" CLUSTERX SETNODES "$T2" 2)"
expect "older version" "ERR topology version 1 is older than the current version 2" \
	"$(clip "$PORT_A" CLUSTERX SETNODES "$T1" 1)"
expect "version after the refusal" "2" "$(clip "$PORT_A" CLUSTERX VERSION)"
expect "MOVED" "'-MOVED $SLOT_FOO 127.0.0.1:$PORT_B\\r\\n'" "$($RAW "$PORT_A" 'GET foo')"
expect "MOVED for SET" "'-MOVED $SLOT_FOO 127.0.0.1:$PORT_B\\r\\n'" "$($RAW "$PORT_A" 'SET foo 1')"
expect "CROSSSLOT MGET" "\"-CROSSSLOT Keys in request don't hash to the same slot\\r\\n\"" \
	"$($RAW "$PORT_A" 'MGET {user1}a {user2}b')"
expect "CROSSSLOT RENAME" "\"-CROSSSLOT Keys in request don't hash to the same slot\\r\\n\"" \
	"$($RAW "$PORT_B" 'RENAME foo bar')"
expect "CROSSSLOT MSET" "\"-CROSSSLOT Keys in request don't hash to the same slot\\r\\n\"" \
	"$($RAW "$PORT_B" 'MSET foo 1 bar 2')"
# Keys with one hash tag: multi-key commands run on the tag's node.
TAGNODE=$PORT_A
[ "$(clip "$PORT_A" CLUSTER KEYSLOT '{t}')" -ge 8192 ] && TAGNODE=$PORT_B
expect "MSET with a tag" "OK" "$(clip "$TAGNODE" MSET '{t}a' 1 '{t}b' 2)"
expect "MGET with a tag" "1 2" "$(clip "$TAGNODE" MGET '{t}a' '{t}b' | tr '\n' ' ' | sed 's/ $//')"
expect "RENAME with a tag" "OK" "$(clip "$TAGNODE" RENAME '{t}a' '{t}c')"
expect "COPY with a tag" "1" "$(clip "$TAGNODE" COPY '{t}c' '{t}d')"
expect "EXISTS with a tag" "3" "$(clip "$TAGNODE" EXISTS '{t}b' '{t}c' '{t}d')"
expect "DEL with a tag" "3" "$(clip "$TAGNODE" DEL '{t}b' '{t}c' '{t}d')"
expect "ASKING" "OK" "$(clip "$PORT_A" ASKING)"
expect "READONLY" "OK" "$(clip "$PORT_A" READONLY)"
expect "READWRITE" "OK" "$(clip "$PORT_A" READWRITE)"
expect "keyless commands run anywhere" "PONG" "$(clip "$PORT_A" PING)"

echo "== redis-cli -c across the two nodes"
for i in $(seq 1 60); do echo "SET key:$i val$i"; done | timeout 60 redis-cli -c -p "$PORT_A" > "$WORK/set.out" 2>&1
expect "redis-cli -c SET through one node" "60" "$(grep -cx OK "$WORK/set.out")"
got=$(for i in $(seq 1 60); do echo "GET key:$i"; done | timeout 60 redis-cli -c -p "$PORT_B" | grep -v '^-> Redirected' | tr '\n' ' ')
expect "redis-cli -c GET through the other node" "$(for i in $(seq 1 60); do printf 'val%s ' "$i"; done)" "$got"
expect "keys split over the nodes" "60" "$(( $(clip "$PORT_A" DBSIZE) + $(clip "$PORT_B" DBSIZE) ))"
# Each key is on its slot's node: COUNTKEYSINSLOT and GETKEYSINSLOT there, in one pipe per node.
python3 - "$WORK" <<'PY'
import sys
def slot(k):
    c = 0
    for x in k.encode():
        c ^= x << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021 if c & 0x8000 else c << 1) & 0xffff
    return c % 16384
with open(sys.argv[1] + "/qa", "w") as qa, open(sys.argv[1] + "/qb", "w") as qb:
    for i in range(1, 61):
        s = slot("key:%d" % i)
        (qa if s < 8192 else qb).write("CLUSTER GETKEYSINSLOT %d 100\n" % s)
PY
got=$( (timeout 60 redis-cli -p "$PORT_A" < "$WORK/qa"; timeout 60 redis-cli -p "$PORT_B" < "$WORK/qb") | grep -c '^key:')
expect "each key on its slot's node (GETKEYSINSLOT)" "60" "$got"
clip "$PORT_A" SET '{key:1}x' 1 > /dev/null	# key:1 is in slot 6657, on A.
expect "COUNTKEYSINSLOT" "2" "$(clip "$PORT_A" CLUSTER COUNTKEYSINSLOT 6657)"
expect "GETKEYSINSLOT count" "1" "$(clip "$PORT_A" CLUSTER GETKEYSINSLOT 6657 1 | grep -c .)"
expect "COUNTKEYSINSLOT bad slot" "ERR Invalid slot" "$(clip "$PORT_A" CLUSTER COUNTKEYSINSLOT 16384)"
expect "GETKEYSINSLOT bad count" "ERR Invalid slot or number of keys" "$(clip "$PORT_A" CLUSTER GETKEYSINSLOT 1 -1)"

echo "== CLUSTER SLOTS, SHARDS, NODES, INFO"
expect "CLUSTER SLOTS" "'*2\\r\\n*3\\r\\n:0\\r\\n:8191\\r\\n*4\\r\\n\$9\\r\\n127.0.0.1\\r\\n:$PORT_A\\r\\n\$40\\r\\n$ID_A\\r\\n*0\\r\\n*3\\r\\n:8192\\r\\n:16383\\r\\n*4\\r\\n\$9\\r\\n127.0.0.1\\r\\n:$PORT_B\\r\\n\$40\\r\\n$ID_B\\r\\n*0\\r\\n'" \
	"$($RAW "$PORT_A" 'CLUSTER SLOTS')"
expect "CLUSTER NODES" "$ID_A 127.0.0.1:$PORT_A@$((PORT_A + 10000)) myself,master - 0 0 2 connected 0-8191
$ID_B 127.0.0.1:$PORT_B@$((PORT_B + 10000)) master - 0 0 2 connected 8192-16383" "$(clip "$PORT_A" CLUSTER NODES)"
got=$($RAW "$PORT_B" 'CLUSTER SHARDS')
case "$got" in
"'*2\\r\\n*4\\r\\n\$5\\r\\nslots\\r\\n*2\\r\\n:0\\r\\n:8191\\r\\n\$5\\r\\nnodes\\r\\n*1\\r\\n*14\\r\\n\$2\\r\\nid\\r\\n\$40\\r\\n$ID_A\\r\\n\$4\\r\\nport\\r\\n:$PORT_A\\r\\n\$2\\r\\nip\\r\\n\$9\\r\\n127.0.0.1\\r\\n"*"\$6\\r\\nhealth\\r\\n\$6\\r\\nonline\\r\\n'") ;;
*) fail "CLUSTER SHARDS: got [$got]" ;;
esac
info=$(clip "$PORT_A" CLUSTER INFO | tr -d '\r')
for want in cluster_state:ok cluster_slots_assigned:16384 cluster_known_nodes:2 cluster_size:2 cluster_current_epoch:2; do
	echo "$info" | grep -qx "$want" || fail "CLUSTER INFO lacks $want: [$info]"
done
expect "unknown subcommand" "ERR unknown subcommand 'FOO'. Try CLUSTER HELP." "$(clip "$PORT_A" CLUSTER FOO)"
expect "SETSLOT not owner" "ERR I'm not the owner of hash slot 9000" "$(clip "$PORT_A" CLUSTER SETSLOT 9000 MIGRATING "$ID_B")"
expect "SETSLOT already owner" "ERR I'm already the owner of hash slot 5" "$(clip "$PORT_A" CLUSTER SETSLOT 5 IMPORTING "$ID_B")"
expect "SETSLOT unknown node" "ERR I don't know about node abc" "$(clip "$PORT_A" CLUSTER SETSLOT 5 MIGRATING abc)"
expect "SETSLOT bad slot" "ERR Invalid or out of range slot" "$(clip "$PORT_A" CLUSTER SETSLOT 16384 STABLE)"

echo "== migration: ASK, ASKING, TRYAGAIN, MIGRATE with TTLs"
SLOT_M=$(clip "$PORT_A" CLUSTER KEYSLOT '{k}')
[ "$SLOT_M" -lt 8192 ] || fail "{k} is expected on A (slot $SLOT_M)"
clip "$PORT_A" SET '{k}ttl' v1 PX 100000 > /dev/null
clip "$PORT_A" SET '{k}plain' v2 > /dev/null
clip "$PORT_A" SET '{k}stay' v3 > /dev/null
clip "$PORT_A" SET '{k}busy' here > /dev/null
expect "IMPORTING on B" "OK" "$(clip "$PORT_B" CLUSTER SETSLOT "$SLOT_M" IMPORTING "$ID_A")"
expect "MIGRATING on A" "OK" "$(clip "$PORT_A" CLUSTER SETSLOT "$SLOT_M" MIGRATING "$ID_B")"
clip "$PORT_A" CLUSTER NODES | grep -q "myself,master .* \[$SLOT_M->-$ID_B\]" || fail "NODES: no migrating mark"
clip "$PORT_B" CLUSTER NODES | grep -q "myself,master .* \[$SLOT_M-<-$ID_A\]" || fail "NODES: no importing mark"
expect "MIGRATE KEYS" "OK" "$(clip "$PORT_A" MIGRATE 127.0.0.1 "$PORT_B" '' 0 5000 KEYS '{k}ttl' '{k}plain' '{k}none')"
expect "migrated keys left the source" "{k}busy {k}stay " "$(clip "$PORT_A" CLUSTER GETKEYSINSLOT "$SLOT_M" 10 | sort | tr '\n' ' ')"
expect "ASK for a moved key" "'-ASK $SLOT_M 127.0.0.1:$PORT_B\\r\\n'" "$($RAW "$PORT_A" 'GET {k}plain')"
expect "a key still here is served" "v3" "$(clip "$PORT_A" GET '{k}stay')"
expect "TRYAGAIN for some here, some moved" "'-TRYAGAIN Multiple keys request during rehashing of slot\\r\\n'" \
	"$($RAW "$PORT_A" 'MGET {k}stay {k}plain')"
expect "target without ASKING: MOVED" "'-MOVED $SLOT_M 127.0.0.1:$PORT_A\\r\\n'" "$($RAW "$PORT_B" 'GET {k}plain')"
expect "target with ASKING" "'+OK\\r\\n' '\$2\\r\\nv2\\r\\n' '-MOVED $SLOT_M 127.0.0.1:$PORT_A\\r\\n'" \
	"$($RAW "$PORT_B" ASKING 'GET {k}plain' 'GET {k}plain' | tr '\n' ' ' | sed 's/ $//')"
got=$($RAW "$PORT_B" ASKING 'PTTL {k}ttl' | tail -1 | tr -dc 0-9)
[ -n "$got" ] && [ "$got" -gt 0 ] && [ "$got" -le 100000 ] || fail "TTL kept by MIGRATE: [$got]"
expect "ASKING with a key not yet moved: TRYAGAIN" \
	"'+OK\\r\\n' '-TRYAGAIN Multiple keys request during rehashing of slot\\r\\n'" \
	"$($RAW "$PORT_B" ASKING 'MGET {k}plain {k}stay' | tr '\n' ' ' | sed 's/ $//')"
expect "redis-cli -c follows ASK" "v2" "$(timeout 20 redis-cli -c -p "$PORT_A" GET '{k}plain')"
expect "a new key of the slot is asked to the target" "'-ASK $SLOT_M 127.0.0.1:$PORT_B\\r\\n'" \
	"$($RAW "$PORT_A" 'SET {k}new x')"
expect "MIGRATE NOKEY" "NOKEY" "$(clip "$PORT_A" MIGRATE 127.0.0.1 "$PORT_B" '' 0 5000 KEYS '{k}none')"
$RAW "$PORT_B" ASKING 'SET {k}busy there' > /dev/null
expect "MIGRATE onto an existing key" "ERR Target instance replied with error: BUSYKEY Target key name already exists." \
	"$(clip "$PORT_A" MIGRATE 127.0.0.1 "$PORT_B" '' 0 5000 KEYS '{k}busy')"
expect "refused key stays at the source" "here" "$(clip "$PORT_A" GET '{k}busy')"
expect "MIGRATE REPLACE" "OK" "$(clip "$PORT_A" MIGRATE 127.0.0.1 "$PORT_B" '' 0 5000 REPLACE KEYS '{k}busy')"
expect "replaced at the target" "'+OK\\r\\n' '\$4\\r\\nhere\\r\\n'" \
	"$($RAW "$PORT_B" ASKING 'GET {k}busy' | tr '\n' ' ' | sed 's/ $//')"
expect "MIGRATE COPY (old single-key form)" "OK" "$(clip "$PORT_A" MIGRATE 127.0.0.1 "$PORT_B" '{k}stay' 0 5000 COPY)"
expect "COPY keeps the source" "v3" "$(clip "$PORT_A" GET '{k}stay')"
expect "MIGRATE KEYS with a key" "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string" \
	"$(clip "$PORT_A" MIGRATE 127.0.0.1 "$PORT_B" x 0 5000 KEYS '{k}stay')"
expect "MIGRATE to a closed port" "IOERR error or timeout connecting to the client (Connection refused)" \
	"$(clip "$PORT_A" MIGRATE 127.0.0.1 1 '' 0 1000 KEYS '{k}stay')"
# A timeout past the runtime's bound per I/O (146 years) failed the first
# send with EINVAL ("error writing to target instance (Invalid argument)").
expect "MIGRATE with a huge timeout" "IOERR error or timeout connecting to the client (Connection refused)" \
	"$(clip "$PORT_A" MIGRATE 127.0.0.1 1 '' 0 9223372036854775807 KEYS '{k}stay')"
# A target that accepts and never answers: IOERR once the timeout passes, the key kept.
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1])); __import__("os").rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(120)' "$WORK/silent.port" &
PIDS+=("$!")
for _ in $(seq 1 100); do [ -s "$WORK/silent.port" ] && break; sleep 0.05; done
expect "MIGRATE to a silent target" "IOERR error or timeout reading to target instance (Connection timed out)" \
	"$(clip "$PORT_A" MIGRATE 127.0.0.1 "$(cat "$WORK/silent.port")" '' 0 300 KEYS '{k}stay')"
expect "the key stays after a timed-out MIGRATE" "v3" "$(clip "$PORT_A" GET '{k}stay')"

echo "== the open slot states survive a restart; the cluster file is durable"
use_node A
stop_urkv || fail "stop A"
start_urkv a --data "$WORK/a.urkv" --size 64M --cores 2 --cluster-enabled yes || exit 1
save_node A
expect "id kept" "$ID_A" "$(clip "$PORT_A" CLUSTER MYID)"
expect "version kept" "2" "$(clip "$PORT_A" CLUSTERX VERSION)"
clip "$PORT_A" CLUSTER NODES | grep -q "\[$SLOT_M->-$ID_B\]" || fail "MIGRATING lost at restart"
# The port changed (tests bind port 0): push the new address as version 3.
LA="$ID_A 127.0.0.1 $PORT_A master -"
T3="$LA 0-8191
$LB 8192-16383"
expect "push v3 to A" "OK" "$(clip "$PORT_A" CLUSTERX SETNODES "$T3" 3)"
expect "push v3 to B" "OK" "$(clip "$PORT_B" CLUSTERX SETNODES "$T3" 3)"
clip "$PORT_A" CLUSTER NODES | grep -q "\[$SLOT_M->-$ID_B\]" || fail "MIGRATING lost at SETNODES"
expect "STABLE on A" "OK" "$(clip "$PORT_A" CLUSTER SETSLOT "$SLOT_M" STABLE)"
expect "STABLE on B" "OK" "$(clip "$PORT_B" CLUSTER SETSLOT "$SLOT_M" STABLE)"
clip "$PORT_A" CLUSTER NODES | grep -q '\[' && fail "STABLE left a mark"
marks() { clip "$PORT_A" CLUSTER NODES | tr ' ' '\n' | grep -c -- '->-'; }
expect "CLUSTERX SETSLOTS (one file write)" "OK" "$(clip "$PORT_A" CLUSTERX SETSLOTS 100-199 300 MIGRATING "$ID_B")"
expect "SETSLOTS marks" "101" "$(marks)"
expect "SETSLOTS file" "101" "$(grep -c '^migrating ' "$WORK/a.urkv.cluster")"
expect "SETSLOTS all or nothing" "ERR I'm not the owner of hash slot 9000" \
	"$(clip "$PORT_A" CLUSTERX SETSLOTS 200 9000 MIGRATING "$ID_B")"
expect "SETSLOTS refused: nothing set" "101" "$(marks)"
expect "SETSLOTS bad range" "ERR Invalid slot or range '5-2' (slots are 0..16383)" \
	"$(clip "$PORT_A" CLUSTERX SETSLOTS 5-2 STABLE)"
expect "SETSLOTS STABLE" "OK" "$(clip "$PORT_A" CLUSTERX SETSLOTS 0-16383 STABLE)"
expect "SETSLOTS STABLE marks" "0" "$(marks)"

echo "== online migration under a writer (no acknowledged write lost)"
$MIG "$PORT_A" "$PORT_B" "$ID_A" "$ID_B" 3 || fail "online migration"
expect "version after the move" "4" "$(clip "$PORT_A" CLUSTERX VERSION)"
expect "the moved slot answers MOVED to B" "'-MOVED $(clip "$PORT_A" CLUSTER KEYSLOT '{b}') 127.0.0.1:$PORT_B\\r\\n'" \
	"$($RAW "$PORT_A" 'GET {b}1')"

echo "== a damaged cluster file is a clear error"
use_node A
stop_urkv || fail "stop A"
cp "$WORK/a.urkv.cluster" "$WORK/a.good"
sed -i 's/^version .*/version x1/' "$WORK/a.urkv.cluster"
"$URKV" --port 0 --data "$WORK/a.urkv" --size 64M --cores 1 --cluster-enabled yes --quiet 2> "$WORK/bad.log"
rc=$?
expect "damaged file: exit status" "1" "$rc"
expect "damaged file: message" "urkv: $WORK/a.urkv.cluster:4: invalid version 'x1'" "$(cat "$WORK/bad.log")"
head -n 5 "$WORK/a.good" > "$WORK/a.urkv.cluster"
"$URKV" --port 0 --data "$WORK/a.urkv" --size 64M --cores 1 --cluster-enabled yes --quiet 2> "$WORK/bad.log"
rc=$?
expect "truncated file: exit status" "1" "$rc"
grep -q "a.urkv.cluster:5: no 'end' line (the file is truncated or damaged)" "$WORK/bad.log" ||
	fail "truncated file: [$(cat "$WORK/bad.log")]"
expect "the damaged file is left as it was" "5" "$(wc -l < "$WORK/a.urkv.cluster")"
# A bad node line names its line once (it read "FILE:5: line 5: ...").
sed '5s/ master - .*/ master - 99999-3/' "$WORK/a.good" > "$WORK/a.urkv.cluster"
cp "$WORK/a.urkv.cluster" "$WORK/a.bad"
"$URKV" --port 0 --data "$WORK/a.urkv" --size 64M --cores 1 --cluster-enabled yes --quiet 2> "$WORK/bad.log"
expect "bad node line: exit status" "1" "$?"
expect "bad node line: message" "urkv: $WORK/a.urkv.cluster:5: invalid slot range '99999-3' (slots are 0..16383)" \
	"$(head -1 "$WORK/bad.log")"
cmp -s "$WORK/a.urkv.cluster" "$WORK/a.bad" || fail "bad node line: the file was changed"
# An empty file (a crash of an editor, a full disk): refused, kept empty.
: > "$WORK/a.urkv.cluster"
"$URKV" --port 0 --data "$WORK/a.urkv" --size 64M --cores 1 --cluster-enabled yes --quiet 2> "$WORK/bad.log"
expect "empty cluster file: exit status" "1" "$?"
grep -q "a.urkv.cluster:1: the cluster file is empty" "$WORK/bad.log" || fail "empty cluster file: [$(cat "$WORK/bad.log")]"
expect "empty cluster file kept empty" "0" "$(stat -c %s "$WORK/a.urkv.cluster")"
mkdir "$WORK/cfdir"
"$URKV" --port 0 --data "$WORK/a.urkv" --size 64M --cores 1 --cluster-enabled yes --quiet \
	--cluster-config-file "$WORK/cfdir" 2> "$WORK/bad.log"
rc=$?
expect "cluster file a directory: exit status" "1" "$rc"
expect "cluster file a directory: message" "urkv: cannot read the cluster file $WORK/cfdir: it is a directory (--cluster-config-file takes a file's path)" "$(cat "$WORK/bad.log")"
cp "$WORK/a.good" "$WORK/a.urkv.cluster"
start_urkv a --data "$WORK/a.urkv" --size 64M --cores 2 --cluster-enabled yes --cluster-config-file "$WORK/a.urkv.cluster" || exit 1
expect "restored file" "$ID_A" "$(clip "$PORT" CLUSTER MYID)"
# An IPv6 address is an address: accepted, and clients are sent to it.
expect "IPv6 node address accepted" "OK" "$(clip "$PORT" CLUSTERX SETNODES "$LA 0-8191
$ID_B ::1 $PORT_B master - 8192-16383" 100)"
expect "MOVED to an IPv6 node" "'-MOVED $SLOT_FOO ::1:$PORT_B\\r\\n'" "$($RAW "$PORT" 'GET foo')"
stop_urkv || fail "stop A"
use_node B
stop_urkv || fail "stop B"
finish
