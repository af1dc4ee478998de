/*
 * urkv: a Redis-protocol (RESP2) key-value server on urt.
 *
 *   urkv [--bind ADDR] [--port N] [--data PATH] [--size BYTES] [--cache BYTES]
 *        [--cores N] [--max-clients N] [--max-request BYTES] [--idle-timeout SEC]
 *        [--nosync] [--sync auto|fua|flush|none] [--group-delay-us N] [--poll MODE] [--no-pin]
 *        [--port-file PATH] [--quiet]
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
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "cmd_ext.h"
#include "urkv.h"
#include "urt/urt.h"

#define URKV_REGION_MAX (1ull << 30)	/* Largest buffer region a core may register. */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: urkv [options]\n"
		"  --bind ADDR           listen address (default 127.0.0.1; other addresses only\n"
		"                        when given, e.g. 0.0.0.0 or ::)\n"
		"  --port N              TCP port (default 6379; 0 = any free port)\n"
		"  --port-file PATH      write the port there once listening\n"
		"  --data PATH           data file or block device (default ./urkv.data)\n"
		"  --size BYTES          size of a new data file (default 1G; K, M, G suffixes)\n"
		"  --cache BYTES         page cache of all shards (default 256M)\n"
		"  --cores N             reactor threads, one shard each (default: every CPU)\n"
		"  --max-clients N       connections at once (default 1024)\n"
		"  --max-request BYTES   largest request (default proto-max-bulk-len + 1M)\n"
		"  --proto-max-bulk-len BYTES  largest argument, e.g. a SET's value (default 512M)\n"
		"  --max-args N          most arguments of one command (default 65536)\n"
		"  --idle-timeout SEC    close idle connections (default 0 = never)\n"
		"  --nosync              reply to writes once applied, before they are durable\n"
		"                        (a crash may lose the last writes; per connection: NOSYNC ON)\n"
		"  --sync POLICY         log durability: auto (default), fua, flush, none (unsafe)\n"
		"  --group-delay-us N    extra wait of the log writer to fill a batch (default 0)\n"
		"  --poll MODE           reactor wait: interrupt (default), hybrid (spin, then sleep),\n"
		"                        sqpoll\n"
		"  --no-pin              do not pin each reactor to its CPU\n"
		"  --quiet               no messages on stderr but errors\n"
		"  --enable-debug-command  allow DEBUG CLOCK-ADVANCE (tests of key expiry)\n");
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	case 't': case 'T': v <<= 40; end++; break;
	default: break;
	}
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end)
		return -1;
	*out = v;
	return 0;
}

static int parse_opts(int argc, char **argv, struct urkv_opts *o)
{
	static const struct option longs[] = {
		{ "bind", required_argument, NULL, 'b' },
		{ "port", required_argument, NULL, 'p' },
		{ "port-file", required_argument, NULL, 'P' },
		{ "data", required_argument, NULL, 'd' },
		{ "size", required_argument, NULL, 's' },
		{ "cache", required_argument, NULL, 'c' },
		{ "cores", required_argument, NULL, 'n' },
		{ "max-clients", required_argument, NULL, 'm' },
		{ "max-request", required_argument, NULL, 'r' },
		{ "proto-max-bulk-len", required_argument, NULL, 'B' },
		{ "max-args", required_argument, NULL, 'a' },
		{ "idle-timeout", required_argument, NULL, 't' },
		{ "nosync", no_argument, NULL, 'N' },
		{ "sync", required_argument, NULL, 'S' },
		{ "group-delay-us", required_argument, NULL, 'g' },
		{ "poll", required_argument, NULL, 'o' },
		{ "no-pin", no_argument, NULL, 'U' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "enable-debug-command", no_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	uint64_t v;
	int ch;

	while ((ch = getopt_long(argc, argv, "b:p:d:qh", longs, NULL)) != -1) {
		switch (ch) {
		case 'b': o->bind_addr = optarg; break;
		case 'p':
			if (parse_size(optarg, &v) || v > 65535)
				goto bad;
			o->port = (uint16_t)v;
			break;
		case 'P': o->port_file = optarg; break;
		case 'd': o->data_path = optarg; break;
		case 's': if (parse_size(optarg, &o->size_bytes)) goto bad; break;
		case 'c': if (parse_size(optarg, &o->cache_bytes)) goto bad; break;
		case 'n':
			if (parse_size(optarg, &v) || v == 0 || v > 1024)
				goto bad;
			o->cores = (unsigned)v;
			break;
		case 'm':
			if (parse_size(optarg, &v) || v == 0 || v > 1000000)
				goto bad;
			o->max_clients = (unsigned)v;
			break;
		case 'r':
			if (parse_size(optarg, &v) || v < 1024 || v > (1ull << 30))
				goto bad;
			o->max_request = (size_t)v;
			break;
		case 'B':
			if (parse_size(optarg, &v) || v < 1024 || v > URT_KV_VALUE_MAX)
				goto bad;
			o->proto_max_bulk_len = (size_t)v;
			break;
		case 'a':
			if (parse_size(optarg, &v) || v < 3 || v > (1u << 20))
				goto bad;
			o->max_args = (size_t)v;
			break;
		case 't':
			if (parse_size(optarg, &v) || v > 1000000000ull)
				goto bad;
			o->idle_timeout_ns = v * 1000000000ull;
			break;
		case 'N': o->nosync = true; break;
		case 'S':
			if (strcmp(optarg, "auto") == 0)
				o->sync = URT_PS_SYNC_AUTO;
			else if (strcmp(optarg, "fua") == 0)
				o->sync = URT_PS_SYNC_FUA;
			else if (strcmp(optarg, "flush") == 0)
				o->sync = URT_PS_SYNC_FLUSH;
			else if (strcmp(optarg, "none") == 0)
				o->sync = URT_PS_SYNC_NONE_UNSAFE;
			else
				goto bad;
			break;
		case 'g':
			if (parse_size(optarg, &v))
				goto bad;
			o->group_delay_ns = v * 1000;
			break;
		case 'o':
			if (strcmp(optarg, "interrupt") == 0)
				o->poll_mode = URT_POLL_INTERRUPT;
			else if (strcmp(optarg, "hybrid") == 0)
				o->poll_mode = URT_POLL_HYBRID;
			else if (strcmp(optarg, "sqpoll") == 0)
				o->poll_mode = URT_POLL_SQPOLL;
			else
				goto bad;
			break;
		case 'U': o->no_pin = true; break;
		case 'q': o->quiet = true; break;
		case 'D': o->enable_debug = true; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return -1;
	}
	return 0;
bad:
	for (const struct option *l = longs; l->name; l++)
		if (l->val == ch)
			fprintf(stderr, "urkv: bad value '%s' for --%s\n", optarg, l->name);
	return -1;
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
	sigset_t sigs;
	int sig = 0, ret;

	*o = (struct urkv_opts){
		.bind_addr = "127.0.0.1",
		.port = 6379,
		.data_path = "urkv.data",
		.size_bytes = 1ull << 30,
		.cache_bytes = 256ull << 20,
		.max_clients = 1024,
		.max_request = 0,	/* proto_max_bulk_len + 1 MiB unless given. */
		.proto_max_bulk_len = URT_KV_VALUE_MAX,
		.max_args = 65536,
		.sync = URT_PS_SYNC_AUTO,
	};
	if (parse_opts(argc, argv, o))
		return 2;
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
	ko.path = o->data_path;
	ko.size_bytes = o->size_bytes;
	ko.cache_bytes = o->cache_bytes;
	ko.sync = o->sync;
	ko.group_delay_ns = o->group_delay_ns;
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
	ro.buf_region_bytes = urt_kv_buf_region_bytes(&ko, srv.ncores);
	while (ro.buf_region_bytes > URKV_REGION_MAX && ko.cache_bytes > (64ull << 20)) {
		/* A core's registered region is at most 1 GiB: fewer cores get less cache. */
		ko.cache_bytes -= 64ull << 20;
		ro.buf_region_bytes = urt_kv_buf_region_bytes(&ko, srv.ncores);
	}
	if (ko.cache_bytes != o->cache_bytes && !o->quiet)
		fprintf(stderr, "urkv: --cache lowered to %llu MiB (1 GiB of registered buffers per core)\n",
			(unsigned long long)(ko.cache_bytes >> 20));
	ro.fiber_max = o->max_clients + 1024;
	ro.mode = (enum urt_poll_mode)o->poll_mode;
	if (o->no_pin)
		ro.pin = false;
	ro.fiber_stack_bytes = 128u << 10;
	ret = urt_rt_start(&ro, &srv.rt);
	if (ret) {
		fprintf(stderr, "urkv: cannot start the runtime: %s (%s)\n", urt_strerror(ret),
			urt_last_error());
		return 1;
	}
	srv.ncores = urt_rt_ncores(srv.rt);
	ret = urt_kv_open(srv.rt, &ko, &srv.kv);
	if (ret) {
		fprintf(stderr, "urkv: cannot open %s: %s (%s)\n", o->data_path, urt_strerror(ret),
			urt_last_error());
		urt_rt_stop(srv.rt);
		return 1;
	}
	srv.start_ns = urt_clock_ns();
	ret = urkv_server_start(&srv);
	if (ret == 0 && o->port_file && write_port_file(o->port_file, srv.port) != 0) {
		fprintf(stderr, "urkv: cannot write %s: %s\n", o->port_file, strerror(errno));
		ret = -EIO;
	}
	if (ret == 0) {
		if (!o->quiet)
			fprintf(stderr, "urkv: listening on %s:%u, %u cores, %u shards, data %s%s\n",
				o->bind_addr, srv.port, srv.ncores, urt_kv_shards(srv.kv), o->data_path,
				o->nosync ? " (nosync)" : "");
		while (sigwait(&sigs, &sig) == 0 && sig == SIGHUP)
			;
		if (!o->quiet)
			fprintf(stderr, "urkv: %s: stopping\n", strsignal(sig));
	}
	urkv_server_stop(&srv);
	ret = urt_kv_close(srv.kv) || ret;
	urt_rt_stop(srv.rt);
	free(srv.cores);
	if (ret == 0 && !o->quiet)
		fprintf(stderr, "urkv: stopped cleanly\n");
	return ret ? 1 : 0;
}
