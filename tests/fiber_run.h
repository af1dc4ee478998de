/*
 * Run a function in a fiber on one core of a runtime and wait for it: the
 * one bridge every Criterion test uses from its main thread into a reactor.
 * Criterion's assertions must stay on the main thread, so fn records what it
 * saw and the test asserts after tests_fiber_run returns.
 */
#ifndef URT_TESTS_FIBER_RUN_H
#define URT_TESTS_FIBER_RUN_H

#include <criterion/criterion.h>
#include <semaphore.h>

#include "urt/fiber.h"
#include "urt/rt.h"

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

#endif /* URT_TESTS_FIBER_RUN_H */
