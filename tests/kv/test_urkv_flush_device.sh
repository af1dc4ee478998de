#!/bin/bash
# appendfsync always at the device, not by reading data back: the kill -9
# tests cannot tell whether a SET was flushed (the page cache outlives the
# process), and INFO's counters count what urkv asked for, not what reached
# the disk.  So this test reads the flush requests the block device under
# $WORK completed (/sys/dev/block/MAJ:MIN/stat, field 16, since Linux 5.5;
# the kernel counts them on the whole disk):
#   - N SETs sent one at a time, each waiting for its reply, must make at
#     least N flushes reach the disk (a client cannot share a log batch
#     with itself, so each acknowledgement needs a flush of its own);
#   - N GETs sent the same way must make fewer than N / 10: the host is
#     quiet enough for the first count to be urkv's (else Skipped);
#   - M SETs in one pipeline must make fewer than M / 4: group commit
#     shares a flush between the commits of a batch.
# Before that, a calibration: N fdatasync(2) calls on a file in $WORK must
# show as N flushes, else the device does not count them (a write-through
# cache, which the kernel answers without a flush; a device-mapper or
# other bio-based device) and the test reports Skipped with the reason.
# Run serially (ctest RUN_SERIAL): other tests' flushes would blur the
# counts.  Loopback only.
. "$(dirname "$0")/urkv_lib.sh"
need_redis_tools redis-cli
command -v python3 > /dev/null || { echo "SKIP: python3 is not installed"; exit 77; }
N=${N:-200}

# The sysfs directory of the disk under $WORK, or a reason on stderr.
disk_dir() {
	local d sys
	d=$(stat -c '%Hd:%Ld' "$WORK") || return 1
	sys=/sys/dev/block/$d
	if [ ! -e "$sys/stat" ]; then
		echo "$WORK is on device $d, which is not a block device (tmpfs, overlayfs, NFS...)" >&2
		return 1
	fi
	sys=$(readlink -f "$sys")
	[ -e "$sys/partition" ] && sys=$(dirname "$sys")
	echo "$sys"
}

flushes() {
	awk '{ print $16 }' "$DISK/stat"
}

DISK=$(disk_dir) || { echo "SKIP: cannot find the block device under $WORK"; exit 77; }
if [ -z "$(flushes)" ]; then
	echo "SKIP: $DISK/stat has no flush count (kernel before 5.5)"
	exit 77
fi
wc_mode=$(cat "$DISK/queue/write_cache" 2> /dev/null || echo unknown)
echo "disk $DISK, write cache: $wc_mode"

f0=$(flushes)
python3 - "$WORK/calib" "$N" << 'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o600)
os.pwrite(fd, b"c" * 4096, 0)
os.fsync(fd)
for i in range(int(sys.argv[2])):
    os.pwrite(fd, bytes([i & 0xff]) * 4096, 0)
    os.fdatasync(fd)
os.close(fd)
EOF
calib=$(( $(flushes) - f0 ))
echo "calibration: $N fdatasync calls, $calib flushes counted at the disk"
if [ "$calib" -lt "$N" ]; then
	echo "SKIP: the disk under $WORK counted $calib flushes for $N fdatasync calls (write cache: $wc_mode): it does not see or count flushes, so this test cannot check urkv's"
	exit 77
fi

# one_by_one CMD PREFIX WANT: N commands CMD PREFIX:i [vi], each sent after the
# previous reply (redis-cli reading stdin); every reply must be WANT (a regex).
one_by_one() {
	local out
	out=$(for i in $(seq 1 "$N"); do
		if [ "$1" = SET ]; then echo "SET $2:$i v$i"; else echo "GET $2:$i"; fi
	done | timeout 60 redis-cli -p "$PORT" 2>&1)
	[ "$(grep -Ec "^$3\$" <<< "$out")" -eq "$N" ] ||
		fail "$1 $2: not $N replies matching $3: [$(sort <<< "$out" | uniq -c | head -5)]"
}

# A disk with FUA gets FUA writes from --sync auto, which its stat counts as
# writes, not flushes: there the test asks for flushes by name.
sync_args=
if [ "$(cat "$DISK/queue/fua" 2> /dev/null)" = 1 ]; then
	sync_args="--sync flush"
	echo "the disk has FUA: urkv runs with $sync_args"
fi
start_urkv fl --data "$WORK/fl.urkv" --size 256M --cores 1 --appendfsync always $sync_args ${URKV_FLUSH_ARGS:-} || exit 1
expect "policy" "always" "$(cli CONFIG GET appendfsync | tail -1)"
cli SET warm up > /dev/null
f0=$(flushes)
one_by_one SET k OK
sets=$(( $(flushes) - f0 ))
echo "$N SETs one at a time: $sets flushes at the disk"

f0=$(flushes)
one_by_one GET k 'v[0-9]+'
gets=$(( $(flushes) - f0 ))
echo "$N GETs one at a time: $gets flushes at the disk"
if [ "$gets" -ge $((N / 10)) ]; then
	echo "SKIP: $gets flushes reached the disk while urkv only read: the host flushes too often for the counts to be urkv's"
	exit 77
fi
[ "$sets" -ge "$N" ] || fail "appendfsync always: $N acknowledged SETs made only $sets flushes reach the disk"

M=$((N * 10))
f0=$(flushes)
out=$(for i in $(seq 1 "$M"); do printf '*3\r\n$3\r\nSET\r\n$%d\r\np:%d\r\n$1\r\nv\r\n' $((${#i} + 2)) "$i"; done |
	timeout 60 redis-cli -p "$PORT" --pipe 2>&1)
piped=$(( $(flushes) - f0 ))
echo "$M SETs in one pipeline: $piped flushes at the disk"
grep -q "errors: 0, replies: $M" <<< "$out" || fail "pipeline: [$out]"
[ "$piped" -lt $((M / 4)) ] || fail "group commit: $M pipelined SETs made $piped flushes (want fewer than $((M / 4)))"
[ "$piped" -gt 0 ] || fail "group commit: $M pipelined SETs made no flush reach the disk"
expect "values" "v$N v" "$(cli GET "k:$N") $(cli GET "p:$M")"
stop_urkv || fail "stop"
finish
