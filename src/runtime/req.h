/*
 * Requests and bare ops (req.c and io.c have the design notes): the pool,
 * the one answer to an op, and latency recording, inline for the reap loop.
 */
#ifndef URT_RUNTIME_REQ_H
#define URT_RUNTIME_REQ_H

#include "runtime/core.h"
#include "runtime/buf.h"

/*
 * The latency of every delivered op goes to stats.lat through lat_record.
 * Latencies are measured at loop-iteration granularity (core_now), so the
 * ops completed in one iteration and submitted in one iteration have the
 * same latency: lat_record only counts a run of equal values, and
 * lat_flush adds the run to the histogram at once when a different value
 * comes, and before anyone reads the statistics (urt_rt_stats).
 *
 * In HYBRID mode every latency also feeds lat_ewma_ns (the spin budget).
 * There lat_run_v is LAT_RUN_NONE, which no latency equals, so every op
 * takes lat_record_new, which records it at once and updates the average;
 * the common modes pay nothing for the average on their fast path.
 */
#define LAT_RUN_NONE UINT64_MAX

static inline void lat_flush(struct urt_core *c)
{
	if (c->lat_run_n) {
		hist_record_n(&c->stats.lat, c->lat_run_v, c->lat_run_n);
		c->lat_run_n = 0;
	}
}

/* Smoothed completion latency for the hybrid spin budget: ewma with weight 1/8. */
static inline void lat_ewma_add(struct urt_core *c, uint64_t lat)
{
	c->lat_ewma_ns = c->lat_ewma_ns ? (7 * c->lat_ewma_ns + lat) / 8 : lat;
}

/* A latency that ends the current run (or any latency in HYBRID mode). */
static inline void lat_record_new(struct urt_core *c, uint64_t lat)
{
	lat_flush(c);
	if (urt_unlikely(c->lat_ewma_on)) {
		lat_ewma_add(c, lat);
		hist_record_n(&c->stats.lat, lat, 1);
		return;
	}
	c->lat_run_v = lat;
	c->lat_run_n = 1;
}

static inline void lat_record(struct urt_core *c, uint64_t lat)
{
	if (urt_likely(lat == c->lat_run_v)) {
		c->lat_run_n++;
		return;
	}
	lat_record_new(c, lat);
}

/*
 * The request pool (req.c has the design notes).  req_take gives a request
 * with every lifecycle field clear and no progress, for an op already
 * counted in ops_live; urt_io_submit fills in the op.  ts, ts2, iov_copy
 * and be[] are written before they are read.  The pool holds req_max
 * requests and ops_live never exceeds req_max, so an op counted there
 * always finds one.
 */

static inline struct urt_req *req_take(struct urt_core *c)
{
	struct urt_req *req = c->req_free;

	if (urt_unlikely(!req))
		abort();	/* More requests than ops in flight: an accounting bug. */
	c->req_free = req->next;
	req->life[0] = 0;
	req->life[1] = 0;
	req->seg = 0;
	req->done = 0;
	req->deadline_ns = 0;
	req->iov = NULL;
	req->iov_rest = NULL;
	req->nr_iov = 0;
	req->nr_rest = 0;
	return req;
}

/* Copy the op io describes into req, which takes charge of io. */
static inline void req_bind_io(struct urt_req *req, struct urt_io *io)
{
	req->io = io;
	req->dev = io->dev;
	req->op = io->op;
	req->flags = io->flags;
	req->fd = io->fd;
	req->buf = io->buf;
	req->off = io->off;
	req->len = io->len;
	req->prio = io->prio;
	io->priv = req;
}

static inline void req_put(struct urt_core *c, struct urt_req *req)
{
	/* Transition X -> FREE (req.c): answered, no CQE left, on no list. */
	URT_ASSERT(req->state != REQ_FREE && req->state != REQ_HELD && !req->queued && !req->io &&
		   req->pending == 0);
	if (req->buf_ref)
		buf_unref(c, req->buf_ref_ptr);
	if (req->sched_on)
		sched_put(c, req);
	req->state = REQ_FREE;
	req->next = c->req_free;
	c->req_free = req;
	c->ops_live--;
}

/*
 * Bare ops (io.c has the design notes).  While one is in flight, its
 * io->priv holds its submission time shifted left by two, with bit 0 set
 * (a request pointer, 64-byte aligned, never has it) and bit 1 set when
 * the op holds a depth unit of its device's scheduler (sched_fast_bare):
 * so its CQE knows whether to give one back from the word it has already
 * read, without loading the device.
 */
#define BARE_PRIV_SCHED ((uintptr_t)2)

static inline void *bare_priv(uint64_t submit_ns, bool sched_unit)
{
	return (void *)(uintptr_t)(submit_ns << 2 | (sched_unit ? BARE_PRIV_SCHED : 0) | 1);
}

static inline bool io_is_bare(const struct urt_io *io)
{
	return (uintptr_t)io->priv & 1;
}

static inline uint64_t bare_submit_ns(const struct urt_io *io)
{
	return (uint64_t)(uintptr_t)io->priv >> 2;
}

/* Whether the bare op io holds a depth unit of its device's scheduler. */
static inline bool bare_holds_unit(const struct urt_io *io)
{
	return (uintptr_t)io->priv & BARE_PRIV_SCHED;
}

/*
 * The answer to an op submitted at submit_ns, without the failure
 * counters: its latency, the completed count, then its callback.  For a
 * result the caller knows is not an error (bare_complete); io_answer adds
 * the counters of the others.
 */
static inline __attribute__((always_inline)) void io_answer_ok(struct urt_core *c, struct urt_io *io, int res,
								uint64_t submit_ns)
{
	uint64_t lat = core_now(c) - submit_ns;

	io->priv = NULL;
	io->res = res;
	lat_record(c, lat);
	c->stats.completed++;
	io->cb(io, res, io->arg);
}

/*
 * The one answer to an op submitted at submit_ns, bare or with a request:
 * its latency and counters, then its callback.  The caller has already
 * detached io from its request, if it had one.
 */
static inline void io_answer(struct urt_core *c, struct urt_io *io, int res, uint64_t submit_ns)
{
	if (res == -ETIMEDOUT)
		c->stats.timed_out++;
	else if (res < 0)
		c->stats.failed++;
	io_answer_ok(c, io, res, submit_ns);
}

/*
 * The CQE of a bare op, inlined into the reap loop.  A NOP (result 0), or
 * a READ/WRITE that moved all its bytes, is done: it is answered here.
 * Anything else (an error, a short transfer, a cancel) returns false,
 * having changed nothing; the caller then hands the op to req_bare_slow,
 * which gives it a request.  One compare settles the common case: a
 * READ/WRITE's full result equals io->len, and a NOP prepared by
 * urt_io_prep_nop has len 0; an error, sign-extended, equals no length
 * (lengths are at most 2 GiB), so a result that passes is not negative.
 */
static inline __attribute__((always_inline)) bool bare_complete(struct urt_core *c, struct urt_io *io, int32_t res)
{
	if (urt_unlikely((uint64_t)(int64_t)res != io->len) && (res < 0 || io->op != URT_OP_NOP))
		return false;
	if (bare_holds_unit(io)) {
		/* Its depth unit comes back (queue.c Q3). */
		URT_DEBUG_ASSERT(io->op != URT_OP_NOP && io->dev->sched);
		sched_bare_put(io->dev->sched_q[c->index]);
	}
	c->ops_live--;
	io_answer_ok(c, io, res, bare_submit_ns(io));
	return true;
}


/* req.c */
int req_start(struct urt_core *c, struct urt_req *req);
void req_issue(struct urt_core *c, struct urt_req *req);
void req_member_start(struct urt_core *c, struct urt_req *req, const struct urt_req *cr);
void req_queued_expired(struct urt_core *c, struct urt_req *req);
void req_member_end(struct urt_core *c, struct urt_req *req, int res);
void req_member_retry(struct urt_core *c, struct urt_req *req);
void req_bare_slow(struct urt_core *c, struct urt_io *io, int32_t res, const struct io_uring_cqe *cqe);
void req_bare_cancel(struct urt_core *c, struct urt_io *io);
void req_cancel(struct urt_core *c, struct urt_req *req);
int req_pool_init(struct urt_core *c);
void req_pool_exit(struct urt_core *c);
void req_complete_cqe(struct urt_core *c, uint64_t ud, int32_t res, const struct io_uring_cqe *cqe);
void req_backlog_flush(struct urt_core *c);
void req_held_release(struct urt_core *c, bool all);
void req_cancel_all(struct urt_core *c);

#endif /* URT_RUNTIME_REQ_H */
