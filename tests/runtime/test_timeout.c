/*
 * Deadlines and cancellation: a held-back op times out exactly once, the op
 * is cancelled, its urt_buf stays owned until the real completion, and
 * nothing is delivered twice.
 */
#include <time.h>

#include "base/clock.h"
#include "fault_opts.h"
#include "fixture.h"

struct to_run {
	struct urt_dev *dev;
	int calls;		/* Callback invocations. */
	int res;		/* Last result. */
	int wait_res;
	size_t free_before, free_held, free_after;
	uint64_t t_submit, t_deliver;
};

static void count_cb(struct urt_io *io, int res, void *arg)
{
	struct to_run *r = arg;
	(void)io;
	r->t_deliver = urt_clock_ns();
	r->calls++;
	r->res = res;
}

/*
 * Runs body(r) in a fiber on a one-core runtime whose first read gets a
 * fault of kinds (held delay_ns for DELAY), over a fresh 1 MiB O_DIRECT
 * file, and returns core 0's counters in *st.
 */
static void run_faulty(uint32_t kinds, uint64_t delay_ns, void (*body)(void *), struct to_run *r,
		       struct urt_stats *st)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct fx_file f;

	fx_fault_opts(&o, 7, kinds, 1u << URT_OP_READ);
	o.fault.count_max = 1;
	o.fault.delay_ns = delay_ns;
	rt = fx_start(&o);
	fx_file_open(&f, 1 << 20, true);
	r->dev = f.dev;
	fx_run(rt, 0, body, r);
	cr_assert_eq(urt_rt_stats(rt, 0, st), 0);
	fx_file_close(&f);
	urt_rt_stop(rt);
}

/* STALL: the op never completes on its own; the LINK_TIMEOUT cancels it. */
static void stall_body(void *p)
{
	struct to_run *r = p;
	uint8_t *buf = urt_buf_get(4096);
	struct urt_io io;

	urt_io_prep_read(&io, r->dev, buf, 4096, 0);
	io.timeout_ns = 20000000;
	r->t_submit = urt_clock_ns();
	r->wait_res = urt_io_submit(&io, count_cb, r);
	urt_sleep_ns(100000000);	/* Long after the deadline: a second delivery would show. */
	urt_buf_put(buf);
}

Test(timeout, stalled_op_times_out_once)
{
	struct to_run r = { 0 };
	struct urt_stats st;

	run_faulty(URT_FAULT_STALL, 0, stall_body, &r, &st);
	cr_expect_eq(r.wait_res, 0);
	cr_expect_eq(r.calls, 1);
	cr_expect_eq(r.res, -ETIMEDOUT);
	cr_expect_eq(st.timed_out, 1);
	cr_expect_geq(r.t_deliver - r.t_submit, 20000000ull, "delivered before the deadline");
}

/*
 * DELAY: the device finished but its completion is held (an op the kernel
 * cannot cancel).  -ETIMEDOUT is delivered at the deadline, and the
 * urt_buf is recycled only when the held completion is finally released.
 */
static void delay_body(void *p)
{
	struct to_run *r = p;
	uint8_t *buf;
	struct urt_io io;

	r->free_before = urt_buf_free_bytes();
	buf = urt_buf_get(4096);
	urt_io_prep_read(&io, r->dev, buf, 4096, 0);
	io.timeout_ns = 20000000;
	r->t_submit = urt_clock_ns();
	r->wait_res = urt_io_submit(&io, count_cb, r);
	while (r->calls == 0)
		urt_sleep_ns(1000000);
	urt_buf_put(buf);	/* Caller is done; the device, in this model, is not. */
	r->free_held = urt_buf_free_bytes();
	urt_sleep_ns(400000000);	/* The hold (300 ms) ends. */
	r->free_after = urt_buf_free_bytes();
}

Test(timeout, held_op_keeps_buffer_until_real_completion)
{
	struct to_run r = { 0 };
	struct urt_stats st;

	run_faulty(URT_FAULT_DELAY, 300000000, delay_body, &r, &st);
	cr_expect_eq(r.calls, 1, "delivered %d times", r.calls);
	cr_expect_eq(r.res, -ETIMEDOUT);
	cr_expect_lt(r.t_deliver - r.t_submit, 300000000ull, "-ETIMEDOUT must not wait for the held completion");
	cr_expect_eq(r.free_held, r.free_before - 4096, "buffer recycled while the device still owned it");
	cr_expect_eq(r.free_after, r.free_before, "buffer never recycled");
	cr_expect_eq(st.timed_out, 1);
}

static void cancel_body(void *p)
{
	struct to_run *r = p;
	uint8_t *buf = urt_buf_get(4096);
	struct urt_io io;

	urt_io_prep_read(&io, r->dev, buf, 4096, 0);
	r->wait_res = urt_io_submit(&io, count_cb, r);
	urt_sleep_ns(5000000);
	r->res = urt_io_cancel(&io);
	cr_assert_eq(r->res, 0);
	while (r->calls == 0)
		urt_sleep_ns(1000000);
	urt_sleep_ns(20000000);
	r->free_held = (size_t)urt_io_cancel(&io);	/* No longer in flight. */
	urt_buf_put(buf);
}

Test(timeout, cancel_delivers_once)
{
	struct to_run r = { 0 };
	struct urt_stats st;

	run_faulty(URT_FAULT_STALL, 0, cancel_body, &r, &st);
	cr_expect_eq(r.calls, 1);
	cr_expect_eq(r.res, -ECANCELED);
	cr_expect_eq((int)r.free_held, -ENOENT);
}

static void no_timeout_body(void *p)
{
	struct to_run *r = p;
	uint8_t *buf = urt_buf_get(4096);
	struct urt_io io;

	urt_io_prep_read(&io, r->dev, buf, 4096, 0);
	io.timeout_ns = 5000000000ull;
	r->res = urt_io_wait(&io);
	r->wait_res = urt_sleep_ns(2000000);
	urt_buf_put(buf);
}

Test(timeout, deadline_not_reached)
{
	struct to_run r = { 0 };
	struct urt_stats st;

	run_faulty(0, 0, no_timeout_body, &r, &st);
	cr_expect_eq(r.res, 4096);
	cr_expect_eq(r.wait_res, 0, "sleep returns 0");
	cr_expect_eq(st.timed_out, 0);
}

/* A sleep op that runs its course: its callback sees 0 (io.h) and it is no failure. */
static void sleep_op_body(void *p)
{
	struct to_run *r = p;
	struct urt_io io;

	urt_io_prep_timeout(&io, 1000000);
	r->t_submit = urt_clock_ns();
	r->res = urt_io_submit(&io, count_cb, r);
	if (r->res)
		return;		/* calls stays 0: the test fails outside the fiber. */
	while (r->calls == 0)
		urt_fiber_yield();
	r->wait_res = io.res;
}

Test(timeout, sleep_op_completes_with_zero)
{
	struct to_run r = { 0 };
	struct urt_stats st;

	run_faulty(0, 0, sleep_op_body, &r, &st);
	cr_expect_eq(r.calls, 1);
	cr_expect_eq(r.res, 0, "sleep callback got %d", r.res);
	cr_expect_eq(r.wait_res, 0, "io.res %d", r.wait_res);
	cr_expect_geq(r.t_deliver - r.t_submit, 1000000, "the sleep lasted its 1 ms");
	cr_expect_eq(st.failed, 0, "a finished sleep counted as failed");
	cr_expect_eq(st.timed_out, 0);
}
