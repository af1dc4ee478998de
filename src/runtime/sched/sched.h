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

struct urt_core;
struct urt_req;
struct io_uring_sqe;

#define SCHED_CLASSES		URT_PRIO_COUNT
/* Ops (and iovec entries) in one merged command; also bounds merge_ops_max. */
#define SCHED_MERGE_OPS_MAX	64
/* Merged commands in flight per queue; more wait or go out unmerged. */
#define SCHED_MERGES_MAX	32
/* Cores a device's scheduler can have queues on (rt.c never starts more). */
#define SCHED_CORES_MAX		256
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

/* One core's queue for one device (queue.c). */
struct sched_queue {
	struct sched_dev *sd;		/* The device's scheduler. */
	struct urt_dev *dev;		/* The device. */
	struct urt_core *core;		/* The core using it now. */
	/* Copies of the options the pass-through test reads, so it follows no pointer to sd. */
	bool merge;			/* Merging on. */
	uint32_t depth_max;		/* sd->o.depth_max. */
	uint32_t pass_max;		/* depth_max with policy FIFO, else 0: no op passes an offset policy's queue. */
	bool class_depth;		/* A class has a bound below depth_max: cls[].inflight is kept. */
	TAILQ_ENTRY(sched_queue) busy_link;	/* In core->sched_busy while ops are queued. */
	bool busy;			/* Linked there. */
	int8_t dir;			/* SCAN: +1 sweeping up, -1 down. */
	uint32_t cap;			/* Capacity of each sorted array (the core's req_max). */
	uint32_t queued;		/* Ops queued, all classes. */
	uint32_t inflight;		/* Device commands in flight (a merged one counts once). */
	uint32_t since_bg;		/* Dispatches of other classes while BACKGROUND waited. */
	uint32_t epoch;			/* Flush and FUA barriers queued so far. */
	uint64_t seq;			/* Last arrival number. */
	uint64_t head;			/* End offset of the last command: where the head is. */
	uint64_t sub_end;		/* End offset of the last data op submitted (fast path). */
	uint32_t fast_credit;		/* Submissions in a row not contiguous with the one before. */
	struct sched_class cls[SCHED_CLASSES];	/* By enum urt_io_prio. */
	struct sched_merge *merges;	/* SCHED_MERGES_MAX carriers. */
	struct sched_merge *merge_free;	/* Unused carriers. */
	struct urt_sched_stats st;	/* Counters (own core only). */
};

/* A device's scheduler: its options and its queues (sched.c). */
struct sched_dev {
	struct urt_sched_opts o;	/* Options, checked. */
	uint32_t merge_bytes_max;	/* Resolved: min(merge_bytes_max, max_io_bytes). */
	uint16_t ioprio[SCHED_CLASSES];	/* SQE ioprio of each class. */
	struct sched_queue *q[SCHED_CORES_MAX];	/* By core index, made on first use. */
};

/*
 * A command of class prio takes (sched_unit_take) or gives back
 * (sched_unit_put) a depth unit of queue q (queue.c Q3).  The class's own
 * count is kept only when some class has a bound below depth_max
 * (class_depth): otherwise every class's bound is depth_max, which the
 * queue's count already enforces, and an op saves the class's count.
 */
static inline void sched_unit_take(struct sched_queue *q, unsigned prio)
{
	q->inflight++;
	if (urt_unlikely(q->class_depth))
		q->cls[prio].inflight++;
}

static inline void sched_unit_put(struct sched_queue *q, unsigned prio)
{
	URT_ASSERT(q->inflight > 0 && (!q->class_depth || q->cls[prio].inflight > 0));
	q->inflight--;
	if (urt_unlikely(q->class_depth))
		q->cls[prio].inflight--;
}

/*
 * The pass-through test (queue.c design notes, "The fast path"), inline so
 * that an op passing an empty FIFO queue costs a few predictable branches
 * and counter updates: whether an op of class prio at [off, off + len) may
 * leave at once, bypassing the queue.  barrier says it is a flush or an
 * fsync (no offset); mergeable that an op queued after it could join it.  If
 * it may, its depth unit is taken and it is counted in st.fast alone
 * (urt_dev_sched_stats adds st.fast to queued, dispatched and commands); it
 * never waited, so the wait maximum and the background share are unchanged.
 */
static inline bool sched_pass(struct sched_queue *q, unsigned prio, uint64_t off, uint64_t len, bool barrier,
			      bool mergeable)
{
	if (!barrier) {
		/* The credit: data ops in a row each not contiguous with the one before. */
		if (urt_unlikely(off == q->sub_end))
			q->fast_credit = 0;
		else if (urt_unlikely(q->fast_credit < SCHED_FAST_CREDIT))
			q->fast_credit++;
		q->sub_end = off + len;
	}
	if (urt_unlikely(q->queued || q->inflight >= q->pass_max))
		return false;
	if (urt_unlikely(q->class_depth) && q->cls[prio].inflight >= q->cls[prio].depth_max)
		return false;
	if (urt_unlikely(q->fast_credit < SCHED_FAST_CREDIT && mergeable && q->merge))
		return false;
	sched_unit_take(q, prio);
	q->st.fast++;
	if (!barrier) {
		q->st.seek_bytes += off > q->head ? off - q->head : q->head - off;
		q->head = off + len;
	}
	if (urt_unlikely(prio == URT_PRIO_BACKGROUND))
		q->since_bg = 0;
	return true;
}

struct sched_queue *sched_queue_get(struct urt_core *c, struct urt_dev *dev);

/*
 * From io.c: whether the bare op io (a READ or WRITE on dev, which has a
 * scheduler) may leave at once, without a request; if so its depth unit
 * is taken, and bare_complete (or req_from_bare, if the op needs a request
 * later) gives it back.  The same test as sched_fast: FIFO, nothing
 * queued, depth room, and a random stretch (or merging off).
 */
static inline bool sched_fast_bare(struct urt_core *c, struct urt_dev *dev, const struct urt_io *io)
{
	struct sched_queue *q = dev->sched->q[c->index];

	if (urt_unlikely(!q || q->core != c))
		q = sched_queue_get(c, dev);	/* First use on this core (or by this runtime). */
	/* io_validate has checked io->prio < URT_PRIO_COUNT.  A bare op has no deadline, no fault and no FUA check of its own: test FUA here. */
	return sched_pass(q, io->prio, io->off, io->len, false, !(io->flags & URT_IO_FUA));
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
