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

/*
 * urt_fiber_yield_to_io and urgent fibers (fiber.c design notes).  The
 * orders below are what the tests assert; their margins are wide (a 1 ms
 * timer against seconds of spinning, a 200 us timer against 2 ms fibers),
 * and no test asserts a time.
 */
static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct yio_state {
	int order[8];		/* Events in the order they happened: 1 = sleeper woke, 2 = spinner resumed. */
	int n;
	bool urgent;		/* The sleeper's class: URGENT, else NORMAL. */
	bool sleeper_done;
	int yielded;		/* urt_fiber_yield_to_io returned true. */
	int idle_yield;		/* What it returned with no I/O in flight of ours. */
	uint64_t spins;
	uint64_t spin_ns;	/* How long the spinner spins at most. */
};

static void yio_sleeper(void *p)
{
	struct yio_state *s = p;

	if (s->urgent)
		urt_fiber_io_prio(URT_PRIO_URGENT);
	cr_assert_eq(urt_sleep_ns(1000000), 0);
	s->sleeper_done = true;
	if (s->n < 8)
		s->order[s->n++] = 1;
}

static void yio_body(void *p)
{
	struct yio_state *s = p;
	uint64_t end;

	/* Nothing of ours in flight: no completion can be waiting, so no yield. */
	s->idle_yield = urt_fiber_yield_to_io();
	cr_assert_eq(urt_fiber_spawn(yio_sleeper, s), 0);
	/* Two passes: the sleeper queues its timer, then the loop's wait submits it. */
	urt_fiber_yield();
	urt_fiber_yield();
	end = mono_ns() + s->spin_ns;
	while (!s->sleeper_done && mono_ns() < end) {
		s->spins++;
		if (urt_fiber_yield_to_io()) {
			s->yielded++;
			if (s->n < 8)
				s->order[s->n++] = 2;
		}
	}
}

/* Runs body(arg) in a fiber on a runtime of its own and copies core 0's counters to *st. */
static void run_counted(void (*body)(void *), void *arg, struct urt_stats *st)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;

	urt_rt_opts_default(&o);
	rt = fx_start(&o);
	fx_run(rt, 0, body, arg);
	cr_assert_eq(urt_rt_stats(rt, 0, st), 0);
	urt_rt_stop(rt);
}

static void yio_run(struct yio_state *s, bool urgent, uint64_t spin_ns, struct urt_stats *st)
{
	memset(s, 0, sizeof(*s));
	s->urgent = urgent;
	s->spin_ns = spin_ns;
	run_counted(yio_body, s, st);
}

Test(fiber, yield_to_io_runs_the_urgent_fiber_and_comes_back)
{
	struct urt_stats st;
	struct yio_state *s = calloc(1, sizeof(*s));

	/* URGENT sleeper: its timer's completion is reaped inside the spin, and it runs there. */
	yio_run(s, true, 10ull * 1000000000ull, &st);
	cr_expect_eq(s->idle_yield, false, "yielded with no completion waiting");
	cr_assert(s->sleeper_done, "the urgent timer never woke its fiber while the other spun (%llu spins)",
		  (unsigned long long)s->spins);
	cr_assert_eq(s->yielded, 1, "the spinner yielded %d times for one completion", s->yielded);
	/* The sleeper ran before the spinner came back from its yield. */
	cr_expect_eq(s->order[0], 1, "first event %d, want the sleeper's (1)", s->order[0]);
	cr_expect_eq(s->order[1], 2, "second event %d, want the spinner's return (2)", s->order[1]);
	cr_expect_eq(st.io_yields, 1);
	cr_expect_geq(st.urgent_polls, 1);

	/* NORMAL sleeper: nothing urgent waits, so the spinner never yields (50 ms of spinning). */
	yio_run(s, false, 50000000ull, &st);
	cr_expect_eq(s->yielded, 0, "yielded %d times with no urgent fiber waiting", s->yielded);
	cr_expect_eq(st.io_yields, 0);
	cr_expect_eq(st.urgent_polls, 0);
	free(s);
}

#define URG_BUSY 20
#define URG_BUSY_NS 2000000ull

struct urg_state {
	int busy_done;			/* Busy fibers finished so far. */
	int wakes_mid_pass;		/* Sleeper wakes while busy fibers were left. */
	int first_wake_at;		/* busy_done at the sleeper's first wake, -1 before. */
	int wakes;
	bool urgent;
	bool stop;
};

static void urg_sleeper(void *p)
{
	struct urg_state *s = p;

	if (s->urgent)
		urt_fiber_io_prio(URT_PRIO_URGENT);
	while (!s->stop) {
		cr_assert_eq(urt_sleep_ns(200000), 0);
		if (s->first_wake_at < 0)
			s->first_wake_at = s->busy_done;
		s->wakes++;
		if (s->busy_done > 0 && s->busy_done < URG_BUSY)
			s->wakes_mid_pass++;
	}
}

static void urg_busy(void *p)
{
	struct urg_state *s = p;
	uint64_t end = mono_ns() + URG_BUSY_NS;

	while (mono_ns() < end)
		;
	if (++s->busy_done == URG_BUSY)
		s->stop = true;
}

static void urg_body(void *p)
{
	struct urg_state *s = p;

	cr_assert_eq(urt_fiber_spawn(urg_sleeper, s), 0);
	urt_fiber_yield();	/* The sleeper queues its first timer. */
	/* All busy fibers go into one pass, the one after the wait that submits the timer. */
	for (int i = 0; i < URG_BUSY; i++)
		cr_assert_eq(urt_fiber_spawn(urg_busy, s), 0);
	while (s->busy_done < URG_BUSY || s->wakes == 0)
		urt_fiber_yield();
}

static void urg_run(bool urgent, struct urg_state *s, struct urt_stats *st)
{
	memset(s, 0, sizeof(*s));
	s->first_wake_at = -1;
	s->urgent = urgent;
	run_counted(urg_body, s, st);
}

Test(fiber, urgent_fiber_runs_inside_a_long_pass)
{
	struct urg_state s;
	struct urt_stats st;

	/* URGENT: its timer's completion is reaped between the busy fibers, and it runs there. */
	urg_run(true, &s, &st);
	cr_assert_geq(s.wakes_mid_pass, 2, "the urgent fiber woke %d times inside a %d ms pass "
		      "(first wake after %d busy fibers)", s.wakes_mid_pass,
		      (int)(URG_BUSY * URG_BUSY_NS / 1000000), s.first_wake_at);
	cr_expect_geq(st.urgent_polls, 2);

	/* NORMAL: woken into the next pass, after every busy fiber, as before. */
	urg_run(false, &s, &st);
	cr_expect_eq(s.first_wake_at, URG_BUSY, "a normal fiber woke after %d of %d busy fibers",
		     s.first_wake_at, URG_BUSY);
	cr_expect_eq(s.wakes_mid_pass, 0);
	cr_expect_eq(st.urgent_polls, 0);
}
