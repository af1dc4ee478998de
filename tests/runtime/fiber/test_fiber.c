/*
 * Fibers: many fibers interleave on one core, yield fairly, block on wait
 * queues and on I/O, and the fiber_max bound is enforced.
 */
#include "../fixture.h"

#define NF 200
#define YIELDS 20

struct fb_state {
	int trace[NF * YIELDS];
	int n;
	int done;
	struct urt_waitq wq;
	int woken;
	int spawn_res[8];
	sem_t all_done;
};

struct fb_arg {
	struct fb_state *s;
	int id;
};

static void yielder(void *p)
{
	struct fb_arg *a = p;

	for (int i = 0; i < YIELDS; i++) {
		a->s->trace[a->s->n++] = a->id;
		urt_fiber_yield();
	}
	if (++a->s->done == NF)
		sem_post(&a->s->all_done);
}

static void spawn_many(void *p)
{
	static struct fb_arg args[NF];
	struct fb_state *s = p;

	for (int i = 0; i < NF; i++) {
		args[i].s = s;
		args[i].id = i;
		if (urt_fiber_spawn(yielder, &args[i]))
			abort();
	}
}

Test(fiber, yield_round_robin)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct fb_state *s = calloc(1, sizeof(*s));

	urt_rt_opts_default(&o);
	o.fiber_stack_bytes = 64 << 10;
	rt = fx_start(&o);
	sem_init(&s->all_done, 0, 0);
	cr_assert_eq(urt_core_post(rt, 0, spawn_many, s), 0);
	sem_wait(&s->all_done);
	urt_rt_stop(rt);
	cr_assert_eq(s->n, NF * YIELDS);
	/* Round robin: in every window of NF steps each fiber appears once. */
	for (int w = 0; w < YIELDS; w++) {
		int seen[NF] = { 0 };

		for (int i = 0; i < NF; i++)
			seen[s->trace[w * NF + i]]++;
		for (int i = 0; i < NF; i++)
			cr_assert_eq(seen[i], 1, "round %d: fiber %d ran %d times", w, i, seen[i]);
	}
	free(s);
}

static void sleeper(void *p)
{
	struct fb_state *s = p;

	urt_waitq_wait(&s->wq);
	s->woken++;
}

static void waker(void *p)
{
	struct fb_state *s = p;

	for (int i = 0; i < 5; i++)
		urt_fiber_spawn(sleeper, s);
	urt_fiber_yield();	/* Let them block. */
	s->spawn_res[0] = s->woken;	/* 0: nobody ran past the wait. */
	s->spawn_res[1] = urt_waitq_wake_one(&s->wq);
	urt_fiber_yield();
	s->spawn_res[2] = s->woken;
	s->spawn_res[3] = (int)urt_waitq_wake_all(&s->wq);
	urt_fiber_yield();
	s->spawn_res[4] = s->woken;
	s->spawn_res[5] = urt_waitq_wake_one(&s->wq);
}

Test(fiber, waitq)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct fb_state *s = calloc(1, sizeof(*s));

	urt_rt_opts_default(&o);
	rt = fx_start(&o);
	fx_run(rt, 0, waker, s);
	urt_rt_stop(rt);
	cr_expect_eq(s->spawn_res[0], 0);
	cr_expect_eq(s->spawn_res[1], 1);
	cr_expect_eq(s->spawn_res[2], 1);
	cr_expect_eq(s->spawn_res[3], 4);
	cr_expect_eq(s->spawn_res[4], 5);
	cr_expect_eq(s->spawn_res[5], 0);
	free(s);
}

static void idle_fiber(void *p)
{
	urt_waitq_wait(p);
}

static void limit_body(void *p)
{
	struct fb_state *s = p;

	/* fiber_max is 4 and this fiber is one of them. */
	for (int i = 0; i < 4; i++)
		s->spawn_res[i] = urt_fiber_spawn(idle_fiber, &s->wq);
	urt_waitq_wake_all(&s->wq);
}

Test(fiber, fiber_max_enforced)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct fb_state *s = calloc(1, sizeof(*s));

	urt_rt_opts_default(&o);
	o.fiber_max = 4;
	rt = fx_start(&o);
	fx_run(rt, 0, limit_body, s);
	urt_rt_stop(rt);
	cr_expect_eq(s->spawn_res[0], 0);
	cr_expect_eq(s->spawn_res[1], 0);
	cr_expect_eq(s->spawn_res[2], 0);
	cr_expect_eq(s->spawn_res[3], -EAGAIN);
	free(s);
}
