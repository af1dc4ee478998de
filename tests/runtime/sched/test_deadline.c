/*
 * Deadlines in the scheduler's queue (req.c R4, queue.c): an op's
 * timeout_ns runs while it waits in its device's queue.  A slow sim device
 * (every read takes READ_MS) with scheduler depth 1: a blocker read holds
 * the only depth unit, and the ops submitted behind it wait in the queue.
 *
 *   - An op with a 20 ms deadline behind it is answered -ETIMEDOUT at its
 *     deadline, long before the blocker ends, and the device never reads
 *     it (the sim's read count).  Before this, it was answered only when it
 *     was dispatched, after the blocker: at READ_MS.
 *   - Ops with a long enough deadline queued around it complete normally,
 *     in order, and the device reads exactly them.
 *   - urt_io_cancel of a queued op with a deadline gives -ECANCELED, the
 *     device never sees it, and its deadline's timer goes with it (the
 *     request is back in the pool at once, not at the deadline).
 *   - Afterwards the queue is consistent (white-box): nothing queued, no
 *     depth unit held, every request back in the pool, timed_out counted;
 *     later ops, some with deadlines, still dispatch one at a time.
 *
 * The time bounds are functional (20 ms against 300 ms: answered at the
 * deadline or at the blocker's end), not performance assertions.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <time.h>

#include "runtime/core.h"
#include "urt/sim.h"
#include "../fixture.h"
#include "../../sim_open.h"

#define PG 4096u
#define READ_MS 300u
#define SHORT_MS 20u
#define LONG_MS 5000u
#define WRITE_MS 1u
#define SPIN_MS 15u
#define DISPATCH_DEADLINE_MS 10u
#define MS 1000000ull
#define OPS_MAX 8u

struct dl {
	struct urt_dev *dev;
	uint8_t *buf;
	struct urt_io io[OPS_MAX];
	int res[OPS_MAX];
	uint64_t t_ns[OPS_MAX];	/* Completion time, from t0. */
	unsigned done;
	uint64_t t0;
	struct urt_waitq wq;
	/* White-box, read on the core after the body's ops are done. */
	uint32_t inflight, queued, ops_live;
	bool busy;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void dl_done(struct urt_io *io, int res, void *arg)
{
	struct dl *d = arg;
	unsigned i = (unsigned)(io - d->io);

	d->res[i] = res;
	d->t_ns[i] = mono_ns() - d->t0;
	d->done++;
	urt_waitq_wake_all(&d->wq);
}

/*
 * Submit op i, a read (or a write) of page i * 16 (nothing contiguous,
 * nothing merges), with a deadline of timeout_ms (0: none).
 */
static void dl_submit_op(struct dl *d, unsigned i, uint64_t timeout_ms, bool write)
{
	struct urt_io *io = &d->io[i];

	if (write)
		urt_io_prep_write(io, d->dev, d->buf + (size_t)i * PG, PG, (uint64_t)i * 16 * PG);
	else
		urt_io_prep_read(io, d->dev, d->buf + (size_t)i * PG, PG, (uint64_t)i * 16 * PG);
	io->timeout_ns = timeout_ms * MS;
	d->res[i] = 1;	/* Not answered yet. */
	cr_assert_eq(urt_io_submit(io, dl_done, d), 0);
}

static void dl_submit(struct dl *d, unsigned i, uint64_t timeout_ms)
{
	dl_submit_op(d, i, timeout_ms, false);
}

static void dl_wait(struct dl *d, unsigned n)
{
	while (d->done < n)
		urt_waitq_wait(&d->wq);
}

/* The queue's state and the core's live ops, once the ops are done and a loop iteration reaped what was left. */
static void dl_snapshot(struct dl *d)
{
	struct urt_core *c = core_self();
	struct sched_queue *q = d->dev->sched_q[c->index];

	/* Let the loop reap the CQEs of removed timers (a few ms: they come at once). */
	urt_sleep_ns(5 * MS);
	d->inflight = sched_inflight(q);
	d->queued = q->queued;
	d->busy = q->busy;
	d->ops_live = c->ops_live;
}

static struct urt_rt *dl_open(struct dl *d)
{
	struct urt_sim_opts so;
	struct urt_sched_opts sc;
	struct urt_rt *rt = fx_start_one_core();

	memset(d, 0, sizeof(*d));
	urt_sim_opts_default(&so);
	so.size_bytes = 16u << 20;
	so.read_latency_ns = READ_MS * MS;	/* A slow device: the blocker holds it this long. */
	so.write_latency_ns = WRITE_MS * MS;	/* A quick blocker for test (4). */
	d->dev = tests_sim_open(&so);
	urt_sched_opts_default(&sc);
	sc.policy = URT_SCHED_FIFO;
	sc.depth_max = 1;	/* The scheduler is the device's only queue. */
	cr_assert_eq(urt_dev_sched_set(d->dev, &sc), 0, "%s", urt_last_error());
	d->buf = aligned_alloc(PG, OPS_MAX * PG);
	return rt;
}

static void dl_close(struct urt_rt *rt, struct dl *d, struct urt_sim_stats *sim, struct urt_sched_stats *st)
{
	urt_rt_stop(rt);
	cr_assert_eq(urt_sim_stats(d->dev, sim), 0);
	cr_assert_eq(urt_dev_sched_stats(d->dev, st), 0);
	urt_dev_close(d->dev);
	free(d->buf);
}

/* (1) Blocker, then an op with a 20 ms deadline behind it. */
static void body_short(void *arg)
{
	struct dl *d = arg;

	memset(&d->wq, 0, sizeof(d->wq));
	d->t0 = mono_ns();
	dl_submit(d, 0, 0);
	dl_submit(d, 1, SHORT_MS);
	dl_wait(d, 2);
	dl_snapshot(d);
}

Test(sched_deadline, queued_op_times_out_at_its_deadline_and_never_reaches_the_device, .timeout = 20)
{
	struct urt_sim_stats sim;
	struct urt_sched_stats st;
	struct dl d;
	struct urt_rt *rt = dl_open(&d);

	fx_run(rt, 0, body_short, &d);
	/* Before the stop: a request lost by the queue would make it wait for ever. */
	cr_expect_eq(d.res[0], (int)PG, "the blocker gave %d", d.res[0]);
	cr_assert_eq(d.res[1], -ETIMEDOUT, "the queued op gave %d", d.res[1]);
	cr_expect_geq(d.t_ns[1], (SHORT_MS - 1) * MS, "answered after %llu us, before its deadline",
		      (unsigned long long)(d.t_ns[1] / 1000));
	cr_assert_lt(d.t_ns[1], READ_MS / 2 * MS,
		     "answered after %llu us: it waited for the blocker (%u ms) instead of its deadline (%u ms)",
		     (unsigned long long)(d.t_ns[1] / 1000), READ_MS, SHORT_MS);
	cr_expect_lt(d.t_ns[1], d.t_ns[0], "the timed-out op was answered after the blocker");
	cr_assert_eq(d.ops_live, 0, "%u requests still live with every op answered", d.ops_live);
	dl_close(rt, &d, &sim, &st);
	cr_expect_eq(sim.reads, 1, "the device read %llu commands (only the blocker may reach it)",
		     (unsigned long long)sim.reads);
	cr_expect_eq(st.timed_out, 1, "timed_out %llu", (unsigned long long)st.timed_out);
	cr_expect_eq(st.dispatched, 1, "dispatched %llu", (unsigned long long)st.dispatched);
}

/* (2) Long deadlines around a short one: blocker, long, short, long. */
static void body_mixed(void *arg)
{
	struct dl *d = arg;

	memset(&d->wq, 0, sizeof(d->wq));
	d->t0 = mono_ns();
	dl_submit(d, 0, 0);
	dl_submit(d, 1, LONG_MS);
	dl_submit(d, 2, SHORT_MS);
	dl_submit(d, 3, LONG_MS);
	dl_wait(d, 4);
	dl_snapshot(d);
}

Test(sched_deadline, ops_with_long_enough_deadlines_complete_around_a_timed_out_one, .timeout = 20)
{
	struct urt_sim_stats sim;
	struct urt_sched_stats st;
	struct dl d;
	struct urt_rt *rt = dl_open(&d);

	fx_run(rt, 0, body_mixed, &d);
	cr_expect_eq(d.res[0], (int)PG, "the blocker gave %d", d.res[0]);
	cr_expect_eq(d.res[1], (int)PG, "the first op with a %u ms deadline gave %d", LONG_MS, d.res[1]);
	cr_expect_eq(d.res[3], (int)PG, "the second op with a %u ms deadline gave %d", LONG_MS, d.res[3]);
	cr_assert_eq(d.res[2], -ETIMEDOUT, "the op with a %u ms deadline gave %d", SHORT_MS, d.res[2]);
	cr_assert_lt(d.t_ns[2], READ_MS / 2 * MS, "the short deadline was answered after %llu us",
		     (unsigned long long)(d.t_ns[2] / 1000));
	cr_assert_eq(d.ops_live, 0, "%u requests still live with every op answered", d.ops_live);
	dl_close(rt, &d, &sim, &st);
	/* One at a time, in order: each waits for the one before. */
	cr_expect(d.t_ns[0] < d.t_ns[1] && d.t_ns[1] < d.t_ns[3], "out of order: %llu %llu %llu us",
		  (unsigned long long)(d.t_ns[0] / 1000), (unsigned long long)(d.t_ns[1] / 1000),
		  (unsigned long long)(d.t_ns[3] / 1000));
	cr_expect_geq(d.t_ns[3], 3 * READ_MS * MS - 10 * MS, "the last op ended after %llu us, not after 3 reads",
		      (unsigned long long)(d.t_ns[3] / 1000));
	cr_expect_eq(sim.reads, 3, "the device read %llu commands (the blocker and the two long ones)",
		     (unsigned long long)sim.reads);
	cr_expect_eq(st.timed_out, 1, "timed_out %llu", (unsigned long long)st.timed_out);
}

/* (3) Blocker, then an op with a long deadline that is cancelled while it waits. */
static void body_cancel(void *arg)
{
	struct dl *d = arg;

	memset(&d->wq, 0, sizeof(d->wq));
	d->t0 = mono_ns();
	dl_submit(d, 0, 0);
	dl_submit(d, 1, LONG_MS);
	urt_sleep_ns(SHORT_MS * MS);
	cr_assert_eq(urt_io_cancel(&d->io[1]), 0);
	/* Answered at once, and its request (with its deadline's timer) is back in the pool before the blocker ends. */
	dl_snapshot(d);
	dl_wait(d, 2);
}

Test(sched_deadline, cancel_of_a_queued_op_with_a_deadline, .timeout = 20)
{
	struct urt_sim_stats sim;
	struct urt_sched_stats st;
	struct dl d;
	struct urt_rt *rt = dl_open(&d);

	fx_run(rt, 0, body_cancel, &d);
	/* Before the stop: with its timer left armed, the request would be live until the deadline. */
	cr_assert_eq(d.ops_live, 1, "%u requests live while only the blocker is in flight", d.ops_live);
	dl_close(rt, &d, &sim, &st);
	cr_expect_eq(d.res[0], (int)PG, "the blocker gave %d", d.res[0]);
	cr_expect_eq(d.res[1], -ECANCELED, "the cancelled op gave %d", d.res[1]);
	cr_expect_lt(d.t_ns[1], d.t_ns[0], "the cancelled op was answered after the blocker");
	/* Taken before the blocker ended: its unit held, the cancelled op holding none. */
	cr_expect_eq(d.queued, 0, "%u ops still queued", d.queued);
	cr_expect_eq(d.inflight, 1, "%u depth units held while only the blocker is in flight", d.inflight);
	cr_expect_eq(sim.reads, 1, "the device read %llu commands (only the blocker may reach it)",
		     (unsigned long long)sim.reads);
	cr_expect_eq(st.timed_out, 0, "timed_out %llu", (unsigned long long)st.timed_out);
}

/*
 * (4) After timeouts in the queue, by its timer and by the dispatch step
 * finding an op past its deadline, the queue is consistent and later ops
 * still dispatch.  The second case: a quick write (WRITE_MS) holds the
 * unit while an op with a DISPATCH_DEADLINE_MS deadline queues behind it,
 * and the fiber keeps the loop busy for SPIN_MS before the iteration ends.
 * The op's timer reaches the kernel only then, so it fires at about
 * SPIN_MS + DISPATCH_DEADLINE_MS; the write ends at SPIN_MS + WRITE_MS,
 * and the next dispatch step, whose clock is past the deadline, finds the
 * op (req_queued_expired).  (Were the timer's CQE reaped first, the
 * timer's path would answer it the same way: the checks hold either way.)
 */
static void body_after(void *arg)
{
	struct dl *d = arg;
	uint64_t spin_end;

	memset(&d->wq, 0, sizeof(d->wq));
	d->t0 = mono_ns();
	dl_submit(d, 0, 0);
	dl_submit(d, 1, SHORT_MS);
	dl_wait(d, 2);
	dl_submit_op(d, 2, 0, true);
	dl_submit(d, 3, DISPATCH_DEADLINE_MS);
	spin_end = mono_ns() + SPIN_MS * MS;
	while (mono_ns() < spin_end)
		;
	dl_wait(d, 4);
	/* Later ops, with and without a deadline, one at a time through the single depth unit. */
	dl_submit(d, 4, LONG_MS);
	dl_submit(d, 5, 0);
	dl_submit(d, 6, LONG_MS);
	dl_wait(d, 7);
	dl_snapshot(d);
}

Test(sched_deadline, queue_is_consistent_after_timeouts, .timeout = 20)
{
	struct urt_sim_stats sim;
	struct urt_sched_stats st;
	struct dl d;
	struct urt_rt *rt = dl_open(&d);

	fx_run(rt, 0, body_after, &d);
	cr_expect_eq(d.res[0], (int)PG, "the blocker gave %d", d.res[0]);
	cr_expect_eq(d.res[1], -ETIMEDOUT, "the first queued op gave %d", d.res[1]);
	cr_expect_eq(d.res[2], (int)PG, "the quick write gave %d", d.res[2]);
	cr_expect_eq(d.res[3], -ETIMEDOUT, "the op past its deadline at dispatch gave %d", d.res[3]);
	for (unsigned i = 4; i < 7; i++)
		cr_expect_eq(d.res[i], (int)PG, "later op %u gave %d", i, d.res[i]);
	cr_expect_eq(d.inflight, 0, "%u depth units held with nothing in flight", d.inflight);
	cr_expect_eq(d.queued, 0, "%u ops still queued", d.queued);
	cr_expect(!d.busy, "the queue is still on the core's busy list");
	/* Before the stop: a request lost by the queue would make it wait for ever. */
	cr_assert_eq(d.ops_live, 0, "%u requests still live with every op answered", d.ops_live);
	dl_close(rt, &d, &sim, &st);
	cr_expect_eq(st.timed_out, 2, "timed_out %llu", (unsigned long long)st.timed_out);
	cr_expect_eq(st.queued, 7, "queued %llu", (unsigned long long)st.queued);
	cr_expect_eq(st.dispatched, 5, "dispatched %llu", (unsigned long long)st.dispatched);
	cr_expect_eq(st.commands, 5, "commands %llu", (unsigned long long)st.commands);
	cr_expect_eq(sim.reads, 4, "the device read %llu commands (the timed-out ops must not reach it)",
		     (unsigned long long)sim.reads);
	cr_expect_eq(sim.writes, 1, "the device wrote %llu commands", (unsigned long long)sim.writes);
}
