/*
 * src/runtime/fiber: fibers (this file), the context switch (context.c,
 * context_*.S) and guarded stacks (stack.c).  May include src/base and
 * src/runtime.
 *
 * Fibers on a reactor: spawn, run queue, suspension on I/O and wait queues.
 *
 * Design notes
 * ------------
 * The reactor loop runs in its own context (core->loop_ctx).  It resumes
 * runnable fibers one at a time; a fiber runs until it suspends (waits for
 * I/O or a wait queue), yields, or returns, and then switches back to the
 * loop.  Fibers never switch to each other directly, so at most one fiber
 * stack is live in the loop's call chain and the loop always regains
 * control between two fibers.
 *
 * A fiber is on at most one list at a time: the run queue, the urgent
 * queue, one wait queue, or the free list.  `runnable` marks membership of
 * the run or urgent queue (queue_push sets it, fiber_resume clears it), so
 * a double wake is harmless; a parked fiber (io_yield) is runnable too, on
 * no queue, so that no wake can queue it while the loop holds it.
 *
 * Each pass runs only the fibers that were runnable when it started, so a
 * fiber that keeps yielding cannot starve I/O completions.
 *
 * Urgent fibers.  A fiber whose I/O class is URT_PRIO_URGENT (the page
 * store's log writer) is on the latency path of every commit: each of its
 * writes and flushes is followed by the next only when it runs again.  So
 * when its I/O completes it goes on urgent_q, and the pass runs urgent_q
 * before its next fiber.  (A wait queue wakes it into the run queue like
 * any fiber: those wakes come from fibers, whose order the callers of
 * wait queues rely on, e.g. the KV store's NOSYNC test, test_kv_ack.)  And
 * while one is suspended on I/O (c->urgent_io), completions may wait
 * behind a pass that runs for hundreds of microseconds: with DEFER_TASKRUN
 * the kernel runs their task work only at the next enter.  So the pass
 * looks after each fiber whether a poll is due (urgent_poll_due: an urgent
 * fiber waits, IORING_SQ_TASKRUN or posted CQEs say completions wait, and
 * the main ring was last reaped URGENT_POLL_GAP_NS ago or more); if so it
 * submits and reaps the main ring there (fiber_urgent_poll), runs the
 * urgent fibers that woke, submits what they queued, and goes on.  Fibers
 * of other classes woken by that reap run in the next pass, as they would
 * have.  The gap bounds what the polls cost when completions (a busy
 * network) never stop: one enter per gap at most.  A fiber inside a long
 * computation calls urt_fiber_yield_to_io, which makes the same poll when
 * it is due and resumes the caller right after the urgent fibers ran.  An
 * urgent fiber that yields goes to the back of the run queue like any
 * other, so it cannot starve the pass by yielding.  States of a fiber,
 * and who moves it:
 *
 *   (new) --urt_fiber_spawn--> run_q                     (run_push)
 *   running --urt_io_wait / waitq / sleep--> suspended   (fiber_suspend)
 *   running --urt_fiber_yield--> run_q                   (run_push)
 *   running --urt_fiber_yield_to_io, poll due--> parked  (io_yield set)
 *   parked --poll, urgent fibers run--> running           (fiber_run_ready)
 *   suspended --I/O done, class URGENT--> urgent_q       (wake_push)
 *   suspended --I/O done, other class--> run_q           (wake_push)
 *   suspended --wait queue woken--> run_q                (run_push)
 *   run_q / urgent_q --> running                         (fiber_run_ready)
 *   running --fn returned--> exited, free list          (fiber_entry,
 *                                                         fiber_resume)
 *
 * Exited fibers keep their stack for the next spawn (mmap and the guard
 * page cost microseconds).  At teardown every fiber is freed, including
 * those still blocked on a wait queue (rt.c documents that).
 */
#include <errno.h>
#include <stdlib.h>

#include "base/assert.h"
#include "base/mem.h"
#include "runtime/core.h"
#include "runtime/ring.h"
#include "runtime/sched/sched.h"

static void queue_push(struct fiber_queue *q, struct urt_fiber *f)
{
	if (f->runnable)
		return;
	f->runnable = true;
	STAILQ_INSERT_TAIL(q, f, link);
}

static void run_push(struct urt_core *c, struct urt_fiber *f)
{
	queue_push(&c->run_q, f);
}

/* A fiber whose I/O completed: an URGENT one runs ahead of the rest of the pass (design notes). */
static void wake_push(struct urt_core *c, struct urt_fiber *f)
{
	queue_push(urt_unlikely(f->io_prio == URT_PRIO_URGENT) ? &c->urgent_q : &c->run_q, f);
}

static void fiber_entry(void *arg)
{
	struct urt_fiber *f = arg;

	f->fn(f->arg);
	f->exited = true;
	urt_ctx_switch(&f->ctx, &f->core->loop_ctx);
	abort();	/* The loop never resumes an exited fiber. */
}

/* Shortest time between two reaps of the main ring made for an urgent fiber (design notes). */
#define URGENT_POLL_GAP_NS 50000ull

/*
 * Whether completions wait for the core: task work the kernel flagged on
 * the main ring (IORING_SQ_TASKRUN, set with TASKRUN_FLAG when a completion
 * is queued as deferred or cooperative task work), or CQEs already posted.
 * The main ring is where a core sleeps and where the kernel signals every
 * other source (ring.c), so it is the one to look at.
 */
static bool core_io_waiting(struct urt_core *c)
{
	struct io_uring *r = &c->rings[RING_MAIN].ring;

	return (IO_URING_READ_ONCE(*r->sq.kflags) & IORING_SQ_TASKRUN) || io_uring_cq_ready(r);
}

/* An urgent fiber waits for I/O, completions wait, and the last reap is a gap ago. */
static bool urgent_poll_due(struct urt_core *c)
{
	return c->urgent_io && core_io_waiting(c) &&
	       now_read(&c->clock) - c->reap_ns >= URGENT_POLL_GAP_NS;
}

/* Submits what the running fibers queued on the main ring (their ops leave now). */
static void fiber_submit_now(struct urt_core *c)
{
	if (!TAILQ_EMPTY(&c->sched_busy))
		sched_dispatch_all(c);
	(void)ring_submit(c, RING_MAIN, false);	/* An error is the loop's to see again. */
}

/* Runs f until it suspends, yields or returns; recycles it if it returned. */
static void fiber_resume(struct urt_core *c, struct urt_fiber *f)
{
	f->runnable = false;
	c->cur = f;
	urt_ctx_switch(&c->loop_ctx, &f->ctx);
	c->cur = NULL;
	if (f->exited) {
		urt_ctx_destroy(&f->ctx);
		c->fibers_live--;
		f->next = c->fiber_free;
		c->fiber_free = f;
	}
}

/*
 * A poll is due (urgent_poll_due): submit and reap the main ring now, run
 * the urgent fibers that woke, and send what they queued (design notes).
 */
static void fiber_urgent_poll(struct urt_core *c)
{
	struct urt_fiber *u;

	fiber_submit_now(c);
	ring_reap_main(c);
	c->reap_ns = now_read(&c->clock);
	c->stats.urgent_polls++;
	if (STAILQ_EMPTY(&c->urgent_q))
		return;
	while ((u = STAILQ_FIRST(&c->urgent_q))) {
		STAILQ_REMOVE_HEAD(&c->urgent_q, link);
		fiber_resume(c, u);
	}
	fiber_submit_now(c);
}

void fiber_run_ready(struct urt_core *c)
{
	/* This pass runs the fibers runnable now; those woken meanwhile wait for the next. */
	STAILQ_HEAD(, urt_fiber) pass = STAILQ_HEAD_INITIALIZER(pass);
	struct urt_fiber *f;

	STAILQ_CONCAT(&pass, &c->run_q);
	for (;;) {
		bool urgent = !STAILQ_EMPTY(&c->urgent_q);

		if (urt_unlikely(urgent)) {
			f = STAILQ_FIRST(&c->urgent_q);
			STAILQ_REMOVE_HEAD(&c->urgent_q, link);
		} else if ((f = STAILQ_FIRST(&pass))) {
			STAILQ_REMOVE_HEAD(&pass, link);
		} else {
			break;
		}
		fiber_resume(c, f);
		while (urt_unlikely(!f->exited && f->io_yield)) {
			/* Parked by urt_fiber_yield_to_io: poll, then it goes on at once. */
			f->io_yield = false;
			fiber_urgent_poll(c);
			fiber_resume(c, f);
		}
		if (STAILQ_EMPTY(&pass))
			continue;	/* The loop's wait comes next and does the same. */
		if (urt_unlikely(urgent))
			fiber_submit_now(c);	/* Its I/O goes out now, not after the rest of the pass. */
		else if (urt_unlikely(urgent_poll_due(c)))
			fiber_urgent_poll(c);
	}
}

static void fiber_suspend(struct urt_core *c)
{
	struct urt_fiber *f = c->cur;

	URT_ASSERT(f && "blocking urt calls run inside a fiber");
	urt_ctx_switch(&f->ctx, &c->loop_ctx);
}

URT_API int urt_fiber_spawn(void (*fn)(void *arg), void *arg)
{
	struct urt_core *c = core_self();
	struct urt_fiber *f;
	int ret;

	if (!c || !fn)
		return -EINVAL;
	if (c->fibers_live >= c->rt->opts.fiber_max) {
		urt_set_error("core %u already runs %u fibers (fiber_max)", c->index, c->fibers_live);
		return -EAGAIN;
	}
	f = c->fiber_free;
	if (f) {
		c->fiber_free = f->next;
		urt_stack_unpoison(&f->stack);
	} else {
		f = mem_alloc(c->arena, sizeof(*f));
		if (!f)
			return -ENOMEM;
		ret = urt_stack_alloc(&f->stack, c->rt->opts.fiber_stack_bytes);
		if (ret) {
			mem_free(c->arena, f);
			urt_set_error("allocating a %zu KiB fiber stack: %d", c->rt->opts.fiber_stack_bytes / 1024, ret);
			return ret;
		}
		f->all_next = c->fiber_all;
		c->fiber_all = f;
	}
	f->fn = fn;
	f->arg = arg;
	f->core = c;
	f->exited = false;
	f->runnable = false;
	f->io_prio = URT_PRIO_NORMAL;
	urt_ctx_make(&f->ctx, &f->stack, fiber_entry, f);
	c->fibers_live++;
	c->stats.fibers_spawned++;
	run_push(c, f);
	return 0;
}

struct spawn_msg {
	void (*fn)(void *arg);
	void *arg;
};

static void spawn_remote(void *p)
{
	struct spawn_msg *m = p;
	void (*fn)(void *) = m->fn;
	void *arg = m->arg;

	free(m);
	if (urt_fiber_spawn(fn, arg))
		abort();	/* fiber_max reached on a remote core: the caller cannot be told. */
}

URT_API int urt_fiber_spawn_on(struct urt_rt *rt, unsigned core, void (*fn)(void *arg), void *arg)
{
	struct urt_core *c = core_self();
	struct spawn_msg *m;
	int ret;

	if (c && c->rt == rt && c->index == core)
		return urt_fiber_spawn(fn, arg);
	m = malloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->fn = fn;
	m->arg = arg;
	ret = urt_core_post(rt, core, spawn_remote, m);
	if (ret)
		free(m);
	return ret;
}

URT_API bool urt_in_fiber(void)
{
	struct urt_core *c = core_self();

	return c && c->cur;
}

URT_API void urt_fiber_yield(void)
{
	struct urt_core *c = core_self();

	if (!c || !c->cur)
		return;
	run_push(c, c->cur);
	fiber_suspend(c);
}

/*
 * Parks the fiber (io_yield) and goes to the loop, which polls and resumes
 * it at once (fiber_run_ready).  Only when a poll is due, so a caller may
 * ask often: the test is a few loads and, with an urgent fiber waiting,
 * one clock read.
 */
URT_API bool urt_fiber_yield_to_io(void)
{
	struct urt_core *c = core_self();
	struct urt_fiber *f = c ? c->cur : NULL;

	/* An urgent fiber runs ahead anyway; and its poll would park it where nothing resumes it. */
	if (!f || f->io_prio == URT_PRIO_URGENT || !urgent_poll_due(c))
		return false;
	URT_ASSERT(!f->runnable && !f->io_yield);
	f->io_yield = true;
	f->runnable = true;	/* On no queue, but resumed by the loop alone: no wake may push it. */
	c->stats.io_yields++;
	fiber_suspend(c);
	return true;
}

static void fiber_io_done(struct urt_io *io, int res, void *arg)
{
	struct urt_fiber *f = arg;

	(void)io;
	f->io_res = res;
	f->io_done = true;
	if (urt_unlikely(f->io_prio == URT_PRIO_URGENT))
		f->core->urgent_io--;
	wake_push(f->core, f);
}

URT_API int urt_io_wait(struct urt_io *io)
{
	struct urt_core *c = core_self();
	struct urt_fiber *f = c ? c->cur : NULL;
	bool urgent;
	int ret;

	URT_ASSERT(f && "urt_io_wait runs inside a fiber");
	f->io_done = false;
	if (io->prio == URT_PRIO_NORMAL)
		io->prio = f->io_prio;
	/* Counted until fiber_io_done, which may run inside the submit (an op answered there). */
	urgent = f->io_prio == URT_PRIO_URGENT;
	c->urgent_io += urgent;
	ret = urt_io_submit(io, fiber_io_done, f);
	if (ret) {
		c->urgent_io -= urgent;
		return ret;
	}
	while (!f->io_done)
		fiber_suspend(c);
	return f->io_res;
}

URT_API enum urt_io_prio urt_fiber_io_prio(enum urt_io_prio prio)
{
	struct urt_core *c = core_self();
	struct urt_fiber *f = c ? c->cur : NULL;
	enum urt_io_prio old;

	URT_ASSERT(f && "urt_fiber_io_prio runs inside a fiber");
	URT_ASSERT(prio < URT_PRIO_COUNT);
	old = (enum urt_io_prio)f->io_prio;
	f->io_prio = (uint8_t)prio;
	return old;
}

URT_API ssize_t urt_read(struct urt_dev *dev, void *buf, size_t len, uint64_t off)
{
	struct urt_io io;

	urt_io_prep_read(&io, dev, buf, len, off);
	return urt_io_wait(&io);
}

URT_API ssize_t urt_write(struct urt_dev *dev, const void *buf, size_t len, uint64_t off)
{
	struct urt_io io;

	urt_io_prep_write(&io, dev, buf, len, off);
	return urt_io_wait(&io);
}

URT_API ssize_t urt_write_fua(struct urt_dev *dev, const void *buf, size_t len, uint64_t off)
{
	struct urt_io io;

	urt_io_prep_write(&io, dev, buf, len, off);
	io.flags |= URT_IO_FUA;
	return urt_io_wait(&io);
}

URT_API ssize_t urt_readv(struct urt_dev *dev, const struct iovec *iov, unsigned nr, uint64_t off)
{
	struct urt_io io;

	urt_io_prep_readv(&io, dev, iov, nr, off);
	return urt_io_wait(&io);
}

URT_API ssize_t urt_writev(struct urt_dev *dev, const struct iovec *iov, unsigned nr, uint64_t off)
{
	struct urt_io io;

	urt_io_prep_writev(&io, dev, iov, nr, off);
	return urt_io_wait(&io);
}

URT_API int urt_fsync(struct urt_dev *dev)
{
	struct urt_io io;

	urt_io_prep_fsync(&io, dev);
	return urt_io_wait(&io);
}

URT_API int urt_flush(struct urt_dev *dev)
{
	struct urt_io io;

	urt_io_prep_flush(&io, dev);
	return urt_io_wait(&io);
}

URT_API int urt_sleep_ns(uint64_t ns)
{
	struct urt_io io;

	urt_io_prep_timeout(&io, ns);
	return urt_io_wait(&io);
}

URT_API void urt_waitq_wait(struct urt_waitq *wq)
{
	struct urt_core *c = core_self();
	struct urt_fiber *f = c ? c->cur : NULL;

	URT_ASSERT(f && "urt_waitq_wait runs inside a fiber");
	URT_STAILQ_READY(&wq->fibers);
	STAILQ_INSERT_TAIL(&wq->fibers, f, link);
	fiber_suspend(c);
}

URT_API bool urt_waitq_wake_one(struct urt_waitq *wq)
{
	struct urt_fiber *f = STAILQ_FIRST(&wq->fibers);

	if (!f)
		return false;
	STAILQ_REMOVE_HEAD(&wq->fibers, link);
	run_push(f->core, f);
	return true;
}

URT_API unsigned urt_waitq_wake_all(struct urt_waitq *wq)
{
	unsigned n = 0;

	while (urt_waitq_wake_one(wq))
		n++;
	return n;
}

void fiber_exit_all(struct urt_core *c)
{
	struct urt_fiber *f = c->fiber_all;

	while (f) {
		struct urt_fiber *next = f->all_next;

		if (!f->exited && f->ctx.sp)
			urt_ctx_destroy(&f->ctx);
		urt_stack_free(&f->stack);
		mem_free(c->arena, f);
		f = next;
	}
	c->fiber_all = NULL;
	c->fiber_free = NULL;
	STAILQ_INIT(&c->run_q);
	STAILQ_INIT(&c->urgent_q);
	c->urgent_io = 0;
	c->fibers_live = 0;
}
