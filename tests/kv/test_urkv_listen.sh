#!/usr/bin/env bash
# Starting urkv: no data file left behind by a start that failed
# (docs/kv.md, "Starting").
#  - A start that fails to listen (an address not on this host) or to
#    write --port-file removes the data file it created, and keeps one that
#    was there before.
#  - --data "" is refused at option parsing.
#
# usage: URKV=path/to/urkv test_urkv_listen.sh
. "$(dirname "$0")/urkv_lib.sh"
need_redis_tools redis-cli

SMALL=(--size 64M --cache 16M --cores 2 --no-pin)

echo "== failed starts leave no new data file"
out=$(timeout 20 "$URKV" --bind 1.2.3.4 --port 0 --data "$WORK/bind.data" "${SMALL[@]}" --quiet 2>&1)
expect "--bind 1.2.3.4: exit status" 1 "$?"
case "$out" in
*"cannot listen on 1.2.3.4:0: Cannot assign requested address"*) ;;
*) fail "--bind 1.2.3.4: message [$out]" ;;
esac
[ -e "$WORK/bind.data" ] && fail "--bind 1.2.3.4 left its new data file"
out=$(timeout 20 "$URKV" --port 0 --port-file "$WORK/no/such/dir/port" --data "$WORK/pf.data" \
	"${SMALL[@]}" --quiet 2>&1)
expect "--port-file in a missing directory: exit status" 1 "$?"
[ -e "$WORK/pf.data" ] && fail "--port-file in a missing directory left its new data file"
# A data file that was there before the failed start stays, with its keys.
start_urkv kept --data "$WORK/kept.data" "${SMALL[@]}" || exit 1
expect "SET on the kept store" OK "$(cli SET kk kept)"
stop_urkv || fail "stop of the kept store"
out=$(timeout 20 "$URKV" --bind 1.2.3.4 --port 0 --data "$WORK/kept.data" "${SMALL[@]}" --quiet 2>&1)
expect "existing store, --bind 1.2.3.4: exit status" 1 "$?"
[ -e "$WORK/kept.data" ] || fail "a failed start removed a data file it did not create"
start_urkv kept2 --data "$WORK/kept.data" "${SMALL[@]}" || exit 1
expect "the kept store's key" kept "$(cli GET kk)"
stop_urkv || fail "stop of the kept store, again"

echo "== --data \"\""
out=$(timeout 20 "$URKV" --port 0 --data "" "${SMALL[@]}" --quiet 2>&1)
expect "--data '': exit status" 2 "$?"
expect "--data '': message" "urkv: bad value '' for data (want a path of a data file or block device, not empty) (--data)" "$out"
finish
