/*
 * The scheduler's fast path without a request (sched.h sched_fast_bare,
 * io.c): on a file device with a FIFO scheduler, random reads go bare once
 * the random stretch is seen, each holding a depth unit until its
 * completion.  A short read at the end of the file and a read past it
 * (0 bytes) make the bare op take a request, which must give the unit
 * back: after every phase the queue (white-box) has no command in flight.
 * With depth_max 1 a lost unit would queue every later op for ever, so the
 * body stops at the first leak instead of hanging.  A second test runs two
 * runtimes one after the other on the same device: the second finds the
 * first one's queue and passes it at once.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "runtime/core.h"
#include "../fixture.h"

#define PG 4096u
#define FILE_PAGES 256u

struct fb {
	struct urt_dev *dev;
	uint8_t *buf;
	int bad;		/* Reads with a wrong result. */
	int timed_out;		/* Deadline reads that waited for a depth unit in vain. */
	int leaked;		/* Depth units still held after a phase (must be 0). */
	int short_res;		/* Result of the read straddling the end of the file. */
	int answers;		/* Deadline test: callbacks run. */
	int held_in_cb;		/* Deadline test: depth units in flight seen inside the callbacks. */
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A scratch file with a FIFO scheduler of depth 1 (a lost unit then stops every later op), and f on it. */
static void fb_open(struct fx_file *file, struct fb *f)
{
	struct urt_sched_opts sc;

	fx_file_open(file, (uint64_t)FILE_PAGES * PG, false);
	urt_sched_opts_default(&sc);
	sc.policy = URT_SCHED_FIFO;
	sc.depth_max = 1;
	cr_assert_eq(urt_dev_sched_set(file->dev, &sc), 0, "%s", urt_last_error());
	f->dev = file->dev;
	f->buf = aligned_alloc(4096, PG);
}

static int read_one(struct fb *f, uint64_t off, size_t len, uint64_t timeout_ns)
{
	struct urt_io io;

	urt_io_prep_read(&io, f->dev, f->buf, len, off);
	io.timeout_ns = timeout_ns;
	return urt_io_wait(&io);
}

static void body(void *arg)
{
	struct fb *f = arg;
	uint64_t s = 88172645463325252ull;

	for (int i = 0; i < 64; i++)
		f->bad += read_one(f, (rnd(&s) % FILE_PAGES) * PG, PG, 0) != (int)PG;
	if ((f->leaked = (int)sched_inflight(f->dev->sched_q[0])))
		return;
	/* Short: the last page and one past the end (buffered: no alignment rule). */
	f->short_res = read_one(f, (FILE_PAGES - 1) * PG + PG / 2, PG, 0);
	if ((f->leaked = (int)sched_inflight(f->dev->sched_q[0])))
		return;
	for (int i = 0; i < 8; i++) {
		int r = read_one(f, (rnd(&s) % FILE_PAGES) * PG, PG, 1000000000ull);

		f->timed_out += r == -ETIMEDOUT;
		f->bad += r != (int)PG && r != -ETIMEDOUT;
	}
	/* Nothing left to read: end of file (bare: no deadline). */
	f->bad += read_one(f, (uint64_t)FILE_PAGES * PG * 2, PG, 0) != 0;
	if ((f->leaked = (int)sched_inflight(f->dev->sched_q[0])))
		return;
	for (int i = 0; i < 8; i++) {
		int r = read_one(f, (rnd(&s) % FILE_PAGES) * PG, PG, 1000000000ull);

		f->timed_out += r == -ETIMEDOUT;
		f->bad += r != (int)PG && r != -ETIMEDOUT;
	}
}

Test(sched_fast_bare, depth_units_come_back)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct fx_file file;
	struct urt_sched_stats st;
	struct fb f = { 0 };

	urt_rt_opts_default(&o);
	o.ncpus = 1;
	o.cpus = (int[]){ 0 };
	o.buf_region_bytes = 64u << 10;
	rt = fx_start(&o);
	fb_open(&file, &f);
	fx_run(rt, 0, body, &f);
	cr_expect_eq(f.bad, 0, "%d reads with a wrong result", f.bad);
	cr_expect_eq(f.leaked, 0, "%d depth units held with nothing in flight", f.leaked);
	cr_expect_eq(f.timed_out, 0, "%d reads never got a depth unit: one leaked", f.timed_out);
	cr_expect_eq(f.short_res, (int)(PG / 2), "the read at the end of the file gave %d", f.short_res);
	cr_assert_eq(urt_dev_sched_stats(file.dev, &st), 0);
	/* After the first SCHED_FAST_CREDIT random reads, the rest leave at once. */
	cr_expect_geq(st.fast + 20, st.queued, "only %llu of %llu ops took the fast path", (unsigned long long)st.fast,
		      (unsigned long long)st.queued);
	free(f.buf);
	fx_file_close(&file);
	urt_rt_stop(rt);
}

/* Random reads of whole pages, counting wrong results; then the queue's units in flight (must be 0). */
static void body_random(void *arg)
{
	struct fb *f = arg;
	uint64_t s = 2463534242ull;

	for (int i = 0; i < 64; i++)
		f->bad += read_one(f, (rnd(&s) % FILE_PAGES) * PG, PG, 0) != (int)PG;
	f->leaked = (int)sched_inflight(f->dev->sched_q[0]);
}

/*
 * A device's queues outlive a runtime: a second runtime's core 0 finds the
 * first one's queue, open and with every unit back, and its reads pass it
 * bare at once (no random stretch to see again: the credit is kept).
 */
Test(sched_fast_bare, queue_outlives_runtime)
{
	struct fx_file file;
	struct urt_sched_stats st;
	struct fb f = { 0 };
	uint64_t fast[2];

	fb_open(&file, &f);
	for (int run = 0; run < 2; run++) {
		struct urt_rt *rt = fx_start_one_core();

		fx_run(rt, 0, body_random, &f);
		urt_rt_stop(rt);
		cr_expect_eq(f.bad, 0, "run %d: %d reads with a wrong result", run, f.bad);
		cr_expect_eq(f.leaked, 0, "run %d: %d depth units held with nothing in flight", run, f.leaked);
		cr_assert_eq(urt_dev_sched_stats(file.dev, &st), 0);
		fast[run] = st.fast;
	}
	cr_expect_eq(st.queued, 128, "queued %llu", (unsigned long long)st.queued);
	/* The first run passes once its random stretch is seen; the second from its first read. */
	cr_expect_geq(fast[0], 64 - SCHED_FAST_CREDIT, "first run: fast %llu", (unsigned long long)fast[0]);
	cr_expect_eq(fast[1] - fast[0], 64, "second run: fast %llu", (unsigned long long)(fast[1] - fast[0]));
	free(f.buf);
	fx_file_close(&file);
}

/*
 * A deadline op's depth unit comes back at its answer (queue.c Q3), not
 * at its LINK_TIMEOUT's CQE, which the kernel posts after the op's own:
 * inside the op's callback the queue must have no command in flight, so
 * that the op the callback submits finds the unit free.  (Held until the
 * timer's CQE, every op after a deadline op queued for an iteration; the
 * depth test above then failed on tmpfs, where reads complete inline and
 * the timer's CQE comes a reap later.)
 */
struct cb_state {
	struct sched_queue *q;
	int calls;
	int held;		/* Units in flight seen inside the callbacks. */
	int bad;
};

static void deadline_cb(struct urt_io *io, int res, void *arg)
{
	struct cb_state *s = arg;

	(void)io;
	s->calls++;
	s->held += (int)sched_inflight(s->q);
	s->bad += res != (int)PG;
}

static void body_deadline_cb(void *arg)
{
	struct fb *f = arg;
	struct cb_state s = { 0 };
	uint64_t seed = 977ull;

	/* The core's queue is made by its first op. */
	f->bad += read_one(f, 0, PG, 0) != (int)PG;
	s.q = f->dev->sched_q[0];
	for (int i = 0; i < 32; i++) {
		struct urt_io io;

		urt_io_prep_read(&io, f->dev, f->buf, PG, (rnd(&seed) % FILE_PAGES) * PG);
		io.timeout_ns = 1000000000ull;
		if (urt_io_submit(&io, deadline_cb, &s) != 0) {
			f->bad++;
			continue;
		}
		while (s.calls <= i)
			urt_fiber_yield();
	}
	f->held_in_cb = s.held;
	f->bad += s.bad;
	f->answers = s.calls;
}

Test(sched_fast_bare, deadline_op_gives_its_unit_back_at_its_answer)
{
	struct fx_file file;
	struct fb f = { 0 };
	struct urt_rt *rt;

	fb_open(&file, &f);
	rt = fx_start_one_core();
	fx_run(rt, 0, body_deadline_cb, &f);
	urt_rt_stop(rt);
	cr_expect_eq(f.answers, 32, "%d callbacks for 32 reads", f.answers);
	cr_expect_eq(f.bad, 0, "%d reads with a wrong result", f.bad);
	cr_expect_eq(f.held_in_cb, 0, "a depth unit was still held inside %d of 32 answers", f.held_in_cb);
	free(f.buf);
	fx_file_close(&file);
}
