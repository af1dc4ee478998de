/*
 * bench_pool: page hits per second on one core when every page is cached.
 *
 * A store on the sim device (no I/O after the warm-up) with a pool larger
 * than the working set; one fiber on core 0 measures:
 *   tx/1-read      tx_begin + one page_get(READ) + commit (read-only): the
 *                  full cost of a one-page lookup transaction;
 *   gets-in-tx     page_get(READ) of 32 different pages inside one
 *                  transaction: the cost of one pool hit (hash lookup, pin);
 *   tx/1-write     tx_begin + page_get(WRITE) + abort: a write-intent hit
 *                  (private copy of the page, no log).
 * Steal time from /proc/stat is printed next to the figures.
 *
 * Usage: bench_pool [-s seconds] [-n pages]
 */
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "urbench/result.h"
#include "urt/dev.h"
#include "urt/error.h"
#include "urt/fiber.h"
#include "urt/ps.h"
#include "urt/rt.h"
#include "urt/sim.h"

struct pool_run {
	struct urt_dev *dev;
	uint64_t seconds;
	uint32_t pages;
	int err;
	double rate[3];
	struct urt_ps_stats st;
	sem_t done;
};

static uint64_t rng_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void pool_main(void *p)
{
	struct pool_run *r = p;
	struct urt_ps_opts o;
	struct urt_ps *ps;
	uint64_t x = 88172645463325252ull, n, t0, end;
	struct urt_tx *tx;
	void *data;
	int ret;

	urt_ps_opts_default(&o);
	o.create = true;
	o.pool_pages = r->pages + 64;
	ret = urt_ps_open(r->dev, &o, &ps);
	if (ret) {
		fprintf(stderr, "urt_ps_open: %s%s%s%s\n", urt_strerror(ret),
			*urt_last_error() ? " (" : "", urt_last_error(), *urt_last_error() ? ")" : "");
		r->err = ret;
		goto out;
	}
	/* Warm-up: bring every page into the pool. */
	for (uint32_t i = 0; i < r->pages; i++) {
		urt_tx_begin(ps, &tx);
		ret = urt_page_get(tx, i, URT_PAGE_READ, &data);
		urt_tx_abort(tx);
		if (ret) {
			r->err = ret;
			goto close;
		}
	}
	/* 1: one-read transactions. */
	n = 0;
	t0 = urt_clock_ns();
	end = t0 + r->seconds * 1000000000ull;
	while ((n & 1023) || urt_clock_ns() < end) {
		urt_tx_begin(ps, &tx);
		if (urt_page_get(tx, rng_next(&x) % r->pages, URT_PAGE_READ, &data))
			r->err = -1;
		urt_tx_commit(tx);
		n++;
	}
	r->rate[0] = (double)n / ((double)(urt_clock_ns() - t0) / 1e9);
	/* 2: 32 gets per transaction. */
	n = 0;
	t0 = urt_clock_ns();
	end = t0 + r->seconds * 1000000000ull;
	while ((n & 1023) || urt_clock_ns() < end) {
		uint64_t base = rng_next(&x) % r->pages;

		urt_tx_begin(ps, &tx);
		for (uint32_t k = 0; k < 32; k++)
			if (urt_page_get(tx, (base + k * 7) % r->pages, URT_PAGE_READ, &data))
				r->err = -1;
		urt_tx_commit(tx);
		n += 32;
	}
	r->rate[1] = (double)n / ((double)(urt_clock_ns() - t0) / 1e9);
	/* 3: write-intent hits, aborted. */
	n = 0;
	t0 = urt_clock_ns();
	end = t0 + r->seconds * 1000000000ull;
	while ((n & 1023) || urt_clock_ns() < end) {
		urt_tx_begin(ps, &tx);
		if (urt_page_get(tx, rng_next(&x) % r->pages, URT_PAGE_WRITE, &data))
			r->err = -1;
		urt_tx_abort(tx);
		n++;
	}
	r->rate[2] = (double)n / ((double)(urt_clock_ns() - t0) / 1e9);
	urt_ps_stats(ps, &r->st);
close:
	urt_ps_close(ps);
out:
	sem_post(&r->done);
}

int main(int argc, char **argv)
{
	static const int cpu0 = 0;
	struct pool_run r = { .seconds = 2, .pages = 1024 };
	struct urt_rt_opts ro;
	struct urt_sim_opts so;
	struct urt_rt *rt;
	struct ub_cpu_times c0, c1;
	int opt, ret;

	while ((opt = getopt(argc, argv, "s:n:")) != -1) {
		switch (opt) {
		case 's': r.seconds = strtoull(optarg, NULL, 0); break;
		case 'n': r.pages = (uint32_t)strtoul(optarg, NULL, 0); break;
		default:
			fprintf(stderr, "usage: %s [-s seconds] [-n pages]\n", argv[0]);
			return 2;
		}
	}
	urt_rt_opts_default(&ro);
	ro.cpus = &cpu0;
	ro.ncpus = 1;
	ro.buf_region_bytes = 64u << 20;
	ret = urt_rt_start(&ro, &rt);
	if (ret) {
		fprintf(stderr, "urt_rt_start: %s%s%s%s\n", urt_strerror(ret),
			*urt_last_error() ? " (" : "", urt_last_error(), *urt_last_error() ? ")" : "");
		return 1;
	}
	urt_sim_opts_default(&so);
	so.size_bytes = 64u << 20;
	if (urt_sim_open(&so, &r.dev))
		return 1;
	sem_init(&r.done, 0, 0);
	ub_cpu_times_read(&c0);
	urt_fiber_spawn_on(rt, 0, pool_main, &r);
	sem_wait(&r.done);
	ub_cpu_times_read(&c1);
	urt_rt_stop(rt);
	urt_dev_close(r.dev);
	if (r.err) {
		fprintf(stderr, "bench_pool failed: %d\n", r.err);
		return 1;
	}
	printf("# one core, %u cached pages of 4 KiB, %llu s per figure, steal %.1f%%\n", r.pages,
	       (unsigned long long)r.seconds,
	       ub_steal_pct(&c0, &c1));
	printf("tx/1-read    %12.0f tx/s (begin + 1 page_get READ + commit)\n", r.rate[0]);
	printf("gets-in-tx   %12.0f page hits/s (32 page_get READ per tx)\n", r.rate[1]);
	printf("tx/1-write   %12.0f tx/s (begin + 1 page_get WRITE (private copy) + abort)\n",
	       r.rate[2]);
	printf("pool: hits %llu misses %llu evictions %llu\n", (unsigned long long)r.st.hits,
	       (unsigned long long)r.st.misses, (unsigned long long)r.st.evictions);
	return 0;
}
