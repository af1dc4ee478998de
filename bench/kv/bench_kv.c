/*
 * bench_kv: operations per second of the embedded key-value API (urt/kv.h).
 *
 *   bench_kv [--dir DIR] [--keys N] [--value BYTES] [--fibers N] [--seconds S]
 *
 * Two scenarios, each on a fresh data file in DIR:
 *   cached  the page cache holds the whole data set;
 *   10x     the data set is ten times the page cache, so most reads miss
 *           and go to the device.
 * In each: load N keys (NOSYNC puts, then a checkpoint), then for S
 * seconds random gets, then random durable puts (overwrites), from
 * `fibers` fibers on every core (so half the keys are on the other core's
 * shard and are forwarded).  Prints ops/s and latency percentiles, and the
 * host's steal time during the run.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "urbench/result.h"
#include "urt/error.h"
#include "urt/fiber.h"
#include "urt/hist.h"
#include "urt/kv.h"
#include "urt/rt.h"

struct cfg {
	const char *dir;	/* Where the data files go. */
	uint64_t keys;		/* Keys loaded. */
	size_t value;		/* Value bytes. */
	unsigned fibers;	/* Fibers per core. */
	double seconds;		/* Length of each measured phase. */
};

enum phase { PH_LOAD, PH_GET, PH_PUT };

struct run {
	const struct cfg *cfg;	/* Options. */
	struct urt_kv *kv;	/* Store. */
	enum phase phase;	/* What the fibers do. */
	uint64_t deadline_ns;	/* End of a timed phase. */
	_Atomic uint64_t next;	/* Next key to load. */
	_Atomic uint64_t ops;	/* Operations done. */
	_Atomic int errors;	/* Failed operations. */
	sem_t done;		/* One post per finished fiber. */
};

struct worker {
	struct run *run;	/* Shared state. */
	uint64_t rng;		/* Generator. */
	struct urt_hist lat;	/* Latency of its operations (ns). */
};

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static size_t key_of(uint64_t k, char *buf)
{
	return (size_t)snprintf(buf, 32, "key:%012" PRIu64, k);
}

static void worker_main(void *arg)
{
	struct worker *w = arg;
	struct run *r = w->run;
	const struct cfg *c = r->cfg;
	char key[32], *val = malloc(c->value + 1), *buf = malloc(c->value + 64);
	uint64_t n = 0;

	memset(val, 'v', c->value);
	for (;;) {
		uint64_t k, t0;
		size_t klen, vlen;
		int ret;

		if (r->phase == PH_LOAD) {
			k = atomic_fetch_add(&r->next, 1);
			if (k >= c->keys)
				break;
		} else {
			if ((n & 15) == 0 && urt_clock_ns() >= r->deadline_ns)
				break;
			k = rnd(&w->rng) % c->keys;
		}
		klen = key_of(k, key);
		t0 = urt_clock_ns();
		if (r->phase == PH_GET)
			ret = urt_kv_get(r->kv, key, klen, buf, c->value + 64, &vlen);
		else
			ret = urt_kv_put(r->kv, key, klen, val, c->value,
					 r->phase == PH_LOAD ? URT_KV_NOSYNC : 0);
		if (r->phase != PH_LOAD)
			urt_hist_add(&w->lat, urt_clock_ns() - t0);
		if (ret)
			atomic_fetch_add(&r->errors, 1);
		n++;
	}
	atomic_fetch_add(&r->ops, n);
	free(val);
	free(buf);
	sem_post(&r->done);
}

/* Runs one phase on every core; returns ops/s and merges the latencies into lat. */
static double phase_run(struct urt_rt *rt, struct run *r, enum phase ph, struct urt_hist *lat)
{
	unsigned ncores = urt_rt_ncores(rt), nw = ncores * r->cfg->fibers;
	struct worker *ws = calloc(nw, sizeof(*ws));
	uint64_t t0;
	double secs;

	r->phase = ph;
	atomic_store(&r->ops, 0);
	atomic_store(&r->next, 0);
	t0 = urt_clock_ns();
	r->deadline_ns = t0 + (uint64_t)(r->cfg->seconds * 1e9);
	for (unsigned i = 0; i < nw; i++) {
		ws[i].run = r;
		ws[i].rng = 0x9e3779b97f4a7c15ull * (i + 1);
		urt_hist_init(&ws[i].lat);
		while (urt_fiber_spawn_on(rt, i % ncores, worker_main, &ws[i]) == -EAGAIN)
			usleep(100);
	}
	for (unsigned i = 0; i < nw; i++)
		sem_wait(&r->done);
	secs = (double)(urt_clock_ns() - t0) / 1e9;
	urt_hist_init(lat);
	for (unsigned i = 0; i < nw; i++)
		urt_hist_merge(lat, &ws[i].lat);
	free(ws);
	return (double)atomic_load(&r->ops) / secs;
}

struct ckpt_arg {
	struct urt_kv *kv;
	sem_t done;
};

static void ckpt_fiber(void *p)
{
	struct ckpt_arg *a = p;

	urt_kv_checkpoint(a->kv);
	sem_post(&a->done);
}

static int scenario(const struct cfg *c, const char *name, uint64_t cache_bytes)
{
	char path[4096];
	struct urt_rt_opts ro;
	struct urt_kv_opts ko;
	struct urt_rt *rt;
	struct run r = { .cfg = c };
	struct urt_hist lat;
	struct ckpt_arg ca;
	struct ub_cpu_times c0, c1;
	double load, get, put, steal;
	uint64_t get_p50, get_p99;
	int ret;

	snprintf(path, sizeof(path), "%s/bench_kv.%d.data", c->dir, (int)getpid());
	unlink(path);
	urt_kv_opts_default(&ko);
	ko.path = path;
	ko.size_bytes = (c->keys * (c->value + 64) * 4 + (512ull << 20)) & ~((1ull << 20) - 1);
	ko.cache_bytes = cache_bytes;
	ko.batch_bytes_max = 512u << 10;
	urt_rt_opts_default(&ro);
	ro.buf_region_bytes = urt_kv_buf_region_bytes(&ko, (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
	ret = urt_rt_start(&ro, &rt);
	if (ret) {
		fprintf(stderr, "urt_rt_start: %s%s%s%s\n", urt_strerror(ret),
			*urt_last_error() ? " (" : "", urt_last_error(), *urt_last_error() ? ")" : "");
		return ret;
	}
	ret = urt_kv_open(rt, &ko, &r.kv);
	if (ret) {
		fprintf(stderr, "urt_kv_open: %s%s%s%s\n", urt_strerror(ret),
			*urt_last_error() ? " (" : "", urt_last_error(), *urt_last_error() ? ")" : "");
		urt_rt_stop(rt);
		return ret;
	}
	sem_init(&r.done, 0, 0);
	load = phase_run(rt, &r, PH_LOAD, &lat);
	ca.kv = r.kv;
	sem_init(&ca.done, 0, 0);
	urt_fiber_spawn_on(rt, 0, ckpt_fiber, &ca);
	sem_wait(&ca.done);
	ub_cpu_times_read(&c0);
	get = phase_run(rt, &r, PH_GET, &lat);
	get_p50 = urt_hist_percentile(&lat, 50);
	get_p99 = urt_hist_percentile(&lat, 99);
	put = phase_run(rt, &r, PH_PUT, &lat);
	ub_cpu_times_read(&c1);
	steal = ub_steal_pct(&c0, &c1);
	printf("%-7s cache %5" PRIu64 " MiB  load %8.0f/s  get %8.0f/s (p50 %5.1f us, p99 %6.1f us)"
	       "  durable put %8.0f/s (p50 %6.1f us, p99 %7.1f us)  errors %d  steal %.1f%%\n",
	       name, cache_bytes >> 20, load, get, (double)get_p50 / 1e3, (double)get_p99 / 1e3, put,
	       (double)urt_hist_percentile(&lat, 50) / 1e3, (double)urt_hist_percentile(&lat, 99) / 1e3,
	       atomic_load(&r.errors), steal);
	fflush(stdout);
	urt_kv_close(r.kv);
	urt_rt_stop(rt);
	unlink(path);
	return atomic_load(&r.errors) ? -EIO : 0;
}

int main(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "keys", required_argument, NULL, 'k' },
		{ "value", required_argument, NULL, 'v' },
		{ "fibers", required_argument, NULL, 'f' },
		{ "seconds", required_argument, NULL, 's' },
		{ 0 },
	};
	struct cfg c = { .dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", .keys = 400000,
			 .value = 100, .fibers = 32, .seconds = 5 };
	uint64_t data_bytes;
	int ch, ret;

	while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (ch) {
		case 'd': c.dir = optarg; break;
		case 'k': c.keys = strtoull(optarg, NULL, 10); break;
		case 'v': c.value = strtoull(optarg, NULL, 10); break;
		case 'f': c.fibers = (unsigned)strtoul(optarg, NULL, 10); break;
		case 's': c.seconds = strtod(optarg, NULL); break;
		default:
			fprintf(stderr, "usage: bench_kv [--dir DIR] [--keys N] [--value BYTES] "
					"[--fibers N] [--seconds S]\n");
			return 2;
		}
	}
	if (c.keys == 0 || c.fibers == 0 || c.value > URT_KV_VALUE_MAX || c.seconds <= 0) {
		fprintf(stderr, "bench_kv: bad option\n");
		return 2;
	}
	/* The tree's pages hold the data set about 70% full. */
	data_bytes = c.keys * (c.value + 16 + 12) * 10 / 7;
	printf("bench_kv: %" PRIu64 " keys of %zu-byte values (~%" PRIu64 " MiB of pages), "
	       "%u fibers per core, %ld cores, %.0f s per phase\n", c.keys, c.value, data_bytes >> 20,
	       c.fibers, sysconf(_SC_NPROCESSORS_ONLN), c.seconds);
	ret = scenario(&c, "cached", data_bytes * 2 + (64ull << 20));
	if (ret == 0)
		ret = scenario(&c, "10x", data_bytes / 10);
	return ret ? 1 : 0;
}
