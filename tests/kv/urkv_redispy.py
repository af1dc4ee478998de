#!/usr/bin/env python3
"""redis-py's cluster client (Debian's python3-redis, redis.cluster.RedisCluster)
against a urkv cluster.  redis-py is a client library many applications use:
it builds its slot map from CLUSTER SLOTS, follows -MOVED and -ASK itself,
splits pipelines and multi-key calls by slot, and fans commands out to every
node; none of that is urkv's own code (urkv_cluster.py is).

usage: urkv_redispy.py basic PORT
       urkv_redispy.py write PORT ACKS STOP     (until the file STOP exists)
       urkv_redispy.py check PORT ACKS

basic: a tour of the commands an application uses, each result checked.
write: SETs keys w:0..w:3999 round robin with a counter as the value, and
       records each acknowledged write as "A key value" in ACKS (flushed per
       line); any exception the client raises fails the run.
check: every key's last acknowledged value reads back through a new client.
Exit 0 when everything matched, 1 otherwise (each mismatch printed).
"""
import logging
import sys
import time

from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import ClusterCrossSlotError, ResponseError

FAILS = []


def expect(what, want, got):
    if want != got:
        FAILS.append(f"{what}: want {want!r}, got {got!r}")


def client(port):
    return RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", int(port))], decode_responses=True,
                        socket_timeout=10)


def basic(port):
    rc = client(port)
    expect("nodes from CLUSTER SLOTS", 3, len(rc.get_nodes()))
    expect("PING", True, rc.ping())
    for i in range(300):
        rc.set(f"k:{i}", f"v{i}")
    expect("GET of 300 keys over 3 nodes", [f"v{i}" for i in range(300)], [rc.get(f"k:{i}") for i in range(300)])
    # Each node holds some of them, by its own count (DBSIZE sent to each primary alone).
    per_node = [rc.dbsize(target_nodes=n) for n in rc.get_primaries()]
    expect("nodes holding some of the 300 keys", 3, sum(1 for n in per_node if n > 0))
    expect("keys over the nodes", 300, sum(per_node))
    # Multi-key commands: one slot with a hash tag, any slots through the client's split.
    expect("MSET with a hash tag", True, rc.mset({"{u1}a": "1", "{u1}b": "2"}))
    expect("MGET with a hash tag", ["1", "2"], rc.mget("{u1}a", "{u1}b"))
    expect("MGET split by slot", ["v0", "v1", "v2"], rc.mget_nonatomic(["k:0", "k:1", "k:2"]))
    try:
        # k:0 and k:1 are in different slots: -CROSSSLOT, which redis-py raises as its own class.
        rc.execute_command("MGET", "k:0", "k:1", target_nodes=rc.get_node_from_key("k:0"))
        FAILS.append("MGET across slots on one node: no error")
    except ClusterCrossSlotError:
        pass
    except ResponseError as e:
        FAILS.append(f"MGET across slots: not -CROSSSLOT: {type(e).__name__}: {e}")
    expect("DEL of keys on several nodes", 3, rc.delete("k:10", "k:11", "k:12"))
    expect("EXISTS after DEL", 0, rc.exists("k:10"))
    expect("EXISTS", 2, rc.exists("k:13", "k:14"))
    # Counters and expiry.
    expect("INCR", [1, 2, 12], [rc.incr("cnt"), rc.incr("cnt"), rc.incrby("cnt", 10)])
    expect("SET EX", True, rc.set("e:1", "x", ex=100))
    ttl = rc.ttl("e:1")
    if not 98 <= ttl <= 100:
        FAILS.append(f"TTL after SET EX 100: {ttl}")
    expect("PERSIST", True, rc.persist("e:1"))
    expect("TTL after PERSIST", -1, rc.ttl("e:1"))
    expect("PEXPIRE", True, rc.pexpire("e:1", 50))
    time.sleep(0.2)
    expect("GET after the key expired", None, rc.get("e:1"))
    expect("SET NX on an existing key", None, rc.set("k:20", "other", nx=True))
    expect("GETSET", "v20", rc.getset("k:20", "new"))
    expect("APPEND", len("new") + 3, rc.append("k:20", "abc"))
    expect("STRLEN", 6, rc.strlen("k:20"))
    # A pipeline the client splits by node.
    p = rc.pipeline()
    for i in range(100):
        p.set(f"p:{i}", i)
    expect("pipeline of 100 SETs", [True] * 100, p.execute())
    p = rc.pipeline()
    for i in range(100):
        p.get(f"p:{i}")
    expect("pipeline of 100 GETs", [str(i) for i in range(100)], p.execute())
    # Commands fanned out to every node.
    want = 300 - 3 + 2 + 1 + 100  # k:*, less three deleted; {u1}a/b; cnt; p:*
    expect("DBSIZE summed over the primaries", want, rc.dbsize(target_nodes=RedisCluster.PRIMARIES))
    expect("KEYS k:* over every node", 297, len(rc.keys("k:*", target_nodes=RedisCluster.PRIMARIES)))
    expect("SCAN over every node", 297, len(set(rc.scan_iter(match="k:*", count=50))))
    expect("CLUSTER INFO state", "ok", rc.cluster_info()["cluster_state"])
    expect("CLUSTER KEYSLOT", rc.keyslot("k:0"), rc.cluster_keyslot("k:0"))
    return 0 if not FAILS else 1


def write(port, acks, stop):
    import os
    rc = client(port)
    n = 0
    with open(acks, "w") as f:
        while not os.path.exists(stop):
            key = f"w:{n % 4000}"
            rc.set(key, str(n))
            f.write(f"A {key} {n}\n")
            f.flush()
            n += 1
    print(f"writer: {n} acknowledged SETs")
    return 0 if n > 0 else 1


def check(port, acks):
    last = {}
    with open(acks) as f:
        for line in f:
            _, key, val = line.split()
            last[key] = val
    rc = client(port)
    for key, val in last.items():
        expect(f"GET {key}", val, rc.get(key))
    print(f"check: {len(last)} keys read back")
    return 0 if not FAILS else 1


def main():
    # redis-py logs the -CROSSSLOT it raises (checked above) with a traceback; keep stderr for failures.
    logging.getLogger("redis").setLevel(logging.CRITICAL)
    logging.getLogger().setLevel(logging.CRITICAL)
    cmd = sys.argv[1]
    if cmd == "basic":
        rc = basic(sys.argv[2])
    elif cmd == "write":
        rc = write(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "check":
        rc = check(sys.argv[2], sys.argv[3])
    else:
        print(__doc__)
        return 2
    for f in FAILS[:20]:
        print("FAIL:", f)
    return rc


if __name__ == "__main__":
    sys.exit(main())
