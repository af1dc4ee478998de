"""RESP on the wire for the urkv tests: a command as a RESP array, one
whole reply read from a socket file (its raw bytes, nested arrays included),
and a loopback connection that sends commands and reads their replies.
"""
import socket


def cmd(*args):
    """The RESP array of args (bytes as they are; anything else through str)."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def read_reply(f):
    """One reply from f (a socket's makefile("rb")), raw; b"<EOF>" at the end of stream."""
    line = f.readline()
    if not line:
        return b"<EOF>"
    t = line[:1]
    if t == b"$":
        n = int(line[1:-2])
        return line + (f.read(n + 2) if n >= 0 else b"")
    if t == b"*":
        out = line
        for _ in range(max(int(line[1:-2]), 0)):
            out += read_reply(f)
        return out
    return line


def connect(port, timeout=60, rcvbuf=None):
    """A socket connected to 127.0.0.1:port (rcvbuf: SO_RCVBUF, set before the connect)."""
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


class Conn:
    """A connection whose call() sends one command and returns its raw reply."""

    def __init__(self, port, timeout=60):
        self.sock = connect(port, timeout)
        self.f = self.sock.makefile("rb")

    def reply(self):
        return read_reply(self.f)

    def call(self, *args):
        self.sock.sendall(cmd(*args))
        return self.reply()

    def value(self, *args):
        """call(), as a value: a bulk string's bytes, else the reply's line without CRLF."""
        r = self.call(*args)
        if r[:1] == b"$" and not r.startswith(b"$-1"):
            return r[r.index(b"\r\n") + 2:-2]
        return r.rstrip(b"\r\n")
