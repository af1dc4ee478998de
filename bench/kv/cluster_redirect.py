#!/usr/bin/env python3
"""What a -MOVED or -ASK redirect costs a client: one client, one request at a
time, GET of one key of node A's slots, in microseconds per request:

  direct        GET sent to the owner (a client whose slot map is right);
  MOVED         GET sent to node B, -MOVED, GET again on an open connection to
                the owner (a client that keeps connections but not the map);
  MOVED+connect GET sent to B, -MOVED, a new connection to the owner, GET,
                close (redis-cli -c reconnects like this on each redirect);
  ASK           the key's slot MIGRATING from A to B and the key missing on A:
                GET to A, -ASK, ASKING + GET pipelined on an open connection
                to B (the slot is set STABLE again afterwards).

usage: cluster_redirect.py PORT_A PORT_B N REPEATS   (prints median of REPEATS)
"""
import socket
import statistics
import sys
import time


def cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.sock.makefile("rb")

    def reply(self):
        line = self.f.readline()
        if line[:1] == b"$":
            n = int(line[1:-2])
            return None if n < 0 else self.f.read(n + 2)[:-2]
        if line[:1] == b"*":
            return [self.reply() for _ in range(int(line[1:-2]))]
        return line[:-2].decode()

    def call(self, *args):
        self.sock.sendall(cmd(*args))
        return self.reply()

    def close(self):
        self.sock.close()


def owner_port(conn, slot):
    for r in conn.call("CLUSTER", "SLOTS"):
        lo, hi, port = int(r[0][1:]), int(r[1][1:]), int(r[2][1][1:])
        if lo <= slot <= hi:
            return port
    return None


def main():
    pa, pb, n, repeats = (int(x) for x in sys.argv[1:5])
    a, b = Conn(pa), Conn(pb)
    key = None
    for i in range(1000):
        k = "redir:%d" % i
        slot = int(a.call("CLUSTER", "KEYSLOT", k)[1:])
        if owner_port(a, slot) == pa:
            key = k
            break
    assert key, "no key of node A found"
    a.call("SET", key, "v")

    def direct():
        r = a.call("GET", key)
        assert r == b"v", r

    def moved():
        r = b.call("GET", key)
        assert r.startswith("-MOVED"), r
        assert a.call("GET", key) == b"v"

    def moved_connect():
        r = b.call("GET", key)
        assert r.startswith("-MOVED"), r
        c = Conn(int(r.rsplit(":", 1)[1]))
        assert c.call("GET", key) == b"v"
        c.close()

    missing = key + ":missing"
    mslot = int(a.call("CLUSTER", "KEYSLOT", missing)[1:])
    ida, idb = a.call("CLUSTER", "MYID").decode(), b.call("CLUSTER", "MYID").decode()

    def ask():
        r = a.call("GET", missing)
        assert r.startswith("-ASK"), r
        b.sock.sendall(cmd("ASKING") + cmd("GET", missing))
        assert b.reply() == "+OK"
        assert b.reply() is None

    cases = [("direct", direct), ("MOVED", moved), ("MOVED+connect", moved_connect)]
    ask_ok = owner_port(a, mslot) == pa
    if ask_ok:
        assert b.call("CLUSTER", "SETSLOT", mslot, "IMPORTING", ida) == "+OK"
        assert a.call("CLUSTER", "SETSLOT", mslot, "MIGRATING", idb) == "+OK"
        cases.append(("ASK", ask))
    results = {name: [] for name, _ in cases}
    try:
        for _ in range(repeats):
            for name, fn in cases:
                for _ in range(100):
                    fn()
                t = time.perf_counter()
                for _ in range(n):
                    fn()
                results[name].append(1e6 * (time.perf_counter() - t) / n)
    finally:
        if ask_ok:
            a.call("CLUSTER", "SETSLOT", mslot, "STABLE")
            b.call("CLUSTER", "SETSLOT", mslot, "STABLE")
    base = statistics.median(results["direct"])
    for name, _ in cases:
        m = statistics.median(results[name])
        print("  %-14s %7.1f us/request  (+%.1f us, %.2fx direct)   runs: %s"
              % (name, m, m - base, m / base, " ".join("%.1f" % x for x in results[name])))


if __name__ == "__main__":
    main()
