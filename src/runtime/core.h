/*
 * Internal structures of the runtime: the runtime, its cores, their rings
 * and the in-flight requests.  Only src/runtime, src/passthru and the
 * white-box tests include this.  It holds the structs (and core_self); the
 * functions of each file are declared in that file's header (req.h,
 * ring.h, buf.h, net.h, fault.h, fiber/fiber.h, xcore/msg.h, dev/dev.h),
 * which core.h includes at its end.
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
#include "runtime/now.h"
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
	int efd;		/* Eventfd registered on this ring (RING_BIG; RING_MAIN with big_sleep), or -1. */
	bool efd_armed;		/* A read of efd is in flight (on the main ring; RING_MAIN's on the big one). */
	uint64_t efd_val;	/* Target of that read. */
	unsigned enter_flags;	/* io_uring_enter flags of a submit: GETEVENTS, REGISTERED_RING if fd_registered. */
};

/* The states of a request; req.c's design notes have the transition table. */
enum req_state {
	REQ_FREE = 0,	/* In the core's pool, or taken and not yet issued. */
	REQ_BACKLOG,	/* Waiting for SQ space (linked in core->backlog while `queued`). */
	REQ_INFLIGHT,	/* Op CQE pending. */
	REQ_BACKOFF,	/* Sleeping before a retry, or answered at prep and waiting for its timers. */
	REQ_HELD,	/* Fault injection holds its completion. */
	REQ_QUEUED,	/* Waiting in its device's scheduler queue (sched/queue.c). */
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
			bool merge;		/* A scheduler's merged command (sched/merge.c), not a caller's op. */
			bool sched_on;		/* Holds a depth unit of its device's scheduler until freed. */
			bool no_merge;		/* Goes out alone (a retry after a short or failed merge). */
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
	uint64_t issue_ns;	/* When its current command was issued (dev/health.c's rounds). */
	struct urt_core *core;	/* Owner. */
	void *buf_ref_ptr;	/* The referenced urt_buf. */
	struct __kernel_timespec ts;	/* Timespec read by the kernel at submit. */
	struct __kernel_timespec ts2;	/* Second timespec (backoff). */
	struct iovec iov_copy[1];	/* A partly transferred vector entry being resumed. */
	uint64_t be[6];		/* Backend scratch (passthrough command state). */
	/* The device scheduler (sched/), for ops on a device that has one. */
	TAILQ_ENTRY(urt_req) sched_link;/* Arrival order in its class queue; merge: member list. */
	uint64_t sched_seq;	/* Arrival number in its queue (ties of the offset policies). */
	uint32_t sched_epoch;	/* Flush/FUA barriers queued before it: merges stay in one epoch. */
	uint8_t prio;		/* enum urt_io_prio. */
} __attribute__((aligned(64)));

_Static_assert(__builtin_offsetof(struct urt_req, life) == 64, "the hot fields fill the first cache line");
_Static_assert(sizeof(((struct urt_req *)0)->life) >= __builtin_offsetof(struct urt_req, no_merge) + 1 -
	       __builtin_offsetof(struct urt_req, life), "life covers every lifecycle field");
_Static_assert(_Alignof(struct urt_req) >= 8, "tag bits need 8-byte alignment");
_Static_assert(_Alignof(struct urt_io) >= 8, "a bare op's user_data is its urt_io with a tag");
_Static_assert(sizeof(void *) == 8, "a bare op's io->priv holds a 62-bit time and two flag bits");

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
	bool io_yield;			/* Parked by urt_fiber_yield_to_io; fiber_run_ready resumes it. */
	uint8_t io_prio;		/* Class urt_io_wait gives ops left NORMAL (urt_fiber_io_prio). */
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
	bool rings_extra;		/* RING_POLL or RING_BIG is set up (ring_setup): ring_wait visits them. */
	bool wait_plain;		/* Main ring alone, INTERRUPT, no SQPOLL: ring_wait's plain path (ring.c). */
	/* Requests. */
	struct urt_req *reqs;		/* Pool of req_max. */
	struct urt_req *req_free;	/* Free list. */
	STAILQ_HEAD(, urt_req) backlog;	/* Waiting for SQ space, FIFO. */
	struct urt_req *held;		/* Fault DELAY: held results. */
	uint32_t ops_live;		/* Ops in flight: requests not free plus bare ops; <= req_max. */
	uint32_t req_max;		/* rt->opts.req_max, the size of the pool. */
	/* Cross-core. */
	struct post_queue **inq;	/* Per source (ncores + 1 external): queues to us. */
	_Alignas(URT_CACHELINE) _Atomic int doorbell;	/* Shared: a post is waiting to be drained. */
	_Atomic int sleeping;		/* Shared: the core may be asleep; the producer that clears it wakes the core. */
	_Atomic int posters;		/* Shared: producers between check and push. */
	_Atomic bool accepting;		/* Shared: posts accepted. */
	pthread_mutex_t ext_lock;	/* Serialises outside threads on inq[ncores]. */
	int wake_efd;			/* Eventfd outside threads write to. */
	uint64_t wake_efd_val;		/* Read target. */
	uint64_t post_last_ns;		/* Loop time of the last post sent to or run from another core. */
	uint64_t post_spin_ns;		/* Current pre-sleep spin budget (msg_sleep_begin). */
	int stall_efd;			/* Never-signalled eventfd for STALL faults. */
	/* Fibers. */
	struct urt_ctx loop_ctx;	/* The reactor loop's own context. */
	struct urt_fiber *cur;		/* Running fiber or NULL. */
	STAILQ_HEAD(fiber_queue, urt_fiber) run_q;	/* Runnable fibers, FIFO. */
	struct fiber_queue urgent_q;	/* Woken URGENT fibers: run before the rest of the pass (fiber.c). */
	unsigned urgent_io;		/* URGENT fibers suspended in urt_io_wait. */
	uint64_t reap_ns;		/* Last reap of the main ring: the loop's, or an urgent poll's. */
	struct urt_fiber *fiber_free;	/* Recycled fibers (stacks kept). */
	struct urt_fiber *fiber_all;	/* Every fiber allocated, for teardown. */
	unsigned fibers_live;		/* Fibers not yet exited. */
	/* Buffers. */
	struct buf_region bufs;
	/*
	 * The loop's clock (now.c): read once per loop iteration, after the
	 * wait (core_now), so an op costs no clock read of its own.
	 * Latencies and deadlines are measured at loop-iteration granularity.
	 */
	struct core_clock clock;
	bool faults_on;			/* opts.fault.rate_ppm != 0: consult fault.c. */
	bool io_checked;		/* Fault injection or IOPOLL mode: every op takes io.c's checked path. */
	bool wait_poll;			/* Sleep in poll(2), not io_uring_enter (wait_poll.h: valgrind). */
	bool big_sleep;			/* Interrupt mode: may sleep on RING_BIG (ring.c, ring_wait_big). */
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
	TAILQ_HEAD(, sched_queue) sched_busy;/* Scheduler queues of this core holding ops (sched/). */
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

/* The time of c's current loop iteration (now.h). */
static inline uint64_t core_now(struct urt_core *c)
{
	return core_clock_now(&c->clock);
}

/*
 * The runtime's internal interfaces, one header per file that defines them;
 * a runtime file includes core.h and gets them all.
 */
#include "runtime/buf.h"
#include "runtime/dev/dev.h"
#include "runtime/fault.h"
#include "runtime/fiber/fiber.h"
#include "runtime/net.h"
#include "runtime/sched/sched.h"
#include "runtime/req.h"
#include "runtime/xcore/msg.h"	/* Before ring.h, whose inline wait uses the sleep handshake. */
#include "runtime/ring.h"

#endif /* URT_RUNTIME_CORE_H */
