/*
 * Hybrid polling really spins: completions that arrive inside the spin
 * window are found by the spin (spin_hits), and completions that cannot
 * arrive inside it end in a sleep (spin_misses) and, once the observed
 * latency is above hybrid_spin_max_ns, stop the spinning altogether
 * (spin_skipped).  A hybrid mode that behaved as the interrupt mode would
 * count none of them.  The completions are timers of a chosen length, so
 * the test needs no fast device.
 */
#include "fixture.h"

struct sleep_run {
	uint64_t ns;	/* Length of each sleep. */
	int n;		/* Sleeps. */
	int bad;	/* Sleeps that did not return 0. */
};

static void sleep_body(void *p)
{
	struct sleep_run *r = p;

	for (int i = 0; i < r->n; i++)
		r->bad += urt_sleep_ns(r->ns) != 0;
}

/* Run n sleeps of ns on a one-core hybrid runtime with spin bound max_ns; the counters they moved. */
static void run_sleeps(uint64_t max_ns, uint64_t ns, int n, struct urt_stats *d)
{
	static const int cpu0 = 0;
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct urt_stats a, b;
	struct sleep_run r = { .ns = ns, .n = n };

	urt_rt_opts_default(&o);
	o.mode = URT_POLL_HYBRID;
	o.cpus = &cpu0;
	o.ncpus = 1;
	o.hybrid_spin_max_ns = max_ns;
	o.buf_region_bytes = 64u << 10;
	rt = fx_start(&o);
	cr_assert_eq(urt_rt_stats(rt, 0, &a), 0);
	fx_run(rt, 0, sleep_body, &r);
	cr_assert_eq(urt_rt_stats(rt, 0, &b), 0);
	urt_rt_stop(rt);
	cr_assert_eq(r.bad, 0);
	memset(d, 0, sizeof(*d));
	d->spin_hits = b.spin_hits - a.spin_hits;
	d->spin_misses = b.spin_misses - a.spin_misses;
	d->spin_skipped = b.spin_skipped - a.spin_skipped;
	cr_log_info("%d sleeps of %llu us, spin bound %llu us: %llu hits, %llu misses, %llu skipped", n,
		    (unsigned long long)ns / 1000, (unsigned long long)max_ns / 1000,
		    (unsigned long long)d->spin_hits, (unsigned long long)d->spin_misses,
		    (unsigned long long)d->spin_skipped);
}

/*
 * 20 us timers under a 2 ms bound: the budget settles near 1.25 x the
 * latency, so most completions land inside it.  At least half must be
 * hits: a preempted spin on this shared machine may miss now and then.
 */
Test(hybrid, completions_inside_the_window_are_spin_hits)
{
	struct urt_stats d;

	run_sleeps(2000000, 20000, 200, &d);
	cr_expect_geq(d.spin_hits, 100, "%llu hits of 200 (%llu misses, %llu skipped)",
		      (unsigned long long)d.spin_hits, (unsigned long long)d.spin_misses,
		      (unsigned long long)d.spin_skipped);
	/* A preemption (steal) can make one latency look slow for a while; most waits must still spin. */
	cr_expect_leq(d.spin_skipped, 40, "spinning was given up although completions come in time: %llu skipped",
		      (unsigned long long)d.spin_skipped);
}

/*
 * 2 ms timers under a 50 us bound: no completion can come inside the
 * window.  The first wait spins and misses; after that the latency is
 * known to exceed the bound and the core sleeps without spinning.
 */
Test(hybrid, completions_outside_the_window_miss_then_stop_spinning)
{
	struct urt_stats d;

	run_sleeps(50000, 2000000, 30, &d);
	cr_expect_eq(d.spin_hits, 0, "a 2 ms timer was found by a spin of at most 50 us");
	cr_expect_geq(d.spin_misses, 1, "no spin was tried");
	cr_expect_geq(d.spin_skipped, 25, "the core kept spinning for a slow device: %llu skipped, %llu misses",
		      (unsigned long long)d.spin_skipped, (unsigned long long)d.spin_misses);
}
