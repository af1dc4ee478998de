#!/usr/bin/env python3
"""Online slot migration between two urkv cluster nodes while a writer runs.

usage: urkv_cluster_mig.py PORT_A PORT_B ID_A ID_B VERSION

Keys "{b}0".."{b}199" (one slot) start on node A (which must own that
slot in topology VERSION).  A writer thread INCRs random keys the way a
cluster client does (following -MOVED, -ASK with ASKING, retrying
-TRYAGAIN) and counts every acknowledged INCR, while the main thread
moves the slot to B as redis-cli --cluster reshard does: SETSLOT IMPORTING
on B, MIGRATING on A, GETKEYSINSLOT + MIGRATE in batches of 10, then a
topology VERSION+1 giving the slot to B.  At the end every key must be on
B only, holding exactly its acknowledged count.  Prints FAIL lines and
exits 1 on a mismatch.
"""
import random
import socket
import sys
import threading
import time

from urkv_cluster import Conn  # noqa: E402 (same folder: the tests' RESP client)


def main():
    pa, pb, ida, idb, version = sys.argv[1:6]
    pa, pb, version = int(pa), int(pb), int(version)
    nkeys = 200
    keys = ["{b}%d" % i for i in range(nkeys)]
    a, b = Conn(pa), Conn(pb)
    for k in keys:
        assert a.call("SET", k, "0") == "OK"
    slot = a.call("CLUSTER", "KEYSLOT", keys[0])
    acked = [0] * nkeys
    asked = [0]  # INCRs answered by the target after -ASK.
    stop = threading.Event()
    errors = []

    def writer():
        conns = {pa: Conn(pa), pb: Conn(pb)}
        port = pa
        while not stop.is_set():
            i = random.randrange(nkeys)
            for _ in range(100):
                r = conns[port].call("INCR", keys[i])
                if isinstance(r, int):
                    acked[i] += 1
                    break
                msg = str(r)
                if msg.startswith("MOVED "):
                    port = int(msg.split(":")[-1])
                elif msg.startswith("ASK "):
                    to = int(msg.split(":")[-1])
                    conns[to].call("ASKING")
                    r = conns[to].call("INCR", keys[i])
                    if isinstance(r, int):
                        acked[i] += 1
                        asked[0] += 1
                        break
                    if not str(r).startswith("TRYAGAIN"):
                        errors.append("INCR via ASK: %s" % r)
                        return
                elif msg.startswith("TRYAGAIN"):
                    time.sleep(0.001)
                else:
                    errors.append("INCR: %s" % r)
                    return
            else:
                # Redirected back and forth: the nodes disagree on the slot's owner.
                errors.append("INCR %s: no answer after 100 redirects (last %s)" % (keys[i], r))
                return

    th = threading.Thread(target=writer)
    th.start()
    time.sleep(0.2)
    r1 = b.call("CLUSTER", "SETSLOT", slot, "IMPORTING", ida)
    r2 = a.call("CLUSTER", "SETSLOT", slot, "MIGRATING", idb)
    if r1 != "OK" or r2 != "OK":
        print("FAIL: SETSLOT: %s %s" % (r1, r2))
        stop.set()
        th.join()
        return 1
    moved = 0
    while True:
        batch = a.call("CLUSTER", "GETKEYSINSLOT", slot, 10)
        if not batch:
            break
        r = a.call("MIGRATE", "127.0.0.1", pb, "", 0, 5000, "KEYS", *batch)
        if r != "OK" and r != "NOKEY":
            print("FAIL: MIGRATE: %s" % r)
            stop.set()
            th.join()
            return 1
        moved += len(batch)
        time.sleep(0.01)  # Let the writer meet the half-moved slot.
    nodes = a.call("CLUSTER", "NODES").decode()
    topo = []
    for line in nodes.splitlines():
        f = line.split()
        ip, port = f[1].split("@")[0].rsplit(":", 1)
        ranges = [x for x in f[8:] if not x.startswith("[")]
        topo.append([f[0], ip, port, ranges])
    # The slot goes to B: remove it from A's ranges, add it to B's.
    new = []
    for nid, ip, port, ranges in topo:
        owned = set()
        for rg in ranges:
            lo, _, hi = rg.partition("-")
            owned.update(range(int(lo), int(hi or lo) + 1))
        if nid == ida:
            owned.discard(slot)
        if nid == idb:
            owned.add(slot)
        rs = " ".join(str(s) for s in sorted(owned))
        new.append("%s %s %s master - %s" % (nid, ip, port, rs))
    text = "\n".join(new)
    pushes = []
    for name, c in (("B", b), ("A", a)):
        r = c.call("CLUSTERX", "SETNODES", text, version + 1)
        if r != "OK":
            pushes.append("SETNODES to %s: %s" % (name, r))
    time.sleep(0.3)  # The writer now follows -MOVED to B.
    stop.set()
    th.join()
    fails = pushes + errors
    # A no longer serves the slot (EXISTS there would be -MOVED): count the slot's keys.
    left = a.call("CLUSTER", "COUNTKEYSINSLOT", slot)
    if left != 0:
        fails.append("%r keys left on the source: %r"
                     % (left, a.call("CLUSTER", "GETKEYSINSLOT", slot, nkeys)))
    if moved != nkeys:
        fails.append("MIGRATE moved %d keys of %d" % (moved, nkeys))
    # The writer must have met the half-moved slot, or the move under load went untested.
    if asked[0] == 0:
        fails.append("no INCR was answered through -ASK (of %d acknowledged)" % sum(acked))
    for i, k in enumerate(keys):
        v = b.call("GET", k)
        if v is None or isinstance(v, Exception) or int(v) != acked[i]:
            fails.append("%s: target holds %r, %d INCRs were acknowledged" % (k, v, acked[i]))
    for f in fails[:20]:
        print("FAIL: " + f)
    print("moved %d keys, %d acknowledged INCRs during the move (%d after -ASK)"
          % (moved, sum(acked), asked[0]))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
