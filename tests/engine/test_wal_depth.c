/*
 * The log depth (urt_ps_opts.log_depth): with more than one log batch in
 * flight, a later batch may finish on the device before an earlier one,
 * but commits are acknowledged in log order only, a failed earlier batch
 * fails every later one, and recovery never replays a later batch that
 * reached the device after an earlier one that did not.  The earlier batch
 * is held back by a command timeout injected on the sim device (its write
 * does nothing and fails cmd_timeout_ns later; the runtime then retries
 * it), while a second writer writes the next batch at once.  Either the
 * retry succeeds (both commits acknowledged, the later one only after the
 * earlier), or an EIO armed on the batch's first block fails it too (both
 * commits fail, and after a power cut neither is there, although the later
 * batch is on the device).  The option's bounds are checked too.
 * The crash simulation (test_crash) runs depths 1, 2 and 4.
 */
#include "base/clock.h"
#include "engine/format/format.h"
#include "ps_fixture.h"

#define LOG_BYTES (256u << 10)
#define STALL_NS (150ull * 1000000)	/* The stalled write's timeout. */

struct wd_state {
	struct urt_dev *dev;
	struct urt_dev *crashed;
	struct urt_ps *ps;
	struct urt_ps_opts o;
	unsigned live;			/* Committer fibers running. */
	struct urt_waitq wq;		/* The body waits here for them. */
	unsigned acks;			/* Commits returned so far (successful or not). */
	int ret[2];			/* Commit results: [0] the stalled batch's, [1] the next one's. */
	unsigned order[2];		/* When each returned: 1 = first. */
	uint64_t ns[2];			/* How long each took. */
	int ret_open[2];		/* urt_ps_open with log_depth 0 and 9. */
	char msg[2][256];		/* Their messages. */
	uint64_t v[3];			/* Pages 1-3 after the power cycle. */
	int err[3];			/* Their read errors. */
	uint64_t overlapped;		/* batches_overlapped before the failure was seen. */
	struct urt_sim_stats ss;	/* The device's counters before the power cycle. */
	bool fail_batch;		/* The stalled batch's retry fails too. */
	struct psx_fail fail;
};

struct wd_arg {
	struct wd_state *s;
	unsigned id;			/* 0: page 2 (stalled batch), 1: page 3 (next batch). */
};

static void wd_committer(void *arg)
{
	struct wd_arg *a = arg;
	struct wd_state *s = a->s;
	uint64_t t0 = urt_clock_ns();

	s->ret[a->id] = psx_write_page(s->ps, 2 + a->id, 20 + 10 * a->id);
	s->ns[a->id] = urt_clock_ns() - t0;
	s->order[a->id] = ++s->acks;
	if (--s->live == 0)
		urt_waitq_wake_all(&s->wq);
}

static void body_stall(void *arg)
{
	struct wd_state *s = arg;
	struct wd_arg a[2] = { { s, 0 }, { s, 1 } };
	struct urt_ps_stats st;

	s->ps = psx_open(s->dev, &s->o, &s->fail);
	if (!s->ps)
		return;
	if (psx_write_page(s->ps, 1, 10)) {
		psx_failf(&s->fail, "the first commit failed");
		return;
	}
	/* The next log write (one command) stalls, then fails; its retry may fail for good. */
	urt_ps_stats(s->ps, &st);
	if (urt_sim_inject(s->dev, URT_SIM_FAULT_TIMEOUT, URT_SB_REGION_SIZE, LOG_BYTES, 1) ||
	    (s->fail_batch &&
	     urt_sim_inject(s->dev, URT_SIM_FAULT_WRITE_EIO,
			    URT_SB_REGION_SIZE + st.durable_lsn % LOG_BYTES, 512, URT_SIM_FOREVER))) {
		psx_failf(&s->fail, "urt_sim_inject failed");
		return;
	}
	s->live = 2;
	if (urt_fiber_spawn(wd_committer, &a[0])) {
		psx_failf(&s->fail, "spawn failed");
		return;
	}
	/*
	 * Let the first batch be sealed and reach its stalled write.  10 ms
	 * once let both commits join one batch on a loaded machine (ctest -j2
	 * beside a CI run and two builds); 30 ms leaves the later commit 120
	 * ms of the 150 ms stall to wait, above the STALL_NS / 2 it is held to.
	 * (The sim device counts the stalled command only when it times out,
	 * so its counters cannot tell when the write went out.)
	 */
	urt_sleep_ns(30 * 1000000);
	if (urt_fiber_spawn(wd_committer, &a[1])) {
		psx_failf(&s->fail, "spawn failed");
		return;
	}
	while (s->live)
		urt_waitq_wait(&s->wq);
	urt_ps_stats(s->ps, &st);
	s->overlapped = st.batches_overlapped;
	urt_sim_stats(s->dev, &s->ss);
	urt_ps_close(s->ps);
	s->ps = NULL;
	/* Batch k+1 is on the device (written with FUA); batch k is not. */
	s->o.create = false;
	s->ps = psx_power_cycle(&s->dev, &s->crashed, &s->o, 3, &s->fail);
	if (!s->ps)
		return;
	for (unsigned i = 0; i < 3; i++)
		s->v[i] = psx_read_page(s->ps, 1 + i, &s->err[i]);
	urt_ps_close(s->ps);
}

static void run_stall(uint32_t depth, bool fail_batch)
{
	struct wd_state s = { 0 };
	struct urt_sim_opts so;

	urt_sim_opts_default(&so);
	so.size_bytes = 8u << 20;
	so.seed = 5;
	so.cmd_timeout_ns = STALL_NS;
	s.dev = tests_sim_open(&so);
	cr_assert(s.dev);
	urt_ps_opts_default(&s.o);
	s.o.create = true;
	s.o.log_bytes = LOG_BYTES;
	s.o.pool_pages = 8;
	s.o.sync = URT_PS_SYNC_FUA;	/* One write per batch, durable on completion. */
	s.o.log_depth = depth;
	s.fail_batch = fail_batch;
	psx_run_and_close(body_stall, &s, &s.dev, &s.crashed, &s.fail);

	cr_expect_eq(s.ss.timeouts, 1, "the stalled write timed out once (%llu)",
		     (unsigned long long)s.ss.timeouts);
	if (fail_batch) {
		cr_expect_neq(s.ret[0], 0, "the failed batch's commit fails");
		cr_expect_neq(s.ret[1], 0, "the commit after the failed batch is not acknowledged "
			      "(returned %d after %llu ms)", s.ret[1],
			      (unsigned long long)(s.ns[1] / 1000000));
	} else {
		cr_expect_eq(s.ret[0], 0, "the stalled batch's commit, retried: %d", s.ret[0]);
		cr_expect_eq(s.ret[1], 0, "the later commit: %d", s.ret[1]);
	}
	cr_expect_eq(s.order[0], 1, "the stalled batch's commit returned first (order %u, %u)",
		     s.order[0], s.order[1]);
	cr_expect_geq(s.ns[1], STALL_NS / 2, "the later commit waited for the stalled one: %llu ns",
		      (unsigned long long)s.ns[1]);
	if (depth > 1)
		cr_expect_gt(s.overlapped, 0, "the second batch was sealed while the first was in flight");
	else
		cr_expect_eq(s.overlapped, 0, "depth 1 never has two batches in flight");
	cr_expect_eq(s.err[0], 0);
	cr_expect_eq(s.v[0], 10, "the acknowledged commit survives (page 1 shows %llu)",
		     (unsigned long long)s.v[0]);
	if (fail_batch) {
		/* Recovery ends the log at the missing batch: the later one is not replayed. */
		if (depth > 1)
			cr_expect_geq(s.ss.fua_writes, 3, "the later batch was written (%llu FUA writes)",
				      (unsigned long long)s.ss.fua_writes);
		cr_expect_eq(s.v[1], 0, "the failed batch is absent (page 2 shows %llu)",
			     (unsigned long long)s.v[1]);
		cr_expect_eq(s.v[2], 0, "the batch after the failed one is not replayed (page 3 "
			     "shows %llu)", (unsigned long long)s.v[2]);
	} else {
		cr_expect_eq(s.v[1], 20, "page 2 shows %llu", (unsigned long long)s.v[1]);
		cr_expect_eq(s.v[2], 30, "page 3 shows %llu", (unsigned long long)s.v[2]);
	}
}

Test(wal_depth, later_batch_acked_after_stalled_one_depth2, .timeout = 60) { run_stall(2, false); }
Test(wal_depth, later_batch_acked_after_stalled_one_depth4, .timeout = 60) { run_stall(4, false); }
Test(wal_depth, stalled_batch_depth1, .timeout = 60) { run_stall(1, false); }
Test(wal_depth, failed_batch_fails_later_one_depth2, .timeout = 60) { run_stall(2, true); }
Test(wal_depth, failed_batch_fails_later_one_depth4, .timeout = 60) { run_stall(4, true); }
Test(wal_depth, failed_batch_depth1, .timeout = 60) { run_stall(1, true); }

static void body_bounds(void *arg)
{
	struct wd_state *s = arg;
	static const uint32_t bad[2] = { 0, URT_PS_LOG_DEPTH_MAX + 1 };

	for (int i = 0; i < 2; i++) {
		struct urt_ps *ps = NULL;

		s->o.log_depth = bad[i];
		s->ret_open[i] = urt_ps_open(s->dev, &s->o, &ps);
		snprintf(s->msg[i], sizeof(s->msg[i]), "%s", urt_last_error());
		if (ps)
			urt_ps_close(ps);
	}
}

Test(wal_depth, depth_out_of_range_is_refused)
{
	struct wd_state s = { 0 };

	s.dev = psx_sim(8u << 20, 1);
	urt_ps_opts_default(&s.o);
	s.o.create = true;
	s.o.log_bytes = LOG_BYTES;
	psx_run_and_close(body_bounds, &s, &s.dev, NULL, &s.fail);
	for (int i = 0; i < 2; i++) {
		cr_expect_eq(s.ret_open[i], -EINVAL, "log_depth %s: %d", i ? "9" : "0", s.ret_open[i]);
		cr_expect(strstr(s.msg[i], "log_depth") != NULL, "the message names the option: %s",
			  s.msg[i]);
	}
}
