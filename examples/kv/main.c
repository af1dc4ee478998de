/*
 * urkv: a Redis-protocol (RESP2) key-value server on urt.
 *
 *   urkv [CONFIG-FILE] [--bind ADDR] [--port N] [--data PATH] [--size BYTES] [--cache BYTES]
 *        [--cores N] [--max-clients N] [--max-request BYTES] [--idle-timeout SEC]
 *        [--requirepass PW] [--protected-mode yes|no] [--appendfsync always|everysec|no]
 *        [--nosync] [--sync auto|fua|flush|none] [--group-delay-us N] [--read-prefetch-min BYTES]
 *        [--poll MODE] [--no-pin]
 *        [--port-file PATH] [--quiet]
 *
 * CONFIG-FILE is redis.conf syntax (config.c); options given after it override it.
 *
 * Startup opens (or creates) the data file, recovers every shard's log,
 * and listens.  SIGTERM or SIGINT: stop accepting, finish the requests in
 * progress (their writes become durable), checkpoint, exit 0.  After a
 * crash (kill -9, power loss) the next start recovers every write whose
 * reply was sent.  docs/kv.md has the details.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "cmd_ext.h"
#include "cluster.h"
#include "urkv.h"
#include "urt/urt.h"

#define URKV_REGION_MAX (1ull << 30)	/* Largest buffer region a core may register. */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: urkv [CONFIG-FILE] [options]\n"
		"  CONFIG-FILE           redis.conf syntax: port, bind, protected-mode, requirepass,\n"
		"                        dir, dbfilename, maxclients, timeout, appendfsync, and\n"
		"                        urkv's options by their long names (docs/kv.md)\n"
		"  --bind ADDR           listen address (default 127.0.0.1; other addresses only\n"
		"                        when given, e.g. 0.0.0.0 or ::)\n"
		"  --port N              TCP port (default 6379; 0 = any free port)\n"
		"  --port-file PATH      write the port there once listening\n"
		"  --data PATH           data file or block device (default ./urkv.data)\n"
		"  --size BYTES          size of a new data file (default 1G; K, M, G suffixes)\n"
		"  --cache BYTES         page cache of all shards (default 256M)\n"
		"  --log-size BYTES      log of each shard of a new data file (default 0: automatic;\n"
		"                        a bigger log means fewer checkpoints and full page images)\n"
		"  --cores N             reactor threads, one shard each (default: every CPU)\n"
		"  --max-clients N       connections at once (default 1024)\n"
		"  --max-request BYTES   largest request (default proto-max-bulk-len + 1M)\n"
		"  --proto-max-bulk-len BYTES  largest argument, e.g. a SET's value (default 512M)\n"
		"  --max-args N          most arguments of one command (default 65536)\n"
		"  --idle-timeout SEC    close idle connections (default 0 = never)\n"
		"  --requirepass PW      password of the default user (AUTH; default: none)\n"
		"  --protected-mode yes|no  without a password, refuse clients not on 127.0.0.1/::1\n"
		"                        (default yes)\n"
		"  --appendfsync POLICY  always (default: reply once durable), everysec (reply once\n"
		"                        applied, durable within about a second), no (reply once applied)\n"
		"  --nosync              same as --appendfsync no (per connection: NOSYNC ON)\n"
		"  --sync POLICY         log durability: auto (default), fua, flush, none (unsafe)\n"
		"  --group-delay-us N    extra wait of the log writer to fill a batch (default 0)\n"
		"  --read-prefetch-min BYTES  a pipeline's GETs prefetch their pages when a shard's\n"
		"                        tree is at least this big (default 16M; 0 = always)\n"
		"  --poll MODE           reactor wait: interrupt (default), hybrid (spin, then sleep),\n"
		"                        sqpoll\n"
		"  --no-pin              do not pin each reactor to its CPU\n"
		"  --quiet               no messages on stderr but errors\n"
		"  --enable-debug-command  allow DEBUG CLOCK-ADVANCE (tests of key expiry); in a\n"
		"                        config file: enable-debug-command yes|no|local\n"
		"  --cluster-enabled yes|no  a Redis Cluster node (topology pushed with CLUSTERX\n"
		"                        SETNODES, e.g. by urkv-cluster; docs/kv.md)\n"
		"  --cluster-config-file PATH  node id and topology (default <data file>.cluster)\n");
}

/* Long options; the ones with a value go through urkv_opt_set (opts.c), as config lines do. */
static const struct option longs[] = {
	{ "bind", required_argument, NULL, 'b' },
	{ "port", required_argument, NULL, 'p' },
	{ "port-file", required_argument, NULL, 'P' },
	{ "data", required_argument, NULL, 'd' },
	{ "size", required_argument, NULL, 's' },
	{ "cache", required_argument, NULL, 'c' },
	{ "log-size", required_argument, NULL, 'L' },
	{ "cores", required_argument, NULL, 'n' },
	{ "max-clients", required_argument, NULL, 'm' },
	{ "max-request", required_argument, NULL, 'r' },
	{ "proto-max-bulk-len", required_argument, NULL, 'B' },
	{ "max-args", required_argument, NULL, 'a' },
	{ "idle-timeout", required_argument, NULL, 't' },
	{ "sync", required_argument, NULL, 'S' },
	{ "group-delay-us", required_argument, NULL, 'g' },
	{ "read-prefetch-min", required_argument, NULL, 'R' },
	{ "poll", required_argument, NULL, 'o' },
	{ "requirepass", required_argument, NULL, 'A' },
	{ "protected-mode", required_argument, NULL, 'M' },
	{ "appendfsync", required_argument, NULL, 'F' },
	{ "nosync", no_argument, NULL, 'N' },
	{ "no-pin", no_argument, NULL, 'U' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "enable-debug-command", no_argument, NULL, 'D' },
	{ "cluster-enabled", required_argument, NULL, 'C' },
	{ "cluster-config-file", required_argument, NULL, 'K' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

/*
 * Command line: `urkv [CONFIG-FILE] [options]`.  The config file (a first
 * argument that is not an option) is read first, then the options, which
 * override it.  apply false: only find the config file.
 */
static int parse_opts(int argc, char **argv, struct urkv_opts *o, bool apply)
{
	char why[256];
	int ch, idx;

	optind = 1;
	opterr = apply;
	while ((ch = getopt_long(argc, argv, "b:p:d:qh", longs, &idx)) != -1) {
		const char *name = NULL;

		if (!apply)
			continue;
		for (const struct option *l = longs; l->name; l++)
			if (l->val == ch)
				name = l->name;
		switch (ch) {
		case 'N': o->appendfsync = URKV_FSYNC_NO; break;
		case 'U': o->no_pin = true; break;
		case 'q': o->quiet = true; break;
		case 'D': o->enable_debug = URKV_DEBUG_YES; break;
		case 'h': usage(stdout); exit(0);
		case '?': usage(stderr); return -1;
		default:
			if (!name || urkv_opt_set(o, name, optarg, why, sizeof(why)) != 0) {
				fprintf(stderr, "urkv: %s (--%s)\n", name ? why : "bad option",
					name ? name : "?");
				return -1;
			}
			break;
		}
	}
	if (!apply) {
		if (optind < argc)
			o->config_file = argv[optind];
		return 0;
	}
	if (argc - optind > 1) {
		usage(stderr);
		return -1;
	}
	return 0;
}

/* " (detail)" when there is a detail, else "": no message ends in an empty "()". */
static const char *detail(char *buf, size_t len)
{
	const char *msg = urt_last_error();

	if (!msg || !*msg)
		return "";
	snprintf(buf, len, " (%s)", msg);
	return buf;
}

/*
 * The data file this start created, if it did: a start that fails before
 * it served anyone (an address not on this host, a port in use) removes
 * it, rather than leave a new file of --size bytes behind (new_file.c).
 * A cluster node's new cluster file goes the same way
 * (urkv_cluster_remove_created).  Before urt_kv_open: whether the path
 * names a file already (an lstat error but ENOENT counts as yes).
 */
static bool data_file_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 || errno != ENOENT;
}

/* Connections the cores accepted (every one might have written). */
static uint64_t connections_accepted(const struct urkv_server *srv)
{
	uint64_t n = 0;

	for (unsigned i = 0; srv->cores && i < srv->ncores; i++)
		n += atomic_load(&srv->cores[i].st.connections);
	return n;
}

static int write_port_file(const char *path, uint16_t port)
{
	char tmp[4096];
	FILE *f;

	/* Written whole, then renamed, so a reader never sees a partial number. */
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	fprintf(f, "%u\n", port);
	if (fclose(f) != 0)
		return -1;
	return rename(tmp, path);
}

int main(int argc, char **argv)
{
	struct urkv_server srv = { 0 };
	struct urkv_opts *o = &srv.o;
	struct urt_rt_opts ro;
	struct urt_kv_opts ko;
	struct urkv_new_file nf = { 0 };
	sigset_t sigs;
	bool existed;
	int sig = 0, ret;

	char dbuf[1024];

	urkv_opts_default(o);
	if (parse_opts(argc, argv, o, false))
		return 2;
	if (o->config_file && urkv_config_load(o->config_file, o) != 0) {
		urkv_config_free();
		return 2;
	}
	if (parse_opts(argc, argv, o, true)) {
		urkv_config_free();
		return 2;
	}
	urkv_opts_data_path(o, srv.data_path, sizeof(srv.data_path));
	urkv_slot_init();
	urkv_cluster_keys_init();
	if (o->cluster_enabled && urkv_cluster_open(&srv) != 0) {
		urkv_config_free();
		return 1;
	}
	atomic_init(&srv.live.max_clients, o->max_clients);
	atomic_init(&srv.live.timeout_ns, o->idle_timeout_ns);
	atomic_init(&srv.live.appendfsync, (int)o->appendfsync);
	atomic_init(&srv.live.protected_mode, o->protected_mode);
	atomic_init(&srv.live.last_save_wall_ns, urt_clock_wall_ns());
	atomic_init(&srv.next_client_id, 1);
	if (o->requirepass && urkv_auth_set_password(&srv, o->requirepass, strlen(o->requirepass))) {
		fprintf(stderr, "urkv: out of memory\n");
		goto fail;
	}
	_Static_assert(URT_KV_VALUE_MAX == 536870912u, "URKV_VALUE_MAX_TEXT");
	if (o->max_request == 0)
		o->max_request = o->proto_max_bulk_len + (1u << 20);

	/* Every thread, reactors included, inherits this mask: signals come to sigwait only. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	urt_kv_opts_default(&ko);
	ko.path = srv.data_path;
	ko.size_bytes = o->size_bytes;
	ko.cache_bytes = o->cache_bytes;
	ko.log_bytes = o->log_bytes;
	ko.sync = o->sync;
	ko.group_delay_ns = o->group_delay_ns;
	ko.read_prefetch_min_bytes = o->read_prefetch_min;
	ko.clock_ms = urkv_store_clock;	/* The real clock plus DEBUG CLOCK-ADVANCE's offset. */
	ko.clock_arg = &srv;

	urt_rt_opts_default(&ro);
	if (o->cores) {
		static int cpus[1024];
		long online = sysconf(_SC_NPROCESSORS_ONLN);

		for (unsigned i = 0; i < o->cores; i++)
			cpus[i] = (int)(i % (unsigned)(online > 0 ? online : 1));
		ro.cpus = cpus;
		ro.ncpus = o->cores;
		ro.pin = o->cores <= (unsigned)online;
	}
	srv.ncores = o->cores ? o->cores : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	/*
	 * The loop below steps the cache down 64 MiB at a time: from --cache
	 * 1000T that is 2^24 steps, and from a larger one hours, with SIGTERM
	 * already blocked.  No core's region holds more than URKV_REGION_MAX
	 * of cache, so a larger cache starts the loop from there.
	 */
	if (ko.cache_bytes > (uint64_t)srv.ncores * URKV_REGION_MAX)
		ko.cache_bytes = (uint64_t)srv.ncores * URKV_REGION_MAX;
	ro.buf_region_bytes = urt_kv_buf_region_bytes(&ko, srv.ncores);
	while (ro.buf_region_bytes > URKV_REGION_MAX && ko.cache_bytes > (64ull << 20)) {
		/* A core's registered region is at most 1 GiB: fewer cores get less cache. */
		ko.cache_bytes -= 64ull << 20;
		ro.buf_region_bytes = urt_kv_buf_region_bytes(&ko, srv.ncores);
	}
	if (ko.cache_bytes != o->cache_bytes && !o->quiet)
		fprintf(stderr, "urkv: --cache lowered to %llu MiB (1 GiB of registered buffers per core)\n",
			(unsigned long long)(ko.cache_bytes >> 20));
	if (urkv_cores_fit_memory(o, &ko, &ro, srv.ncores) != 0)
		goto fail;
	ro.fiber_max = o->max_clients + 1024;
	ro.mode = (enum urt_poll_mode)o->poll_mode;
	if (o->no_pin)
		ro.pin = false;
	ro.fiber_stack_bytes = 128u << 10;
	ret = urt_rt_start(&ro, &srv.rt);
	if (ret) {
		fprintf(stderr, "urkv: cannot start the runtime: %s%s\n", urt_strerror(ret),
			detail(dbuf, sizeof(dbuf)));
		goto fail;
	}
	srv.ncores = urt_rt_ncores(srv.rt);
	existed = data_file_exists(srv.data_path);
	ret = urt_kv_open(srv.rt, &ko, &srv.kv);
	if (ret) {
		fprintf(stderr, "urkv: cannot open %s: %s%s\n", srv.data_path, urt_strerror(ret),
			detail(dbuf, sizeof(dbuf)));
		urt_rt_stop(srv.rt);
		goto fail;
	}
	urkv_new_file_note(&nf, srv.data_path, existed);
	urkv_watch_init(&srv);
	srv.start_ns = urt_clock_ns();
	ret = urkv_watch_start(&srv);
	if (ret == 0)
		ret = urkv_server_start(&srv);
	if (ret == 0)
		ret = urkv_server_fit_fds(&srv);	/* --max-clients against ulimit -n. */
	if (ret == 0 && o->port_file && write_port_file(o->port_file, srv.port) != 0) {
		fprintf(stderr, "urkv: cannot write %s: %s\n", o->port_file, strerror(errno));
		ret = -EIO;
	}
	if (ret == 0) {
		if (!o->quiet)
			fprintf(stderr, "urkv: listening on %s:%u, %u cores, %u shards, data %s, "
					"appendfsync %s%s\n",
				o->bind_addr, srv.port, srv.ncores, urt_kv_shards(srv.kv), srv.data_path,
				urkv_fsync_name(o->appendfsync), o->requirepass ? ", password set" : "");
		while (sigwait(&sigs, &sig) == 0 && sig == SIGHUP)
			;
		if (!o->quiet)
			fprintf(stderr, "urkv: %s: stopping\n",
				atomic_load(&srv.shutdown_req) ? "SHUTDOWN" : strsignal(sig));
	}
	urkv_server_stop(&srv);
	urkv_watch_stop(&srv);	/* Before the store closes: the watch asks it for nothing, but names its file. */
	if (ret && connections_accepted(&srv) == 0) {
		/*
		 * While the store still holds the file's lock (kv_layout_claim's
		 * flock): unlinked after the close, another urkv could open it as
		 * a store in between and lose it.  The close then writes to the
		 * unlinked inode, freed when it closes.
		 */
		urkv_new_file_remove(&nf, srv.data_path, "", o->quiet);
		urkv_cluster_remove_created(&srv, o->quiet);
	}
	ret = urt_kv_close(srv.kv) || ret;
	urt_rt_stop(srv.rt);
	for (unsigned i = 0; srv.cores && i < srv.ncores; i++) {
		urkv_stats_core_free(&srv.cores[i]);
		urkv_errstats_core_free(&srv.cores[i]);
		free(srv.cores[i].fsync_sec);
	}
	free(srv.cores);
	urkv_cluster_close(&srv);
	urkv_auth_free(&srv);
	urkv_config_free();
	if (ret == 0 && !o->quiet)
		fprintf(stderr, "urkv: stopped cleanly\n");
	return ret ? 1 : 0;

fail:	/* A start that failed before the store was open: no data file of its own yet. */
	urkv_auth_free(&srv);
	urkv_cluster_remove_created(&srv, o->quiet);
	urkv_cluster_close(&srv);
	urkv_config_free();
	return 1;
}
