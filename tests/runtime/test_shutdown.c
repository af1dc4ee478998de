/*
 * Shutdown with ops in flight: urt_rt_stop cancels what the kernel can
 * cancel, waits for the rest, answers every op exactly once, runs the posts
 * already accepted, and returns (ASan/LSan see no leak).
 */
#include <stdatomic.h>

#include "fault_opts.h"
#include "fixture.h"

#define STALLED 16
#define SLEEPS 4
#define READS 8

struct sd_state {
	struct urt_dev *dev;
	struct urt_io io[64];
	void *buf[64];
	_Atomic int calls[64];
	_Atomic int res[64];
	_Atomic int submitted;
	struct urt_waitq forever;
	sem_t armed;
	sem_t blocked;		/* The blocked fiber is waiting. */
	_Atomic int resumed;	/* It came back from its wait (must not). */
};

static void sd_cb(struct urt_io *io, int res, void *arg)
{
	struct sd_state *s = arg;
	int i = (int)(io - s->io);

	atomic_fetch_add(&s->calls[i], 1);
	atomic_store(&s->res[i], res);
}

static void sd_submit(void *p)
{
	struct sd_state *s = p;
	int i = 0;

	for (; i < STALLED; i++) {
		s->buf[i] = urt_buf_get(4096);
		urt_io_prep_read(&s->io[i], s->dev, s->buf[i], 4096, 0);
		if (urt_io_submit(&s->io[i], sd_cb, s) == 0)
			atomic_fetch_add(&s->submitted, 1);
	}
	for (; i < STALLED + SLEEPS; i++) {
		urt_io_prep_timeout(&s->io[i], 10ull * 1000000000ull);
		if (urt_io_submit(&s->io[i], sd_cb, s) == 0)
			atomic_fetch_add(&s->submitted, 1);
	}
	sem_post(&s->armed);
}

static void sd_blocked_fiber(void *p)
{
	struct sd_state *s = p;

	sem_post(&s->blocked);
	urt_waitq_wait(&s->forever);	/* Never woken: destroyed at stop, never resumed. */
	atomic_store(&s->resumed, 1);
}

Test(shutdown, stop_with_ops_in_flight)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct fx_file f;
	struct sd_state *s = calloc(1, sizeof(*s));

	fx_fault_opts(&o, 3, URT_FAULT_STALL, 1u << URT_OP_READ);
	rt = fx_start(&o);
	fx_file_open(&f, 1 << 20, true);
	s->dev = f.dev;
	sem_init(&s->armed, 0, 0);
	sem_init(&s->blocked, 0, 0);
	cr_assert_eq(urt_core_post(rt, 0, sd_submit, s), 0);
	sem_wait(&s->armed);
	cr_assert_eq(urt_fiber_spawn_on(rt, 0, sd_blocked_fiber, s), 0);
	sem_wait(&s->blocked);
	urt_rt_stop(rt);
	cr_expect_eq(atomic_load(&s->resumed), 0, "the fiber blocked on a waitq was resumed by the stop");
	fx_file_close(&f);
	cr_expect_eq(atomic_load(&s->submitted), STALLED + SLEEPS);
	for (int i = 0; i < STALLED + SLEEPS; i++) {
		cr_expect_eq(atomic_load(&s->calls[i]), 1, "op %d answered %d times", i, atomic_load(&s->calls[i]));
		cr_expect_eq(atomic_load(&s->res[i]), -ECANCELED, "op %d: %d", i, atomic_load(&s->res[i]));
	}
	free(s);
}

/* Posts accepted before stop run; posts after stop began are refused. */
static void mark(void *p)
{
	atomic_fetch_add((_Atomic int *)p, 1);
}

Test(shutdown, accepted_posts_run)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;
	_Atomic int ran = 0;
	int accepted = 0;

	urt_rt_opts_default(&o);
	rt = fx_start(&o);
	for (int i = 0; i < 500; i++)
		accepted += urt_core_post(rt, (unsigned)i % urt_rt_ncores(rt), mark, (void *)&ran) == 0;
	urt_rt_stop(rt);
	cr_expect_eq(accepted, 500);
	cr_expect_eq(atomic_load(&ran), 500);
}
