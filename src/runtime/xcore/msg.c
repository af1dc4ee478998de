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
 * Wakeup protocol (the doorbell):
 *   producer: push (release) ; if exchange(doorbell, 1) == 0: wake the core
 *   consumer: exchange(doorbell, 0) ; drain every queue
 * Both exchanges are sequentially consistent.  If a producer sees 1, the
 * consumer's clearing exchange comes later in the doorbell's order, so the
 * drain that follows it sees the push.  If it sees 0, it sends a wakeup:
 * from a core, an IORING_OP_MSG_RING CQE into the destination's main ring
 * (submitted with the producer's next io_uring_enter); from outside, a
 * write to the destination's eventfd, which the destination keeps a read
 * armed on.  At most one wakeup per producer is in flight per doorbell
 * cycle, so wakeups cannot overflow a CQ.  A core posting to itself only
 * sets the doorbell, which keeps its loop from sleeping (rt.c, I1).
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
	if (self)
		self->stats.posts_sent++;
	if (atomic_exchange(&dst->doorbell, 1) == 0)
		msg_wake(self, dst);
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
