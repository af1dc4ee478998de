/*
 * The device I/O scheduler (src/runtime/sched): one queue per core and
 * device between urt_io_submit and the ring, for devices given one with
 * urt_dev_sched_set.  queue.c has the design notes; policy.c the ordering
 * policies; merge.c merged commands; sched.c the public API and lifetime.
 */
#ifndef URT_RUNTIME_SCHED_SCHED_H
#define URT_RUNTIME_SCHED_SCHED_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "base/assert.h"
#include "base/compiler.h"
#include "base/fifo.h"
#include "urt/dev.h"
#include "urt/io.h"
#include "runtime/dev/backend.h"

struct urt_core;
struct urt_req;
struct io_uring_sqe;

#define SCHED_CLASSES		URT_PRIO_COUNT
/* Ops (and iovec entries) in one merged command; also bounds merge_ops_max. */
#define SCHED_MERGE_OPS_MAX	64
/* Merged commands in flight per queue; more wait or go out unmerged. */
#define SCHED_MERGES_MAX	32
/* Cores a device's scheduler can have queues on (rt.c never starts more). */
#define SCHED_CORES_MAX		DEV_SCHED_CORES_MAX
/* Non-contiguous submissions in a row before a mergeable op may take the fast path (queue.c). */
#define SCHED_FAST_CREDIT	16

/* One queued op in the offset-sorted array of a class (policy.c). */
struct sched_ent {
	uint64_t off;		/* Device offset: the sort key. */
	uint64_t seq;		/* Arrival number: the tie-break, so equal offsets stay FIFO. */
	struct urt_req *req;	/* The op. */
};

/* The ops of one priority class in one queue. */
struct sched_class {
	TAILQ_HEAD(, urt_req) fifo;	/* Arrival order: FIFO picks and expiry. */
	struct sched_ent *sorted;	/* Offset policies: the same ops by (off, seq); cap entries. */
	uint32_t n;			/* Ops queued. */
	uint32_t inflight;		/* Device commands of this class in flight (kept only with class_depth). */
	uint32_t depth_max;		/* Bound on inflight. */
	uint64_t expire_ns;		/* An op queued longer dispatches next; 0 = never. */
};

/* A merged command: a request of its own carrying several queued ops (merge.c). */
struct sched_merge {
	struct urt_req req;		/* The command (first: 64-byte aligned, req->merge set). */
	struct sched_merge *next;	/* Free list of the queue. */
	struct sched_queue *q;		/* Owning queue. */
	uint32_t nr;			/* Ops in members[]. */
	uint32_t nr_iov;		/* Entries used in iov[]. */
	struct urt_req *members[SCHED_MERGE_OPS_MAX];	/* The ops, in offset order. */
	struct iovec iov[SCHED_MERGE_OPS_MAX];		/* Their buffers, adjacent ones joined. */
};

/*
 * Why a queue's pass-through is shut (struct sched_queue's shut bits,
 * queue.c "The fast path"): while any is set, no op passes the queue on
 * the inline test and each goes through sched_pass, the full one.
 */
enum {
	SCHED_SHUT_POLICY = 1u << 0,	/* An offset policy: it wants to see the whole iteration. */
	SCHED_SHUT_CLASS = 1u << 1,	/* A class bound below depth_max (class_depth): each op tests its class. */
	SCHED_SHUT_QUEUED = 1u << 2,	/* Ops are queued: nothing may overtake them. */
	SCHED_SHUT_CREDIT = 1u << 3,	/* Merging on and fast_credit below SCHED_FAST_CREDIT: a run may be starting. */
};

/*
 * While the pass-through is shut, limit is this far lower: so
 * taken < limit is the whole test of "open, and a unit free", one compare
 * (sched_units_free undoes it).  2^40 is far above any depth_max (32 bits)
 * and inflight (at most the core's req_max).
 */
#define SCHED_SHUT_BIAS		((int64_t)1 << 40)

/* One core's queue for one device (queue.c). */
struct sched_queue {
	/* The inline pass-through test (sched_pass_quick) reads these three alone. */
	int64_t taken;			/* Depth units ever taken. */
	int64_t limit;			/* Units ever given back + depth_max, less SCHED_SHUT_BIAS while shut != 0. */
	uint64_t sub_end;		/* End offset of the last data op submitted: the random-stretch test. */
	int64_t taken_queued;		/* Of taken, by commands dispatched from the queue or retried: the rest are st.fast. */
	uint32_t shut;			/* SCHED_SHUT_* bits: why ops may not pass at once. */
	uint32_t fast_credit;		/* Submissions in a row not contiguous with the one before. */
	uint16_t ioprio[SCHED_CLASSES];	/* sd->ioprio: the SQE ioprio of each class. */
	struct sched_dev *sd;		/* The device's scheduler. */
	struct urt_dev *dev;		/* The device. */
	bool merge;			/* Merging on (sd->o.merge). */
	uint32_t depth_max;		/* sd->o.depth_max. */
	bool class_depth;		/* A class has a bound below depth_max: cls[].inflight is kept. */
	TAILQ_ENTRY(sched_queue) busy_link;	/* In core->sched_busy while ops are queued. */
	bool busy;			/* Linked there. */
	int8_t dir;			/* SCAN: +1 sweeping up, -1 down. */
	uint32_t cap;			/* Capacity of each sorted array (the core's req_max). */
	uint32_t queued;		/* Ops queued, all classes. */
	uint32_t since_bg;		/* Dispatches of other classes while BACKGROUND waited; 0 while none waits. */
	uint32_t epoch;			/* Flush and FUA barriers queued so far. */
	uint64_t seq;			/* Last arrival number. */
	uint64_t head;			/* End offset of the last command dispatched from the queue. */
	struct sched_class cls[SCHED_CLASSES];	/* By enum urt_io_prio. */
	struct sched_merge *merges;	/* SCHED_MERGES_MAX carriers. */
	struct sched_merge *merge_free;	/* Unused carriers. */
	struct urt_sched_stats st;	/* Counters (own core only); st.fast stays 0: sched_fast_count. */
};

/* A device's scheduler: its options and its queues (sched.c). */
struct sched_dev {
	struct urt_sched_opts o;	/* Options, checked. */
	uint32_t merge_bytes_max;	/* Resolved: min(merge_bytes_max, max_io_bytes). */
	uint16_t ioprio[SCHED_CLASSES];	/* SQE ioprio of each class. */
};

/* Depth units free on q: depth_max - inflight (negative after merge retries, queue.c Q3). */
static inline int64_t sched_units_free(const struct sched_queue *q)
{
	return q->limit + (q->shut ? SCHED_SHUT_BIAS : 0) - q->taken;
}

/* Commands holding a depth unit of q (queue.c Q3). */
static inline uint32_t sched_inflight(const struct sched_queue *q)
{
	return (uint32_t)((int64_t)q->depth_max - sched_units_free(q));
}

/* Set q's shut bits to shut, keeping limit biased while any is set. */
static inline void sched_shut_set(struct sched_queue *q, uint32_t shut)
{
	q->limit += (q->shut ? SCHED_SHUT_BIAS : 0) - (shut ? SCHED_SHUT_BIAS : 0);
	q->shut = shut;
}

/* Ops that passed the queue at submit time (urt_sched_stats.fast). */
static inline uint64_t sched_fast_count(const struct sched_queue *q)
{
	return (uint64_t)(q->taken - q->taken_queued);
}

/*
 * A command of class prio takes a depth unit of queue q (queue.c Q3): one
 * increment of taken, and of taken_queued for a command that did not pass
 * the queue at submit time (fast false: dispatched from it, or retried).
 * The class's own count is kept only when some class has a bound below
 * depth_max (class_depth): otherwise every class's bound is depth_max,
 * which the queue's count already enforces.
 */
static inline void sched_unit_take(struct sched_queue *q, unsigned prio, bool fast)
{
	q->taken++;
	if (!fast)
		q->taken_queued++;
	if (urt_unlikely(q->class_depth))
		q->cls[prio].inflight++;
}

/* The unit comes back: one increment of limit. */
static inline void sched_unit_put(struct sched_queue *q, unsigned prio)
{
	URT_ASSERT(sched_inflight(q) > 0 && (!q->class_depth || q->cls[prio].inflight > 0));
	q->limit++;
	if (urt_unlikely(q->class_depth))
		q->cls[prio].inflight--;
}

/*
 * The unit of a bare op comes back (bare_complete, at its CQE): a bare op
 * never holds a class's unit, since sched_fast_bare admits none on a queue
 * with class_depth (such ops pass, or queue, with a request).
 */
static inline void sched_bare_put(struct sched_queue *q)
{
	URT_DEBUG_ASSERT(sched_inflight(q) > 0 && !q->class_depth);
	q->limit++;
}

/*
 * The queue of a core that has none yet (sched.c): read, never written, its
 * taken == limit == 0 fails sched_pass_quick's test, so the inline test
 * needs no NULL test, and sched_queue_get makes the real one.
 */
extern struct sched_queue sched_queue_absent;

struct sched_queue *sched_queue_get(struct urt_core *c, struct urt_dev *dev);
bool sched_pass(struct sched_queue *q, unsigned prio, uint64_t off, uint64_t len, bool barrier, bool mergeable);
bool sched_pass_bare(struct urt_core *c, struct urt_dev *dev, const struct urt_io *io);

/*
 * From io.c: the pass-through of queue.c's design notes in one inline
 * test, for the bare op io (a READ or WRITE on dev, which has a
 * scheduler): the core has a queue (sched_queue_absent has no unit),
 * nothing shuts it (FIFO, nothing queued, no class bound, a random stretch
 * or merging off) and a unit is free (taken < limit), and the op does not
 * follow on from the one before (which would reset the credit:
 * sched_pass).  If so its depth unit is taken (bare_complete, or
 * req_from_bare if the op needs a request later, gives it back) and the
 * queue is returned; else NULL, having changed nothing, and
 * sched_pass_bare gives the full answer.
 */
static inline struct sched_queue *sched_pass_quick(const struct urt_core *c, const struct urt_dev *dev,
						   const struct urt_io *io)
{
	struct sched_queue *q = dev->sched_q[c->index];

	if (urt_unlikely(q->taken >= q->limit || io->off == q->sub_end))
		return NULL;
	q->sub_end = io->off + io->len;
	q->taken++;	/* Counted in st.fast by sched_fast_count. */
	return q;
}

/*
 * Whether the bare op io may leave at once, without a request (the quick
 * test, then the full one); if so its depth unit is taken.
 */
static inline bool sched_fast_bare(struct urt_core *c, struct urt_dev *dev, const struct urt_io *io)
{
	/* io_validate (or io_rw_fast) has checked io->prio < URT_PRIO_COUNT. */
	return sched_pass_quick(c, dev, io) || sched_pass_bare(c, dev, io);
}

/* sched.c */
void sched_dev_free(struct urt_dev *dev);

/* queue.c */
bool sched_takes(const struct urt_req *req);
bool sched_fast(struct urt_core *c, struct urt_req *req);
void sched_enqueue(struct urt_core *c, struct urt_req *req);
void sched_dispatch_all(struct urt_core *c);
void sched_remove(struct urt_core *c, struct urt_req *req);
struct urt_req *sched_pop_any(struct urt_core *c);
void sched_put(struct urt_core *c, struct urt_req *req);
void sched_take(struct sched_queue *q, struct urt_req *req);
void sched_command_done(struct sched_queue *q, unsigned prio);
void sched_set_ioprio(const struct urt_dev *dev, struct io_uring_sqe *sqe, unsigned prio);
void sched_merge_sent(struct urt_core *c, struct sched_queue *q, unsigned k, const struct urt_req *carrier,
		      uint32_t members);
uint16_t sched_ioprio_of(unsigned prio, bool rt_allowed);

/* policy.c: pure functions over an array sorted by (off, seq). */
size_t sched_policy_pick(enum urt_sched_policy policy, const struct sched_ent *v, size_t n, uint64_t head,
			 int8_t *dir);
size_t sched_sorted_lower(const struct sched_ent *v, size_t n, uint64_t off);
void sched_sorted_insert(struct sched_ent *v, size_t *n, struct sched_ent e);
void sched_sorted_remove(struct sched_ent *v, size_t *n, const struct urt_req *req, uint64_t off);

/* merge.c */
bool sched_mergeable(const struct urt_req *req);
bool sched_merge_try(struct urt_core *c, struct sched_queue *q, unsigned k, struct urt_req *lead);
void sched_merge_done(struct urt_core *c, struct urt_req *carrier, int res);

#endif /* URT_RUNTIME_SCHED_SCHED_H */
