#!/usr/bin/env bash
# Damage that only the B+tree's own checks can see names its page too.
# A page whose checksum fails is named by the page store (urkv_ops, "a
# corrupt page is logged, once"); here the damaged page is resealed with a
# valid checksum (CRC32C recomputed), so the page store reads it as good
# and the tree finds it wrong:
#  1. a leaf whose node type byte says overflow page (a page that is not a
#     node where the tree points at a node);
#  2. a leaf whose node type byte says internal node (its header passes the
#     page store's node check, the tree finds the wrong node type);
#  3. an overflow page of a 20,000-byte value whose type byte says meta
#     page (not an overflow page of the value).
# Each GET answers the corrupt error and urkv's damage line on stderr
# names shard 0 and that page's number, not "no bad page recorded".
#
# usage: URKV=path/to/urkv test_urkv_treecheck.sh
. "$(dirname "$0")/urkv_lib.sh"
need_redis_tools redis-cli
command -v python3 > /dev/null || { echo "SKIP: python3 is not installed"; exit 77; }

# reseal FILE MARK NEWTYPE: in the last copy of MARK's page in FILE (the
# home page: the log comes first), sets the tree's type byte (the first
# byte after the 32-byte page header) to NEWTYPE and recomputes the page's
# CRC32C (of the page with its crc field zero).  Prints the page number the
# header carries, after checking that the old checksum was right (so the
# CRC here is the engine's).
reseal() {
	python3 - "$@" <<'PY'
import struct, sys

def crc32c(data, crc=0):
    table = crc32c.table
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF

crc32c.table = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    crc32c.table.append(c)

path, mark, newtype = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
PAGE = 4096
with open(path, "r+b") as f:
    data = f.read()
    at = data.rfind(mark)
    if at < 0:
        sys.exit("mark not found")
    off = at // PAGE * PAGE
    page = bytearray(data[off:off + PAGE])
    crc, = struct.unpack_from("<I", page, 0)
    pgno, = struct.unpack_from("<Q", page, 8)
    if crc32c(b"\0\0\0\0" + bytes(page[4:])) != crc:
        sys.exit("the page's checksum is not CRC32C as computed here")
    page[32] = newtype
    struct.pack_into("<I", page, 0, crc32c(b"\0\0\0\0" + bytes(page[4:])))
    f.seek(off)
    f.write(page)
print(pgno)
PY
}

start_urkv fill --data "$WORK/tc.urkv" --size 64M --cache 16M --cores 1 || exit 1
# 100 keys of 300 bytes: several leaves under an internal root; one value
# of 20,000 bytes under a key after them (in another leaf than ck000's):
# a chain of overflow pages.
awk 'BEGIN { v = sprintf("%300s", ""); gsub(/ /, "q", v)
	for (i = 0; i < 100; i++) printf "*3\r\n$3\r\nSET\r\n$5\r\nck%03d\r\n$307\r\nMARK%03d%s\r\n", i, i, v }' |
	cli --pipe > /dev/null
big=$(python3 -c 'print("BIGVAL" + "b" * 19994)')
expect "SET of the large value" OK "$(cli SET zbig "$big")"
expect "a leaf key before the damage" "MARK050" "$(cli GET ck050 | head -c 7)"
stop_urkv || fail "stop before damaging pages"

leaf=$(reseal "$WORK/tc.urkv" MARK000qqq 4) || { fail "reseal of the leaf: $leaf"; finish; }
# A middle leaf (ck050's): neither the first nor the last, where zbig is.
inner=$(reseal "$WORK/tc.urkv" MARK050qqq 3) || { fail "reseal of a middle leaf: $inner"; finish; }
[ "$leaf" != "$inner" ] || fail "the two retyped leaves are one: $leaf"
# The value's first overflow page starts with it (after the 16-byte overflow header).
ovf=$(reseal "$WORK/tc.urkv" BIGVALbbbb 1) || { fail "reseal of the overflow page: $ovf"; finish; }
[ "$leaf" != "$ovf" ] || fail "the two damaged pages are one: $leaf"

start_urkv tc2 --data "$WORK/tc.urkv" --cache 16M --cores 1 || exit 1
CORRUPT="ERR store error: urt: on-disk data is corrupt (checksum or consistency check failed)"
expect "GET of a key in the retyped leaf" "$CORRUPT" "$(cli GET ck000)"
expect "GET of the value with a retyped overflow page" "$CORRUPT" "$(cli GET zbig)"
expect "GET of a key in the leaf retyped as internal" "$CORRUPT" "$(cli GET ck050)"
expect "a key in another leaf still reads" "MARK099" "$(cli GET ck099 | head -c 7)"
line() { grep "^urkv: store error .* of key \"$1\"" "$WORK/tc2.log" | head -1; }
TAIL="$(echo "$CORRUPT" | sed 's/^ERR store error: //'); repeats are logged once a minute"
expect "the leaf's damage line" \
	"urkv: store error (shard 0, page $leaf) in get of key \"ck000\": $TAIL" "$(line ck000)"
expect "the leaf-typed-internal's damage line" \
	"urkv: store error (shard 0, page $inner) in get of key \"ck050\": $TAIL" "$(line ck050)"
expect "the overflow page's damage line" \
	"urkv: store error (shard 0, page $ovf) in get of key \"zbig\": $TAIL" "$(line zbig)"
grep -q "no bad page recorded" "$WORK/tc2.log" && fail "a line names no page: $(grep 'no bad page' "$WORK/tc2.log")"
stop_urkv || fail "stop after the damaged pages"
finish
