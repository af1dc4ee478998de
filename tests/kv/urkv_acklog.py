#!/usr/bin/env python3
"""Write load with an acknowledgement log, and its check after a crash.

  urkv_acklog.py write PORT LOG TAG  SETs ev:<i> = TAG:<i> pipelined (32 in flight) until the
                                   server goes away; LOG gets "i ack_time" per reply
                                   (CLOCK_REALTIME seconds).
  urkv_acklog.py check PORT LOG TAG KILL_TIME BOUND
                                   after the restart: every acknowledged key whose ack is
                                   older than KILL_TIME - BOUND must hold its value; prints
                                   how many acknowledged writes were lost and the oldest
                                   lost one's age.  Exit 1 if the bound is broken.
"""
import socket
import sys
import time

from resp_wire import cmd

DEPTH = 32


def write(port, log, tag):
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")
    sent = acked = 0
    out = open(log, "w")
    try:
        while True:
            burst = b""
            while sent - acked < DEPTH:
                burst += cmd("SET", "ev:%d" % sent, "%s:%d" % (tag, sent))
                sent += 1
            s.sendall(burst)
            line = f.readline()
            if not line.endswith(b"\r\n"):
                break  # The end of the stream, or a reply cut off by the kill.
            now = time.time()
            if line != b"+OK\r\n":
                print("unexpected reply %r" % line)
                sys.exit(1)
            out.write("%d %.6f\n" % (acked, now))
            acked += 1
    except OSError:
        pass
    out.close()
    print("acknowledged %d writes" % acked)


def check(port, log, tag, kill_time, bound):
    acks = [tuple(l.split()) for l in open(log)]
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")
    lost = []
    for start in range(0, len(acks), 500):
        part = acks[start:start + 500]
        s.sendall(cmd("MGET", *["ev:%s" % i for i, _ in part]))
        head = f.readline()
        assert head.startswith(b"*"), head
        for i, t in part:
            h = f.readline()
            if h == b"$-1\r\n":
                lost.append((int(i), float(t)))
                continue
            v = f.read(int(h[1:-2]) + 2)[:-2]
            if v != ("%s:%s" % (tag, i)).encode():
                if v.startswith(b"r") and not v.startswith(tag.encode() + b":"):
                    lost.append((int(i), float(t)))  # An older round's value: this write is lost.
                    continue
                print("FAIL: ev:%s holds %r" % (i, v))
                sys.exit(1)
    if not lost:
        print("%d acknowledged writes, none lost" % len(acks))
        return
    oldest = min(t for _, t in lost)
    age = kill_time - oldest
    print("%d acknowledged writes, %d lost; the oldest lost one was acknowledged %.3f s "
          "before the kill" % (len(acks), len(lost), age))
    if age > bound:
        print("FAIL: a write acknowledged more than %.1f s before the kill was lost" % bound)
        sys.exit(1)


if sys.argv[1] == "write":
    write(int(sys.argv[2]), sys.argv[3], sys.argv[4])
else:
    check(int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5]), float(sys.argv[6]))
