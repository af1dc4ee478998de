/*
 * Internal structures of the runtime: the runtime, its cores, their rings
 * and the in-flight requests.  Only src/ includes this.
 *
 * Ownership: every field of a struct urt_core is touched only by its own
 * reactor thread, except those marked "shared", which are atomics.
 */
#ifndef URT_RUNTIME_CORE_H
#define URT_RUNTIME_CORE_H

#include <liburing.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/assert.h"
#include "base/compiler.h"
#include "base/fifo.h"
#include "base/error.h"
#include "base/hist.h"
#include "urt/buf.h"
#include "urt/dev.h"
#include "urt/fiber.h"
#include "urt/io.h"
#include "urt/rt.h"
#include "runtime/dev/backend.h"
#include "runtime/compat.h"
#include "runtime/fiber/context.h"
#include "runtime/fiber/stack.h"

/*
 * user_data of an SQE: a request pointer (64-byte aligned) with a tag in
 * the low bits, the urt_io of a bare op (8-byte aligned) with UD_TAG_BARE,
 * or one of the constants below for runtime-internal CQEs.
 */
enum ud_tag {
	UD_TAG_OP = 0,		/* The op itself. */
	UD_TAG_TIMER = 1,	/* Its deadline (LINK_TIMEOUT or a standalone TIMEOUT). */
	UD_TAG_BACKOFF = 2,	/* The backoff sleep before a retry. */
	UD_TAG_CANCEL = 3,	/* An ASYNC_CANCEL or TIMEOUT_REMOVE aimed at it. */
	UD_TAG_HOLD = 4,	/* Fault DELAY: the end of the hold. */
	UD_TAG_BARE = 5,	/* Not a request: the caller's urt_io of a bare op (io.c). */
	UD_TAG_MASK = 7,
};
#define UD_WAKE_MSG	((uint64_t)8)	/* MSG_RING wakeup from another core. */
#define UD_WAKE_EFD	((uint64_t)16)	/* Read of the wake eventfd completed. */
#define UD_RING_EFD	((uint64_t)24)	/* Read of a secondary ring's eventfd completed. */
#define UD_IGNORE	((uint64_t)32)	/* Fire-and-forget internal SQE. */
#define UD_SPECIAL_MAX	((uint64_t)64)

enum ring_kind {
	RING_MAIN = 0,	/* Messages, timers, files without polling. */
	RING_POLL,	/* IORING_SETUP_IOPOLL, for poll-capable devices. */
	RING_BIG,	/* SQE128|CQE32, for NVMe passthrough. */
	RING_KINDS,
};

struct urt_ring {
	struct io_uring ring;	/* The liburing ring. */
	bool ready;		/* Set up. */
	bool polled;		/* IORING_SETUP_IOPOLL: must poll, cannot sleep. */
	bool fd_registered;	/* Its fd is registered with the reactor thread (enters skip fget). */
	uint32_t flags;		/* Setup flags the kernel accepted. */
	uint32_t inflight;	/* CQEs still expected on this ring. */
	uint32_t queued;	/* SQEs prepared and not yet submitted. */
	int efd;		/* Eventfd registered on this ring (RING_BIG), or -1. */
	bool efd_armed;		/* A read of efd is in flight on the main ring. */
	uint64_t efd_val;	/* Target of that read. */
};

/* The states of a request; req.c's design notes have the transition table. */
enum req_state {
	REQ_FREE = 0,	/* In the core's pool, or taken and not yet issued. */
	REQ_BACKLOG,	/* Waiting for SQ space (linked in core->backlog while `queued`). */
	REQ_INFLIGHT,	/* Op CQE pending. */
	REQ_BACKOFF,	/* Sleeping before a retry, or answered at prep and waiting for its timers. */
	REQ_HELD,	/* Fault injection holds its completion. */
	REQ_STATES,
};

/*
 * One in-flight op.  Lives in the core's pool; user_data points at it.
 * It outlives its caller's urt_io when a deadline fires first: then io is
 * NULL (detached) and the request only waits for its remaining CQEs.
 *
 * Layout: the first cache line holds what every op reads or writes on its
 * way (submission, SQE, CQE, delivery); the lifecycle bytes sit together in
 * `life` so that req_take clears them with two stores.
 */
struct urt_req {
	/* Hot: every op. */
	struct urt_io *io;	/* Caller's completion; NULL once delivered. */
	union {
		struct urt_req *next;		/* Free list or held list link. */
		STAILQ_ENTRY(urt_req) link;	/* Backlog link (base/fifo.h). */
	};
	struct urt_dev *dev;	/* Target device or NULL. */
	void *buf;		/* Remaining buffer (READ/WRITE). */
	uint64_t len;		/* Remaining length. */
	uint64_t off;		/* Remaining offset. */
	uint64_t submit_ns;	/* Submission time, for the latency histogram. */
	uint8_t op;		/* enum urt_op. */
	uint8_t flags;		/* enum urt_io_flags. */
	int32_t fd;		/* Socket ops: the socket. */
	/* Second line: the lifecycle, zeroed by req_take, and transfer progress. */
	union {
		struct {
			uint8_t state;		/* enum req_state. */
			uint8_t ring;		/* enum ring_kind the op is on. */
			uint8_t pending;	/* CQEs still expected (op, timer, cancel). */
			uint8_t retries;	/* Transient-error retries so far. */
			bool timer_fired;	/* The deadline passed. */
			bool timer_linked;	/* The deadline is a LINK_TIMEOUT (else standalone). */
			bool timer_armed;	/* A timer CQE is pending. */
			bool cancel_asked;	/* urt_io_cancel was called. */
			bool stalled;		/* Fault: replaced by a never-completing op. */
			bool buf_ref;		/* Holds a reference on the urt_buf at buf_ref_ptr. */
			bool timer_remove_sent;	/* A TIMEOUT_REMOVE for the standalone timer is out. */
			bool hold_expired;	/* Fault DELAY: the hold timer fired. */
			bool queued;		/* Linked in core->backlog. */
		};
		uint64_t life[2];	/* The fields above as two words, for req_take. */
	};
	/* Zeroed by req_take as well: everything from life to nr_rest. */
	uint64_t seg;		/* Bytes the current SQE transfers. */
	uint64_t done;		/* Bytes transferred so far (short transfers). */
	uint64_t deadline_ns;	/* Absolute deadline (CLOCK_MONOTONIC) or 0. */
	struct iovec *iov;	/* Remaining vector (points into iov_copy or the caller's). */
	const struct iovec *iov_rest;	/* Vector entries after a split entry. */
	uint16_t nr_iov;	/* Entries left in iov. */
	uint16_t nr_rest;	/* Entries in iov_rest. */
	int32_t held_res;	/* Fault DELAY: the result being held. */
	/* Cold. */
	uint64_t op_ud;		/* user_data of the op's SQE in flight, for ASYNC_CANCEL. */
	struct urt_core *core;	/* Owner. */
	void *buf_ref_ptr;	/* The referenced urt_buf. */
	struct __kernel_timespec ts;	/* Timespec read by the kernel at submit. */
	struct __kernel_timespec ts2;	/* Second timespec (backoff). */
	struct iovec iov_copy[1];	/* A partly transferred vector entry being resumed. */
	uint64_t be[6];		/* Backend scratch (passthrough command state). */
} __attribute__((aligned(64)));

_Static_assert(__builtin_offsetof(struct urt_req, life) == 64, "the hot fields fill the first cache line");
_Static_assert(sizeof(((struct urt_req *)0)->life) >= __builtin_offsetof(struct urt_req, queued) + 1 -
	       __builtin_offsetof(struct urt_req, life), "life covers every lifecycle field");
_Static_assert(_Alignof(struct urt_req) >= 8, "tag bits need 8-byte alignment");
_Static_assert(_Alignof(struct urt_io) >= 8, "a bare op's user_data is its urt_io with a tag");
_Static_assert(sizeof(void *) == 8, "a bare op's io->priv holds a 63-bit time");

/* A posted function. */
struct post_msg {
	void (*fn)(void *arg);
	void *arg;
};

/*
 * Single-producer single-consumer queue from one source to one core.  The
 * producer's and consumer's counters sit on separate cache lines.
 */
struct post_queue {
	_Alignas(URT_CACHELINE) _Atomic uint32_t tail;	/* Written by the producer. */
	_Alignas(URT_CACHELINE) _Atomic uint32_t head;	/* Written by the consumer. */
	_Alignas(URT_CACHELINE) uint32_t mask;		/* Capacity - 1. */
	struct post_msg *slots;				/* Capacity entries. */
};

/* A fiber: context, stack and links.  Pooled per core. */
struct urt_fiber {
	struct urt_ctx ctx;		/* Saved registers. */
	struct urt_stack stack;		/* Guarded stack. */
	STAILQ_ENTRY(urt_fiber) link;	/* Run queue or one wait queue. */
	struct urt_fiber *next;		/* Free list. */
	struct urt_fiber *all_next;	/* Every fiber of the core, for teardown. */
	void (*fn)(void *arg);		/* Entry. */
	void *arg;			/* Its argument. */
	struct urt_core *core;		/* Owner. */
	int io_res;			/* Result of the op the fiber waits for. */
	bool io_done;			/* That op completed. */
	bool runnable;			/* On the run queue. */
	bool exited;			/* fn returned: recycle. */
};

/* The registered buffer region of one core, see buf.c. */
struct buf_region {
	uint8_t *base;		/* Start of the mapping. */
	size_t bytes;		/* Size of the mapping. */
	size_t tail;		/* Carving offset of never-used space. */
	bool huge;		/* Backed by huge pages. */
	bool registered;	/* Registered with the rings. */
	void *free_head[11];	/* Free lists by class: 4 KiB << class. */
	uint8_t *page_class;	/* Per 4 KiB page: class of the block starting there. */
	uint16_t *page_refs;	/* Per 4 KiB page: references of the block starting there. */
};

struct urt_core {
	struct urt_rt *rt;		/* Owner runtime. */
	unsigned index;			/* Core index in rt. */
	int cpu;			/* CPU it runs on. */
	pthread_t thread;		/* Reactor thread. */
	struct urt_ring rings[RING_KINDS];/* Main, IOPOLL, SQE128. */
	/* Requests. */
	struct urt_req *reqs;		/* Pool of req_max. */
	struct urt_req *req_free;	/* Free list. */
	STAILQ_HEAD(, urt_req) backlog;	/* Waiting for SQ space, FIFO. */
	struct urt_req *held;		/* Fault DELAY: held results. */
	uint32_t ops_live;		/* Ops in flight: requests not free plus bare ops; <= req_max. */
	uint32_t req_max;		/* rt->opts.req_max, the size of the pool. */
	/* Cross-core. */
	struct post_queue **inq;	/* Per source (ncores + 1 external): queues to us. */
	_Alignas(URT_CACHELINE) _Atomic int doorbell;	/* Shared: a wakeup is on its way. */
	_Atomic int posters;		/* Shared: producers between check and push. */
	_Atomic bool accepting;		/* Shared: posts accepted. */
	pthread_mutex_t ext_lock;	/* Serialises outside threads on inq[ncores]. */
	int wake_efd;			/* Eventfd outside threads write to. */
	uint64_t wake_efd_val;		/* Read target. */
	int stall_efd;			/* Never-signalled eventfd for STALL faults. */
	/* Fibers. */
	struct urt_ctx loop_ctx;	/* The reactor loop's own context. */
	struct urt_fiber *cur;		/* Running fiber or NULL. */
	STAILQ_HEAD(, urt_fiber) run_q;	/* Runnable fibers, FIFO. */
	struct urt_fiber *fiber_free;	/* Recycled fibers (stacks kept). */
	struct urt_fiber *fiber_all;	/* Every fiber allocated, for teardown. */
	unsigned fibers_live;		/* Fibers not yet exited. */
	/* Buffers. */
	struct buf_region bufs;
	/*
	 * The loop's clock: CLOCK_MONOTONIC read once per loop iteration (after
	 * waiting), so an op costs no clock read of its own.  Latencies and
	 * deadlines are therefore measured at loop-iteration granularity.
	 */
	uint64_t now_ns;
	bool faults_on;			/* opts.fault.rate_ppm != 0: consult fault.c. */
	bool lat_ewma_on;		/* HYBRID mode: keep lat_ewma_ns for the spin budget. */
	uint64_t lat_run_v;		/* Latency of the run of ops not yet in stats.lat (lat_record). */
	uint64_t lat_run_n;		/* Ops in that run. */
	/* Hybrid polling. */
	uint64_t spin_budget_ns;	/* Current spin budget. */
	uint64_t lat_ewma_ns;		/* Smoothed completion latency. */
	/* Faults. */
	uint64_t rng;			/* xorshift state. */
	uint32_t faults_left;		/* count_max budget. */
	/* State. */
	bool stopping;			/* urt_rt_stop began. */
	int arena;			/* jemalloc arena of this core (mem.h). */
	uint16_t next_bgid;		/* Next provided-buffer group id (net.c). */
	struct urt_pbuf *pbufs;		/* Live provided-buffer rings (net.c). */
	int start_err;			/* Setup result reported to urt_rt_start. */
	char start_msg[512];		/* urt_last_error() of a failed setup. */
	struct urt_stats stats;		/* Counters (own thread only). */
};

struct urt_rt {
	struct urt_rt_opts opts;	/* Copy of the options. */
	unsigned ncores;		/* Reactors. */
	struct urt_core *cores;		/* ncores entries. */
	sem_t started;			/* Posted by each core after setup. */
	pthread_mutex_t dev_lock;	/* Guards devs[]. */
	struct urt_dev **devs;		/* Registered devices by fixed-file slot. */
	int sq_wq_fd;			/* SQPOLL shared: ring fd to attach to, or -1. */
	_Atomic bool stopping;		/* urt_rt_stop began. */
};

/*
 * The core of the calling thread, or NULL.  Initial-exec TLS: every op reads
 * it, and the default model of a shared library (general dynamic) makes
 * each read a call to __tls_get_addr.  Eight bytes fit the static TLS that
 * the C library keeps for libraries loaded at run time.
 */
extern __thread struct urt_core *urt__self __attribute__((tls_model("initial-exec")));

static inline struct urt_core *core_self(void)
{
	return urt__self;
}

/*
 * The latency of every delivered op goes to stats.lat through lat_record.
 * Latencies are measured at loop-iteration granularity (now_ns), so the
 * ops completed in one iteration and submitted in one iteration have the
 * same latency: lat_record only counts a run of equal values, and
 * lat_flush adds the run to the histogram at once when a different value
 * comes, and before anyone reads the statistics (urt_rt_stats).
 */
static inline void lat_flush(struct urt_core *c)
{
	if (c->lat_run_n) {
		hist_record_n(&c->stats.lat, c->lat_run_v, c->lat_run_n);
		c->lat_run_n = 0;
	}
}

static inline void lat_record(struct urt_core *c, uint64_t lat)
{
	if (urt_likely(lat == c->lat_run_v)) {
		c->lat_run_n++;
		return;
	}
	lat_flush(c);
	c->lat_run_v = lat;
	c->lat_run_n = 1;
}

/* Smoothed completion latency for the hybrid spin budget: ewma with weight 1/8. */
static inline void lat_ewma_add(struct urt_core *c, uint64_t lat)
{
	c->lat_ewma_ns = c->lat_ewma_ns ? (7 * c->lat_ewma_ns + lat) / 8 : lat;
}

/*
 * The request pool (req.c has the design notes).  req_take gives a request
 * with every lifecycle field clear and no progress, for an op already
 * counted in ops_live; urt_io_submit fills in the op.  ts, ts2, iov_copy
 * and be[] are written before they are read.  The pool holds req_max
 * requests and ops_live never exceeds req_max, so an op counted there
 * always finds one.
 */
void buf_unref(struct urt_core *c, void *p);

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
	io->priv = req;
}

static inline void req_put(struct urt_core *c, struct urt_req *req)
{
	/* Transition X -> FREE (req.c): answered, no CQE left, on no list. */
	URT_ASSERT(req->state != REQ_FREE && req->state != REQ_HELD && !req->queued && !req->io &&
		   req->pending == 0);
	if (req->buf_ref)
		buf_unref(c, req->buf_ref_ptr);
	req->state = REQ_FREE;
	req->next = c->req_free;
	c->req_free = req;
	c->ops_live--;
}

/*
 * Bare ops (io.c has the design notes).  While one is in flight, its
 * io->priv holds its submission time shifted left by one, with bit 0 set;
 * a request pointer, 64-byte aligned, never has bit 0 set.
 */
static inline void *bare_priv(uint64_t submit_ns)
{
	return (void *)(uintptr_t)(submit_ns << 1 | 1);
}

static inline bool io_is_bare(const struct urt_io *io)
{
	return (uintptr_t)io->priv & 1;
}

static inline uint64_t bare_submit_ns(const struct urt_io *io)
{
	return (uint64_t)(uintptr_t)io->priv >> 1;
}

/*
 * The one answer to an op submitted at submit_ns, bare or with a request:
 * its latency and counters, then its callback.  The caller has already
 * detached io from its request, if it had one.
 */
static inline void io_answer(struct urt_core *c, struct urt_io *io, int res, uint64_t submit_ns)
{
	uint64_t lat = c->now_ns - submit_ns;

	io->priv = NULL;
	io->res = res;
	lat_record(c, lat);
	if (c->lat_ewma_on)
		lat_ewma_add(c, lat);
	c->stats.completed++;
	if (res == -ETIMEDOUT)
		c->stats.timed_out++;
	else if (res < 0)
		c->stats.failed++;
	io->cb(io, res, io->arg);
}

/*
 * The CQE of a bare op, inlined into the reap loop.  A NOP, or a READ/WRITE
 * that moved all its bytes, is done: it is answered here.  Anything else
 * (an error, a short transfer, a cancel) returns false, having changed
 * nothing; the caller then hands the op to req_bare_slow, which gives it a
 * request.
 */
static inline bool bare_complete(struct urt_core *c, struct urt_io *io, int32_t res)
{
	if (res < 0 || (io->op != URT_OP_NOP && (uint64_t)res != io->len))
		return false;
	c->ops_live--;
	io_answer(c, io, res, bare_submit_ns(io));
	return true;
}

/* ring.c */
int ring_setup(struct urt_core *c, enum ring_kind kind);
void ring_teardown(struct urt_core *c, enum ring_kind kind);
struct io_uring_sqe *ring_sqe(struct urt_core *c, enum ring_kind kind);
int ring_submit(struct urt_core *c, enum ring_kind kind, bool wait);
unsigned ring_reap(struct urt_core *c, enum ring_kind kind);
void ring_wait(struct urt_core *c);
void ring_arm_efd(struct urt_core *c, enum ring_kind kind);

/* req.c */
int req_start(struct urt_core *c, struct urt_req *req);
void req_bare_slow(struct urt_core *c, struct urt_io *io, int32_t res, const struct io_uring_cqe *cqe);
void req_bare_cancel(struct urt_core *c, struct urt_io *io);
void req_cancel(struct urt_core *c, struct urt_req *req);
int req_pool_init(struct urt_core *c);
void req_pool_exit(struct urt_core *c);
void req_complete_cqe(struct urt_core *c, uint64_t ud, int32_t res, const struct io_uring_cqe *cqe);
void req_backlog_flush(struct urt_core *c);
void req_held_release(struct urt_core *c, bool all);
void req_cancel_all(struct urt_core *c);

/*
 * Whether the SQ of ring r is full, and its next SQE.  Together they are
 * liburing's io_uring_get_sqe for rings with 64-byte SQEs (not RING_BIG),
 * without its per-call tests of the setup flags.  The kernel's head is
 * read with acquire, as liburing does under SQPOLL: an SQ thread may still
 * be reading the slot it releases.
 */
static inline bool ring_sq_full(const struct urt_ring *r)
{
	return r->ring.sq.sqe_tail - io_uring_smp_load_acquire(r->ring.sq.khead) >= r->ring.sq.ring_entries;
}

/* The next SQE of ring r, which must not be full (ring_sq_full). */
static inline struct io_uring_sqe *ring_sqe_take(struct urt_ring *r)
{
	struct io_uring_sq *sq = &r->ring.sq;
	unsigned tail = sq->sqe_tail;

	sq->sqe_tail = tail + 1;
	r->queued++;
	return &sq->sqes[tail & sq->ring_mask];
}

/* msg.c */
int msg_init(struct urt_core *c);
void msg_exit(struct urt_core *c);
void msg_drain(struct urt_core *c);

/* buf.c */
int buf_region_init(struct urt_core *c);
void buf_region_exit(struct urt_core *c);
int buf_register(struct urt_core *c, struct io_uring *ring);
bool buf_region_contains(const struct urt_core *c, const void *p, size_t len);
void buf_ref(struct urt_core *c, void *p);
void buf_unref(struct urt_core *c, void *p);

/* fiber.c */
void fiber_run_ready(struct urt_core *c);
bool fiber_has_ready(const struct urt_core *c);
void fiber_exit_all(struct urt_core *c);

/* net.c */
void net_prep(struct urt_req *req, struct io_uring_sqe *sqe, int fd);
void net_exit(struct urt_core *c);

/* fault.c: the fault to inject now, or 0. */
uint32_t fault_pick(struct urt_core *c, unsigned op);		/* At completion. */
uint32_t fault_pick_submit(struct urt_core *c, unsigned op);	/* At submission (STALL). */

/* dev.c: registered-file slot of dev on core c, or -1. */
int dev_fixed_slot(const struct urt_dev *dev, const struct urt_core *c);
void dev_registry_drop(struct urt_rt *rt);
int dev_registry_ring_init(struct urt_core *c, struct io_uring *ring);

#endif /* URT_RUNTIME_CORE_H */
