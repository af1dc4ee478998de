#!/usr/bin/env bash
# A client that resets with a pipeline unread: urkv stops running what it
# received from it (docs/kv.md, "Limits of hostile or unlucky clients").
#  - 20,000 keys of 100 bytes, so one KEYS * replies ~2.2 MB.
#  - A client with a small receive buffer pipelines 100 KEYS * without
#    reading, waits until the first one has run (urkv is then stuck in a
#    send of the second), and resets (SO_LINGER 0).
#  - INFO commandstats: far fewer than 100 KEYS ran (before the fix all
#    100 ran, their output dropped), and connected_clients is back to 1.
#  - A write pipelined before a reset stays applied, and the server still
#    serves (PING, DBSIZE).
#  - CLIENT KILL of itself stops the batch as Redis does (reply, end of
#    stream, nothing after it run); CLIENT KILL ID skips the caller.
#
# usage: URKV=path/to/urkv test_urkv_gone_client.sh
. "$(dirname "$0")/urkv_lib.sh"
command -v python3 > /dev/null || { echo "SKIP: python3 is not installed"; exit 77; }

start_urkv main --data "$WORK/data" --size 256M --cache 64M --cores 2 --no-pin || exit 1

got=$(PYTHONPATH="$(dirname "$0")" timeout 200 python3 - "$PORT" <<'EOF'
import socket, struct, sys, time

from resp_wire import Conn, cmd, connect

port = int(sys.argv[1])
NKEYS, NKEYS_CMDS = 20000, 100


ctl = Conn(port)
call = ctl.call


def info_field(section, name):
    for line in call("INFO", section).decode().split("\r\n"):
        if line.startswith(name + ":"):
            return line.split(":", 1)[1]
    return ""


def keys_calls():
    v = info_field("commandstats", "cmdstat_keys")
    return int(v.split(",")[0].split("=")[1]) if v else 0


def wait_for(pred, what, secs=60):
    t = time.time() + secs
    while time.time() < t:
        if pred():
            return True
        time.sleep(0.05)
    print("timeout waiting for", what)
    return False


# 20,000 keys with 100-byte names (MSETs of 500 pairs, pipelined).
reqs = b""
for b in range(0, NKEYS, 500):
    pairs = []
    for i in range(b, b + 500):
        pairs += [b"k%099d" % i, b"v"]
    reqs += cmd("MSET", *pairs)
ctl.sock.sendall(reqs)
for _ in range(NKEYS // 500):
    assert ctl.reply() == b"+OK\r\n"
print("dbsize", call("DBSIZE").decode().strip())

# 100 KEYS * pipelined, nothing read, then a reset.
bad = connect(port, rcvbuf=4096)
bad.sendall(cmd("KEYS", "*") * NKEYS_CMDS)
wait_for(lambda: keys_calls() >= 1, "the first KEYS to run")
time.sleep(0.3)
bad.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
bad.close()
t0 = time.time()
wait_for(lambda: info_field("clients", "connected_clients") == "1",
         "the reset client to leave", 120)
print("left after %.2f s (informational)" % (time.time() - t0))
calls = keys_calls()
print("keys run: %d of %d (informational)" % (calls, NKEYS_CMDS))
print("keys_few", "yes" if calls < 20 else "no: %d of %d ran" % (calls, NKEYS_CMDS))
print("clients_after", info_field("clients", "connected_clients"))

# A write before the reset was applied; the server still serves.
w = connect(port, rcvbuf=4096)
w.sendall(cmd("SET", "written", "before-reset") + cmd("KEYS", "*") * 10)
wait_for(lambda: call("GET", "written") == b"$12\r\nbefore-reset\r\n", "the SET", 30)
w.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
w.close()
wait_for(lambda: info_field("clients", "connected_clients") == "1",
         "the second reset client to leave", 120)
print("written", call("GET", "written").decode().split("\r\n")[1])
print("ping", call("PING").decode().strip())

# CLIENT KILL of itself, pipelined: as Redis 7 answers (checked against
# redis-server 7.0.15).  Old style (ADDR) kills it: its reply, then the end
# of stream, and the SET after it never runs.  New style (ID) skips the
# caller (SKIPME yes): :0, and the rest runs.
me = Conn(port)
addr = "%s:%d" % me.sock.getsockname()
me.sock.sendall(cmd("CLIENT", "KILL", addr) + cmd("SET", "after-self-kill", "1") + cmd("PING"))
print("selfkill", b"|".join(me.reply() for _ in range(3)).decode().replace("\r\n", ""))
print("after_self_kill", call("EXISTS", "after-self-kill").decode().strip())
me = Conn(port)
myid = int(me.call("CLIENT", "ID")[1:-2])
me.sock.sendall(cmd("CLIENT", "KILL", "ID", myid) + cmd("PING"))
print("skipme", b"|".join(me.reply() for _ in range(2)).decode().replace("\r\n", ""))
EOF
)
echo "$got"
expect "keys loaded" "dbsize :20000" "$(grep '^dbsize' <<< "$got")"
expect "KEYS run for a reset client" "keys_few yes" "$(grep '^keys_few' <<< "$got")"
expect "connected_clients after the reset" "clients_after 1" "$(grep '^clients_after' <<< "$got")"
expect "a SET pipelined before a reset" "written before-reset" "$(grep '^written' <<< "$got")"
expect "PING after the resets" "ping +PONG" "$(grep '^ping' <<< "$got")"
expect "CLIENT KILL of itself, pipelined" "selfkill +OK|<EOF>|<EOF>" "$(grep '^selfkill' <<< "$got")"
expect "a SET pipelined after a self-kill" "after_self_kill :0" "$(grep '^after_self_kill' <<< "$got")"
expect "CLIENT KILL ID of itself (SKIPME)" "skipme :0|+PONG" "$(grep '^skipme' <<< "$got")"
stop_urkv || fail "urkv did not stop cleanly"
finish
