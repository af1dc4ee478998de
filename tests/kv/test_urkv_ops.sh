#!/bin/bash
# urkv operations (docs/kv.md): AUTH and HELLO AUTH, protected mode, the
# redis.conf-style config file, CONFIG GET/SET, CLIENT LIST/KILL, SHUTDOWN,
# INFO commandstats/latencystats/errorstats/persistence, LATENCY HISTOGRAM, --log-size, and the
# messages for empty and truncated data files.  Loopback only.
. "$(dirname "$0")/urkv_lib.sh"
need_redis_tools redis-cli
command -v python3 > /dev/null || { echo "SKIP: python3 is not installed"; exit 77; }
RAW="python3 $(dirname "$0")/urkv_raw.py"
# grep -q reads from a here-string, never a pipe: under pipefail, a writer
# cut off by grep's early exit (SIGPIPE) would fail a check that matched.
NOAUTH="'-NOAUTH Authentication required.\\r\\n'"
WRONGPASS="'-WRONGPASS invalid username-password pair or user is disabled.\\r\\n'"

echo "== AUTH"
start_urkv auth --data "$WORK/auth.urkv" --size 64M --cores 2 --requirepass 's3cret pw' || exit 1
expect "GET before AUTH" "$NOAUTH" "$($RAW "$PORT" 'GET k')"
expect "CLIENT LIST before AUTH" "$NOAUTH" "$($RAW "$PORT" 'CLIENT LIST')"
expect "wrong password" "$WRONGPASS" "$($RAW "$PORT" 'AUTH nope')"
expect "wrong user" "$WRONGPASS" "$($RAW "$PORT" "AUTH root 's3cret pw'")"
expect "AUTH then GET in one pipeline" "'+OK\\r\\n' '\$-1\\r\\n'" \
	"$($RAW "$PORT" "AUTH 's3cret pw'" 'GET k' | tr '\n' ' ' | sed 's/ $//')"
expect "AUTH default" "'+OK\\r\\n' '+OK\\r\\n'" \
	"$($RAW "$PORT" "AUTH default 's3cret pw'" 'SET k v' | tr '\n' ' ' | sed 's/ $//')"
expect "HELLO without AUTH" "'-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\\r\\n'" \
	"$($RAW "$PORT" 'HELLO 2')"
expect "HELLO AUTH wrong" "$WRONGPASS" "$($RAW "$PORT" 'HELLO 2 AUTH default x')"
got=$($RAW "$PORT" "HELLO 2 AUTH default 's3cret pw' SETNAME app1" 'CLIENT GETNAME' | tr '\n' ' ')
case "$got" in
"'*14\\r\\n\$6\\r\\nserver\\r\\n\$5\\r\\nredis\\r\\n"*"'\$4\\r\\napp1\\r\\n' ") ;;
*) fail "HELLO AUTH SETNAME: got [$got]" ;;
esac
expect "redis-cli -a" "v" "$(cli -a 's3cret pw' --no-auth-warning GET k)"
expect "redis-cli -a wrong" "NOAUTH Authentication required." \
	"$(timeout 20 redis-cli -p "$PORT" -a wrong --no-auth-warning GET k 2>/dev/null)"
got=$(cli -a 's3cret pw' --no-auth-warning INFO stats | tr -d '\r' | grep '^urkv_auth_failures:')
[ "${got#urkv_auth_failures:}" -ge 4 ] 2>/dev/null || fail "auth failures counted: [$got]"
stop_urkv || fail "stop after AUTH tests"

echo "== protected mode"
start_urkv prot --data "$WORK/prot.urkv" --size 64M --cores 1 --bind 0.0.0.0 || exit 1
DENIED=$($RAW "$PORT" --src 127.0.0.2)
case "$DENIED" in
*"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface."*"accepting connections from the outside.\\r\\n"*) ;;
*) fail "127.0.0.2 without a password: got [$DENIED]" ;;
esac
# Its advice is what urkv supports: no CONFIG REWRITE (urkv has none).
case "$DENIED" in
*"CONFIG REWRITE"*) fail "DENIED advises CONFIG REWRITE, which urkv refuses: [$DENIED]" ;;
*"from internet if you do so. This lasts until the server restarts: to make it permanent, use 2) or 3). 2) Alternatively"*) ;;
*) fail "DENIED: the advice on making the change permanent: [$DENIED]" ;;
esac
expect "127.0.0.1 is local" "'+PONG\\r\\n'" "$($RAW "$PORT" PING)"
expect "CONFIG SET protected-mode no" "OK" "$(cli CONFIG SET protected-mode no)"
expect "127.0.0.2 once protected mode is off" "'+PONG\\r\\n'" "$($RAW "$PORT" --src 127.0.0.2 PING)"
expect "CONFIG SET protected-mode yes" "OK" "$(cli CONFIG SET protected-mode yes)"
expect "CONFIG SET requirepass" "OK" "$(cli CONFIG SET requirepass pw2)"
# A password turns protected mode's refusal into AUTH, as in Redis.
expect "127.0.0.2 with a password" "$NOAUTH" "$($RAW "$PORT" --src 127.0.0.2 'GET k')"
expect "127.0.0.2 AUTH" "'+OK\\r\\n' '+PONG\\r\\n'" \
	"$($RAW "$PORT" --src 127.0.0.2 'AUTH pw2' PING | tr '\n' ' ' | sed 's/ $//')"
stop_urkv || fail "stop after protected mode tests"

echo "== config file"
mkdir -p "$WORK/cfgdir"
cat > "$WORK/ok.conf" <<CONF
# a redis.conf subset
bind 127.0.0.1
protected-mode yes
requirepass "with space"
dir $WORK/cfgdir
dbfilename store.urkv
maxclients 5
timeout 0
appendonly yes
appendfsync everysec
size 64M
cores 1
CONF
start_urkv cfg "$WORK/ok.conf" || exit 1
A=(-a "with space" --no-auth-warning)
[ -s "$WORK/cfgdir/store.urkv" ] || fail "dir + dbfilename: no $WORK/cfgdir/store.urkv"
got=$(cli "${A[@]}" CONFIG GET appendfsync maxclients timeout dbfilename dir | tr '\n' ' ')
expect "CONFIG GET after the file" "appendfsync everysec maxclients 5 timeout 0 dir $WORK/cfgdir dbfilename store.urkv " "$got"
expect "CONFIG SET appendfsync bad" "ERR CONFIG SET failed (possibly related to argument 'appendfsync') - argument(s) must be one of the following: everysec, always, no" \
	"$(cli "${A[@]}" CONFIG SET appendfsync sometimes)"
expect "CONFIG SET unknown" "ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'" \
	"$(cli "${A[@]}" CONFIG SET nosuch 1)"
# Redis's replies to a malformed CONFIG: an odd argument count is a syntax
# error (urkv said arity), extra arguments to HELP, RESETSTAT and REWRITE
# an arity error (urkv ran RESETSTAT, called HELP unknown); REWRITE says
# urkv has none rather than "unknown subcommand".
expect "CONFIG SET odd pair" "ERR syntax error" "$(cli "${A[@]}" CONFIG SET timeout 1 maxclients)"
expect "CONFIG SET one word too many" "ERR syntax error" "$(cli "${A[@]}" CONFIG SET requirepass a b)"
expect "CONFIG SET no value" "ERR wrong number of arguments for 'config|set' command" "$(cli "${A[@]}" CONFIG SET timeout)"
expect "CONFIG RESETSTAT x" "ERR wrong number of arguments for 'config|resetstat' command" \
	"$(cli "${A[@]}" CONFIG RESETSTAT x)"
expect "CONFIG HELP x" "ERR wrong number of arguments for 'config|help' command" "$(cli "${A[@]}" CONFIG help x)"
expect "CONFIG REWRITE" "ERR urkv has no CONFIG REWRITE: settings meant to last go in its config file or on its command line (docs/kv.md)" \
	"$(cli "${A[@]}" CONFIG REWRITE)"
expect "CONFIG REWRITE x" "ERR wrong number of arguments for 'config|rewrite' command" "$(cli "${A[@]}" CONFIG REWRITE x)"
expect "CONFIG SET port" "ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config" \
	"$(cli "${A[@]}" CONFIG SET port 1)"
expect "CONFIG SET maxclients abc" "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be parsed into an integer" \
	"$(cli "${A[@]}" CONFIG SET maxclients abc)"
# Out of range: the error names both bounds (maxclients' upper one is its value at start, 5).
CSF="ERR CONFIG SET failed (possibly related to argument"
expect "CONFIG SET timeout -1" "$CSF 'timeout') - argument must be between 0 and 1000000000 inclusive" \
	"$(cli "${A[@]}" CONFIG SET timeout -1)"
expect "CONFIG SET timeout too big" "$CSF 'timeout') - argument must be between 0 and 1000000000 inclusive" \
	"$(cli "${A[@]}" CONFIG SET timeout 1000000001)"
for n in -1 0; do
	expect "CONFIG SET maxclients $n" "$CSF 'maxclients') - argument must be between 1 and 5 inclusive" \
		"$(cli "${A[@]}" CONFIG SET maxclients $n)"
done
expect "CONFIG SET maxclients 2000000" "$CSF 'maxclients') - argument must be between 1 and 5 inclusive: urkv cannot raise maxclients above its value at start (its fibers are sized then)" \
	"$(cli "${A[@]}" CONFIG SET maxclients 2000000)"
expect "refused CONFIG SETs set nothing" "maxclients 5 timeout 0 " \
	"$(cli "${A[@]}" CONFIG GET maxclients timeout | tr '\n' ' ' | sed 's/^timeout 0 maxclients 5 /maxclients 5 timeout 0 /')"
expect "CONFIG SET several" "OK" "$(cli "${A[@]}" CONFIG SET maxclients 2 appendfsync always)"
expect "CONFIG GET after SET" "maxclients 2 appendfsync always " \
	"$(cli "${A[@]}" CONFIG GET maxclients appendfsync | tr '\n' ' ' | sed 's/^appendfsync always maxclients 2 /maxclients 2 appendfsync always /')"
# maxclients 2 at run time: two held connections, the third is refused.
# Both held connections are served (so counted) before the third comes:
# a PING answered on each, rather than a sleep a loaded host may outlast.
# The answer must be -NOAUTH (this server wants AUTH first): a held
# connection refused because the server had not yet seen an earlier cli
# connection close is opened again.
for fd in 5 6; do
	for try in $(seq 1 50); do
		eval "exec $fd<>/dev/tcp/127.0.0.1/$PORT"
		printf 'PING\r\n' >&$fd
		line=
		read -r -t 10 -u $fd line || break
		case "$line" in *"max number of clients"*) eval "exec $fd>&-"; sleep 0.1 ;; *) break ;; esac
	done
	case "$line" in "-NOAUTH"*) ;; *) fail "held connection $fd: want -NOAUTH, got [$line]" ;; esac
done
got=$(cli "${A[@]}" PING)
case "$got" in *"ERR max number of clients reached"*) ;; *) fail "maxclients set at run time: [$got]" ;; esac
exec 5>&- 6>&-
sleep 0.2
expect "CONFIG SET maxclients above the start value" "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument must be between 1 and 5 inclusive: urkv cannot raise maxclients above its value at start (its fibers are sized then)" \
	"$(cli "${A[@]}" CONFIG SET maxclients 6)"
expect "CONFIG SET timeout" "OK" "$(cli "${A[@]}" CONFIG SET timeout 1 maxclients 5)"
exec 5<>/dev/tcp/127.0.0.1/"$PORT"
# The server closes the idle connection: end of stream within 15 s (1 s
# timeout plus the sweep, with room for a loaded host), then counts it.
timeout 15 cat <&5 > /dev/null || fail "timeout set at run time: idle connection not closed within 15 s"
got=$(cli "${A[@]}" INFO stats | tr -d '\r' | grep '^idle_timeouts:')
expect "timeout set at run time closes idle clients" "idle_timeouts:1" "$got"
exec 5>&-
stop_urkv || fail "stop after config tests"
# Command-line options override the file.
start_urkv cfg2 "$WORK/ok.conf" --appendfsync no --requirepass other || exit 1
expect "options override the file" "no" "$(cli -a other --no-auth-warning CONFIG GET appendfsync | tail -1)"
stop_urkv || fail "stop after the override test"
# Bad files: the error names file:line, and nothing starts.
bad_conf() {	# NAME WANT-IN-STDERR LINES...
	local name=$1 want=$2 out
	shift 2
	printf '%s\n' "$@" > "$WORK/$name.conf"
	# Bounded, and by SIGKILL: a start that spins does so with SIGTERM blocked.
	out=$(timeout -s KILL 30 "$URKV" "$WORK/$name.conf" --port 0 --data "$WORK/$name.urkv" --size 64M 2>&1)
	local rc=$?
	[ $rc -eq 2 ] || fail "$name: exit $rc, want 2 ($out)"
	case "$out" in
	*"$want"*) ;;
	*) fail "$name: want [$want] in [$out]" ;;
	esac
}
bad_conf unknown "$WORK/unknown.conf:3: unknown or unsupported directive 'loglevel'" "port 0" "# x" "loglevel notice"
bad_conf badval "$WORK/badval.conf:1: bad value 'lots' for max-clients" "maxclients lots"
bad_conf fsync "$WORK/fsync.conf:2: bad value 'sometimes' for appendfsync" "" "appendfsync sometimes"
bad_conf twobind "$WORK/twobind.conf:1: urkv listens on one address" "bind 127.0.0.1 ::1"
bad_conf quote "$WORK/quote.conf:1: cannot parse the line" 'requirepass "open'
bad_conf aof "$WORK/aof.conf:1: urkv always keeps its log" "appendonly no"
bad_conf dbf "$WORK/dbf.conf:1: bad value 'a/b' for dbfilename" "dbfilename a/b"
bad_conf noarg "$WORK/noarg.conf:1: 'port' takes one argument, got 0" "port"
bad_conf dbg "$WORK/dbg.conf:1: bad value 'maybe' for enable-debug-command (want yes, no or local)" \
	"enable-debug-command maybe"
# A size whose unit carries it past 2^64 - 1 wrapped (cache 99999999999T
# was 2^60 bytes, and the start spun for hours lowering it); a count with a
# unit was read as a size (timeout 1m was 1048576 s, port 1k was 1024); a
# host name passed the file and failed at listen() without file or line.
bad_conf bigsize "$WORK/bigsize.conf:1: bad value '99999999999T' for cache" "cache 99999999999T"
bad_conf bigsize2 "$WORK/bigsize2.conf:1: bad value '16777216T' for size" "size 16777216T"
bad_conf unitcount "$WORK/unitcount.conf:2: bad value '1m' for idle-timeout" "# a minute?" "timeout 1m"
bad_conf unitport "$WORK/unitport.conf:1: bad value '1k' for port" "port 1k"
bad_conf unitclients "$WORK/unitclients.conf:1: bad value '1k' for max-clients" "maxclients 1k"
bad_conf hostbind "$WORK/hostbind.conf:1: bad value 'localhost' for bind" "bind localhost"
# A huge cache that does not wrap is lowered to what the cores can hold, at once.
printf 'cache 1000000T\n' > "$WORK/hugecache.conf"
if start_urkv hugecache "$WORK/hugecache.conf" --data "$WORK/hugecache.urkv" --size 64M --cores 1; then
	expect "cache 1000000T answers" "PONG" "$(cli PING)"
	stop_urkv || fail "stop after cache 1000000T"
else
	fail "cache 1000000T: no start within 10 s"
fi
# enable-debug-command, the directive DEBUG's refusal names: local allows
# loopback clients only (127.0.0.2 is not one, as in Redis), yes everyone.
DEBUG_REFUSED="'-ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.\\r\\n'"
for mode in local yes no; do
	printf 'enable-debug-command %s\nbind 0.0.0.0\nprotected-mode no\n' "$mode" > "$WORK/dbg-$mode.conf"
	start_urkv "dbg-$mode" "$WORK/dbg-$mode.conf" --data "$WORK/dbg.urkv" --size 64M --cores 1 || exit 1
	want_local="'+OK\\r\\n'" want_other="'+OK\\r\\n'"
	[ "$mode" = yes ] || want_other=$DEBUG_REFUSED
	[ "$mode" = no ] && want_local=$DEBUG_REFUSED
	expect "enable-debug-command $mode: DEBUG from 127.0.0.1" "$want_local" "$($RAW "$PORT" 'DEBUG CLOCK-ADVANCE 0')"
	expect "enable-debug-command $mode: DEBUG from 127.0.0.2" "$want_other" \
		"$($RAW "$PORT" --src 127.0.0.2 'DEBUG CLOCK-ADVANCE 0')"
	stop_urkv || fail "stop after enable-debug-command $mode"
done

echo "== CLIENT, stats, SHUTDOWN"
start_urkv ops --data "$WORK/ops.urkv" --size 64M --cores 2 || exit 1
for i in 1 2 3 4 5; do cli SET "k$i" "v$i" > /dev/null; done
cli SET s notanumber > /dev/null
expect "failed call" "ERR value is not an integer or out of range" "$(cli INCR s)"
expect "rejected call" "ERR wrong number of arguments for 'get' command" "$(cli GET)"
stats=$(cli INFO commandstats | tr -d '\r')
case "$stats" in
*"cmdstat_set:calls=6,usec="*",usec_per_call="*",rejected_calls=0,failed_calls=0"*) ;;
*) fail "cmdstat_set: [$stats]" ;;
esac
grep -Eq '^cmdstat_incr:calls=1,usec=[0-9]+,usec_per_call=[0-9]+\.[0-9]{2},rejected_calls=0,failed_calls=1$' <<< "$stats" ||
	fail "cmdstat_incr failed_calls: [$stats]"
grep -Eq '^cmdstat_get:calls=0,usec=0,usec_per_call=0\.00,rejected_calls=1,failed_calls=0$' <<< "$stats" ||
	fail "cmdstat_get rejected_calls: [$stats]"
lat=$(cli INFO latencystats | tr -d '\r')
grep -Eq '^latency_percentiles_usec_set:p50=[0-9]+\.[0-9]{3},p99=[0-9]+\.[0-9]{3},p99\.9=[0-9]+\.[0-9]{3}$' <<< "$lat" ||
	fail "latencystats: [$lat]"
grep -q '^cmdstat_' <<< "$(cli INFO | tr -d '\r')" && fail "INFO (default) must not carry commandstats, as Redis"
grep -q '^cmdstat_set:' <<< "$(cli INFO all | tr -d '\r')" || fail "INFO all carries commandstats"
hist=$($RAW "$PORT" 'LATENCY HISTOGRAM set')
case "$hist" in
"'*2\\r\\n\$3\\r\\nset\\r\\n*4\\r\\n\$5\\r\\ncalls\\r\\n:6\\r\\n\$14\\r\\nhistogram_usec\\r\\n*"*":6\\r\\n'") ;;
*) fail "LATENCY HISTOGRAM set: [$hist]" ;;
esac
pers=$(cli INFO persistence | tr -d '\r')
for f in aof_enabled:1 appendfsync:always aof_last_write_status:ok rdb_saves:0; do
	grep -qx "$f" <<< "$pers" || fail "INFO persistence: no $f in [$pers]"
done
fl=$(echo "$pers" | sed -n 's/^urkv_log_flushes://p'); fua=$(echo "$pers" | sed -n 's/^urkv_log_fua_writes://p')
[ $((fl + fua)) -gt 0 ] 2>/dev/null || fail "INFO persistence: no log flush or FUA write counted [$pers]"
for f in urkv_log_bytes urkv_log_batches urkv_checkpoints rdb_last_save_time; do
	grep -Eq "^$f:[1-9][0-9]*\$" <<< "$pers" || fail "INFO persistence: $f not a positive number"
done
t0=$(date +%s)
expect "SAVE" "OK" "$(cli SAVE)"
ls=$(cli LASTSAVE)
[ "$ls" -ge "$t0" ] 2>/dev/null && [ "$ls" -le "$(date +%s)" ] || fail "LASTSAVE after SAVE at $t0: [$ls]"
# TIME: seconds and microseconds of the wall clock, as Redis.
read -r tsec tusec <<< "$(cli TIME | tr '\n' ' ')"
[ "$((tsec - $(date +%s)))" -le 1 ] 2>/dev/null && [ "$(($(date +%s) - tsec))" -le 1 ] &&
	[ "$tusec" -ge 0 ] && [ "$tusec" -le 999999 ] || fail "TIME: [$tsec $tusec]"
grep -qx 'rdb_saves:1' <<< "$(cli INFO persistence | tr -d '\r')" || fail "rdb_saves after SAVE"
# Error replies by kind (Redis's # Errorstats): the INCR and the GET above, both ERR.
expect "INFO errorstats" "# Errorstats
errorstat_ERR:count=2" "$(cli INFO errorstats | tr -d '\r' | sed '/^$/d')"
grep -qx 'total_error_replies:2' <<< "$(cli INFO stats | tr -d '\r')" || fail "total_error_replies: [$(cli INFO stats)]"
grep -qx 'errorstat_ERR:count=2' <<< "$(cli INFO | tr -d '\r')" || fail "INFO (default) carries errorstats, as Redis"
expect "CONFIG RESETSTAT" "OK" "$(cli CONFIG RESETSTAT)"
expect "INFO errorstats after RESETSTAT" "# Errorstats" "$(cli INFO errorstats | tr -d '\r' | sed '/^$/d')"
grep -qx 'total_error_replies:0' <<< "$(cli INFO stats | tr -d '\r')" || fail "total_error_replies after RESETSTAT"
# CLIENT: a held connection with a name, listed with Redis's fields, killed by ID and by address.
exec 5<>/dev/tcp/127.0.0.1/"$PORT"
printf 'CLIENT SETNAME held\r\nCLIENT ID\r\n' >&5
read -r -t 5 -u 5 ok
read -r -t 5 -u 5 id
id=${id#:}; id=${id%$'\r'}
expect "SETNAME" "+OK" "${ok%$'\r'}"
list=$(cli CLIENT LIST)
line=$(echo "$list" | grep " name=held ")
grep -Eq "^id=$id addr=127\.0\.0\.1:[0-9]+ laddr=127\.0\.0\.1:$PORT fd=[0-9]+ name=held age=[0-9]+ idle=[0-9]+ flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=[0-9]+ qbuf-free=[0-9]+ argv-mem=[0-9]+ multi-mem=0 rbs=[0-9]+ rbp=[0-9]+ obl=0 oll=0 omem=0 tot-mem=[0-9]+ events=r cmd=client user=default redir=-1 resp=2\$" <<< "$line" ||
	fail "CLIENT LIST line: [$list]"
expect "CLIENT KILL ID unknown" "0" "$(cli CLIENT KILL ID 999999)"
expect "CLIENT KILL ID" "1" "$(cli CLIENT KILL ID "$id")"
if read -r -t 5 -u 5 more; then fail "killed client still reads [$more]"; fi
exec 5>&-
exec 5<>/dev/tcp/127.0.0.1/"$PORT"
printf 'CLIENT INFO\r\n' >&5
read -r -t 5 -u 5 hdr; read -r -t 5 -u 5 info
addr=$(echo "$info" | sed -n 's/.* addr=\([^ ]*\) .*/\1/p')
expect "CLIENT KILL addr" "OK" "$(cli CLIENT KILL "$addr")"
expect "CLIENT KILL addr again" "ERR No such client" "$(cli CLIENT KILL "$addr")"
exec 5>&-
expect "CLIENT LIST TYPE bogus" "ERR Unknown client type 'bogus'" "$(cli CLIENT LIST TYPE bogus)"
expect "CLIENT LIST TYPE pubsub" "" "$(cli CLIENT LIST TYPE pubsub)"
expect "CLIENT LIST TYPE normal" 1 "$(cli CLIENT LIST TYPE NORMAL | grep -c ' cmd=client ')"
# HELP: an array of lines, as Redis (redis-cli prints one per line).
expect "CONFIG HELP" "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:
GET <pattern> [<pattern> ...]
    Return parameters matching the glob-like <pattern> and their values.
SET <directive> <value> [<directive> <value> ...]
    Set the configuration <directive> to <value>. urkv can change maxclients, timeout,
    appendfsync, requirepass and protected-mode; the others are fixed at start.
RESETSTAT
    Reset statistics reported by the INFO command.
HELP
    Print this help.
urkv has no CONFIG REWRITE: settings meant to last go in its config file or options." \
	"$(cli CONFIG HELP)"
got=$(cli CLIENT HELP)
case "$got" in
"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"*"KILL <option> <value> [<option> <value> [...]]"*"LIST [TYPE (NORMAL|MASTER|REPLICA|PUBSUB)] [ID <client-id> [...]]"*"SETNAME <name>"*"HELP"*) ;;
*) fail "CLIENT HELP: [$got]" ;;
esac
expect "CONFIG HELP as a RESP array of simple strings" "'*" "$($RAW "$PORT" 'CONFIG HELP' | head -c 2)"
expect "SHUTDOWN bad" "ERR syntax error" "$(cli SHUTDOWN SOON)"
cli SHUTDOWN NOSAVE > /dev/null
for i in $(seq 1 200); do kill -0 "$URKV_PID" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$URKV_PID" 2>/dev/null; then
	fail "SHUTDOWN NOSAVE: still running"
else
	wait "$URKV_PID"; expect "SHUTDOWN exit status" 0 $?
fi
start_urkv ops2 --data "$WORK/ops.urkv" --cores 2 || exit 1
expect "data after SHUTDOWN" "v5" "$(cli GET k5)"
cli SHUTDOWN > /dev/null
for i in $(seq 1 200); do kill -0 "$URKV_PID" 2>/dev/null || break; sleep 0.05; done
wait "$URKV_PID"; expect "SHUTDOWN (SAVE) exit status" 0 $?

echo "== field layouts against redis-server"
if command -v redis-server > /dev/null; then
	# Redis on a unix socket only (no TCP port), as the reference for the layouts.
	redis-server --port 0 --unixsocket "$WORK/redis.sock" --save '' --appendonly no \
		--dir "$WORK" > "$WORK/redis.log" 2>&1 &
	RPID=$!
	PIDS+=("$RPID")
	for i in $(seq 1 100); do [ -S "$WORK/redis.sock" ] && break; sleep 0.05; done
	start_urkv lay --data "$WORK/lay.urkv" --size 64M --cores 1 || exit 1
	layout() {	# the keys of a server's replies, values stripped
		"$@" SET a 1 > /dev/null
		"$@" INCR a > /dev/null
		"$@" INFO commandstats | tr -d '\r' | grep '^cmdstat_set:' | sed 's/=[^,]*//g'
		"$@" INFO latencystats | tr -d '\r' | grep '^latency_percentiles_usec_set:' | sed 's/=[^,]*//g'
		"$@" CLIENT LIST | head -1 | sed 's/=[^ ]*//g'
		"$@" LATENCY HISTOGRAM set | sed 's/^[0-9][0-9]*$/N/'
		"$@" HELLO 2 | sed 's/^[0-9][0-9.]*$/N/'
		"$@" INFO persistence | tr -d '\r' | grep -E '^(loading|rdb_last_save_time|aof_enabled|aof_last_write_status|rdb_bgsave_in_progress):' | sed 's/:.*//'
	}
	want=$(layout timeout 20 redis-cli -s "$WORK/redis.sock")
	got=$(layout cli)
	[ "$(echo "$want" | wc -l)" -ge 25 ] || fail "layout comparison saw too little: [$want]"
	expect "reply layouts as redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')" "$want" "$got"
	timeout 20 redis-cli -s "$WORK/redis.sock" SHUTDOWN NOSAVE > /dev/null 2>&1
	stop_urkv || fail "stop after the layout comparison"
else
	skip_part "reply layouts not compared: redis-server is not installed (Debian package redis-server)"
fi

echo "== --log-size"
# 600 SETs of 1,000 bytes log about 2 MB: a 256 KiB log checkpoints many
# times on the way; the automatic log (MiBs) only at open.
ckpts() {	# ckpts LOG-SIZE: sets CK to the checkpoints after the SETs
	CK=
	start_urkv "logsz$1" --data "$WORK/logsz$1.urkv" --size 64M --cores 1 --log-size "$1" || return 1
	awk 'BEGIN { v = sprintf("%1000s", ""); gsub(/ /, "v", v)
		for (i = 0; i < 600; i++) printf "*3\r\n$3\r\nSET\r\n$8\r\nk%07d\r\n$1000\r\n%s\r\n", i, v }' |
		cli --pipe > "$WORK/logsz$1.pipe"
	# Refused SETs log nothing: few checkpoints would then pass for the automatic log.
	grep -q "errors: 0, replies: 600" "$WORK/logsz$1.pipe" ||
		fail "--log-size $1: the 600 SETs: $(tail -2 "$WORK/logsz$1.pipe")"
	CK=$(cli INFO persistence | tr -d '\r' | sed -n 's/^urkv_checkpoints://p')
	stop_urkv || fail "stop after --log-size $1"
}
ckpts 256K
[ "${CK:-0}" -ge 10 ] 2>/dev/null || fail "--log-size 256K: '$CK' checkpoints for 2 MB of log, want 10 or more"
ckpts 0
[ -n "$CK" ] && [ "$CK" -le 2 ] 2>/dev/null || fail "--log-size 0 (automatic): '$CK' checkpoints, want the open one or two"
out=$("$URKV" --data "$WORK/logszbad.urkv" --log-size 1K --port 0 --quiet 2>&1)
expect "--log-size below a block" "urkv: bad value '1K' for log-size (want a size such as 512M, 0 = automatic) (--log-size)" "$out"

echo "== a corrupt page is logged, once"
# 100 keys over several leaves; then a byte of ck000's value and one of
# ck099's is changed in their home pages (the last copy in the file: the
# log comes before the pages), so both pages fail their checksums.
start_urkv dmg --data "$WORK/dmg.urkv" --size 64M --cache 16M --cores 1 || exit 1
awk 'BEGIN { v = sprintf("%300s", ""); gsub(/ /, "q", v)
	for (i = 0; i < 100; i++) printf "*3\r\n$3\r\nSET\r\n$5\r\nck%03d\r\n$307\r\nMARK%03d%s\r\n", i, i, v }' |
	cli --pipe > /dev/null
stop_urkv || fail "stop before damaging pages"
pages=$(python3 - "$WORK/dmg.urkv" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    data = f.read()
    pages = []
    for mark in (b"MARK000qqq", b"MARK099qqq"):
        at = data.rfind(mark)
        f.seek(at + 100)
        f.write(b"Z")
        pages.append(at // 4096)
print(pages[0] != pages[1])
PY
)
expect "two distinct pages damaged" True "$pages"
start_urkv dmg2 --data "$WORK/dmg.urkv" --cache 16M --cores 1 || exit 1
CORRUPT="ERR store error: urt: on-disk data is corrupt (checksum or consistency check failed)"
for i in $(seq 1 20); do
	got=$(cli GET ck000)
	[ "$got" = "$CORRUPT" ] || { fail "GET of a corrupt page: [$got]"; break; }
done
expect "MGET hides it as nil, as Redis" "" "$(cli MGET ck000)"
dmg_lines() { grep -c '^urkv: store error' "$WORK/dmg2.log"; }
expect "21 reads of one corrupt page: one line" 1 "$(dmg_lines)"
line1=$(grep '^urkv: store error' "$WORK/dmg2.log" | head -1)
case "$line1" in
"urkv: store error (shard 0, page "[0-9]*") in get of key \"ck000\": $(echo "$CORRUPT" | sed 's/^ERR store error: //'); repeats are logged once a minute") ;;
*) fail "the corrupt page's line: [$line1]" ;;
esac
expect "GET of the second corrupt page" "$CORRUPT" "$(cli GET ck099)"
expect "a second page: a second line" 2 "$(dmg_lines)"
p1=$(grep '^urkv: store error' "$WORK/dmg2.log" | sed -n '1s/.*page \([0-9]*\)).*/\1/p')
p2=$(grep '^urkv: store error' "$WORK/dmg2.log" | sed -n '2s/.*page \([0-9]*\)).*/\1/p')
[ -n "$p1" ] && [ -n "$p2" ] && [ "$p1" != "$p2" ] || fail "the two lines name pages [$p1] and [$p2]"
stop_urkv || fail "stop after the corrupt pages"

echo "== --cores beyond memory"
# Each core pins its buffer region (about 1 GiB with --cache 1T), so 1024
# cores need 1 TiB: refused at start with both memory figures and the CPU
# count, before a core starts or the data file is made.  More cores than
# CPUs is otherwise allowed (test_urkv_reopen).  ulimit -v: a urkv that
# tried anyway fails to map its regions here instead of waking the OOM killer
# (not under a sanitizer, whose shadow memory alone is terabytes of address space).
vlimit=4194304
[ -n "${URT_SANITIZE:-}" ] && vlimit=unlimited
out=$( (ulimit -v "$vlimit"; "$URKV" --data "$WORK/cores.urkv" --size 64M --cores 1024 --cache 1T \
	--port 0 --quiet) 2>&1); rc=$?
expect "--cores 1024: exit" 1 "$rc"
case "$out" in
"urkv: 1024 cores need about "*" MiB of memory ("*" MiB each: a 1024 MiB buffer region, which io_uring pins, and about 2 MiB more), but "*" MiB is available: give fewer --cores (this process may run on $(nproc) CPU"*")") ;;
*) fail "--cores 1024: message [$out]" ;;
esac
[ -e "$WORK/cores.urkv" ] && fail "--cores 1024: the data file was made"

echo "== data files"
: > "$WORK/empty.urkv"
out=$("$URKV" --data "$WORK/empty.urkv" --port 0 --quiet 2>&1); rc=$?
expect "empty file: exit" 1 "$rc"
case "$out" in
*"empty.urkv is an empty file (0 bytes), not a store; delete it to have a new store of 1073741824 bytes created there"*) ;;
*) fail "empty file message: [$out]" ;;
esac
expect "empty file untouched" 0 "$(stat -c %s "$WORK/empty.urkv")"
cp "$WORK/ops.urkv" "$WORK/cut.urkv"
truncate -s 16M "$WORK/cut.urkv"
out=$("$URKV" --data "$WORK/cut.urkv" --port 0 --quiet 2>&1); rc=$?
expect "truncated file: exit" 1 "$rc"
case "$out" in
*"the data file is truncated: its store header says it has "*" bytes ("*" shards of "*"the device has 16777216)") ;;
*) fail "truncated file message: [$out]" ;;
esac
truncate -s 100 "$WORK/cut.urkv"
out=$("$URKV" --data "$WORK/cut.urkv" --port 0 --quiet 2>&1)
case "$out" in
*"the device has 100 bytes, fewer than the 4096 of a store header"*) ;;
*) fail "tiny file message: [$out]" ;;
esac
for o in "$out"; do
	case "$o" in *"()"*) fail "a message ends in (): [$o]" ;; esac
done
finish
