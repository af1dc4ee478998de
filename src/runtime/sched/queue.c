/*
 * The device scheduler's queue: one per core and device, between
 * urt_io_submit and the ring (blk-mq's software queue and elevator in one).
 *
 * Design notes
 * ------------
 * A device without a scheduler (dev->sched == NULL) never comes here: its
 * ops stay bare or go straight to req_issue, so the fast path is unchanged
 * but for one pointer test (io.c).  On a device with one, every data op
 * (read, write, their vectored forms, flush, fsync, write-zeroes,
 * deallocate) is queued by req_start and leaves in sched_dispatch_all,
 * which the loop runs once per iteration just before io_uring_enter, so
 * every op queued in one iteration is seen together (ordering, merging).
 *
 * An op's life here (request states of req.c):
 *
 *   FREE --req_start: sched_fast--> INFLIGHT (req_issue at once, the fast path)
 *   FREE --req_start: sched_enqueue--> QUEUED --sched_dispatch_all--+--> INFLIGHT (req_issue, alone)
 *                                        |                          +--> INFLIGHT (a merged command, merge.c)
 *                                        |                          +--> answered -ETIMEDOUT (past its
 *                                        |                               deadline: req_queued_expired)
 *                                        +--its deadline's timer fires: sched_remove--> answered -ETIMEDOUT
 *                                        +--urt_io_cancel / stop: sched_remove, sched_pop_any--> answered
 *
 * An op with a deadline has the deadline's timer armed from the moment it
 * is queued (req.c req_queue_timer, R4): the deadline counts from
 * submission, queue wait included.  When the timer fires first, req.c
 * takes the op out (sched_remove: its class list, sorted array and counts;
 * it holds no depth unit yet) and answers it -ETIMEDOUT; the device never
 * sees it.  An op picked for dispatch while the loop's clock is past its
 * deadline (the timer's CQE not reaped yet) is answered the same way
 * instead of being sent, before it takes a unit or counts as a command
 * (st.timed_out counts both).  Such ops never merge (sched_mergeable), so
 * none is ever inside a merged command.  An op that leaves in time keeps
 * that timer, with what is left of its deadline.
 *
 * A dispatch picks, in this order:
 *   1. expiry: the oldest op of any class whose wait reached its class's
 *      expire_ns (deadline-style: this bounds every policy, SSTF included);
 *   2. the background share: BACKGROUND, once background_share dispatches
 *      of other classes went by while it waited;
 *   3. the highest class with ops queued: URGENT, NORMAL, BACKGROUND;
 * each only while the class is under its depth bound, and all only while
 * the queue is under depth_max commands in flight.  Within the class the
 * policy (policy.c) picks the op, by offset from the head; merge.c then
 * adds the contiguous ops that can join it.  Retries of an op that already
 * left (short transfers, backoff) go straight to the ring: they were
 * ordered once.
 *
 * The fast path (sched_pass): an op that the end of the iteration would
 * send first and alone anyway leaves at submit time, through req_issue like
 * an op on a device without a scheduler (or bare, io.c), still holding its
 * depth unit and carrying its class's ioprio.  That is the case when the
 * policy is FIFO (an offset policy wants to see the whole iteration), the
 * queue is empty (nothing older waits, so no expiry, class order or
 * background share can prefer another op), the queue and the op's class
 * are under their depth bounds, and no op queued later could merge with it:
 * merging is off, or the op cannot merge (barrier, deadline, ...), or the
 * last SCHED_FAST_CREDIT data ops submitted on the queue were each not
 * contiguous with the one before (random I/O).  One contiguous submission
 * resets the credit, so a sequential run queues and merges from its second
 * op on; only its first op, after a random stretch, may leave alone.  A
 * later, higher-class op of the same iteration can find the depth unit
 * taken by a fast op, as it would one taken an iteration earlier.
 *
 * The common case of it costs one test (sched.h sched_fast_bare): every
 * condition that changes rarely is a shut bit (sched.h SCHED_SHUT_*: an
 * offset policy, a class bound, ops queued, the credit short with merging
 * on), and the units are counted as taken (ever) and limit (given back
 * ever, plus depth_max, less SCHED_SHUT_BIAS while any bit is set), so
 * "taken < limit" says "open and a unit free"; a unit is taken and given
 * back by one increment of taken and of limit.  The bits change
 * only here (sched_pass: CREDIT; sched_enqueue and sched_take: QUEUED) and
 * at the queue's creation (sched.c queue_new: POLICY, CLASS, CREDIT).  An
 * op that passes this way counts in st.fast, as taken - taken_queued
 * (sched_fast_count), and nothing else: it neither
 * moves head nor adds to seek_bytes, which cover the commands dispatched
 * from the queue (an offset policy, the only user of head, never lets an
 * op pass).
 *
 * Invariants
 *   Q1. An op is in its class's fifo list, and with an offset policy in
 *       its sorted array, exactly while its request is QUEUED.
 *   Q2. A queue is on its core's sched_busy list exactly while queued > 0,
 *       so a device being closed (no I/O in flight) is on no core's list.
 *   Q3. inflight counts commands holding a depth unit: a request with
 *       sched_on until its answer once the device is done with it (so the
 *       callback may submit the next op into the freed unit, even while
 *       its timer's or a cancel's CQE is still due): after its op's CQE
 *       (req_deliver_done), or with the op in no ring or no CQE pending
 *       (req_deliver); an answer while the op may still be in the device
 *       (a deadline) keeps it until req_put (sched_put); a bare op admitted
 *       by sched_fast_bare until bare_complete, or, when it takes a
 *       request (req_from_bare), as that request's sched_on; a merged
 *       command until its completion is split (sched_merge_done).  It is
 *       kept as taken and limit (sched.h: inflight is
 *       depth_max - (limit - taken), less the shut bias; sched_inflight).  inflight <= depth_max
 *       except for ops retried alone after a failed merge, which take
 *       their unit without waiting (they were admitted once already).
 *       Each class's inflight counts the same for its class, but only when
 *       some class has a bound below depth_max (class_depth, sched.h
 *       sched_unit_take/put); otherwise it stays 0 and depth_max bounds all.
 *   Q4. Flushes and FUA writes are barriers: ops queued on either side of
 *       one have different epochs, and a merge never spans two epochs.
 *   Q5. shut has QUEUED exactly while queued > 0, POLICY exactly with an
 *       offset policy, CLASS exactly with class_depth, and CREDIT exactly
 *       while merging is on and fast_credit < SCHED_FAST_CREDIT; limit -
 *       taken is depth_max - inflight, less SCHED_SHUT_BIAS while
 *       shut != 0 (queue_check).
 *   Q6. since_bg is 0 while no BACKGROUND op is queued (sched_take), so
 *       an op passing the empty queue leaves it as it is.
 *   Q7. No op is sent past its deadline by the loop's clock: the dispatch
 *       step tests it after sched_take and before the op takes a unit or
 *       counts as a command (st.timed_out instead of st.dispatched); a
 *       queued op holds no unit, so taking it out for its deadline or a
 *       cancel gives none back.  This test is the one cost of deadlines
 *       for ops without one, on the queued path only (one predictable
 *       branch); the fast path has none (sched_pass, sched_pass_quick).
 */
#include <errno.h>
#include <string.h>

#include "runtime/core.h"

/* Q5 and Q6 (debug builds). */
static bool queue_check(const struct sched_queue *q)
{
	uint32_t shut = (q->queued ? SCHED_SHUT_QUEUED : 0) | (q->class_depth ? SCHED_SHUT_CLASS : 0) |
			(q->sd->o.policy != URT_SCHED_FIFO ? SCHED_SHUT_POLICY : 0) |
			(q->merge && q->fast_credit < SCHED_FAST_CREDIT ? SCHED_SHUT_CREDIT : 0);

	return q->shut == shut && (q->shut ? q->limit < q->taken : q->limit - q->taken >= -(int64_t)q->cap) &&
	       q->taken_queued <= q->taken &&
	       (q->cls[URT_PRIO_BACKGROUND].n || q->since_bg == 0);
}

/* IOPRIO_PRIO_VALUE of linux/ioprio.h: class in the top 3 of 16 bits. */
#define SCHED_IOPRIO(cls, level) ((uint16_t)((cls) << 13 | (level)))

bool sched_takes(const struct urt_req *req)
{
	switch (req->op) {
	case URT_OP_READ:
	case URT_OP_WRITE:
	case URT_OP_READV:
	case URT_OP_WRITEV:
	case URT_OP_FLUSH:
	case URT_OP_FSYNC:
	case URT_OP_WRITE_ZEROES:
	case URT_OP_DEALLOCATE:
		return true;
	default:
		return false;
	}
}

static bool queue_sorted(const struct sched_queue *q)
{
	return q->sd->o.policy != URT_SCHED_FIFO;
}

static void queue_busy(struct urt_core *c, struct sched_queue *q)
{
	if (q->busy)
		return;
	q->busy = true;
	TAILQ_INSERT_TAIL(&c->sched_busy, q, busy_link);
}

void sched_enqueue(struct urt_core *c, struct urt_req *req)
{
	struct sched_queue *q = sched_queue_get(c, req->dev);
	struct sched_class *k;

	URT_ASSERT(req->state == REQ_QUEUED && req->prio < SCHED_CLASSES);
	k = &q->cls[req->prio];
	req->sched_seq = ++q->seq;
	/* A barrier is alone in its epoch: nothing queued before or after it merges across it (Q4). */
	if (req->op == URT_OP_FLUSH || req->op == URT_OP_FSYNC || (req->flags & URT_IO_FUA)) {
		req->sched_epoch = ++q->epoch;
		q->epoch++;
	} else {
		req->sched_epoch = q->epoch;
	}
	TAILQ_INSERT_TAIL(&k->fifo, req, sched_link);
	if (queue_sorted(q)) {
		size_t n = k->n;

		sched_sorted_insert(k->sorted, &n, (struct sched_ent){ req->off, req->sched_seq, req });
	}
	k->n++;
	if (q->queued++ == 0)
		sched_shut_set(q, q->shut | SCHED_SHUT_QUEUED);
	q->st.queued++;
	queue_busy(c, q);
}

/* Take req out of its class (Q1); the caller changes its state. */
void sched_take(struct sched_queue *q, struct urt_req *req)
{
	struct sched_class *k = &q->cls[req->prio];

	URT_ASSERT(req->state == REQ_QUEUED && k->n > 0);
	TAILQ_REMOVE(&k->fifo, req, sched_link);
	if (queue_sorted(q)) {
		size_t n = k->n;

		sched_sorted_remove(k->sorted, &n, req, req->off);
	}
	k->n--;
	if (--q->queued == 0)
		sched_shut_set(q, q->shut & ~(uint32_t)SCHED_SHUT_QUEUED);
	/* No BACKGROUND op waits any more: its share starts again from 0 (so the fast path need not reset it). */
	if (req->prio == URT_PRIO_BACKGROUND && k->n == 0)
		q->since_bg = 0;
}

static void queue_idle_check(struct urt_core *c, struct sched_queue *q)
{
	if (q->queued == 0 && q->busy) {
		q->busy = false;
		TAILQ_REMOVE(&c->sched_busy, q, busy_link);
	}
}

/*
 * urt_io_cancel of a QUEUED op, or its deadline's timer firing while it
 * is QUEUED (req.c req_on_timer, which then counts in st.timed_out): out of
 * the queue; req.c answers it.
 */
void sched_remove(struct urt_core *c, struct urt_req *req)
{
	struct sched_queue *q = req->dev->sched_q[c->index];

	sched_take(q, req);
	if (req->timer_fired)
		q->st.timed_out++;
	queue_idle_check(c, q);
}

/* Stop: any queued op of this core, taken out, or NULL. */
struct urt_req *sched_pop_any(struct urt_core *c)
{
	struct sched_queue *q = TAILQ_FIRST(&c->sched_busy);

	if (!q)
		return NULL;
	for (unsigned k = 0; k < SCHED_CLASSES; k++) {
		struct urt_req *req = TAILQ_FIRST(&q->cls[k].fifo);

		if (req) {
			sched_take(q, req);
			queue_idle_check(c, q);
			return req;
		}
	}
	URT_ASSERT(!"a busy queue holds ops");
	return NULL;
}

void sched_command_done(struct sched_queue *q, unsigned prio)
{
	sched_unit_put(q, prio);
}

/* From req_deliver(_done) or req_put: req's depth unit comes back (Q3). */
void sched_put(struct urt_core *c, struct urt_req *req)
{
	req->sched_on = false;
	sched_command_done(req->dev->sched_q[c->index], req->prio);
}

void sched_set_ioprio(const struct urt_dev *dev, struct io_uring_sqe *sqe, unsigned prio)
{
	switch (sqe->opcode) {
	case IORING_OP_READ:
	case IORING_OP_WRITE:
	case IORING_OP_READV:
	case IORING_OP_WRITEV:
	case IORING_OP_READ_FIXED:
	case IORING_OP_WRITE_FIXED:
	case IORING_OP_READV_FIXED:
	case IORING_OP_WRITEV_FIXED:
		sqe->ioprio = dev->sched->ioprio[prio];
		break;
	default:
		break;	/* Other opcodes give ioprio other meanings, or refuse it. */
	}
}

/* Class k has ops queued and room under its bound (its count stays 0 without class_depth). */
static bool class_room(const struct sched_queue *q, unsigned k)
{
	return q->cls[k].n > 0 && q->cls[k].inflight < q->cls[k].depth_max;
}

/* The class to dispatch from, and whether an expired op forces it (*oldest); -1 for none. */
static int queue_pick_class(struct urt_core *c, struct sched_queue *q, struct urt_req **oldest)
{
	static const unsigned order[SCHED_CLASSES] = { URT_PRIO_URGENT, URT_PRIO_NORMAL, URT_PRIO_BACKGROUND };
	struct urt_req *old = NULL;
	int best = -1;

	for (unsigned k = 0; k < SCHED_CLASSES; k++) {
		struct urt_req *r;

		if (!class_room(q, k) || !q->cls[k].expire_ns)
			continue;
		r = TAILQ_FIRST(&q->cls[k].fifo);
		if (core_now(c) - r->submit_ns >= q->cls[k].expire_ns && (!old || r->submit_ns < old->submit_ns)) {
			old = r;
			best = (int)k;
		}
	}
	if (old) {
		*oldest = old;
		q->st.expired++;
		return best;
	}
	*oldest = NULL;
	if (q->sd->o.background_share && class_room(q, URT_PRIO_BACKGROUND) &&
	    q->since_bg >= q->sd->o.background_share - 1 &&
	    (q->cls[URT_PRIO_URGENT].n || q->cls[URT_PRIO_NORMAL].n)) {
		q->st.background_turns++;
		return URT_PRIO_BACKGROUND;
	}
	for (unsigned i = 0; i < SCHED_CLASSES; i++)
		if (class_room(q, order[i]))
			return (int)order[i];
	return -1;
}

static struct urt_req *queue_pick_op(struct sched_queue *q, unsigned k)
{
	struct sched_class *cl = &q->cls[k];

	if (!queue_sorted(q))
		return TAILQ_FIRST(&cl->fifo);
	return cl->sorted[sched_policy_pick(q->sd->o.policy, cl->sorted, cl->n, q->head, &q->dir)].req;
}

/* Book one command (op, [off, off + len), submitted at submit_ns) of class k leaving: depth, head, counters. */
static void queue_sent_op(struct urt_core *c, struct sched_queue *q, unsigned k, unsigned op, uint64_t off,
			  uint64_t len, uint64_t submit_ns)
{
	uint64_t wait = core_now(c) - submit_ns;

	sched_unit_take(q, k, false);
	q->st.commands++;
	if (op != URT_OP_FLUSH && op != URT_OP_FSYNC) {
		q->st.seek_bytes += off > q->head ? off - q->head : q->head - off;
		q->head = off + len;
	}
	if (wait > q->st.wait_ns_max)
		q->st.wait_ns_max = wait;
	if (k == URT_PRIO_BACKGROUND)
		q->since_bg = 0;
	else if (q->cls[URT_PRIO_BACKGROUND].n)
		q->since_bg++;
}

static void queue_sent(struct urt_core *c, struct sched_queue *q, unsigned k, const struct urt_req *req)
{
	queue_sent_op(c, q, k, req->op, req->off, req->len, req->submit_ns);
}

/*
 * The full pass-through test (the fast path of the design notes), for ops
 * the inline one (sched.h sched_fast_bare) does not let through, and for
 * ops with a request (sched_fast): whether an op of class prio at
 * [off, off + len) may leave at once, bypassing the queue.  barrier says it
 * is a flush or an fsync (no offset); mergeable that an op queued after it
 * could join it.  First the random-stretch credit follows the op, and the
 * CREDIT shut bit follows the credit.  If the op may pass, its depth unit
 * is taken and it is counted in st.fast alone (urt_dev_sched_stats adds
 * st.fast to queued, dispatched and commands); it never waited, so the
 * wait maximum is unchanged, and nothing of BACKGROUND waits (the queue is
 * empty), so since_bg is 0 already (sched_take).
 */
bool sched_pass(struct sched_queue *q, unsigned prio, uint64_t off, uint64_t len, bool barrier, bool mergeable)
{
	if (!barrier) {
		/* The credit: data ops in a row each not contiguous with the one before. */
		if (off == q->sub_end)
			q->fast_credit = 0;
		else if (q->fast_credit < SCHED_FAST_CREDIT)
			q->fast_credit++;
		q->sub_end = off + len;
		if (q->merge) {
			uint32_t shut = q->fast_credit < SCHED_FAST_CREDIT ? q->shut | SCHED_SHUT_CREDIT
									     : q->shut & ~(uint32_t)SCHED_SHUT_CREDIT;

			if (shut != q->shut)
				sched_shut_set(q, shut);
		}
	}
	if (q->queued || (q->shut & SCHED_SHUT_POLICY) || sched_units_free(q) <= 0)
		return false;
	if (q->class_depth && q->cls[prio].inflight >= q->cls[prio].depth_max)
		return false;
	if (q->fast_credit < SCHED_FAST_CREDIT && mergeable && q->merge)
		return false;
	sched_unit_take(q, prio, true);
	URT_DEBUG_ASSERT(queue_check(q));
	return true;
}

/*
 * sched_fast_bare's full test.  On a queue with a class bound no op goes
 * bare: it passes or queues with a request (sched_fast), which keeps its
 * class's count, and the credit sees it there, once.
 */
bool sched_pass_bare(struct urt_core *c, struct urt_dev *dev, const struct urt_io *io)
{
	struct sched_queue *q = sched_queue_get(c, dev);

	if (q->class_depth)
		return false;
	return sched_pass(q, io->prio, io->off, io->len, false, !(io->flags & URT_IO_FUA));
}

/*
 * From req_start: whether req, not yet queued, may go to the ring at once
 * (sched_pass).  If so it is booked as a command of its class (depth unit
 * held, sched_on) and the caller issues it.
 */
bool sched_fast(struct urt_core *c, struct urt_req *req)
{
	struct sched_queue *q = sched_queue_get(c, req->dev);

	if (!sched_pass(q, req->prio, req->off, req->len, req->op == URT_OP_FLUSH || req->op == URT_OP_FSYNC,
			sched_mergeable(req)))
		return false;
	req->sched_seq = ++q->seq;
	req->sched_on = true;
	return true;
}

static void queue_dispatch(struct urt_core *c, struct sched_queue *q)
{
	URT_DEBUG_ASSERT(queue_check(q));
	while (q->queued && sched_units_free(q) > 0) {
		struct urt_req *req;
		int k = queue_pick_class(c, q, &req);

		if (k < 0)
			break;
		if (!req)
			req = queue_pick_op(q, (unsigned)k);
		sched_take(q, req);
		if (urt_unlikely(req->deadline_ns) && core_now(c) >= req->deadline_ns) {
			q->st.timed_out++;
			req_queued_expired(c, req);	/* Answered -ETIMEDOUT; it never reaches the device. */
			continue;
		}
		q->st.dispatched++;
		if (sched_mergeable(req) && sched_merge_try(c, q, (unsigned)k, req))
			continue;	/* merge.c sent it with the ops that joined it. */
		queue_sent(c, q, (unsigned)k, req);
		req->sched_on = true;
		req_issue(c, req);
	}
	queue_idle_check(c, q);
}

/* Book a merged command as one command (merge.c calls it before sending). */
void sched_merge_sent(struct urt_core *c, struct sched_queue *q, unsigned k, const struct urt_req *carrier,
		      uint32_t members)
{
	queue_sent(c, q, k, carrier);
	q->st.dispatched += members - 1;
	q->st.merged += members;
}

void sched_dispatch_all(struct urt_core *c)
{
	struct sched_queue *q, *next;

	for (q = TAILQ_FIRST(&c->sched_busy); q; q = next) {
		next = TAILQ_NEXT(q, busy_link);
		queue_dispatch(c, q);
	}
}

uint16_t sched_ioprio_of(unsigned prio, bool rt_allowed)
{
	switch (prio) {
	case URT_PRIO_URGENT:
		/* The real-time class needs CAP_SYS_NICE; without it the best of best-effort. */
		return rt_allowed ? SCHED_IOPRIO(1, 4) : SCHED_IOPRIO(2, 0);
	case URT_PRIO_BACKGROUND:
		return SCHED_IOPRIO(3, 0);
	default:
		return SCHED_IOPRIO(2, 4);
	}
}
