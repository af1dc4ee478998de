/*
 * rt_run_everywhere: run a function on every core and wait for all of them.
 *
 * From an outside thread the caller sleeps on a semaphore.  From a fiber it
 * suspends on a wait queue, runs its own core's share inline, and the last
 * core to finish posts a wakeup back to the caller's core.  A plain callback
 * on a reactor cannot wait, which is a programmer error (asserted).
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#include "runtime/core.h"

struct everywhere {
	void (*fn)(void *arg);
	void *arg;
	_Atomic unsigned left;		/* Cores still to run fn. */
	struct urt_core *origin;	/* Core of the waiting fiber, or NULL. */
	struct urt_waitq wq;		/* The waiting fiber. */
	bool done;			/* Set on the origin core. */
	sem_t sem;			/* Outside waiter. */
};

static void everywhere_wake(void *arg)
{
	struct everywhere *e = arg;

	e->done = true;
	urt_waitq_wake_all(&e->wq);
}

static void everywhere_run(void *arg)
{
	struct everywhere *e = arg;

	e->fn(e->arg);
	if (atomic_fetch_sub(&e->left, 1) != 1)
		return;
	if (!e->origin) {
		sem_post(&e->sem);
		return;
	}
	if (core_self() == e->origin) {
		everywhere_wake(e);
		return;
	}
	while (urt_core_post(e->origin->rt, e->origin->index, everywhere_wake, e) == -EAGAIN)
		sched_yield();
}

int rt_run_everywhere(struct urt_rt *rt, void (*fn)(void *arg), void *arg)
{
	struct urt_core *self = core_self();
	struct everywhere e = { .fn = fn, .arg = arg };
	int ret;

	if (self && self->rt != rt)
		self = NULL;
	if (self && !self->cur)
		abort();	/* A callback cannot wait for other cores. */
	atomic_init(&e.left, rt->ncores);
	e.origin = self;
	if (!self)
		sem_init(&e.sem, 0, 0);
	for (unsigned i = 0; i < rt->ncores; i++) {
		if (self && i == self->index)
			continue;
		while ((ret = urt_core_post(rt, i, everywhere_run, &e)) == -EAGAIN)
			sched_yield();
		if (ret) {
			/* Stopping: count the core as done so that nobody waits for it. */
			if (atomic_fetch_sub(&e.left, 1) == 1 && !self)
				sem_post(&e.sem);
		}
	}
	if (self)
		everywhere_run(&e);
	if (self) {
		while (!e.done)
			urt_waitq_wait(&e.wq);
	} else {
		sem_wait(&e.sem);
		sem_destroy(&e.sem);
	}
	return 0;
}
