/*
 * Merged commands: contiguous queued ops of one direction and one class
 * leave as one device command, and its result is split back per op.
 *
 * Design notes
 * ------------
 * A merge is built when queue.c has picked its lead op: the ops queued
 * right after it on the device (offset = the end so far) and, with an
 * offset policy, right before it (a sweep may meet a run from its top),
 * same direction,
 * class and barrier epoch, join while the command stays within
 * merge_bytes_max (at most the device's max_io_bytes, MDTS on NVMe) and
 * merge_ops_max ops.  With an offset policy the candidates are the lead's
 * successors in the sorted array; with FIFO, its successors in arrival
 * order.  The command is a request of its own (struct sched_merge, from a
 * per-queue pool, never from the core's op pool): one READ/WRITE when the
 * buffers are contiguous in memory, else READV/WRITEV over the joined
 * buffers (the file backend makes those READV_FIXED/WRITEV_FIXED when the
 * kernel has them and the buffers are registered).
 *
 * Never merged: FUA writes, flushes (barriers, queue.c Q4), ops with a
 * deadline (their link timeout belongs to one SQE), ops partly done or
 * retried, and fault STALL ops.
 *
 * Life of a merged command (carrier = the sched_merge's request):
 *
 *   FREE --sched_merge_try: members INFLIGHT (req_member_start)--> INFLIGHT
 *        --CQE: req_on_op -> sched_merge_done--> FREE (back to the pool)
 *
 * Splitting a result res (sched_merge_done), members in offset order:
 *   res == total       every op gets its whole length (req_member_end);
 *   0 <= res < total   ops fully covered get their length; the first op
 *                      cut short gets its part and req.c resubmits its rest
 *                      alone; ops after it are retried alone
 *                      (req_member_retry);
 *   res < 0            every op is retried alone, so an error lands only on
 *                      the ops it belongs to (a bad sector fails one op);
 *                      except at stop, or an op whose cancel was asked,
 *                      which are answered with res.
 * A member keeps one pending CQE (its share of the command) from
 * req_member_start to the split, so it is never recycled before.
 */
#include <errno.h>
#include <string.h>

#include "runtime/core.h"

static bool op_reads(unsigned op)
{
	return op == URT_OP_READ || op == URT_OP_READV;
}

bool sched_mergeable(const struct urt_req *req)
{
	return (req->op == URT_OP_READ || req->op == URT_OP_WRITE || req->op == URT_OP_READV ||
		req->op == URT_OP_WRITEV) &&
	       !(req->flags & URT_IO_FUA) && !req->deadline_ns && !req->stalled && !req->no_merge && req->done == 0;
}

static unsigned iov_need(const struct urt_req *req)
{
	return req->op == URT_OP_READV || req->op == URT_OP_WRITEV ? req->nr_iov : 1;
}

/*
 * Whether next, contiguous with the ops chosen so far (nr ops, nr_iov
 * buffers, len bytes), may join them.
 */
static bool merge_fits(const struct sched_queue *q, const struct urt_req *lead, const struct urt_req *next,
		       uint32_t nr, uint32_t nr_iov, uint64_t len)
{
	return sched_mergeable(next) && op_reads(next->op) == op_reads(lead->op) &&
	       next->sched_epoch == lead->sched_epoch && nr < q->sd->o.merge_ops_max &&
	       nr_iov + iov_need(next) <= SCHED_MERGE_OPS_MAX && len + next->len <= q->sd->merge_bytes_max;
}

/* Offset policies: a queued op of class k that ends exactly at start, or NULL. */
static struct urt_req *merge_prev(const struct sched_queue *q, unsigned k, uint64_t start)
{
	const struct sched_class *cl = &q->cls[k];
	size_t i = sched_sorted_lower(cl->sorted, cl->n, start);

	/* Look a few entries back: ops of other lengths may sit between. */
	for (unsigned look = 0; i > 0 && look < 8; look++) {
		const struct sched_ent *e = &cl->sorted[--i];

		if (e->off + e->req->len == start)
			return e->req;
		if (e->off + q->sd->merge_bytes_max < start)
			break;
	}
	return NULL;
}

/* Append req's buffers to m, joining an entry that ends where one begins. */
static void merge_add(struct sched_merge *m, struct urt_req *req)
{
	const struct iovec one = { req->buf, req->len };
	const struct iovec *v = &one;
	unsigned n = 1;

	if (req->op == URT_OP_READV || req->op == URT_OP_WRITEV) {
		v = req->iov;
		n = req->nr_iov;
	}
	for (unsigned i = 0; i < n; i++) {
		struct iovec *last = m->nr_iov ? &m->iov[m->nr_iov - 1] : NULL;

		if (last && (uint8_t *)last->iov_base + last->iov_len == (uint8_t *)v[i].iov_base)
			last->iov_len += v[i].iov_len;
		else
			m->iov[m->nr_iov++] = v[i];
	}
	m->members[m->nr++] = req;
}

/* The next candidate after the ones taken: by offset order, or by arrival for FIFO. */
static struct urt_req *merge_next(const struct sched_queue *q, unsigned k, const struct urt_req *last)
{
	const struct sched_class *cl = &q->cls[k];
	size_t i;

	/* The ops taken so far are out of the queue: the next arrival is the first. */
	if (q->sd->o.policy == URT_SCHED_FIFO)
		return TAILQ_FIRST(&cl->fifo);
	i = sched_sorted_lower(cl->sorted, cl->n, last->off + last->len);
	return i < cl->n ? cl->sorted[i].req : NULL;
}

static void merge_put(struct sched_queue *q, struct sched_merge *m)
{
	m->next = q->merge_free;
	q->merge_free = m;
}

bool sched_merge_try(struct urt_core *c, struct sched_queue *q, unsigned k, struct urt_req *lead)
{
	struct sched_merge *m = q->merge_free;
	struct urt_dev *dev = lead->dev;
	struct urt_req *pre[SCHED_MERGE_OPS_MAX], *next, *prev = NULL, *cr;
	uint64_t start = lead->off, end = lead->off + lead->len, len = lead->len;
	uint32_t npre = 0, nr = 1, nr_iov = iov_need(lead);
	bool sorted = q->sd->o.policy != URT_SCHED_FIFO;
	enum ring_kind kind = RING_MAIN;
	struct urt_ring *r;
	struct io_uring_sqe *sqe;
	int64_t n;

	if (!q->sd->o.merge || !m || lead->len > q->sd->merge_bytes_max)
		return false;
	next = merge_next(q, k, lead);
	if (next && (next->off != end || !merge_fits(q, lead, next, nr, nr_iov, len)))
		next = NULL;
	/* A sweep may meet a run from its top (SSTF, SCAN going down): join what precedes the lead too. */
	if (sorted) {
		prev = merge_prev(q, k, start);
		if (prev && !merge_fits(q, lead, prev, nr, nr_iov, len))
			prev = NULL;
	}
	if (!next && !prev)
		return false;
	if (dev->be->needs_big_sqe)
		kind = RING_BIG;
	else if (c->rings[RING_POLL].ready && dev->info.poll_capable)
		kind = RING_POLL;
	r = &c->rings[kind];
	if (!r->ready || !STAILQ_EMPTY(&c->backlog))
		return false;	/* req_issue sets the ring up, or keeps the backlog's order. */
	if (io_uring_sq_space_left(&r->ring) < 1) {
		ring_submit(c, kind, false);
		if (io_uring_sq_space_left(&r->ring) < 1)
			return false;
	}
	q->merge_free = m->next;
	while (prev) {
		sched_take(q, prev);
		pre[npre++] = prev;
		nr++;
		nr_iov += iov_need(prev);
		len += prev->len;
		start = prev->off;
		prev = merge_prev(q, k, start);
		if (prev && !merge_fits(q, lead, prev, nr, nr_iov, len))
			prev = NULL;
	}
	m->nr = 0;
	m->nr_iov = 0;
	while (npre)
		merge_add(m, pre[--npre]);
	merge_add(m, lead);
	while (next) {
		sched_take(q, next);
		merge_add(m, next);
		nr++;
		nr_iov += iov_need(next);
		end += next->len;
		len += next->len;
		next = merge_next(q, k, next);
		if (next && (next->off != end || !merge_fits(q, lead, next, nr, nr_iov, len)))
			next = NULL;
	}

	cr = &m->req;
	memset(cr->life, 0, sizeof(cr->life));
	cr->merge = true;
	cr->io = NULL;
	cr->dev = dev;
	cr->core = c;
	cr->op = m->nr_iov == 1 ? (op_reads(lead->op) ? URT_OP_READ : URT_OP_WRITE)
			       : (op_reads(lead->op) ? URT_OP_READV : URT_OP_WRITEV);
	cr->flags = 0;
	cr->off = start;
	cr->len = len;
	cr->buf = m->iov[0].iov_base;
	cr->iov = m->iov;
	cr->nr_iov = (uint16_t)m->nr_iov;
	cr->iov_rest = NULL;
	cr->nr_rest = 0;
	cr->done = 0;
	cr->deadline_ns = 0;
	cr->submit_ns = m->members[0]->submit_ns;
	cr->prio = (uint8_t)k;
	cr->state = REQ_INFLIGHT;
	cr->ring = (uint8_t)kind;
	sched_merge_sent(c, q, k, cr, m->nr);
	sqe = ring_sqe(c, kind);
	n = dev->be->prep(dev, c, cr, sqe);
	if (n < 0) {
		/* The backend cannot take it as one command: every op goes alone. */
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data64(sqe, UD_IGNORE);
		r->inflight++;
		sched_command_done(q, k);
		for (uint32_t i = 0; i < m->nr; i++) {
			req_member_start(c, m->members[i], cr);
			req_member_retry(c, m->members[i]);
			q->st.merge_retries++;
		}
		merge_put(q, m);
		return true;
	}
	URT_ASSERT((uint64_t)n == len && "a merged command fits in one device command");
	/* Counted as req.c counts a lone op's SQE: a merged command's file and memory show in the stats too. */
	ring_count_dev_sqe(c, dev, sqe);
	cr->seg = (uint64_t)n;
	cr->op_ud = (uint64_t)(uintptr_t)cr | UD_TAG_OP;
	io_uring_sqe_set_data64(sqe, cr->op_ud);
	sched_set_ioprio(dev, sqe, k);
	r->inflight++;
	cr->pending = 1;
	if (kind == RING_BIG)
		ring_arm_efd(c, RING_BIG);
	for (uint32_t i = 0; i < m->nr; i++)
		req_member_start(c, m->members[i], cr);
	return true;
}

void sched_merge_done(struct urt_core *c, struct urt_req *cr, int res)
{
	struct sched_merge *m = (struct sched_merge *)cr;
	struct sched_queue *q = m->q;
	uint64_t left = res > 0 ? (uint64_t)res : 0;
	bool cut = false;

	/* req_on_op took the command's one CQE off pending already. */
	URT_ASSERT(cr->merge && cr->pending == 0 && cr->state == REQ_INFLIGHT);
	cr->state = REQ_FREE;
	sched_command_done(q, cr->prio);
	for (uint32_t i = 0; i < m->nr; i++) {
		struct urt_req *req = m->members[i];

		if (res < 0) {
			if (c->stopping || (res == -ECANCELED && req->cancel_asked)) {
				req_member_end(c, req, res);
			} else {
				q->st.merge_retries++;
				req_member_retry(c, req);
			}
			continue;
		}
		if (!cut && left >= req->len) {
			left -= req->len;
			req_member_end(c, req, (int)req->len);
			continue;
		}
		if (!cut && left > 0) {
			/* Its part now; req.c resubmits the rest of it alone. */
			cut = true;
			req_member_end(c, req, (int)left);
			left = 0;
			q->st.merge_retries++;
			continue;
		}
		cut = true;
		q->st.merge_retries++;
		req_member_retry(c, req);
	}
	merge_put(q, m);
}
