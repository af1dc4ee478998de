"""RESP on the wire for the urkv tests: a command as a RESP array, and one
whole reply read from a socket file (its raw bytes, nested arrays included).
"""


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
