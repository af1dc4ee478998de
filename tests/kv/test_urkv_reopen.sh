#!/usr/bin/env bash
# A store reopened on more cores than it has shards: urkv made the store
# with --cores 1 (one shard) and is restarted with --cores 2 (urkv's default
# on a 2-CPU machine).  Each core's buffer region is sized for one shard of
# half the cache, so the single shard must take no more than that: urkv
# starts and serves the data it kept, instead of refusing with a message
# about library options (buf_region_bytes, pool_pages) urkv has no flag for.
#
# usage: URKV=path/to/urkv test_urkv_reopen.sh
. "$(dirname "$0")/urkv_lib.sh"
need_redis_tools redis-cli

start_urkv one --data "$WORK/data" --size 64M --cache 32M --cores 1 || exit 1
expect "SET on one core" OK "$(cli SET k kept)"
stop_urkv || fail "urkv --cores 1 did not stop cleanly"

for cores in 2 3; do
	if start_urkv more$cores --data "$WORK/data" --cache 32M --cores $cores; then
		expect "GET after reopening on $cores cores" kept "$(cli GET k)"
		expect "INFO: the store keeps its one shard" 1 \
			"$(cli INFO urt | tr -d '\r' | grep -c '^urt_shard[0-9]*:')"
		stop_urkv || fail "urkv --cores $cores did not stop cleanly"
	else
		fail "urkv refused a 1-shard store on $cores cores: $(cat "$WORK/more$cores.log")"
	fi
done
finish
