#!/usr/bin/env python3
"""Cluster client of the urkv cluster tests: a writer that follows -MOVED and
-ASK and records every acknowledged write, and the check of a cluster
against that record.

  urkv_cluster.py slotkeys PREFIX         one key per slot, "PREFIX{tag}", sorted by slot
  urkv_cluster.py slot KEY                the hash slot of KEY
  urkv_cluster.py write PORT LOG STOP [THREADS] [KEYS] [TAG]
        THREADS threads (4) SET keys w:<t>:<i> (i < KEYS/THREADS, round robin, so keys
        are overwritten) to values "<TAG>:<t>:<i>:<seq>" until the file STOP exists.
        LOG gets "A key value" per acknowledged SET and "U key value" per SET whose
        reply never came (a node died): it may or may not have been applied.  A SET
        to a node that cannot be reached is not sent (counted as refused) and retried
        later.  Exit 1 on an error reply or when nothing was acknowledged.
  urkv_cluster.py fill PORT LOG PREFIX N LO HI
        SETs N keys "PREFIX:<j>" whose slots are in LO..HI straight to the node at PORT
        (pipelined, no redirects: they must be its slots), logging "A key value" per +OK.
  urkv_cluster.py slotsort              "key ..." lines of stdin, sorted by the key's slot
  urkv_cluster.py verify PORTS LOG
        PORTS: every node, comma-separated.  Checks, and prints each failure:
        - each node's own view (SCAN on it, no redirects): no key on two nodes, and
          every key on the node that owns its slot (CLUSTER NODES of that node);
        - every key of LOG is on exactly one node, and reads (through -MOVED/-ASK)
          as its last acknowledged value or a later unacknowledged one;
        - CLUSTER COUNTKEYSINSLOT agrees with SCAN for a sample of slots.
        Exit 1 on any failure.
"""
import os
import random
import socket
import sys
import threading
import time

from resp_wire import cmd

SLOTS = 16384


def _crc16_table():
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


CRC16 = _crc16_table()


def key_slot(key):
    if isinstance(key, str):
        key = key.encode()
    s = key.find(b"{")
    if s >= 0:
        e = key.find(b"}", s + 1)
        if e > s + 1:
            key = key[s + 1:e]
    crc = 0
    for b in key:
        crc = ((crc << 8) & 0xFFFF) ^ CRC16[((crc >> 8) ^ b) & 0xFF]
    return crc & (SLOTS - 1)


class Conn:
    def __init__(self, port, host="127.0.0.1", timeout=30):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.f = self.sock.makefile("rb")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def reply(self):
        line = self.f.readline()
        if not line:
            raise ConnectionError("connection closed")
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RuntimeError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)
            return data[:-2]
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise ValueError("bad reply %r" % line)

    def call(self, *args):
        self.sock.sendall(cmd(*args))
        return self.reply()

    def pipeline(self, cmds):
        self.sock.sendall(b"".join(cmd(*c) for c in cmds))
        return [self.reply() for _ in cmds]


def slot_map(port):
    """slot -> port, from CLUSTER SLOTS of the node at port."""
    c = Conn(port)
    try:
        slots = c.call("CLUSTER", "SLOTS")
    finally:
        c.close()
    owner = [None] * SLOTS
    for r in slots:
        for s in range(r[0], r[1] + 1):
            owner[s] = int(r[2][1])
    return owner


class NotSent(Exception):
    """The command was not sent (its node could not be reached)."""


class Router:
    """Redirect-following single-key commands (one connection per node)."""

    def __init__(self, port):
        self.owner = slot_map(port)
        self.conns = {}
        self.redirects = 0

    def conn(self, port):
        c = self.conns.get(port)
        if c is None:
            try:
                c = self.conns[port] = Conn(port, timeout=10)
            except OSError as e:
                raise NotSent("node %d: %s" % (port, e))
        return c

    def drop(self, port):
        c = self.conns.pop(port, None)
        if c:
            c.close()

    def call(self, key, *args, tries=50):
        port = self.owner[key_slot(key)]
        asking = False
        for _ in range(tries):
            if port is None:
                raise RuntimeError("CLUSTERDOWN no owner known")
            c = self.conn(port)
            try:
                if asking:
                    c.sock.sendall(cmd("ASKING") + cmd(*args))
                    c.reply()
                    r = c.reply()
                else:
                    r = c.call(*args)
            except (OSError, ConnectionError):
                self.drop(port)
                raise
            asking = False
            if isinstance(r, RuntimeError):
                msg = str(r)
                if msg.startswith("MOVED "):
                    self.redirects += 1
                    slot, addr = msg.split()[1:3]
                    port = int(addr.rsplit(":", 1)[1])
                    self.owner[int(slot)] = port
                    continue
                if msg.startswith("ASK "):
                    self.redirects += 1
                    port = int(msg.split()[2].rsplit(":", 1)[1])
                    asking = True
                    continue
                if msg.startswith("TRYAGAIN") or msg.startswith("CLUSTERDOWN"):
                    time.sleep(0.01)
                    continue
            return r
        raise RuntimeError("too many redirects for %r" % key)


def write(port, log, stop, threads=4, keys=4000, tag="r"):
    lock = threading.Lock()
    out = open(log, "w")
    counts = {"acked": 0, "unknown": 0, "refused": 0, "errors": 0, "redirects": 0}
    per = max(1, keys // threads)

    def worker(t):
        router = None
        seq = 0
        i = 0
        while not os.path.exists(stop):
            key = "w:%d:%d" % (t, i)
            val = "%s:%d:%d:%d" % (tag, t, i, seq)
            if router is None:
                try:
                    router = Router(port)
                except (OSError, ConnectionError):
                    time.sleep(0.05)
                    continue
            try:
                r = router.call(key, "SET", key, val)
            except NotSent:
                with lock:
                    counts["refused"] += 1
                time.sleep(0.05)
                i = (i + 1) % per
                continue
            except (OSError, ConnectionError):
                # The reply never came: the write may or may not have happened.
                with lock:
                    out.write("U %s %s\n" % (key, val))
                    counts["unknown"] += 1
                time.sleep(0.05)
                seq += 1
                i = (i + 1) % per
                continue
            except RuntimeError as e:
                # No owner reachable yet (a node restarting): the command was not run.
                with lock:
                    counts["errors"] += 1
                time.sleep(0.05)
                router = None
                print("writer %d: %s" % (t, e), file=sys.stderr)
                continue
            with lock:
                if r == "OK":
                    out.write("A %s %s\n" % (key, val))
                    counts["acked"] += 1
                else:
                    counts["errors"] += 1
                    print("writer %d: SET %s: %r" % (t, key, r), file=sys.stderr)
            seq += 1
            i = (i + 1) % per
        if router:
            with lock:
                counts["redirects"] += router.redirects

    ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.close()
    print("writer: %(acked)d acknowledged, %(unknown)d unknown, %(refused)d not sent, "
          "%(errors)d errors, %(redirects)d redirects followed" % counts)
    return 0 if counts["errors"] == 0 and counts["acked"] > 0 else 1


def node_keys(port):
    """Every key a node holds, by its own SCAN."""
    c = Conn(port)
    keys = []
    cursor = b"0"
    while True:
        r = c.call("SCAN", cursor, "COUNT", 1000)
        if isinstance(r, RuntimeError):
            raise r
        cursor, part = r
        keys.extend(part)
        if cursor == b"0":
            break
    c.close()
    return keys


def node_owned(port):
    """The slots the node at port says it owns (its CLUSTER NODES myself line)."""
    c = Conn(port)
    text = c.call("CLUSTER", "NODES").decode()
    c.close()
    owned = set()
    for line in text.splitlines():
        f = line.split()
        if len(f) < 8 or "myself" not in f[2]:
            continue
        for r in f[8:]:
            if r.startswith("["):
                continue
            a, _, b = r.partition("-")
            owned.update(range(int(a), int(b or a) + 1))
    return owned


def verify(ports, log):
    fails = []
    where = {}
    for p in ports:
        owned = node_owned(p)
        for k in node_keys(p):
            if k in where:
                fails.append("key %r on both %d and %d" % (k, where[k], p))
            where[k] = p
            if key_slot(k) not in owned:
                fails.append("node %d holds %r of slot %d, which it does not own"
                             % (p, k, key_slot(k)))
    # Expected values: the last acknowledged one, or any write sent after it
    # whose reply never came.
    last = {}
    maybe = {}
    for line in open(log):
        kind, key, val = line.split()
        if kind == "A":
            last[key] = val
            maybe[key] = set()
        else:
            maybe.setdefault(key, set()).add(val)
    # Read every acknowledged key: pipelined to the owner the cluster names,
    # one redirect-following call for any reply that is a redirect.
    router = Router(ports[0])
    by_port = {}
    for key in last:
        if key.encode() not in where:
            fails.append("acknowledged key %s (value %s) is on no node" % (key, last[key]))
            continue
        by_port.setdefault(router.owner[key_slot(key)], []).append(key)
    redirected = 0
    for p, keys in by_port.items():
        c = Conn(p)
        for at in range(0, len(keys), 500):
            part = keys[at:at + 500]
            for key, got in zip(part, c.pipeline([("GET", k) for k in part])):
                if isinstance(got, RuntimeError):
                    redirected += 1
                    got = router.call(key, "GET", key)
                got = got.decode() if isinstance(got, bytes) else got
                if got != last[key] and got not in maybe.get(key, ()):
                    fails.append("%s reads %r, last acknowledged %r" % (key, got, last[key]))
        c.close()
    # COUNTKEYSINSLOT against SCAN for a sample of slots (and the keys' slots).
    by_slot = {}
    for k, p in where.items():
        by_slot.setdefault((p, key_slot(k)), 0)
        by_slot[(p, key_slot(k))] += 1
    rnd = random.Random(7)
    sample = rnd.sample(sorted(by_slot), min(20, len(by_slot)))
    for p, s in sample:
        c = Conn(p)
        n = c.call("CLUSTER", "COUNTKEYSINSLOT", s)
        c.close()
        if n != by_slot[(p, s)]:
            fails.append("node %d: COUNTKEYSINSLOT %d = %r, SCAN found %d" % (p, s, n, by_slot[(p, s)]))
    for f in fails[:30]:
        print("FAIL: " + f)
    if len(fails) > 30:
        print("... %d failures in all" % len(fails))
    print("verify: %d keys on %d nodes, %d acknowledged keys read (%d after a redirect), "
          "%d failures" % (len(where), len(ports), len(last), redirected, len(fails)))
    return 1 if fails else 0


def fill(port, log, prefix, n, lo, hi):
    keys = []
    j = 0
    while len(keys) < n:
        k = "%s:%d" % (prefix, j)
        if lo <= key_slot(k) <= hi:
            keys.append(k)
        j += 1
    c = Conn(port)
    out = open(log, "w")
    bad = 0
    for at in range(0, n, 500):
        part = keys[at:at + 500]
        for k, r in zip(part, c.pipeline([("SET", k, "fill:" + k) for k in part])):
            if r == "OK":
                out.write("A %s fill:%s\n" % (k, k))
            else:
                bad += 1
                print("fill: SET %s: %r" % (k, r))
    out.close()
    c.close()
    print("fill: %d keys in slots %d-%d" % (n - bad, lo, hi))
    return 1 if bad else 0


def slotkeys(prefix):
    found = {}
    i = 0
    while len(found) < SLOTS:
        tag = "%x" % i
        s = key_slot(tag)
        if s not in found:
            found[s] = tag
        i += 1
    for s in range(SLOTS):
        print("%s{%s} %d" % (prefix, found[s], s))
    return 0


def main():
    a = sys.argv[1:]
    if a[0] == "slotkeys":
        return slotkeys(a[1])
    if a[0] == "slot":
        print(key_slot(a[1]))
        return 0
    if a[0] == "write":
        threads = int(a[4]) if len(a) > 4 else 4
        keys = int(a[5]) if len(a) > 5 else 4000
        tag = a[6] if len(a) > 6 else "r"
        return write(int(a[1]), a[2], a[3], threads, keys, tag)
    if a[0] == "slotsort":
        lines = sys.stdin.read().splitlines()
        lines.sort(key=lambda l: (key_slot(l.split()[0]), l))
        print("\n".join(lines))
        return 0
    if a[0] == "fill":
        return fill(int(a[1]), a[2], a[3], int(a[4]), int(a[5]), int(a[6]))
    if a[0] == "verify":
        return verify([int(p) for p in a[1].split(",")], a[2])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
