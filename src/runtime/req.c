/*
 * Requests: the life of one op from urt_io_submit to its single delivery.
 *
 * Design notes
 * ------------
 * A request (struct urt_req) comes from the core's fixed pool; user_data of
 * every SQE that concerns it is the request pointer plus a tag (core.h).
 * It counts the CQEs it still expects in `pending` and is recycled only
 * when that count is zero and its caller has been answered, so a CQE can
 * never find a recycled request.
 *
 * States (req->state, enum req_state in core.h):
 *
 *   FREE --issue--> INFLIGHT --CQE--+--> answered (io = NULL) --last CQE--> FREE
 *     |               ^   ^         |
 *     +--no SQ room--> BACKLOG      +--EAGAIN/EINTR/short--> INFLIGHT or BACKLOG
 *                     ^   |         +--transient error--> BACKOFF --timer--> INFLIGHT
 *                     +---+         +--fault DELAY------> HELD ----release-> INFLIGHT
 *
 * Transitions, and the function that performs each.  req_set_state asserts
 * every one against req_next_state[]; each transition function asserts the
 * state it is entered in.
 *
 *   from                     to          function
 *   FREE                     INFLIGHT    req_issue (from req_start, also a scheduled op that
 *                                        sched_fast admits past an empty queue), req_from_bare
 *   FREE, INFLIGHT, BACKOFF  BACKLOG     backlog_push (from req_issue: no SQ room)
 *   BACKLOG                  BACKLOG     backlog_push (still no room at a flush)
 *   BACKLOG, BACKOFF         INFLIGHT    req_issue (from req_backlog_flush, req_on_backoff)
 *   INFLIGHT                 INFLIGHT    req_issue (a resubmission from req_result), req_on_op
 *   BACKLOG                  INFLIGHT    req_cancel, req_cancel_all (answered -ECANCELED)
 *   INFLIGHT                 BACKOFF     req_result (a transient error: retry after a timer)
 *   any but HELD             BACKOFF     req_prep_failed (answered; only timers remain)
 *   INFLIGHT                 HELD        req_hold (fault DELAY)
 *   HELD                     INFLIGHT    req_held_release
 *   FREE                     QUEUED      req_start (a device with a scheduler: sched_enqueue;
 *                                        with a deadline, req_queue_timer arms its timer)
 *   QUEUED                   INFLIGHT    req_issue (from sched_dispatch_all), req_member_start
 *                                        (a merged command)
 *   QUEUED                   BACKLOG     backlog_push (dispatched without SQ room)
 *   QUEUED                   BACKOFF     req_unqueue_answer (answered without reaching the
 *                                        device; only its timer's CQEs remain): from
 *                                        req_on_timer (the deadline passed in the queue),
 *                                        req_queued_expired (sched_dispatch_all found it
 *                                        past its deadline), req_cancel, req_cancel_all
 *   BACKLOG, INFLIGHT,       FREE        req_put (from req_maybe_free: answered, no CQE
 *   BACKOFF                              pending, not linked in the backlog)
 *
 * Invariants
 *   R1. A request is recycled only when io == NULL, pending == 0, it is not
 *       HELD and not linked in the backlog (`queued`); req_put asserts it.
 *   R2. A request linked in core->backlog is in state BACKLOG.  One whose
 *       deadline answers it while it waits stays linked until the next
 *       flush takes it off and recycles it (never recycled while linked).
 *   R3. Its caller is answered exactly once, by req_deliver.
 *   R4. A QUEUED request with a deadline has its standalone timer armed
 *       (req_queue_timer): when it fires with -ETIME the request leaves
 *       the queue at once (req_on_timer), so none waits there past its
 *       deadline's CQE.  A dispatched one keeps that timer (req_issue adds
 *       no LINK_TIMEOUT while timer_armed), so the deadline counts from
 *       submission, queue wait included.  (Were the timer to end with
 *       another error while queued, it would stay queued with none, and
 *       req_issue would arm one at dispatch as for any op.)

 * Delivery happens exactly once, through req_deliver(), which detaches the
 * caller's urt_io.  After that the request may still wait for CQEs (an op
 * the kernel could not cancel, a timer): its memory, and a urt_buf it
 * references, stay owned until then.
 *
 * Deadlines.  On the main ring an op with a deadline is linked to an
 * IORING_OP_LINK_TIMEOUT; elsewhere (IOPOLL and passthrough rings, whose
 * ops cannot be cancelled, and held faults) a standalone TIMEOUT on the
 * main ring stands in, followed by an ASYNC_CANCEL when it fires.  An op
 * queued in its device's scheduler (sched/queue.c) gets that standalone
 * timer when it is queued (req_queue_timer) and keeps it once dispatched
 * (R4): if it fires first, the op leaves the queue answered -ETIMEDOUT
 * and never reaches the device (req_on_timer); if the loop's clock is past
 * the deadline when the op would be dispatched, the same happens there
 * (req_queued_expired).  The deadline is the op's whole budget, queue
 * wait, retries and backoff included.  When the timer fires:
 *   - the buffer is a urt_buf (reference held) or there is none: deliver
 *     -ETIMEDOUT now; the buffer is recycled at the real completion;
 *   - other memory: deliver -ETIMEDOUT when the op's CQE says the device
 *     is done with it (at once if the cancel worked).
 *
 * Bare ops (io.c) have no request while all goes well.  The first time one
 * needs this file (a result other than complete success, or
 * urt_io_cancel), req_from_bare gives it a request in the state it would
 * have had from the start: INFLIGHT on its ring (the main ring, or the
 * big one for passthrough) with its op's CQE pending.  Its op's SQE still carries the urt_io as user_data, which
 * req->op_ud records for ASYNC_CANCEL, and that CQE reaches req_on_op
 * through req_bare_slow.
 *
 * Retry classification (docs/runtime.md has the table):
 *   -EAGAIN, -EINTR            resubmit at once, no limit but the deadline
 *                              (during stop: deliver -ECANCELED)
 *   short read/write           resubmit the remainder if it stays aligned
 *   -EIO, -ENOMEM, -EBUSY,     retry after backoff (doubling), retry_max
 *   -ENOLINK                   times, then deliver the error; a backend's
 *                              retryable() may decide instead and lengthen
 *                              the pause (NVMe: DNR and CRD)
 *   -ETIMEDOUT from a device   the device timed out the command: recorded
 *                              by dev/health.c (which may reset the
 *                              controller or take the device offline), then
 *                              reissued after backoff, any class, flushes
 *                              included, up to op_timeouts_max times; a
 *                              retry waits while the device is RESETTING;
 *                              -ENODEV once it is OFFLINE
 *   a failed FLUSH/FSYNC or    never retried: sticky on the device
 *   FUA write
 *   anything else              delivered as is
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/dev/backend.h"
#include "runtime/core.h"
#include "base/mem.h"

#define REQ_BIT(state) (1u << (state))

/* The transition table of the design notes: req_next_state[from] has bit `to`. */
static const uint8_t req_next_state[REQ_STATES] = {
	[REQ_FREE] = REQ_BIT(REQ_INFLIGHT) | REQ_BIT(REQ_BACKLOG) | REQ_BIT(REQ_BACKOFF) | REQ_BIT(REQ_QUEUED),
	[REQ_BACKLOG] = REQ_BIT(REQ_BACKLOG) | REQ_BIT(REQ_INFLIGHT) | REQ_BIT(REQ_BACKOFF) |
			REQ_BIT(REQ_FREE),
	[REQ_INFLIGHT] = REQ_BIT(REQ_INFLIGHT) | REQ_BIT(REQ_BACKLOG) | REQ_BIT(REQ_BACKOFF) |
			 REQ_BIT(REQ_HELD) | REQ_BIT(REQ_FREE),
	[REQ_BACKOFF] = REQ_BIT(REQ_INFLIGHT) | REQ_BIT(REQ_BACKLOG) | REQ_BIT(REQ_BACKOFF) |
			REQ_BIT(REQ_FREE),
	[REQ_HELD] = REQ_BIT(REQ_INFLIGHT),
	[REQ_QUEUED] = REQ_BIT(REQ_INFLIGHT) | REQ_BIT(REQ_BACKLOG) | REQ_BIT(REQ_BACKOFF),
};
_Static_assert(REQ_STATES <= 8, "req_next_state holds one bit per state");

static void req_set_state(struct urt_req *req, enum req_state to)
{
	URT_ASSERT(req->state < REQ_STATES && (req_next_state[req->state] & REQ_BIT(to)));
	req->state = (uint8_t)to;
}

int req_pool_init(struct urt_core *c)
{
	unsigned n = c->rt->opts.req_max;

	c->req_max = n;
	c->reqs = mem_alloc_aligned(c->arena, n * sizeof(*c->reqs), _Alignof(struct urt_req));
	if (!c->reqs)
		return -ENOMEM;
	for (unsigned i = n; i-- > 0;) {
		c->reqs[i].core = c;
		c->reqs[i].next = c->req_free;
		c->req_free = &c->reqs[i];
	}
	return 0;
}

void req_pool_exit(struct urt_core *c)
{
	mem_free(c->arena, c->reqs);
	c->reqs = NULL;
	c->req_free = NULL;
}

/* Recycle req once invariant R1 allows it. */
static void req_maybe_free(struct urt_core *c, struct urt_req *req)
{
	if (!req->io && req->pending == 0 && req->state != REQ_HELD && req->state != REQ_FREE &&
	    req->state != REQ_QUEUED && !req->queued)
		req_put(c, req);
}

static bool op_is_socket(unsigned op)
{
	return op == URT_OP_ACCEPT || op == URT_OP_RECV || op == URT_OP_SEND;
}

static bool op_is_xfer(unsigned op)
{
	return op == URT_OP_READ || op == URT_OP_WRITE || op == URT_OP_READV || op == URT_OP_WRITEV;
}

static void req_deliver(struct urt_core *c, struct urt_req *req, int res)
{
	struct urt_io *io = req->io;

	if (!io)
		return;
	req->io = NULL;
	/*
	 * The device is done with the op (nothing pending, or the op is not in
	 * a ring: backoff, held, backlog): its depth unit serves the op the
	 * callback may submit (queue.c Q3).  INFLIGHT with CQEs pending, the op
	 * may still be in the device (a deadline answered before it): the unit
	 * stays until the request is freed.
	 */
	if (req->sched_on && (req->pending == 0 || req->state != REQ_INFLIGHT))
		sched_put(c, req);
	io_answer(c, io, res, req->submit_ns);
}

/*
 * req_deliver from req_result: the op's own CQE is in, so the device holds
 * nothing of it, and its depth unit comes back now even while its timer's
 * or a cancel's CQE is still due (queue.c Q3).  Otherwise the op that the
 * callback submits would find the unit taken and queue for an iteration
 * (a deadline op's LINK_TIMEOUT CQE often comes a reap later).
 */
static void req_deliver_done(struct urt_core *c, struct urt_req *req, int res)
{
	if (req->sched_on && req->io)
		sched_put(c, req);
	req_deliver(c, req, res);
}

static struct __kernel_timespec ns_to_ts(uint64_t ns)
{
	struct __kernel_timespec ts = {
		.tv_sec = (long long)(ns / 1000000000ull),
		.tv_nsec = (long long)(ns % 1000000000ull),
	};
	return ts;
}

/* A standalone TIMEOUT on the main ring, tagged for req. */
static void req_arm_timer(struct urt_core *c, struct urt_req *req, enum ud_tag tag, uint64_t ns,
			  struct __kernel_timespec *ts)
{
	struct io_uring_sqe *sqe = ring_sqe(c, RING_MAIN);

	*ts = ns_to_ts(ns);
	io_uring_prep_timeout(sqe, ts, 0, 0);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)req | tag);
	c->rings[RING_MAIN].inflight++;
	req->pending++;
}

/* Cancel req's op (tag OP) or its standalone timer (tag TIMER). */
static void req_send_cancel(struct urt_core *c, struct urt_req *req, enum ud_tag target)
{
	struct io_uring_sqe *sqe;
	enum ring_kind kind = target == UD_TAG_OP ? (enum ring_kind)req->ring : RING_MAIN;

	/* IOPOLL rings refuse ASYNC_CANCEL, and polled I/O cannot be cancelled anyway. */
	if (c->rings[kind].polled)
		return;
	sqe = ring_sqe(c, kind);
	if (target == UD_TAG_TIMER)
		io_uring_prep_timeout_remove(sqe, (uint64_t)(uintptr_t)req | UD_TAG_TIMER, 0);
	else
		io_uring_prep_cancel64(sqe, req->op_ud, 0);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)req | UD_TAG_CANCEL);
	c->rings[kind].inflight++;
	req->pending++;
}

/* Removes req's standalone timer, once: the request is recycled without waiting for its deadline. */
static void req_timer_remove(struct urt_core *c, struct urt_req *req)
{
	if (req->timer_armed && !req->timer_remove_sent) {
		req->timer_remove_sent = true;
		req_send_cancel(c, req, UD_TAG_TIMER);
	}
}

/*
 * Transition QUEUED -> BACKOFF: req, already out of its scheduler's queue
 * (sched_take), is answered res without ever reaching the device.  Only
 * its deadline's timer can still owe a CQE; it is removed unless it
 * already fired, so the request is recycled at once, not at the deadline.
 * BACKOFF, not INFLIGHT: a timer that fires anyway must not send an
 * ASYNC_CANCEL for an op that was never issued (req_on_timer).
 */
static void req_unqueue_answer(struct urt_core *c, struct urt_req *req, int res)
{
	req_set_state(req, REQ_BACKOFF);
	req_deliver(c, req, res);
	req_timer_remove(c, req);
	req_maybe_free(c, req);
}

/*
 * From sched_dispatch_all: req, just taken out of the queue to be
 * dispatched, is past its deadline by the loop's clock (its timer's CQE
 * has not been reaped yet): answered -ETIMEDOUT, not dispatched.
 */
void req_queued_expired(struct urt_core *c, struct urt_req *req)
{
	URT_ASSERT(req->state == REQ_QUEUED && req->deadline_ns);
	req->timer_fired = true;
	req_unqueue_answer(c, req, -ETIMEDOUT);
}

static bool req_buffer_safe(const struct urt_req *req)
{
	/* Either no memory is involved or the runtime holds a reference on it. */
	return req->buf_ref || !(op_is_xfer(req->op));
}

static enum ring_kind req_pick_ring(struct urt_core *c, struct urt_req *req)
{
	struct urt_dev *dev = req->dev;

	if (!dev)
		return RING_MAIN;
	if (dev->be->needs_big_sqe)
		return RING_BIG;
	if (c->rings[RING_POLL].ready && dev->info.poll_capable && op_is_xfer(req->op))
		return RING_POLL;
	return RING_MAIN;
}

/* Park req until the SQ has room (its order behind earlier waiters is kept). */
static void backlog_push(struct urt_core *c, struct urt_req *req)
{
	URT_ASSERT(!req->queued && req->state != REQ_HELD);
	req_set_state(req, REQ_BACKLOG);
	req->queued = true;
	STAILQ_INSERT_TAIL(&c->backlog, req, link);
}

void req_backlog_flush(struct urt_core *c)
{
	STAILQ_HEAD(, urt_req) waiting = STAILQ_HEAD_INITIALIZER(waiting);
	struct urt_req *req;

	/* Each waiter either gets its SQE or goes back to c->backlog, in order. */
	STAILQ_CONCAT(&waiting, &c->backlog);
	while ((req = STAILQ_FIRST(&waiting))) {
		STAILQ_REMOVE_HEAD(&waiting, link);
		URT_ASSERT(req->state == REQ_BACKLOG && req->queued);
		req->queued = false;
		req_issue(c, req);
	}
}

/*
 * The backend could not prepare req's op: turn the SQE it was given into a
 * harmless NOP and deliver the error.
 */
static void req_prep_failed(struct urt_core *c, struct urt_ring *r, struct urt_req *req, struct io_uring_sqe *sqe,
			    int err)
{
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data64(sqe, UD_IGNORE);
	r->inflight++;
	req_set_state(req, REQ_BACKOFF);
	req_deliver(c, req, err);
	req_maybe_free(c, req);
}

/*
 * Put req's (remaining) op on its ring, with its deadline.  Requests that
 * find no SQ room wait in the backlog; their order is kept.
 */
void req_issue(struct urt_core *c, struct urt_req *req)
{
	enum ring_kind kind;
	struct urt_ring *r;
	struct io_uring_sqe *sqe;
	uint64_t now = core_now(c);
	bool link = false;
	int64_t n = 0;

	URT_ASSERT(req->state != REQ_HELD && !req->queued);
	if (!req->io) {
		/* Delivered while in the backlog or in backoff (its deadline passed). */
		req_maybe_free(c, req);
		return;
	}
	if (req->deadline_ns && now >= req->deadline_ns) {
		req->timer_fired = true;
		req_deliver(c, req, -ETIMEDOUT);
		req_maybe_free(c, req);
		return;
	}
	if (!STAILQ_EMPTY(&c->backlog) && req->state != REQ_BACKLOG) {
		backlog_push(c, req);	/* Keep FIFO order behind earlier waiters. */
		return;
	}
	kind = req_pick_ring(c, req);
	if (kind != RING_MAIN && !c->rings[kind].ready) {
		int ret = ring_setup(c, kind);

		if (ret) {
			req_deliver(c, req, ret);
			req_maybe_free(c, req);
			return;
		}
	}
	r = &c->rings[kind];
	/* An op that waited in its scheduler's queue keeps the timer armed there (R4). */
	link = kind == RING_MAIN && req->deadline_ns && !req->timer_armed && req->op != URT_OP_TIMEOUT &&
	       (!req->dev || req->dev->be->cancellable);
	if (io_uring_sq_space_left(&r->ring) < (link ? 2u : 1u) ||
	    (req->deadline_ns && !link && io_uring_sq_space_left(&c->rings[RING_MAIN].ring) < 2u)) {
		ring_submit(c, kind, false);
		if (io_uring_sq_space_left(&r->ring) < (link ? 2u : 1u)) {
			backlog_push(c, req);
			return;
		}
	}
	req->ring = (uint8_t)kind;
	req_set_state(req, REQ_INFLIGHT);
	req->issue_ns = now;
	sqe = ring_sqe(c, kind);
	if (req->stalled) {
		/* Fault STALL: an op that only a cancel ends. */
		io_uring_prep_poll_add(sqe, c->stall_efd, POLLIN);
	} else if (req->op == URT_OP_NOP) {
		io_uring_prep_nop(sqe);
	} else if (req->op == URT_OP_TIMEOUT) {
		req->ts = ns_to_ts(req->len);
		io_uring_prep_timeout(sqe, &req->ts, 0, 0);
	} else if (op_is_socket(req->op)) {
		net_prep(req, sqe, req->fd);
		n = req->op == URT_OP_SEND ? (int64_t)req->len : 0;
	} else {
		n = req->dev->be->prep(req->dev, c, req, sqe);
		if (n < 0) {
			req_prep_failed(c, r, req, sqe, (int)n);
			return;
		}
		ring_count_dev_sqe(c, req->dev, sqe);
	}
	if (req->dev && req->dev->sched)
		sched_set_ioprio(req->dev, sqe, req->prio);
	req->seg = (uint64_t)n;
	req->op_ud = (uint64_t)(uintptr_t)req | UD_TAG_OP;
	io_uring_sqe_set_data64(sqe, req->op_ud);
	r->inflight++;
	req->pending++;
	if (kind == RING_BIG)
		ring_arm_efd(c, RING_BIG);
	if (!req->deadline_ns || req->op == URT_OP_TIMEOUT)
		return;
	if (link) {
		sqe->flags |= IOSQE_IO_LINK;
		sqe = ring_sqe(c, RING_MAIN);
		req->ts = ns_to_ts(req->deadline_ns - now);
		io_uring_prep_link_timeout(sqe, &req->ts, 0);
		io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)req | UD_TAG_TIMER);
		r->inflight++;
		req->pending++;
		req->timer_linked = true;
	} else if (!req->timer_armed) {
		req_arm_timer(c, req, UD_TAG_TIMER, req->deadline_ns - now, &req->ts);
		req->timer_linked = false;
		req->timer_armed = true;
	}
}

/* Advance the remaining buffer of req by n bytes. */
static void req_advance(struct urt_req *req, uint64_t n)
{
	req->done += n;
	req->off += n;
	if (req->op == URT_OP_READ || req->op == URT_OP_WRITE) {
		req->buf = (uint8_t *)req->buf + n;
		req->len -= n;
		return;
	}
	/* Vectors: skip whole entries, then split the first one if needed. */
	while (n && req->nr_iov) {
		if (n >= req->iov[0].iov_len) {
			n -= req->iov[0].iov_len;
			if (req->iov == req->iov_copy) {
				req->iov = (struct iovec *)req->iov_rest;
				req->nr_iov = req->nr_rest;
			} else {
				req->iov++;
				req->nr_iov--;
			}
			continue;
		}
		/* Split: the partial entry goes alone, the rest follows unmodified. */
		req->iov_copy[0].iov_base = (uint8_t *)req->iov[0].iov_base + n;
		req->iov_copy[0].iov_len = req->iov[0].iov_len - n;
		if (req->iov != req->iov_copy) {
			req->iov_rest = req->iov + 1;
			req->nr_rest = (uint16_t)(req->nr_iov - 1);
		}
		req->iov = req->iov_copy;
		req->nr_iov = 1;
		n = 0;
	}
	req->len = 0;
	for (unsigned i = 0; i < req->nr_iov; i++)
		req->len += req->iov[i].iov_len;
	if (req->iov == req->iov_copy)
		for (unsigned i = 0; i < req->nr_rest; i++)
			req->len += req->iov_rest[i].iov_len;
}

static bool errno_transient(int res)
{
	return res == -EIO || res == -ENOMEM || res == -EBUSY || res == -ETIMEDOUT || res == -ENOLINK;
}

/*
 * Whether res of req's data command says its device is gone (dev/health.c,
 * health_on_gone): ENODEV from the driver (a removed controller's or
 * disk's queue is dying); or, on a block device, a read that ends (0) or
 * a write that finds no space (ENOSPC) below the size the device had at
 * open, when its capacity now ends there (a removed disk has capacity 0;
 * ENOSPC of a thin pool that is full keeps the capacity, so it is not
 * taken for gone).
 */
static bool req_dev_gone(const struct urt_req *req, int res)
{
	const struct urt_dev *dev = req->dev;
	bool read = req->op == URT_OP_READ || req->op == URT_OP_READV;
	bool write = req->op == URT_OP_WRITE || req->op == URT_OP_WRITEV;

	if (!read && !write && req->op != URT_OP_FLUSH && req->op != URT_OP_FSYNC)
		return false;	/* Not zeroes or deallocate: fallocate's ENODEV means "not here". */
	if (res == -ENODEV)
		return true;
	if (req->off >= dev->info.size_bytes)
		return false;
	if ((read && res == 0 && req->seg) || (write && res == -ENOSPC))
		return dev_blk_ends_before(dev, req->off);
	return false;
}

/* Decide what a result means for req (see the classification above). */
static void req_result(struct urt_core *c, struct urt_req *req, int res)
{
	const struct urt_rt_opts *o = &c->rt->opts;
	struct urt_dev *dev = req->dev;
	int health = 0;

	/* The device's recovery hears of every timeout, even one nobody waits for (dev/health.c). */
	if (urt_unlikely(res == -ETIMEDOUT) && dev) {
		health = health_on_timeout(dev, req->issue_ns, core_now(c));
	} else if (urt_unlikely(res <= 0) && dev && req_dev_gone(req, res)) {
		/* Removed: OFFLINE, nothing to reset; the op that found it says so too. */
		health_on_gone(dev);
		res = -ENODEV;
		if (req->io)
			health_offline_error(dev);
	} else if (urt_unlikely(res >= 0 && dev && health_state(&dev->health) != URT_DEV_HEALTHY)) {
		health_on_success(dev, req->issue_ns, core_now(c));
	}
	if (!req->io)
		goto out;
	/* A sleep that ran its course is a success (io.h), not a failed op. */
	if (req->op == URT_OP_TIMEOUT && res == -ETIME)
		res = 0;
	if (res == -ECANCELED) {
		if (req->cancel_asked || c->stopping || !req->deadline_ns)
			req_deliver_done(c, req, -ECANCELED);
		else
			req_deliver_done(c, req, -ETIMEDOUT);
		goto out;
	}
	if (req->timer_fired) {
		req_deliver_done(c, req, -ETIMEDOUT);
		goto out;
	}
	if ((res == -EAGAIN || res == -EINTR) && c->stopping) {
		req_deliver_done(c, req, -ECANCELED);	/* The stop's cancel-all has passed: no resubmission. */
		goto out;
	}
	if (res == -EAGAIN || res == -EINTR) {
		c->stats.retried++;
		req_issue(c, req);
		goto out;
	}
	if (res >= 0 && req->op == URT_OP_SEND) {
		req->done += (uint64_t)res;
		req->buf = (uint8_t *)req->buf + res;
		req->len -= (uint64_t)res;
		if (req->len == 0 || res == 0 || c->stopping) {
			req_deliver_done(c, req, req->len == 0 ? (int)req->done : -EPIPE);
			goto out;
		}
		c->stats.retried++;
		req_issue(c, req);	/* A short send: the rest. */
		goto out;
	}
	if (res >= 0 && op_is_xfer(req->op)) {
		uint32_t align = dev->info.direct ? dev->info.off_align : 1;

		if (res == 0 && req->seg) {
			req_deliver_done(c, req, (int)req->done);	/* End of file. */
			goto out;
		}
		req_advance(req, (uint64_t)res);
		if (req->len == 0 || c->stopping) {
			req_deliver_done(c, req, (int)req->done);
			goto out;
		}
		if ((uint64_t)res < req->seg) {
			/* A short transfer: resume unless the rest is misaligned (end of file). */
			if ((uint64_t)res % align) {
				req_deliver_done(c, req, (int)req->done);
				goto out;
			}
			c->stats.retried++;
		}
		req_issue(c, req);	/* The remainder, or the next split by max_io_bytes. */
		goto out;
	}
	if (res == -ETIMEDOUT && dev) {
		/*
		 * The device timed out the command: nothing of it is known to
		 * have happened, and reissuing it is safe for every class (a
		 * read or write of the same LBAs with the same data is
		 * idempotent; a flush covers at least what the first one did).
		 */
		if (health == -ENODEV) {
			req_deliver_done(c, req, health_offline_error(dev));
			goto out;
		}
		if (!c->stopping && req->retries < dev->health.o.op_timeouts_max) {
			req->retries++;
			c->stats.retried++;
			health_count_retry(dev);
			req_set_state(req, REQ_BACKOFF);
			req_arm_timer(c, req, UD_TAG_BACKOFF, o->retry_backoff_ns << (req->retries > 8 ? 8 : req->retries - 1),
				      &req->ts2);
			goto out;
		}
	}
	if (res < 0 && (req->op == URT_OP_FLUSH || req->op == URT_OP_FSYNC ||
			((req->op == URT_OP_WRITE || req->op == URT_OP_WRITEV) && (req->flags & URT_IO_FUA)))) {
		/*
		 * fsyncgate: the cache may have dropped data; never pretend
		 * otherwise.  A FUA write counts too: without native FUA it is a
		 * write plus a flush, and the error may be the flush's.
		 */
		dev_set_sticky(dev, res);
		req_deliver_done(c, req, res);
		goto out;
	}
	if (res < 0 && res != -ETIMEDOUT && dev && !c->stopping && req->retries < o->retry_max) {
		/* Doubling backoff; the backend may ask for longer (NVMe CRD). */
		uint64_t delay_ns = o->retry_backoff_ns << req->retries;

		if (dev->be->retryable ? dev->be->retryable(dev, req, res, &delay_ns) : errno_transient(res)) {
			req->retries++;
			c->stats.retried++;
			req_set_state(req, REQ_BACKOFF);
			req_arm_timer(c, req, UD_TAG_BACKOFF, delay_ns, &req->ts2);
			goto out;
		}
	}
	if (res >= 0 && req->op != URT_OP_NOP && req->op != URT_OP_TIMEOUT && !op_is_socket(req->op))
		res = 0;	/* Flush, fsync, zeroes, deallocate: success is 0 (recv: bytes, accept: the fd). */
	req_deliver_done(c, req, res);
out:
	/* A standalone timer must not outlive the answer by its whole deadline. */
	if (!req->io && !req->timer_linked && !req->timer_fired)
		req_timer_remove(c, req);
	req_maybe_free(c, req);
}

static void req_hold(struct urt_core *c, struct urt_req *req, int res)
{
	uint64_t now = core_now(c);

	req_set_state(req, REQ_HELD);
	req->held_res = res;
	req->next = c->held;
	c->held = req;
	/* The release is a timer of its own, so that the core wakes up for it. */
	req_arm_timer(c, req, UD_TAG_HOLD, c->rt->opts.fault.delay_ns, &req->ts2);
	/* The op already finished in the kernel, so its LINK_TIMEOUT is gone. */
	if (req->io && req->deadline_ns && !req->timer_armed) {
		req_arm_timer(c, req, UD_TAG_TIMER, req->deadline_ns > now ? req->deadline_ns - now : 1, &req->ts);
		req->timer_armed = true;
		req->timer_linked = false;
	}
	(void)now;
}

/* Release held results: all of them, or those whose hold timer fired. */
void req_held_release(struct urt_core *c, bool all)
{
	/* Transition HELD -> INFLIGHT for each released request. */
	struct urt_req **pp = &c->held;

	while (*pp) {
		struct urt_req *req = *pp;

		if (!all && !req->hold_expired) {
			pp = &req->next;
			continue;
		}
		*pp = req->next;
		req_set_state(req, REQ_INFLIGHT);
		req_result(c, req, req->held_res);
	}
}

static void req_on_op(struct urt_core *c, struct urt_req *req, int32_t res, const struct io_uring_cqe *cqe)
{
	uint32_t fault;

	URT_ASSERT(req->state == REQ_INFLIGHT && req->pending > 0);
	req->pending--;
	if ((req->flags & URT_IO_MULTISHOT) && req->io) {
		struct urt_io *io = req->io;

		io->buf_id = (cqe->flags & IORING_CQE_F_BUFFER) ? (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT) : 0;
		if (cqe->flags & IORING_CQE_F_MORE) {
			/* One of many results: the op stays armed, the request stays ours. */
			req->pending++;
			io->res = res;
			io->flags |= URT_IO_MORE;
			io->cb(io, res, io->arg);
			return;
		}
		io->flags &= (uint8_t)~URT_IO_MORE;
		req_deliver(c, req, res == -ECANCELED && !req->cancel_asked && !c->stopping ? -ECANCELED : res);
		req_maybe_free(c, req);
		return;
	}
	if (!req->stalled && req->dev && req->dev->be->complete)
		res = req->dev->be->complete(req->dev, req, res, cqe);
	req->stalled = false;
	fault = c->faults_on && (req->io || req->merge) && !c->stopping ? fault_pick(c, req->op) : 0;
	switch (fault) {
	case URT_FAULT_EIO:
		res = -EIO;
		break;
	case URT_FAULT_EAGAIN:
		res = -EAGAIN;
		break;
	case URT_FAULT_SHORT:
		if (op_is_xfer(req->op) && res > 0) {
			uint32_t align = req->dev->info.direct ? req->dev->info.off_align : 1;
			int32_t half = (res / 2) / (int32_t)align * (int32_t)align;

			if (half > 0)
				res = half;
		}
		break;
	case URT_FAULT_DELAY:
		if (req->merge)
			break;	/* A merged command is not a caller's op: its members are held when retried. */
		req_hold(c, req, res);
		return;
	default:
		break;
	}
	if (req->merge) {
		sched_merge_done(c, req, res);
		return;
	}
	req_result(c, req, res);
}

static void req_on_timer(struct urt_core *c, struct urt_req *req, int32_t res)
{
	URT_ASSERT(req->state != REQ_FREE && req->pending > 0);
	req->pending--;
	req->timer_armed = false;
	if (res != -ETIME) {
		/* -ECANCELED/-ENOENT: the op finished first, or we removed the timer. */
		req_maybe_free(c, req);
		return;
	}
	req->timer_fired = true;
	if (req->state == REQ_QUEUED) {
		/* The deadline passed in the scheduler's queue: the device never sees the op (R4). */
		sched_remove(c, req);
		req_unqueue_answer(c, req, -ETIMEDOUT);
		return;
	}
	if (req->io && (req_buffer_safe(req) || req->state == REQ_HELD || req->state == REQ_BACKOFF ||
			req->state == REQ_BACKLOG))
		req_deliver(c, req, -ETIMEDOUT);
	/* A linked timeout already cancelled the op; a standalone one has to ask. */
	if (!req->timer_linked && req->state == REQ_INFLIGHT)
		req_send_cancel(c, req, UD_TAG_OP);
	req_maybe_free(c, req);
}

static void req_on_backoff(struct urt_core *c, struct urt_req *req)
{
	URT_ASSERT(req->state == REQ_BACKOFF && req->pending > 0);
	req->pending--;
	if (req->io && !c->stopping && req->dev) {
		int state = health_state(&req->dev->health);

		if (state == URT_DEV_RESETTING) {
			/* Reissued once the controller is back (dev/health.c H1). */
			req_arm_timer(c, req, UD_TAG_BACKOFF, HEALTH_PARK_NS, &req->ts2);
			return;
		}
		if (state == URT_DEV_OFFLINE) {
			req_deliver(c, req, health_offline_error(req->dev));
			req_maybe_free(c, req);
			return;
		}
	}
	if (req->io && !c->stopping) {
		req_issue(c, req);
		return;
	}
	if (req->io)
		req_deliver(c, req, -ECANCELED);
	req_maybe_free(c, req);
}

void req_complete_cqe(struct urt_core *c, uint64_t ud, int32_t res, const struct io_uring_cqe *cqe)
{
	struct urt_req *req = (struct urt_req *)(uintptr_t)(ud & ~(uint64_t)UD_TAG_MASK);

	switch (ud & UD_TAG_MASK) {
	case UD_TAG_OP:
		req_on_op(c, req, res, cqe);
		break;
	case UD_TAG_TIMER:
		req_on_timer(c, req, res);
		break;
	case UD_TAG_BACKOFF:
		req_on_backoff(c, req);
		break;
	case UD_TAG_HOLD:
		req->pending--;
		req->hold_expired = true;
		if (req->state != REQ_HELD)
			req_maybe_free(c, req);
		break;
	case UD_TAG_CANCEL:
		req->pending--;
		req_maybe_free(c, req);
		break;
	default:
		abort();	/* A tag we never set. */
	}
}

/*
 * Stop: ask every ring to cancel everything.  Each op still delivers once
 * (-ECANCELED or its real result); timers and backoffs end early.
 */
void req_cancel_all(struct urt_core *c)
{
	struct urt_req *req;

	for (int k = 0; k < RING_KINDS; k++) {
		struct urt_ring *r = &c->rings[k];
		struct io_uring_sqe *sqe;

		if (!r->ready || r->polled || r->inflight == 0)
			continue;
		sqe = ring_sqe(c, (enum ring_kind)k);
		io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
		io_uring_sqe_set_data64(sqe, UD_IGNORE);
		r->inflight++;
	}
	/* Requests waiting in user space never reached the kernel. */
	while ((req = sched_pop_any(c)))
		req_unqueue_answer(c, req, -ECANCELED);
	while ((req = STAILQ_FIRST(&c->backlog))) {
		STAILQ_REMOVE_HEAD(&c->backlog, link);
		req->queued = false;
		req_set_state(req, REQ_INFLIGHT);
		req_deliver(c, req, -ECANCELED);
		req_maybe_free(c, req);
	}
}

/* urt_io_cancel: answer at once if the op is not in the kernel, else ask it. */
void req_cancel(struct urt_core *c, struct urt_req *req)
{
	req->cancel_asked = true;
	if (req->state == REQ_INFLIGHT) {
		req_send_cancel(c, req, UD_TAG_OP);
		return;
	}
	if (req->state == REQ_QUEUED) {
		sched_remove(c, req);
		req_unqueue_answer(c, req, -ECANCELED);
		return;
	}
	if (req->state == REQ_BACKLOG) {
		URT_ASSERT(req->queued);
		STAILQ_REMOVE(&c->backlog, req, urt_req, link);
		req->queued = false;
		req_set_state(req, REQ_INFLIGHT);
	}
	/* BACKOFF and HELD keep their timers; the request waits for those CQEs. */
	req_deliver(c, req, -ECANCELED);
	req_maybe_free(c, req);
}

/*
 * req, just queued in its device's scheduler, has a deadline: its
 * standalone timer starts now, so the deadline runs while it waits there
 * and stays its timer once dispatched (R4).  The deadline is
 * submit_ns + timeout_ns and submit_ns is this iteration's clock, so it is
 * still ahead.
 */
static __attribute__((noinline)) void req_queue_timer(struct urt_core *c, struct urt_req *req)
{
	uint64_t now = core_now(c);

	URT_ASSERT(req->state == REQ_QUEUED && !req->timer_armed);
	req_arm_timer(c, req, UD_TAG_TIMER, req->deadline_ns > now ? req->deadline_ns - now : 1, &req->ts);
	req->timer_armed = true;
	req->timer_linked = false;
}

/* Submission from io.c: req is filled in.  Always 0 (the op is under way or answered). */
int req_start(struct urt_core *c, struct urt_req *req)
{
	if (c->faults_on && fault_pick_submit(c, req->op) == URT_FAULT_STALL)
		req->stalled = true;
	if (req->dev && req->dev->sched && sched_takes(req)) {
		if (sched_fast(c, req)) {
			req_issue(c, req);	/* Admitted and counted (sched_on): the bare way out. */
			return 0;
		}
		req_set_state(req, REQ_QUEUED);
		sched_enqueue(c, req);
		if (req->deadline_ns)
			req_queue_timer(c, req);
		return 0;
	}
	req_issue(c, req);
	return 0;
}

/*
 * A queued op leaves inside the merged command cr (sched/merge.c): it is
 * on cr's ring and waits for one CQE, its share of cr's.
 */
void req_member_start(struct urt_core *c, struct urt_req *req, const struct urt_req *cr)
{
	(void)c;
	req_set_state(req, REQ_INFLIGHT);
	req->ring = cr->ring;
	req->op_ud = cr->op_ud;
	req->issue_ns = cr->issue_ns;
	req->seg = req->len;
	req->pending++;
}

/* Its share of the merged command's result: handled as its own op's result. */
void req_member_end(struct urt_core *c, struct urt_req *req, int res)
{
	URT_ASSERT(req->state == REQ_INFLIGHT && req->pending > 0);
	req->pending--;
	req_result(c, req, res);
}

/* The merged command failed or fell short before req's part: req goes again, alone. */
void req_member_retry(struct urt_core *c, struct urt_req *req)
{
	struct sched_queue *q = req->dev->sched_q[c->index];

	URT_ASSERT(req->state == REQ_INFLIGHT && req->pending > 0);
	req->pending--;
	req->no_merge = true;
	c->stats.retried++;
	/* It was admitted once: it takes its depth unit without queueing again (queue.c Q3). */
	req->sched_on = true;
	sched_unit_take(q, req->prio, false);
	req_issue(c, req);
}

/*
 * Give the bare op io a request, in the state a request would have had
 * from the start: its op on its ring (the main ring, or the big one for
 * passthrough), that op's CQE pending, and the backend's scratch zeroed
 * (its prep never ran for this request).
 */
static struct urt_req *req_from_bare(struct urt_core *c, struct urt_io *io)
{
	struct urt_req *req = req_take(c);	/* The op is already counted in ops_live. */
	/* Read before io->priv becomes req. */
	uint64_t submit_ns = bare_submit_ns(io);
	bool holds_unit = bare_holds_unit(io);

	req_bind_io(req, io);
	req->submit_ns = submit_ns;
	req->issue_ns = submit_ns;
	req->seg = io->op == URT_OP_NOP ? 0 : io->len;
	req->op_ud = (uint64_t)(uintptr_t)io | UD_TAG_BARE;
	req->ring = io->op != URT_OP_NOP && io->dev->be->needs_big_sqe ? RING_BIG : RING_MAIN;
	memset(req->be, 0, sizeof(req->be));
	/* A bare op on a device with a scheduler holds a depth unit (sched_fast_bare): the request has it now. */
	req->sched_on = holds_unit;
	req_set_state(req, REQ_INFLIGHT);
	req->pending = 1;
	return req;
}

/*
 * The CQE of a bare op that bare_complete did not finish (an error, a
 * short transfer), or of one that urt_io_cancel already gave a request.
 */
void req_bare_slow(struct urt_core *c, struct urt_io *io, int32_t res, const struct io_uring_cqe *cqe)
{
	struct urt_req *req;

	if (io_is_bare(io)) {
		req = req_from_bare(c, io);
	} else {
		req = io->priv;
		/* Without a deadline nothing answers the op before its CQE. */
		if (!req || req->io != io || req->op_ud != ((uint64_t)(uintptr_t)io | UD_TAG_BARE))
			abort();
	}
	req_on_op(c, req, res, cqe);
}

/* urt_io_cancel of a bare op: it becomes a request, which req_cancel handles. */
void req_bare_cancel(struct urt_core *c, struct urt_io *io)
{
	req_cancel(c, req_from_bare(c, io));
}
