/*
 * The poll-wait mode (src/runtime/wait_poll.h), which lets urt run under
 * valgrind: with URT_WAIT=poll a reactor sleeps in poll(2) on its ring, and
 * still wakes for completions (a 5 ms sleep op ends after 5 ms, not at the
 * next 1 ms poll bound by luck: many in a row keep their time) and for
 * posts from another thread while it sleeps.
 *
 * Sleeps and wakes alone would pass just the same if URT_WAIT were ignored
 * and the reactor slept in io_uring_enter as usual, so the mode itself is
 * seen from outside: an idle reactor's thread is sampled in
 * /proc/self/task/<tid>/syscall, and must be blocked in poll(2) with
 * URT_WAIT=poll and in io_uring_enter without it.
 */
#include <stdlib.h>
#include <sys/syscall.h>

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

/* The reactor thread's id, recorded by a function posted to it. */
struct tid_seen {
	pid_t tid;
	sem_t done;
};

static void record_tid(void *arg)
{
	struct tid_seen *t = arg;

	t->tid = (pid_t)syscall(SYS_gettid);
	sem_post(&t->done);
}

/* What the sampled thread was blocked in. */
struct syscall_samples {
	int poll;	/* poll(2) or ppoll(2). */
	int enter;	/* io_uring_enter(2). */
	int other;	/* Running, or another syscall. */
};

/*
 * Samples the blocking syscall of core 0's idle thread 200 times, 1 ms
 * apart, on a one-core runtime started with URT_WAIT as given (NULL:
 * unset).  Skips when /proc does not show a thread's syscall here.
 */
static void sample_idle_reactor(const char *wait_env, struct syscall_samples *s)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct tid_seen t = { 0 };
	char path[64];

	if (wait_env)
		cr_assert_eq(setenv("URT_WAIT", wait_env, 1), 0);
	else
		cr_assert_eq(unsetenv("URT_WAIT"), 0);
	urt_rt_opts_default(&o);
	o.ncpus = 1;
	o.cpus = (int[]){ 0 };
	o.buf_region_bytes = 64u << 10;
	rt = fx_start(&o);
	sem_init(&t.done, 0, 0);
	cr_assert_eq(urt_core_post(rt, 0, record_tid, &t), 0);
	sem_wait(&t.done);
	sem_destroy(&t.done);
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)t.tid);
	memset(s, 0, sizeof(*s));
	for (int i = 0; i < 200; i++) {
		FILE *f = fopen(path, "r");
		long nr;

		if (!f) {
			urt_rt_stop(rt);
			cr_skip_test("cannot read %s (%s): no way to see where the reactor sleeps", path,
				     strerror(errno));
		}
		if (fscanf(f, "%ld", &nr) != 1)
			nr = -1;	/* "running" */
		fclose(f);
#ifdef SYS_poll
		if (nr == SYS_poll)
			nr = SYS_ppoll;
#endif
		if (nr == SYS_ppoll)
			s->poll++;
		else if (nr == SYS_io_uring_enter)
			s->enter++;
		else
			s->other++;
		usleep(1000);
	}
	urt_rt_stop(rt);
	unsetenv("URT_WAIT");
	cr_log_info("URT_WAIT=%s: %d samples in poll, %d in io_uring_enter, %d else", wait_env ? wait_env : "(unset)",
		    s->poll, s->enter, s->other);
}

Test(wait_poll, idle_reactor_sleeps_in_poll_not_in_enter)
{
	struct syscall_samples s;

	/* The control: by default an idle reactor sleeps in io_uring_enter, never in poll(2). */
	sample_idle_reactor(NULL, &s);
	cr_assert_gt(s.enter, 0, "the idle reactor was never seen in io_uring_enter (%d poll, %d else)", s.poll,
		     s.other);
	cr_assert_eq(s.poll, 0, "the idle reactor slept in poll(2) without URT_WAIT=poll");
	/* URT_WAIT=poll: the sleep moves to poll(2); the enter only submits and reaps, it never blocks there. */
	sample_idle_reactor("poll", &s);
	cr_expect_gt(s.poll, 0, "URT_WAIT=poll, but the idle reactor never slept in poll(2) (%d in enter, %d else)",
		     s.enter, s.other);
	cr_expect_gt(s.poll, s.enter, "URT_WAIT=poll, but the idle reactor slept in io_uring_enter %d times, "
		     "in poll(2) %d", s.enter, s.poll);
}
