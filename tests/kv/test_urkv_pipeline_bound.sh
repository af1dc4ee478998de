#!/usr/bin/env bash
# Pipelined input is bounded by --max-request (docs/kv.md, "Limits of
# hostile or unlucky clients").
#  - urkv --max-request 1M; 10,000 keys.
#  - A client pipelines 200 MGETs of all 10,000 keys (130 KB each, 26 MB
#    in all) without reading its replies, for 3 s.  Meanwhile CLIENT LIST
#    shows its qbuf (unparsed plus staged input): it must stay within
#    --max-request + 16 KiB (where the receive pauses) + 4 MiB (what one
#    reactor round can receive before the pause lands: the core's 256
#    provided buffers of 16 KiB, server.c).  Before the fix it grew to
#    23.9 MB of the 26 MB sent.
#  - Then the client reads: every one of the 200 replies arrives, byte for
#    byte as expected (each MGET starts at another key, so a lost, repeated
#    or reordered request shows).
#
# usage: URKV=path/to/urkv test_urkv_pipeline_bound.sh
. "$(dirname "$0")/urkv_lib.sh"
command -v python3 > /dev/null || { echo "SKIP: python3 is not installed"; exit 77; }

MAX_REQUEST=$((1 << 20))
start_urkv main --data "$WORK/data" --size 256M --cache 64M --cores 2 --no-pin \
	--max-request "$MAX_REQUEST" || exit 1

got=$(PYTHONPATH="$(dirname "$0")" timeout 200 python3 - "$PORT" <<'EOF'
import sys, threading, time

from resp_wire import Conn, cmd, connect

port = int(sys.argv[1])
NKEYS, NMGET = 10000, 200


ctl = Conn(port, 120)
call = ctl.call


keys = [b"k:%05d" % i for i in range(NKEYS)]
vals = [b"v%05d" % i for i in range(NKEYS)]
for b in range(0, NKEYS, 1000):
    pairs = []
    for i in range(b, b + 1000):
        pairs += [keys[i], vals[i]]
    assert call("MSET", *pairs) == b"+OK\r\n"

# MGET j asks for keys j, j+1, ... (mod NKEYS): each reply is different.
reqs, want = [], []
for j in range(NMGET):
    order = [(j * 37 + i) % NKEYS for i in range(NKEYS)]
    reqs.append(cmd(b"MGET", *[keys[i] for i in order]))
    want.append(b"*%d\r\n" % NKEYS + b"".join(b"$%d\r\n%s\r\n" % (len(vals[i]), vals[i]) for i in order))
reqs = b"".join(reqs)
want = b"".join(want)

ctl_id = int(call("CLIENT", "ID")[1:-2])
flood = connect(port, 120)
sent = [0]


def sender():
    # Blocks once urkv stops taking input; goes on once the replies are read.
    mv = memoryview(reqs)
    while sent[0] < len(mv):
        sent[0] += flood.send(mv[sent[0]:sent[0] + (1 << 20)])


th = threading.Thread(target=sender)
th.start()


def flood_qbuf():
    for line in call("CLIENT", "LIST").decode().split("\n"):
        f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        if f.get("id") and int(f["id"]) != ctl_id:
            return int(f["qbuf"])
    return 0


qmax, t_end = 0, time.time() + 3
while time.time() < t_end:
    qmax = max(qmax, flood_qbuf())
    time.sleep(0.02)
print("qbuf_max %d (informational); sent %d of %d bytes before reading" % (qmax, sent[0], len(reqs)))
bound = (1 << 20) + (16 << 10) + 256 * (16 << 10)
print("qbuf_bounded", "yes" if qmax <= bound else "no: %d > %d" % (qmax, bound))

# Now read: every reply, in order, whole.
got = bytearray()
while len(got) < len(want):
    d = flood.recv(1 << 20)
    if not d:
        break
    got += d
th.join(60)
print("replies", "ok" if bytes(got) == want else "bad: %d of %d bytes" % (len(got), len(want)))
print("sender_done", "yes" if not th.is_alive() and sent[0] == len(reqs) else "no")
print("ping", call("PING").decode().strip())
EOF
)
echo "$got"
expect "qbuf under --max-request $MAX_REQUEST" "qbuf_bounded yes" "$(grep '^qbuf_bounded' <<< "$got")"
expect "200 MGET replies" "replies ok" "$(grep '^replies' <<< "$got")"
expect "all requests sent" "sender_done yes" "$(grep '^sender_done' <<< "$got")"
expect "PING afterwards" "ping +PONG" "$(grep '^ping' <<< "$got")"
stop_urkv || fail "urkv did not stop cleanly"
finish
