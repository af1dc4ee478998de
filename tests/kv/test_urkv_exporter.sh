#!/usr/bin/env bash
# urkv's INFO and LATENCY fields as a real monitoring stack reads them:
# Debian's prometheus-redis-exporter scrapes urkv (loopback only), and the
# metrics it derives must carry urkv's own figures: the instance is up with
# no scrape error, per-command call counts, time and failed calls from
# INFO commandstats, error replies by kind from INFO errorstats, latency
# percentiles from INFO latencystats, the key count from INFO keyspace,
# connected clients, and the AOF status.  A field
# urkv renamed or reformatted makes the exporter drop the metric (or set
# redis_up 0), which fails a check here.
#
# usage: URKV=path/to/urkv test_urkv_exporter.sh
. "$(dirname "$0")/urkv_lib.sh"
need_redis_tools redis-cli
EXPORTER=$(command -v prometheus-redis-exporter || true)
if [ -z "$EXPORTER" ]; then
	echo "SKIP: prometheus-redis-exporter is not installed (Debian package prometheus-redis-exporter)"
	exit 77
fi
command -v curl > /dev/null || { echo "SKIP: curl is not installed"; exit 77; }

start_urkv main --data "$WORK/data" --size 64M --cores 2 --requirepass s3cret || exit 1
cli() { timeout 20 redis-cli -p "$PORT" --no-auth-warning -a s3cret "$@" 2>&1; }

for i in $(seq 1 20); do cli SET "k$i" "v$i" > /dev/null; done
for i in $(seq 1 7); do cli GET "k$i" > /dev/null; done
cli SET ttl1 x EX 1000 > /dev/null
cli INCR k1 > /dev/null	# fails: not an integer
expect "keys" 21 "$(cli DBSIZE)"

# A free loopback port for the exporter's web side.
EXPORT_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$EXPORTER" -redis.addr "redis://127.0.0.1:$PORT" -redis.password s3cret \
	-web.listen-address "127.0.0.1:$EXPORT_PORT" > "$WORK/exporter.log" 2>&1 &
PIDS+=("$!")
metrics=""
for _ in $(seq 1 100); do
	metrics=$(curl -s --max-time 10 "http://127.0.0.1:$EXPORT_PORT/metrics" || true)
	case "$metrics" in *redis_up*) break ;; esac
	sleep 0.1
done
echo "$metrics" | grep -E '^redis_(up|commands_total|db_keys|connected_clients|aof_last|latency_percentiles_usec\{cmd="set"|errors_total)' | head -20

# metric NAME: the value of the first sample whose name and labels are NAME.
metric() {
	echo "$metrics" | awk -v m="$1" 'index($0, m " ") == 1 { print $2; exit }'
}
expect "redis_up" 1 "$(metric 'redis_up')"
expect "scrape error" 0 "$(metric 'redis_exporter_last_scrape_error{err=""}')"
expect "SET calls" 21 "$(metric 'redis_commands_total{cmd="set"}')"
expect "GET calls" 7 "$(metric 'redis_commands_total{cmd="get"}')"
expect "INCR failed calls" 1 "$(metric 'redis_commands_failed_calls_total{cmd="incr"}')"
expect "ERR replies (INFO errorstats)" 1 "$(metric 'redis_errors_total{err="ERR"}')"
dur=$(metric 'redis_commands_duration_seconds_total{cmd="set"}')
awk -v d="${dur:-0}" 'BEGIN { exit !(d > 0) }' || fail "SET duration: want > 0, got [$dur]"
p50=$(metric 'redis_latency_percentiles_usec{cmd="set",quantile="50"}')
p99=$(metric 'redis_latency_percentiles_usec{cmd="set",quantile="99"}')
awk -v a="${p50:-0}" -v b="${p99:-0}" 'BEGIN { exit !(a > 0 && b >= a) }' ||
	fail "SET latency percentiles: p50 [$p50], p99 [$p99]"
expect "keys in db0" 21 "$(metric 'redis_db_keys{db="db0"}')"
expect "keys expiring in db0" 1 "$(metric 'redis_db_keys_expiring{db="db0"}')"
expect "AOF enabled" 1 "$(metric 'redis_aof_enabled')"
expect "AOF last write ok" 1 "$(metric 'redis_aof_last_write_status')"
clients=$(metric 'redis_connected_clients')
[ "${clients:-0}" -ge 1 ] || fail "connected clients: [$clients]"

if [ "$FAILS" -ne 0 ]; then
	echo "== exporter log"
	cat "$WORK/exporter.log"
fi
stop_urkv || fail "urkv did not stop cleanly"
finish
