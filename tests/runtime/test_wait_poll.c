/*
 * The poll-wait mode (src/runtime/wait_poll.h), which lets urt run under
 * valgrind: with URT_WAIT=poll a reactor sleeps in poll(2) on its ring, and
 * still wakes for completions (a 5 ms sleep op ends after 5 ms, not at the
 * next 1 ms poll bound by luck: many in a row keep their time) and for
 * posts from another thread while it sleeps.
 */
#include <stdlib.h>

#include "base/clock.h"
#include "fixture.h"

struct sleeps {
	int bad;
	uint64_t min_ns, max_ns;
};

static void sleep_body(void *p)
{
	struct sleeps *s = p;

	s->min_ns = UINT64_MAX;
	for (int i = 0; i < 20; i++) {
		struct urt_io io;
		uint64_t t0 = urt_clock_ns(), dt;

		urt_io_prep_timeout(&io, 5000000);
		s->bad += urt_io_wait(&io) != 0;
		dt = urt_clock_ns() - t0;
		if (dt < s->min_ns)
			s->min_ns = dt;
		if (dt > s->max_ns)
			s->max_ns = dt;
	}
}

static void posted(void *arg)
{
	sem_post(arg);
}

Test(wait_poll, sleeps_and_wakes)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct sleeps s = { 0 };
	sem_t sem;

	cr_assert_eq(setenv("URT_WAIT", "poll", 1), 0);
	urt_rt_opts_default(&o);
	o.ncpus = 1;
	o.cpus = (int[]){ 0 };
	o.buf_region_bytes = 64u << 10;
	rt = fx_start(&o);
	fx_run(rt, 0, sleep_body, &s);
	cr_expect_eq(s.bad, 0);
	cr_expect_geq(s.min_ns, 5000000, "a 5 ms sleep ended after %llu ns", (unsigned long long)s.min_ns);
	cr_expect_lt(s.max_ns, 500000000, "a 5 ms sleep took %llu ns", (unsigned long long)s.max_ns);
	/* A post while the reactor sleeps in poll(2): it must be run (the wake eventfd's read completes). */
	sem_init(&sem, 0, 0);
	for (int i = 0; i < 50; i++) {
		usleep(2000);
		cr_assert_eq(urt_core_post(rt, 0, posted, &sem), 0);
		sem_wait(&sem);
	}
	sem_destroy(&sem);
	urt_rt_stop(rt);
	unsetenv("URT_WAIT");
}
