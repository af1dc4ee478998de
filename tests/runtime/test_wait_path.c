/*
 * The loop's wait step takes the path built for its mode.  A core whose
 * only ring is the main ring, in interrupt mode without SQPOLL, waits
 * inline (ring.h ring_wait: one io_uring_enter, no liburing wrapper);
 * every other mode goes out of line to ring_wait_general.  Both give the
 * same results, so a wait_plain that silently stayed false would only cost
 * speed: urt_stats.waits_inline and waits_general say which path ran.
 * SQPOLL's side is asserted in test_sqpoll.c, so that a kernel refusing
 * SQPOLL shows as a skip of that program.
 */
#include "runtime/core.h"	/* White-box: hybrid_mode_alone_waits_general closes the IOPOLL ring. */
#include "fixture.h"

#define NOPS 500
#define READS 64
#define BLK 4096u

struct wait_run {
	struct urt_dev *dev;	/* Scratch file, or NULL for NOPs only. */
	bool drop_poll_ring;	/* Close the core's IOPOLL ring first, as if the kernel had refused it. */
	bool had_poll_ring;	/* It had one to close. */
	int bad;		/* Ops that failed or read wrong bytes. */
};

static void ops_body(void *p)
{
	struct wait_run *r = p;
	struct urt_io io;
	uint8_t *buf;

	if (r->drop_poll_ring) {
		struct urt_core *c = core_self();

		r->had_poll_ring = c->rings[RING_POLL].ready;
		ring_teardown(c, RING_POLL);
	}
	for (int i = 0; i < NOPS; i++) {
		urt_io_prep_nop(&io);
		r->bad += urt_io_wait(&io) != 0;
	}
	if (!r->dev)
		return;
	buf = urt_buf_get(BLK);
	if (!buf) {
		r->bad++;
		return;
	}
	/* Page-cache writes then reads of the same blocks: the bytes come back. */
	for (unsigned i = 0; i < READS; i++) {
		for (unsigned k = 0; k < BLK; k++)
			buf[k] = fx_pattern(7, (uint64_t)i * BLK + k);
		urt_io_prep_write(&io, r->dev, buf, BLK, (uint64_t)i * BLK);
		r->bad += urt_io_wait(&io) != (int)BLK;
	}
	for (unsigned i = 0; i < READS; i++) {
		memset(buf, 0, BLK);
		urt_io_prep_read(&io, r->dev, buf, BLK, (uint64_t)i * BLK);
		r->bad += urt_io_wait(&io) != (int)BLK;
		for (unsigned k = 0; k < BLK; k++)
			if (buf[k] != fx_pattern(7, (uint64_t)i * BLK + k)) {
				r->bad++;
				break;
			}
	}
	urt_buf_put(buf);
}

/*
 * Runs ops_body on a one-core runtime started with o, with its IOPOLL ring
 * closed first if drop_poll_ring; the counters of the whole run, and
 * whether there was a ring to close.
 */
static bool run_ops_with(const struct urt_rt_opts *o, bool reads, bool drop_poll_ring, struct urt_stats *st)
{
	struct fx_file f;
	struct wait_run r = { .drop_poll_ring = drop_poll_ring };
	struct urt_rt *rt;

	if (reads) {
		fx_file_open(&f, READS * BLK, false);
		r.dev = f.dev;
	}
	rt = fx_start(o);
	fx_run(rt, 0, ops_body, &r);
	cr_assert_eq(urt_rt_stats(rt, 0, st), 0);
	urt_rt_stop(rt);
	if (reads)
		fx_file_close(&f);
	cr_assert_eq(r.bad, 0, "%d NOPs or reads failed", r.bad);
	cr_log_info("mode %d (IOPOLL ring flags 0x%x): %llu inline waits, %llu general, %llu enters",
		    (int)o->mode, st->poll_ring_flags, (unsigned long long)st->waits_inline,
		    (unsigned long long)st->waits_general, (unsigned long long)st->enters);
	return r.had_poll_ring;
}

static void run_ops(const struct urt_rt_opts *o, bool reads, struct urt_stats *st)
{
	(void)run_ops_with(o, reads, false, st);
}

/*
 * Interrupt mode, main ring alone: every wait of the loop is inline.  Each
 * urt_io_wait suspends its fiber until a later iteration, so there are at
 * least as many waits as ops, and not one general wait.
 */
Test(wait_path, interrupt_mode_waits_inline)
{
	struct urt_rt_opts o;
	struct urt_stats st;

	fx_opts_one_core(&o);
	run_ops(&o, true, &st);
	cr_expect_eq(st.ring_flags & (1u << 1) /* IORING_SETUP_SQPOLL */, 0);
	cr_expect_geq(st.waits_inline, NOPS + 2 * READS, "%llu inline waits for %d ops",
		      (unsigned long long)st.waits_inline, NOPS + 2 * READS);
	cr_expect_eq(st.waits_general, 0, "%llu waits took the general path in plain interrupt mode",
		     (unsigned long long)st.waits_general);
}

/*
 * Hybrid mode spins before it sleeps, which the inline path cannot do:
 * every wait is general, none inline.  Two conditions send it there: its
 * mode, and its IOPOLL ring (rings_extra), which this kernel sets up
 * (poll_ring_flags != 0); a kernel refusing that ring tests the mode alone.
 */
Test(wait_path, hybrid_mode_waits_general)
{
	struct urt_rt_opts o;
	struct urt_stats st;

	fx_opts_one_core(&o);
	o.mode = URT_POLL_HYBRID;
	run_ops(&o, false, &st);
	cr_expect_geq(st.waits_general, NOPS, "%llu general waits for %d NOPs",
		      (unsigned long long)st.waits_general, NOPS);
	cr_expect_eq(st.waits_inline, 0, "%llu waits took the inline path in hybrid mode",
		     (unsigned long long)st.waits_inline);
}

/*
 * Hybrid mode's own condition.  Above, its IOPOLL ring alone sends every
 * wait to the general path on a kernel that sets that ring up, so a
 * wait_plain that ignored the mode would pass there.  Here the core closes
 * the ring before its ops (white-box, as on a kernel that refused it): the
 * mode alone must keep the waits general.
 */
Test(wait_path, hybrid_mode_alone_waits_general)
{
	struct urt_rt_opts o;
	struct urt_stats st;
	bool had;

	fx_opts_one_core(&o);
	o.mode = URT_POLL_HYBRID;
	had = run_ops_with(&o, false, true, &st);
	cr_log_info("hybrid core %s an IOPOLL ring to close", had ? "had" : "had no");
	cr_expect_geq(st.waits_general, NOPS, "%llu general waits for %d NOPs",
		      (unsigned long long)st.waits_general, NOPS);
	cr_expect_eq(st.waits_inline, 0, "%llu waits took the inline path in hybrid mode without its IOPOLL ring",
		     (unsigned long long)st.waits_inline);
}

/* Both cores of a two-core runtime in mode run ops_body: each core's counters and the totals. */
static void run_two_cores(enum urt_poll_mode mode, struct urt_stats one[2], struct urt_stats *all)
{
	static const int cpus[] = { 0, 0 };
	struct urt_rt_opts o;
	struct wait_run r = { 0 };
	struct urt_rt *rt;

	fx_opts_one_core(&o);
	o.cpus = cpus;
	o.ncpus = 2;
	o.mode = mode;
	rt = fx_start(&o);
	fx_run(rt, 0, ops_body, &r);
	fx_run(rt, 1, ops_body, &r);
	/* Core 1 first: the total is read last, so no core can have waited more since. */
	cr_assert_eq(urt_rt_stats(rt, 1, &one[1]), 0);
	cr_assert_eq(urt_rt_stats(rt, 0, &one[0]), 0);
	cr_assert_eq(urt_rt_stats_total(rt, all), 0);
	urt_rt_stop(rt);
	cr_assert_eq(r.bad, 0);
}

/*
 * The totals over cores carry both counters: the inline waits of two
 * interrupt-mode cores, the general waits of two hybrid ones (each sum
 * is checked where it is not 0, so a total that left it out fails).
 */
Test(wait_path, totals_sum_both_counters)
{
	struct urt_stats one[2], all;

	run_two_cores(URT_POLL_INTERRUPT, one, &all);
	cr_expect_geq(one[0].waits_inline, NOPS);
	cr_expect_geq(one[1].waits_inline, NOPS);
	cr_expect_geq(all.waits_inline, one[0].waits_inline + one[1].waits_inline);
	cr_expect_eq(all.waits_general, 0);

	run_two_cores(URT_POLL_HYBRID, one, &all);
	cr_expect_geq(one[0].waits_general, NOPS);
	cr_expect_geq(one[1].waits_general, NOPS);
	cr_expect_geq(all.waits_general, one[0].waits_general + one[1].waits_general,
		      "total %llu general waits, cores %llu and %llu", (unsigned long long)all.waits_general,
		      (unsigned long long)one[0].waits_general, (unsigned long long)one[1].waits_general);
	cr_expect_eq(all.waits_inline, 0);
}
