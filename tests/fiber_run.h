/*
 * Run a function in a fiber on one core of a runtime and wait for it: the
 * one bridge every Criterion test uses from its main thread into a reactor.
 * Criterion's assertions must stay on the main thread, so fn records what it
 * saw (a first failure in a struct tests_fail) and the test asserts after
 * tests_fiber_run returns.
 */
#ifndef URT_TESTS_FIBER_RUN_H
#define URT_TESTS_FIBER_RUN_H

#include <criterion/criterion.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "base/clock.h"
#include "urt/error.h"
#include "urt/fiber.h"
#include "urt/rt.h"

/* Starts a runtime with o and asserts that it started. */
static inline struct urt_rt *tests_rt_start(const struct urt_rt_opts *o)
{
	struct urt_rt *rt = NULL;
	int ret = urt_rt_start(o, &rt);

	cr_assert_eq(ret, 0, "urt_rt_start: %d (%s)", ret, urt_last_error());
	return rt;
}

struct tests_fiber_call {
	void (*fn)(void *arg);	/* What to run. */
	void *arg;		/* Its argument. */
	sem_t done;		/* Posted when fn returns. */
};

static inline void tests_fiber_trampoline(void *p)
{
	struct tests_fiber_call *call = p;

	call->fn(call->arg);
	sem_post(&call->done);
}

static inline void tests_fiber_run(struct urt_rt *rt, unsigned core, void (*fn)(void *arg), void *arg)
{
	struct tests_fiber_call call = { .fn = fn, .arg = arg };

	sem_init(&call.done, 0, 0);
	cr_assert_eq(urt_fiber_spawn_on(rt, core, tests_fiber_trampoline, &call), 0);
	sem_wait(&call.done);
	sem_destroy(&call.done);
}

/* The first failure seen in a fiber, asserted on the main thread. */
struct tests_fail {
	char msg[512];	/* The first failure's message. */
	int failed;	/* How many failures were recorded. */
};

static inline void tests_failf(struct tests_fail *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static inline void tests_failf(struct tests_fail *f, const char *fmt, ...)
{
	va_list ap;

	if (f->failed++)
		return;
	va_start(ap, fmt);
	vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
	va_end(ap);
}

#endif /* URT_TESTS_FIBER_RUN_H */
