/*
 * The INFO reply: Redis's sections that clients read (server, clients,
 * stats, errorstats, persistence, cluster, keyspace) and urt's own: each core's runtime
 * counters and each shard's page store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "urkv.h"
#include "urt/urt.h"

struct core_stats_arg {
	struct urt_rt *rt;		/* Runtime. */
	unsigned core;			/* Core asked. */
	struct urt_stats st;		/* Its counters. */
};

static int core_stats(void *p)
{
	struct core_stats_arg *a = p;

	return urt_rt_stats(a->rt, a->core, &a->st);
}

static bool want(const char *section, size_t len, const char *name)
{
	bool extra = strcmp(name, "commandstats") == 0 || strcmp(name, "latencystats") == 0;

	/* As Redis: commandstats and latencystats only for "all", "everything" or by name. */
	if (!section || len == 0 || (len == 7 && strncasecmp(section, "default", 7) == 0))
		return !extra;
	if ((len == 3 && strncasecmp(section, "all", 3) == 0) ||
	    (len == 10 && strncasecmp(section, "everything", 10) == 0))
		return true;
	return strlen(name) == len && strncasecmp(section, name, len) == 0;
}

static uint64_t sum(struct urkv_server *srv, size_t off)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < srv->ncores; i++)
		n += atomic_load_explicit((_Atomic uint64_t *)((char *)&srv->cores[i].st + off),
					  memory_order_relaxed);
	return n;
}

#define SUM(srv, field) sum(srv, offsetof(struct urkv_core_stats, field))

char *urkv_info(struct urkv_conn *c, const char *section, size_t len)
{
	struct urkv_server *srv = urkv_conn_server(c);
	char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);
	uint64_t keys = 0, volatile_keys = 0, log_bytes = 0, log_writes = 0, flushes = 0, fua = 0;
	uint64_t checkpoints = 0, batches = 0;
	int sticky = 0;

	if (!f)
		return NULL;
	if (want(section, len, "server")) {
		fprintf(f, "# Server\r\nredis_version:7.0.0\r\nurkv_version:%s\r\n"
			   "redis_mode:%s\r\nprocess_id:%d\r\ntcp_port:%u\r\n"
			   "uptime_in_seconds:%llu\r\nio_threads_active:0\r\nurt_cores:%u\r\n"
			   "urt_shards:%u\r\n\r\n",
			urt_version(), srv->cluster ? "cluster" : "standalone", (int)getpid(), srv->port,
			(unsigned long long)((urt_clock_ns() - srv->start_ns) / 1000000000ull),
			srv->ncores, urt_kv_shards(srv->kv));
	}
	if (want(section, len, "clients"))
		fprintf(f, "# Clients\r\nconnected_clients:%u\r\nmaxclients:%u\r\n\r\n",
			atomic_load(&srv->clients), atomic_load(&srv->live.max_clients));
	if (want(section, len, "stats"))
		fprintf(f, "# Stats\r\ntotal_connections_received:%llu\r\n"
			   "total_commands_processed:%llu\r\nrejected_connections:%llu\r\n"
			   "total_net_input_bytes:%llu\r\ntotal_net_output_bytes:%llu\r\n"
			   "protocol_errors:%llu\r\nidle_timeouts:%llu\r\n"
			   "urkv_protected_mode_denied:%llu\r\nurkv_auth_failures:%llu\r\n"
			   "total_error_replies:%llu\r\n\r\n",
			(unsigned long long)SUM(srv, connections), (unsigned long long)SUM(srv, commands),
			(unsigned long long)SUM(srv, rejected), (unsigned long long)SUM(srv, bytes_in),
			(unsigned long long)SUM(srv, bytes_out),
			(unsigned long long)SUM(srv, protocol_errors),
			(unsigned long long)SUM(srv, timeouts), (unsigned long long)SUM(srv, denied),
			(unsigned long long)SUM(srv, auth_failures),
			(unsigned long long)urkv_errstats_info(srv, NULL));
	if (want(section, len, "stats")) {
		/* Keys deleted by expiry (lazy and active), as Redis's expired_keys (# Stats). */
		uint64_t expired = 0;

		for (unsigned s = 0; s < urt_kv_shards(srv->kv); s++) {
			struct urt_kv_shard_stats st;

			if (urt_kv_shard_stats(srv->kv, s, &st) == 0)
				expired += st.expired;
		}
		fprintf(f, "# Expiry\r\nexpired_keys:%llu\r\n\r\n", (unsigned long long)expired);
	}
	if (want(section, len, "urt")) {
		fprintf(f, "# urt\r\n");
		for (unsigned i = 0; i < srv->ncores; i++) {
			struct core_stats_arg a = { .rt = srv->rt, .core = i };

			if (urt_core_run(srv->rt, i, core_stats, &a))
				continue;
			fprintf(f, "urt_core%u:submitted=%llu,completed=%llu,failed=%llu,enters=%llu,"
				   "ops_per_enter=%.2f,posts_sent=%llu,posts_run=%llu,fibers_spawned=%llu,"
				   "io_yields=%llu,urgent_polls=%llu,lat_p50_us=%.1f,lat_p99_us=%.1f\r\n",
				i, (unsigned long long)a.st.submitted, (unsigned long long)a.st.completed,
				(unsigned long long)a.st.failed, (unsigned long long)a.st.enters,
				a.st.enters ? (double)a.st.sqes_submitted / (double)a.st.enters : 0.0,
				(unsigned long long)a.st.posts_sent, (unsigned long long)a.st.posts_run,
				(unsigned long long)a.st.fibers_spawned, (unsigned long long)a.st.io_yields,
				(unsigned long long)a.st.urgent_polls,
				(double)urt_hist_percentile(&a.st.lat, 50) / 1000.0,
				(double)urt_hist_percentile(&a.st.lat, 99) / 1000.0);
		}
	}
	for (unsigned s = 0; s < urt_kv_shards(srv->kv); s++) {
		struct urt_kv_shard_stats st;

		if (urt_kv_shard_stats(srv->kv, s, &st) != 0)
			continue;
		keys += st.keys;
		volatile_keys += st.volatile_keys;
		log_writes += st.writes;
		log_bytes += st.ps.log_bytes;
		flushes += st.ps.flushes;
		fua += st.ps.fua_writes;
		checkpoints += st.ps.checkpoints;
		batches += st.ps.batches;
		if (st.ps.sticky_error && !sticky)
			sticky = st.ps.sticky_error;
		if (!want(section, len, "urt"))
			continue;
		fprintf(f, "urt_shard%u:core=%u,keys=%llu,pages=%llu,pages_used=%llu,pages_free=%llu,"
			   "reads=%llu,read_retries=%llu,writes=%llu,write_txs=%llu,"
			   "write_tx_retries=%llu,forwarded=%llu,commits=%llu,batches=%llu,"
			   "commits_per_batch=%.2f,log_bytes=%llu,flushes=%llu,fua_writes=%llu,"
			   "hits=%llu,misses=%llu,evictions=%llu,checkpoints=%llu,log_waits=%llu,"
			   "recovered_batches=%llu,sticky_error=%d,volatile_keys=%llu,expired=%llu,"
			   "pager_memo_hits=%llu,pager_memo_misses=%llu,read_prefetches=%llu,"
			   "log_image_holes=%llu\r\n",
			s, st.core, (unsigned long long)st.keys, (unsigned long long)st.page_count,
			(unsigned long long)st.pages_used, (unsigned long long)st.pages_free,
			(unsigned long long)st.reads, (unsigned long long)st.read_retries,
			(unsigned long long)st.writes, (unsigned long long)st.write_txs,
			(unsigned long long)st.write_tx_retries, (unsigned long long)st.forwarded,
			(unsigned long long)st.ps.commits, (unsigned long long)st.ps.batches,
			st.ps.commits_per_batch, (unsigned long long)st.ps.log_bytes,
			(unsigned long long)st.ps.flushes, (unsigned long long)st.ps.fua_writes,
			(unsigned long long)st.ps.hits, (unsigned long long)st.ps.misses,
			(unsigned long long)st.ps.evictions, (unsigned long long)st.ps.checkpoints,
			(unsigned long long)st.ps.log_waits, (unsigned long long)st.ps.recovered_batches,
			st.ps.sticky_error, (unsigned long long)st.volatile_keys,
			(unsigned long long)st.expired, (unsigned long long)st.pager_memo_hits,
			(unsigned long long)st.pager_memo_misses,
			(unsigned long long)st.read_prefetches,
			(unsigned long long)st.ps.log_image_holes);
	}
	if (want(section, len, "urt"))
		fprintf(f, "\r\n");
	if (want(section, len, "persistence")) {
		enum urkv_fsync fs = (enum urkv_fsync)atomic_load(&srv->live.appendfsync);
		const char *file = urkv_watch_status(srv);
		/* Writes fail (a sticky shard) or are refused (the data file left its path: watch.c). */
		bool write_err = sticky || strcmp(file, "deleted") == 0 || strcmp(file, "replaced") == 0;

		/* Redis's names where the meaning matches; urkv_* for the log's own figures. */
		fprintf(f, "# Persistence\r\nloading:0\r\nasync_loading:0\r\nrdb_bgsave_in_progress:0\r\n"
			   "rdb_last_save_time:%llu\r\nrdb_saves:%u\r\nrdb_last_bgsave_status:ok\r\n"
			   "aof_enabled:1\r\naof_rewrite_in_progress:0\r\naof_rewrite_scheduled:0\r\n"
			   "aof_last_write_status:%s\r\nappendfsync:%s\r\n"
			   "urkv_durability:%s\r\nurkv_log_bytes:%llu\r\nurkv_log_batches:%llu\r\n"
			   "urkv_log_flushes:%llu\r\nurkv_log_fua_writes:%llu\r\nurkv_checkpoints:%llu\r\n"
			   "urkv_last_save_time:%llu\r\nurkv_everysec_durable_writes:%llu\r\n"
			   "urkv_log_writes:%llu\r\nurkv_log_bytes_per_write:%.1f\r\n"
			   "urkv_data_file:%s\r\nurkv_data_file_status:%s\r\n\r\n",
			(unsigned long long)(atomic_load(&srv->live.last_save_wall_ns) / 1000000000ull),
			atomic_load(&srv->live.saves), write_err ? "err" : "ok", urkv_fsync_name(fs),
			fs == URKV_FSYNC_ALWAYS ? "acknowledged once durable"
			: fs == URKV_FSYNC_EVERYSEC ? "acknowledged once applied, durable within about 1 s"
						    : "acknowledged once applied",
			(unsigned long long)log_bytes, (unsigned long long)batches,
			(unsigned long long)flushes, (unsigned long long)fua,
			(unsigned long long)checkpoints,
			(unsigned long long)(atomic_load(&srv->live.last_save_wall_ns) / 1000000000ull),
			(unsigned long long)SUM(srv, fsync_points), (unsigned long long)log_writes,
			log_writes ? (double)log_bytes / (double)log_writes : 0.0, srv->data_path, file);
	}
	if (want(section, len, "commandstats") || want(section, len, "latencystats"))
		urkv_stats_info(srv, f, want(section, len, "commandstats"),
				want(section, len, "latencystats"));
	if (want(section, len, "errorstats"))
		urkv_errstats_info(srv, f);
	if (want(section, len, "cluster"))
		fprintf(f, "# Cluster\r\ncluster_enabled:%d\r\n\r\n", srv->cluster ? 1 : 0);
	if (want(section, len, "keyspace")) {
		fprintf(f, "# Keyspace\r\n");
		if (keys)
			fprintf(f, "db0:keys=%llu,expires=%llu,avg_ttl=0\r\n", (unsigned long long)keys,
				(unsigned long long)volatile_keys);
	}
	fclose(f);
	return text;
}
