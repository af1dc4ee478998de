#!/usr/bin/env bash
# urkv with large values through redis-cli: a 64 MiB SET and GET (byte for
# byte), the value again after a restart, replaced and deleted with the
# pages given back (INFO's urt section), CONFIG GET proto-max-bulk-len, and
# a value over --proto-max-bulk-len refused with the option named while the
# old value stays; APPEND, SETRANGE, SETBIT, GETRANGE, INCRBYFLOAT, RENAME,
# GETSET, GETDEL and SET ... GET on 3-5 MiB values, byte for byte, a
# SETRANGE and an APPEND past proto-max-bulk-len refused as Redis refuses
# them, and every page back once the values are gone.
#
# usage: URKV=path/to/urkv test_urkv_big.sh
. "$(dirname "$0")/urkv_lib.sh"
need_redis_tools redis-cli

start_urkv main --data "$WORK/data" --size 400M --cache 32M --cores 1 --proto-max-bulk-len 80M || exit 1
cli() { timeout 300 redis-cli -p "$PORT" "$@"; }	# ASan builds on a busy machine take a minute per 64 MiB
# pages_in_use: allocated pages minus free ones, over the shards (INFO urt).
pages_in_use() {
	cli INFO urt | tr -d '\r' | awk -F'[=,:]' '
		{ for (i = 1; i < NF; i++) { if ($i == "pages_used") u += $(i + 1); if ($i == "pages_free") f += $(i + 1) } }
		END { print u - f }'
}

expect "CONFIG GET proto-max-bulk-len" "proto-max-bulk-len 83886080" \
	"$(cli CONFIG GET proto-max-bulk-len | tr '\n' ' ' | sed 's/ $//')"
expect "SET small" OK "$(cli SET big small)"
base=$(pages_in_use)

head -c $((64 << 20)) /dev/urandom > "$WORK/v64"
t0=$(date +%s%N)
expect "SET 64 MiB" OK "$(cli -x SET big < "$WORK/v64")"
t1=$(date +%s%N)
t2=$(date +%s%N)
cli GET big | head -c $((64 << 20)) > "$WORK/got"
t3=$(date +%s%N)
cmp -s "$WORK/v64" "$WORK/got" || fail "GET 64 MiB: the bytes differ"
echo "SET 64 MiB: $(( (t1 - t0) / 1000000 )) ms; GET 64 MiB: $(( (t3 - t2) / 1000000 )) ms (redis-cli, loopback)"
expect "STRLEN" $((64 << 20)) "$(cli STRLEN big)"
used=$(pages_in_use)
[ "$used" -ge $((base + 16384)) ] || fail "pages in use $base -> $used for 64 MiB"

echo "== over --proto-max-bulk-len"
head -c $((81 << 20)) /dev/zero > "$WORK/v81"
reply=$(cli -x SET big < "$WORK/v81" 2>&1)
case "$reply" in
*"proto-max-bulk-len 83886080"*) ;;
*) fail "SET 81 MiB: want an error naming --proto-max-bulk-len, got [$reply]" ;;
esac
expect "the old value stays" $((64 << 20)) "$(cli STRLEN big)"

echo "== restart"
stop_urkv || fail "urkv did not stop cleanly"
start_urkv again --data "$WORK/data" --cores 1 --proto-max-bulk-len 80M || exit 1
cli GET big | head -c $((64 << 20)) > "$WORK/got"
cmp -s "$WORK/v64" "$WORK/got" || fail "GET 64 MiB after restart: the bytes differ"
expect "pages after restart" "$used" "$(pages_in_use)"

echo "== replace and delete"
head -c $((3 << 20)) /dev/urandom > "$WORK/v3"
expect "SET 3 MiB" OK "$(cli -x SET big < "$WORK/v3")"
cli GET big | head -c $((3 << 20)) > "$WORK/got"
cmp -s "$WORK/v3" "$WORK/got" || fail "GET 3 MiB: the bytes differ"
expect "SET small again" OK "$(cli SET big small)"
expect "pages back after replace" "$base" "$(pages_in_use)"
expect "SET 3 MiB again" OK "$(cli -x SET big < "$WORK/v3")"
expect "DEL" 1 "$(cli DEL big)"
expect "SET small after DEL" OK "$(cli SET big small)"
expect "pages back after DEL" "$base" "$(pages_in_use)"
echo "== read-modify-write commands on large values"
cli -x SET big < "$WORK/v3" >/dev/null
printf 'tail' > "$WORK/tail"
expect "APPEND to a 3 MiB value" $(((3 << 20) + 4)) "$(cli APPEND big tail)"
cat "$WORK/v3" "$WORK/tail" > "$WORK/want"
cli GET big | head -c $(((3 << 20) + 4)) > "$WORK/got"
cmp -s "$WORK/want" "$WORK/got" || fail "APPEND 3 MiB: the bytes differ"
expect "SETRANGE inside a large value" $(((3 << 20) + 4)) "$(cli SETRANGE big 1000000 XYZ)"
expect "GETRANGE sees it" "XYZ" "$(cli GETRANGE big 1000000 1000002)"
expect "SETBIT past 4 MiB" 0 "$(cli SETBIT big $((5 << 23)) 1)"
expect "STRLEN after SETBIT" $(((5 << 20) + 1)) "$(cli STRLEN big)"
expect "GETBIT" 1 "$(cli GETBIT big $((5 << 23)))"
expect "INCRBYFLOAT on a large value" "ERR value is not a valid float" "$(cli INCRBYFLOAT big 1)"
expect "RENAME of a large value" OK "$(cli RENAME big big2)"
expect "RENAME: source gone" 0 "$(cli EXISTS big)"
expect "RENAME: target length" $(((5 << 20) + 1)) "$(cli STRLEN big2)"
expect "GETRANGE after RENAME" "XYZ" "$(cli GETRANGE big2 1000000 1000002)"
expect "COPY of a large value" 1 "$(cli COPY big2 big3)"
expect "COPY: length" $(((5 << 20) + 1)) "$(cli STRLEN big3)"
cli -x SET big < "$WORK/v3" >/dev/null
cli GETSET big small | head -c $((3 << 20)) > "$WORK/got"
cmp -s "$WORK/v3" "$WORK/got" || fail "GETSET: the old 3 MiB value differs"
expect "GETSET stored the new value" small "$(cli GET big)"
cli -x SET big < "$WORK/v3" >/dev/null
cli GETDEL big | head -c $((3 << 20)) > "$WORK/got"
cmp -s "$WORK/v3" "$WORK/got" || fail "GETDEL: the 3 MiB value differs"
expect "GETDEL deleted it" 0 "$(cli EXISTS big)"
cli -x SET big < "$WORK/v3" >/dev/null
cli SET big small GET | head -c $((3 << 20)) > "$WORK/got"
cmp -s "$WORK/v3" "$WORK/got" || fail "SET ... GET: the old 3 MiB value differs"
expect "SETRANGE past --proto-max-bulk-len" "ERR string exceeds maximum allowed size (proto-max-bulk-len)" \
	"$(cli SETRANGE big $((80 << 20)) x)"
expect "SETRANGE past --proto-max-bulk-len: value kept" small "$(cli GET big)"
# 80 MiB is a bulk the protocol takes, but appended to "small" it makes a string over the limit.
head -c $((80 << 20)) /dev/zero > "$WORK/v80"
expect "APPEND past --proto-max-bulk-len" "ERR string exceeds maximum allowed size (proto-max-bulk-len)" \
	"$(cli -x APPEND big < "$WORK/v80")"
rm -f "$WORK/v80"
expect "APPEND past --proto-max-bulk-len: value kept" small "$(cli GET big)"
expect "DEL big2, big3" 2 "$(cli DEL big2 big3)"
expect "SET small after the updates" OK "$(cli SET big small)"
expect "pages back after the updates" "$base" "$(pages_in_use)"

stop_urkv || fail "urkv did not stop cleanly"
[ "$FAILS" -eq 0 ] || exit 1
echo "PASS"
