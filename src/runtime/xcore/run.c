/*
 * src/runtime/xcore: how cores reach each other.  msg.c: bounded SPSC post
 * queues with MSG_RING / eventfd wakeups (urt_core_post); run.c (this
 * file): running work on other cores and waiting for it.  May include
 * src/base and src/runtime.
 *
 * Run work on other cores and wait for it: urt_core_run, urt_core_run_all
 * and urt_core_run_jobs (include/urt/rt.h).  The one mechanism every layer
 * uses to ship a call to the core that owns the state it touches (a page
 * store shard, a kv shard, a fixed-file table).
 *
 * Design notes
 * ------------
 * The caller hands over n jobs, each naming a core.  A job for the caller's
 * own core runs inline, in the caller's fiber.  Every other job runs in a
 * fiber spawned on its core (urt_fiber_spawn_on, through the bounded
 * cross-core queue), so its function may block on I/O.  A full queue
 * (-EAGAIN) is retried: from a fiber after a yield, from an outside thread
 * after a short sleep; any other refusal (-ESHUTDOWN while the runtime
 * stops, -EINVAL for a bad core) becomes that job's result.
 *
 * Completion: `left` counts jobs not yet finished.  The job that brings it
 * to zero wakes the caller: an outside thread through a semaphore; a fiber
 * through a post back to its own core, which sets `done` and wakes the wait
 * queue there.  `done` and the wait queue are touched on the caller's core
 * only; the jobs' results reach the caller through the release/acquire
 * ordering of the atomic decrement and of the post queue.
 *
 * States of one call: POSTING (jobs being spawned) -> WAITING (left > 0)
 * -> DONE (left == 0, caller woken).  The caller's stack frame holds all of
 * it, so a call must not return before DONE: it never does.
 *
 * A plain callback on a reactor (not a fiber) cannot wait, which is a
 * programmer error (asserted).
 */
#include <errno.h>
#include <sched.h>
#include <semaphore.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/assert.h"
#include "runtime/core.h"

struct run_fan {
	struct urt_rt *rt;		/* Runtime of every core involved. */
	struct urt_core *origin;	/* Core of the waiting fiber, or NULL (outside thread). */
	_Atomic unsigned left;		/* Jobs not yet finished. */
	bool done;			/* Origin core only: every job finished. */
	struct urt_waitq wq;		/* Origin core only: the waiting fiber. */
	sem_t sem;			/* Outside caller: posted once at DONE. */
};

/* Runs on the origin core: the last job has finished. */
static void run_wake(void *arg)
{
	struct run_fan *fan = arg;

	fan->done = true;
	urt_waitq_wake_all(&fan->wq);
}

/* One job has finished (on any core); the last one wakes the caller. */
static void run_finished(struct run_fan *fan)
{
	if (atomic_fetch_sub_explicit(&fan->left, 1, memory_order_acq_rel) != 1)
		return;
	if (!fan->origin) {
		sem_post(&fan->sem);
		return;
	}
	if (core_self() == fan->origin) {
		run_wake(fan);
		return;
	}
	/* The queue back may be full for a moment: it drains. */
	while (urt_core_post(fan->rt, fan->origin->index, run_wake, fan) == -EAGAIN)
		urt_fiber_yield();
}

/* Entry of the fiber a remote job runs in. */
static void run_job_main(void *arg)
{
	struct urt_core_job *job = arg;
	struct run_fan *fan = job->priv;

	job->res = job->fn(job->arg);
	run_finished(fan);
}

/* Let a full post queue drain before trying again. */
static void run_backoff(const struct run_fan *fan)
{
	if (fan->origin)
		urt_fiber_yield();
	else
		usleep(100);
}

URT_API int urt_core_run_jobs(struct urt_rt *rt, struct urt_core_job *jobs, unsigned n)
{
	struct urt_core *self = core_self();
	struct run_fan fan = { .rt = rt };
	int ret = 0;

	if (self && self->rt != rt)
		self = NULL;	/* A reactor of another runtime waits like an outside thread. */
	URT_ASSERT(!self || self->cur);	/* A callback cannot wait for other cores. */
	fan.origin = self;
	atomic_init(&fan.left, n + 1);	/* +1: the caller's own share, released below. */
	if (!self)
		sem_init(&fan.sem, 0, 0);
	for (unsigned i = 0; i < n; i++) {
		struct urt_core_job *job = &jobs[i];
		int err;

		job->priv = &fan;
		job->res = 0;
		if (self && job->core == self->index)
			continue;	/* Inline below. */
		while ((err = urt_fiber_spawn_on(rt, job->core, run_job_main, job)) == -EAGAIN)
			run_backoff(&fan);
		if (err) {
			job->res = err;
			run_finished(&fan);
		}
	}
	for (unsigned i = 0; self && i < n; i++) {
		if (jobs[i].core == self->index) {
			jobs[i].res = jobs[i].fn(jobs[i].arg);
			run_finished(&fan);
		}
	}
	run_finished(&fan);
	if (self) {
		while (!fan.done)
			urt_waitq_wait(&fan.wq);
	} else {
		sem_wait(&fan.sem);
		sem_destroy(&fan.sem);
	}
	for (unsigned i = 0; i < n && !ret; i++)
		ret = jobs[i].res;
	return ret;
}

URT_API int urt_core_run(struct urt_rt *rt, unsigned core, int (*fn)(void *arg), void *arg)
{
	struct urt_core_job job = { .core = core, .fn = fn, .arg = arg };

	return urt_core_run_jobs(rt, &job, 1);
}

URT_API int urt_core_run_all(struct urt_rt *rt, int (*fn)(void *arg), void *arg)
{
	unsigned n = rt->ncores;
	struct urt_core_job *jobs = calloc(n, sizeof(*jobs));
	int ret;

	if (!jobs)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++)
		jobs[i] = (struct urt_core_job){ .core = i, .fn = fn, .arg = arg };
	ret = urt_core_run_jobs(rt, jobs, n);
	free(jobs);
	return ret;
}
