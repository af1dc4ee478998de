/*
 * Cross-core posts: urt_core_post(rt, core, fn, arg).
 *
 * Design notes
 * ------------
 * Each destination core has one bounded SPSC queue per source: one per
 * core, plus one shared by all outside threads (serialised by a mutex,
 * which is off the I/O path).  Producer and consumer counters live on
 * separate cache lines.
 *
 * Wakeup protocol (the doorbell and the sleeping flag):
 *   producer: push (release); if exchange(doorbell, 1) == 0 and
 *             exchange(sleeping, 0) == 1: wake the core
 *   consumer, draining: exchange(doorbell, 0); drain every queue
 *   consumer, before it sleeps (msg_sleep_begin): store(sleeping, 1);
 *             if load(doorbell) == 1: store(sleeping, 0) and do not sleep
 *   consumer, after it slept (msg_sleep_end): store(sleeping, 0)
 * Every access to the two flags is sequentially consistent but the
 * consumer's two clears of `sleeping`, which are release stores (they are
 * in no Dekker pair: a producer that reads the 1 just before a clear
 * becomes visible sends one spurious wakeup, as it could just before the
 * clear itself, and no more, since only its exchange takes that 1).  That makes
 * the sleep check a Dekker pair: of the consumer's store(sleeping, 1) and
 * a producer's exchange(doorbell, 1), whichever comes second in the single
 * order sees the other, so either the consumer sees the doorbell and stays
 * awake, or the producer sees `sleeping` and wakes it.  A producer that
 * finds the doorbell already rung needs nothing: the consumer has not
 * drained since, so it either sees the doorbell before sleeping or was
 * already being woken by the producer that rang it.  The producer whose
 * exchange takes `sleeping` from 1 to 0 is the only one that sends the
 * wakeup, so there is at most one wakeup per sleep and they cannot
 * overflow a CQ.  A core that is awake (sleeping == 0) is never sent a
 * wakeup: the producer saves the MSG_RING or eventfd write and the core
 * the CQE (stats.wakeups_skipped).  The wakeup itself: from a core, an
 * IORING_OP_MSG_RING CQE into the destination's main ring (submitted with
 * the producer's next io_uring_enter); from outside, a write to the
 * destination's eventfd, which the destination keeps a read armed on.  A
 * core posting to itself only rings the doorbell, which keeps its loop from
 * sleeping (rt.c, I1).
 *
 * Spinning before a sleep (msg_sleep_begin): while posts flow between
 * cores (one was sent to or run from another core within POST_SPIN_WINDOW_NS
 * of loop time), a core with nothing runnable first watches its doorbell
 * and its main CQ for up to post_spin_ns before it sleeps.  Why: a
 * forwarded request's answer usually comes back within microseconds, while
 * a sleeping reactor must be woken and then wait for its CPU (on a shared
 * machine, behind other jobs: docs/engine.md, "The cross-core hop").  The
 * budget adapts: a hit sets it to twice the time the hit took (at most
 * opts.post_spin_max_ns), a miss halves it down to POST_SPIN_MIN_NS, so a
 * peer that answers slowly (after a device read) costs little spinning.
 * The bound is the competitive one: spinning longer than a sleep and a
 * wakeup cost (about 10-20 us here, FACTS.md) cannot pay, and a spinning
 * reactor also loses the scheduler's credit for sleeping, which made
 * device-bound gets slower with a 50 us bound.  post_spin_max_ns = 0
 * turns the spin off, and so does the poll-wait mode (valgrind runs one
 * thread at a time).  The spin first submits what is queued on the main
 * ring, so the MSG_RING wakeups this core owes to others are not held back
 * by it.
 *
 * Shutdown: urt_rt_stop clears `accepting` and waits until `posters` is
 * zero, so no push can land after the core's final drain.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "runtime/core.h"

/* Floor of the adaptive spin budget: a few cache-line round trips. */
#define POST_SPIN_MIN_NS 2000ull

static uint32_t pow2_at_least(uint32_t n)
{
	uint32_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

int msg_init(struct urt_core *c)
{
	struct urt_rt *rt = c->rt;
	uint32_t cap = pow2_at_least(rt->opts.post_queue_max);

	c->post_spin_ns = rt->opts.post_spin_max_ns;
	c->wake_efd = eventfd(0, EFD_CLOEXEC);
	if (c->wake_efd < 0)
		return -errno;
	c->inq = calloc(rt->ncores + 1, sizeof(*c->inq));
	if (!c->inq)
		return -ENOMEM;
	for (unsigned i = 0; i <= rt->ncores; i++) {
		struct post_queue *q = aligned_alloc(URT_CACHELINE, sizeof(*q));

		if (!q)
			return -ENOMEM;
		memset(q, 0, sizeof(*q));
		q->mask = cap - 1;
		q->slots = calloc(cap, sizeof(*q->slots));
		c->inq[i] = q;
		if (!q->slots)
			return -ENOMEM;
	}
	return 0;
}

void msg_exit(struct urt_core *c)
{
	if (c->inq) {
		for (unsigned i = 0; i <= c->rt->ncores; i++) {
			if (!c->inq[i])
				continue;
			free(c->inq[i]->slots);
			free(c->inq[i]);
		}
	}
	free(c->inq);
	c->inq = NULL;
	if (c->wake_efd >= 0)
		close(c->wake_efd);
	c->wake_efd = -1;
}

static void msg_wake(struct urt_core *self, struct urt_core *dst)
{
	uint64_t one = 1;

	if (self && self->rt == dst->rt && self != dst && self->rings[RING_MAIN].ready &&
	    !self->stopping) {
		struct io_uring_sqe *sqe = ring_sqe(self, RING_MAIN);

		io_uring_prep_msg_ring(sqe, dst->rings[RING_MAIN].ring.ring_fd, 0, UD_WAKE_MSG, 0);
		io_uring_sqe_set_data64(sqe, UD_IGNORE);
		self->rings[RING_MAIN].inflight++;
		self->stats.wakeups_sent++;
		return;
	}
	if (self == dst)
		return;	/* The doorbell alone keeps our own loop awake. */
	if (write(dst->wake_efd, &one, sizeof(one)) != sizeof(one))
		abort();	/* An eventfd write fails only on overflow: 2^64 posts. */
	if (self)
		self->stats.wakeups_sent++;
}

URT_API int urt_core_post(struct urt_rt *rt, unsigned core, void (*fn)(void *arg), void *arg)
{
	struct urt_core *self = core_self();
	struct urt_core *dst;
	struct post_queue *q;
	unsigned src;
	uint32_t tail, head;
	int ret = 0;

	if (!rt || core >= rt->ncores || !fn)
		return -EINVAL;
	dst = &rt->cores[core];
	if (self && self->rt != rt)
		self = NULL;	/* A reactor of another runtime counts as outside. */
	src = self ? self->index : rt->ncores;
	atomic_fetch_add(&dst->posters, 1);
	if (!atomic_load(&dst->accepting)) {
		ret = -ESHUTDOWN;
		goto out;
	}
	q = dst->inq[src];
	if (!self)
		pthread_mutex_lock(&dst->ext_lock);
	tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
	head = atomic_load_explicit(&q->head, memory_order_acquire);
	if (tail - head > q->mask) {
		if (!self)
			pthread_mutex_unlock(&dst->ext_lock);
		ret = -EAGAIN;
		goto out;
	}
	q->slots[tail & q->mask].fn = fn;
	q->slots[tail & q->mask].arg = arg;
	/* Publish the slot before the tail that makes it visible. */
	atomic_store_explicit(&q->tail, tail + 1, memory_order_release);
	if (!self)
		pthread_mutex_unlock(&dst->ext_lock);
	if (self) {
		self->stats.posts_sent++;
		if (self != dst)
			self->post_last_ns = core_now(self);
	}
	if (atomic_exchange(&dst->doorbell, 1) == 0) {
		if (atomic_exchange(&dst->sleeping, 0) == 1)
			msg_wake(self, dst);
		else if (self)
			self->stats.wakeups_skipped++;
	}
out:
	atomic_fetch_sub(&dst->posters, 1);
	return ret;
}

void msg_drain(struct urt_core *c)
{
	unsigned nq = c->rt->ncores + 1;

	if (!atomic_load_explicit(&c->doorbell, memory_order_relaxed))
		return;
	atomic_exchange(&c->doorbell, 0);
	for (unsigned i = 0; i < nq; i++) {
		struct post_queue *q = c->inq[i];
		uint32_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
		uint32_t tail = atomic_load_explicit(&q->tail, memory_order_acquire);

		if (head != tail && i != c->index)
			c->post_last_ns = core_now(c);	/* Posts flow between cores: spin before sleeping. */
		while (head != tail) {
			struct post_msg m = q->slots[head & q->mask];

			head++;
			/* Free the slot before running fn, which may post back to us. */
			atomic_store_explicit(&q->head, head, memory_order_release);
			c->stats.posts_run++;
			m.fn(m.arg);
		}
	}
}

/* Whether anything on c's main ring asks for a reap: CQEs, or task work or overflow in the kernel. */
static bool msg_ring_has_work(struct urt_core *c)
{
	struct urt_ring *r = &c->rings[RING_MAIN];

	return io_uring_cq_ready(&r->ring) ||
	       (IO_URING_READ_ONCE(*r->ring.sq.kflags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW));
}

/*
 * Spin on the doorbell and the main CQ for at most the current budget.
 * Returns true when either has something (the loop goes round instead of
 * sleeping), false when the budget ran out.
 */
static bool msg_spin(struct urt_core *c)
{
	uint64_t budget = c->post_spin_ns;
	uint64_t t0 = now_read(&c->clock);
	uint64_t t = t0;

	for (;;) {
		if (atomic_load_explicit(&c->doorbell, memory_order_acquire) || msg_ring_has_work(c)) {
			/* Next time, twice what this answer took: enough, and no more. */
			uint64_t want = 2 * (t - t0);

			c->stats.post_spin_hits++;
			if (want > c->rt->opts.post_spin_max_ns)
				want = c->rt->opts.post_spin_max_ns;
			c->post_spin_ns = want > POST_SPIN_MIN_NS ? want : POST_SPIN_MIN_NS;
			return true;
		}
		t = now_read(&c->clock);
		if (t - t0 >= budget)
			break;
		for (int i = 0; i < 16; i++)
			__builtin_ia32_pause();
	}
	c->stats.post_spin_misses++;
	c->post_spin_ns = budget / 2 > POST_SPIN_MIN_NS ? budget / 2 : POST_SPIN_MIN_NS;
	return false;
}

bool msg_sleep_spin(struct urt_core *c)
{
	/* Send the wakeups we owe before spinning, not after it. */
	if (c->rings[RING_MAIN].queued)
		ring_submit(c, RING_MAIN, false);
	return msg_spin(c);
}
