#!/usr/bin/env python3
"""Raw RESP client for the urkv tests: sends commands, prints each reply as
Python repr of the raw bytes, optionally from a given source address.

usage: urkv_raw.py PORT [--src ADDR] [--bind-host HOST] CMD [CMD...]
Each CMD is one inline command line; the replies are read one by one.
"""
import socket
import sys

from resp_wire import read_reply


def main():
    args = sys.argv[1:]
    port = int(args.pop(0))
    src = None
    host = "127.0.0.1"
    while args and args[0].startswith("--"):
        opt = args.pop(0)
        if opt == "--src":
            src = args.pop(0)
        elif opt == "--host":
            host = args.pop(0)
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.settimeout(10)
    if src:
        s.bind((src, 0))
    s.connect((host, port))
    f = s.makefile("rb")
    if not args:
        # Only what the server says unprompted (protected mode).
        print(repr(read_reply(f).decode("latin-1")))
        return
    s.sendall(b"".join(a.encode() + b"\r\n" for a in args))
    for _ in args:
        print(repr(read_reply(f).decode("latin-1")))


main()
