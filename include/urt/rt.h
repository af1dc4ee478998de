/**
 * @file
 * urt runtime: one reactor thread per CPU, each owning its io_uring.
 *
 * Lifecycle: urt_rt_opts_default() -> adjust fields -> urt_rt_start() ->
 * post work with urt_core_post() or spawn fibers -> urt_rt_stop().
 *
 * Threading: urt_rt_start/stop are called from a thread that is not a
 * reactor of that runtime.  urt_core_post may be called from any thread.
 * Everything else in io.h, buf.h and fiber.h runs on a reactor thread (inside
 * a posted function, an I/O callback or a fiber).
 */
#ifndef URT_RT_H
#define URT_RT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "urt/common.h"
#include "urt/error.h"
#include "urt/hist.h"

URT_BEGIN_DECLS

struct urt_rt;

/** How a reactor waits for completions; one choice per runtime. */
enum urt_poll_mode {
	URT_POLL_INTERRUPT = 0,	/**< Sleep in io_uring_enter; for slow devices. */
	URT_POLL_SQPOLL,	/**< A kernel thread polls the SQ; no submit syscalls. */
	URT_POLL_IOPOLL,	/**< Kernel completion polling; needs poll queues. */
	URT_POLL_HYBRID,	/**< Spin on the CQ for an adaptive budget, then sleep. */
};

/** Fault injection: seeded, so that a failure reproduces. */
enum urt_fault_kind {
	URT_FAULT_EIO = 1u << 0,	/**< Completion turned into -EIO. */
	URT_FAULT_EAGAIN = 1u << 1,	/**< Completion turned into -EAGAIN. */
	URT_FAULT_SHORT = 1u << 2,	/**< Transfer cut to half (aligned). */
	URT_FAULT_STALL = 1u << 3,	/**< Op never completes until cancelled. */
	URT_FAULT_DELAY = 1u << 4,	/**< Completion held back for delay_ns. */
};

/** Fault injection settings; zeroed means no faults (see docs/runtime.md). */
struct urt_fault_opts {
	uint64_t seed;		/**< Seed of each core's generator (xor core index). */
	uint32_t rate_ppm;	/**< Probability per op, in parts per million. */
	uint32_t kinds;		/**< Mask of enum urt_fault_kind to pick from. */
	uint32_t op_mask;	/**< Mask of (1u << URT_OP_*) that may be hit; 0 = all. */
	uint32_t count_max;	/**< Stop after this many faults per core; 0 = no bound. */
	uint64_t delay_ns;	/**< Hold time of URT_FAULT_DELAY. */
};

/** Runtime options; start from urt_rt_opts_default(). */
struct urt_rt_opts {
	const int *cpus;		/**< CPUs to run reactors on; NULL = all online. */
	unsigned ncpus;			/**< Entries in cpus. */
	bool pin;			/**< Pin each reactor to its CPU (default true). */
	enum urt_poll_mode mode;	/**< Default URT_POLL_INTERRUPT. */
	unsigned sq_entries;		/**< SQ size per ring (power of two, default 256). */
	unsigned cq_entries;		/**< CQ size; 0 = sized from req_max so it never overflows. */
	unsigned sq_thread_idle_ms;	/**< SQPOLL idle time before the thread sleeps (default 50). */
	int sq_thread_cpu;		/**< SQPOLL: pin the SQ thread here; -1 = next CPU to the reactor; -2 = unpinned. */
	bool sq_thread_shared;		/**< SQPOLL: one SQ thread for all rings (ATTACH_WQ). */
	bool kernel_hybrid_iopoll;	/**< IOPOLL: ask for IORING_SETUP_HYBRID_IOPOLL (6.13+). */
	unsigned req_max;		/**< In-flight requests per core (default 1024). */
	unsigned post_queue_max;	/**< Cross-core queue bound per core pair (default 1024). */
	size_t buf_region_bytes;	/**< Registered buffer region per core (default 8 MiB). */
	bool buf_hugepages;		/**< Try 2 MiB huge pages for the region (default true). */
	bool buf_allow_unregistered;	/**< On ENOMEM/EPERM from registration, run unregistered. */
	const char *memlock_hint;	/**< How the program's user makes it pin less, said after the ulimit
					 * advice when RLIMIT_MEMLOCK is too low (e.g. "use fewer --cores");
					 * NULL: generic words; "": the ulimit advice alone.  Must outlive
					 * the runtime (a literal, or the caller's buffer). */
	unsigned files_max;		/**< Registered file slots per core (default 64). */
	unsigned retry_max;		/**< Retries of a transient error (default 3). */
	uint64_t retry_backoff_ns;	/**< First backoff; doubles each retry (default 1 ms). */
	uint64_t hybrid_spin_max_ns;	/**< HYBRID: upper bound of the spin budget (default 100 us). */
	uint64_t post_spin_max_ns;	/**< Spin on the post queues before sleeping while cross-core posts flow: upper bound (default 20 us; 0 = never spin). */
	size_t fiber_stack_bytes;	/**< Stack size of a fiber (default 256 KiB). */
	unsigned fiber_max;		/**< Live fibers per core (default 4096). */
	struct urt_fault_opts fault;	/**< Zeroed: no faults. */
};

/** Per-core counters.  ops_per_enter = sqes_submitted / enters. */
struct urt_stats {
	uint64_t submitted;	/**< Ops accepted by urt_io_submit. */
	uint64_t completed;	/**< Ops delivered to their caller. */
	uint64_t retried;	/**< Resubmissions: EAGAIN, EINTR, short transfer, transient error. */
	uint64_t timed_out;	/**< Ops delivered as -ETIMEDOUT. */
	uint64_t failed;	/**< Ops delivered with another negative result. */
	uint64_t enters;	/**< io_uring_enter syscalls. */
	uint64_t waits_inline;	/**< Loop waits on the inline path (main ring alone, interrupt, no SQPOLL). */
	uint64_t waits_general;	/**< Loop waits on the general path (SQPOLL, hybrid, IOPOLL, passthrough). */
	uint64_t sqes_submitted;/**< SQEs handed to the kernel. */
	uint64_t cqes_reaped;	/**< CQEs consumed. */
	uint64_t faults;	/**< Faults injected. */
	uint64_t posts_sent;	/**< urt_core_post calls from this core. */
	uint64_t posts_run;	/**< Posted functions run on this core. */
	uint64_t wakeups_sent;	/**< MSG_RING or eventfd wakeups sent. */
	uint64_t spin_hits;	/**< HYBRID: completions found while spinning. */
	uint64_t spin_misses;	/**< HYBRID: spins that ended in a sleep. */
	uint64_t spin_skipped;	/**< HYBRID: sleeps without a spin (latency above hybrid_spin_max_ns). */
	uint64_t post_spin_hits;/**< Pre-sleep spins ended by a post (or a CQE) instead of a sleep. */
	uint64_t post_spin_misses;/**< Pre-sleep spins that ended in a sleep. */
	uint64_t sleeps;	/**< Waits that slept in the kernel. */
	uint64_t wakeups_skipped;/**< Posts that needed no wakeup although they rang the doorbell: the core was awake. */
	uint64_t sqes_fixed_file;/**< Device SQEs naming a registered file (IOSQE_FIXED_FILE). */
	uint64_t sqes_plain_fd;	/**< Device SQEs naming a plain fd. */
	uint64_t fixed_file_misses;/**< Of those, SQEs of a device registered with this runtime (a silent fallback). */
	uint64_t sqes_fixed_buf;/**< SQEs on registered buffers: READ/WRITE_FIXED, READV/WRITEV_FIXED, URING_CMD with IORING_URING_CMD_FIXED. */
	uint64_t io_yields;	/**< urt_fiber_yield_to_io calls that yielded (a poll for an URGENT fiber was due). */
	uint64_t urgent_polls;	/**< Reaps inside a pass for an URGENT fiber's I/O (fiber.c). */
	uint64_t fibers_spawned;/**< Fibers created. */
	uint32_t ring_flags;	/**< Setup flags the kernel accepted for the main ring. */
	uint32_t poll_ring_flags;/**< Setup flags of the IOPOLL ring, 0 if none. */
	bool bufs_registered;	/**< The buffer region is registered with the kernel. */
	struct urt_hist lat;	/**< Submit-to-delivery latency of ops, in ns. */
};

/** Fill *opts with the defaults (interrupt mode, all CPUs, 8 MiB buffers per core, ...). */
URT_API void urt_rt_opts_default(struct urt_rt_opts *opts);

/**
 * Start the reactors.  Returns 0 or a negative errno; on failure
 * urt_last_error() says what to change (for example which limit to raise).
 * Blocks until every reactor is running.
 */
URT_API int urt_rt_start(const struct urt_rt_opts *opts, struct urt_rt **out);

/**
 * Stop: refuse new posts, cancel in-flight ops (their callers get
 * -ECANCELED or the real result), wait for every completion, run the posted
 * functions already accepted, join the threads and free everything.
 * Fibers still blocked on a wait queue are destroyed without resuming.
 * Must not be called from a reactor of rt.  Returns 0.
 */
URT_API int urt_rt_stop(struct urt_rt *rt);

/** Number of reactors (cores) of rt.  Any thread. */
URT_API unsigned urt_rt_ncores(const struct urt_rt *rt);

/** The CPU that core index runs on. */
URT_API int urt_rt_core_cpu(const struct urt_rt *rt, unsigned core);

/**
 * Run fn(arg) on core `core`.  Any thread may call it.  The queue from each
 * core (and from all outside threads together) to each core is bounded by
 * post_queue_max: a full queue returns -EAGAIN and fn does not run.
 * Returns -ESHUTDOWN once urt_rt_stop has begun, -EINVAL for a bad core.
 */
URT_API int urt_core_post(struct urt_rt *rt, unsigned core, void (*fn)(void *arg), void *arg);

/**
 * One call for urt_core_run_jobs: fn(arg) on core.  fn runs in a fiber on
 * that core (inline in the caller's fiber when it is the caller's core), so
 * it may block on I/O; its return value lands in res.
 */
struct urt_core_job {
	unsigned core;			/**< Core to run on. */
	int (*fn)(void *arg);		/**< The work; returns 0 or -errno. */
	void *arg;			/**< Its argument. */
	int res;			/**< fn's result, or why it could not run (-ESHUTDOWN, -EINVAL). */
	void *priv;			/**< Private to the runtime. */
};

/**
 * Run every job on its core at once and wait until all have finished.
 * Call from a fiber (it suspends) or from a thread that is not a reactor
 * (it sleeps); a plain reactor callback cannot wait (asserted).  A full
 * post queue is retried, never reported.  Returns 0 when every job
 * returned 0, else the first nonzero res in array order.
 */
URT_API int urt_core_run_jobs(struct urt_rt *rt, struct urt_core_job *jobs, unsigned n);

/** urt_core_run_jobs with one job: fn(arg) on core; returns fn's result. */
URT_API int urt_core_run(struct urt_rt *rt, unsigned core, int (*fn)(void *arg), void *arg);

/** fn(arg) once on every core of rt; returns the first nonzero result by core, or -ENOMEM. */
URT_API int urt_core_run_all(struct urt_rt *rt, int (*fn)(void *arg), void *arg);

/** urt_core_id() of a thread that is not a reactor. */
#define URT_CORE_NONE (~0u)

/** Index of the reactor running the caller, or URT_CORE_NONE. */
URT_API unsigned urt_core_id(void);

/** The runtime of the calling reactor, or NULL off-reactor. */
URT_API struct urt_rt *urt_rt_self(void);

/**
 * Copy a core's counters into *out.  Call it from outside the runtime (it
 * posts to the core and waits) or from the core itself.  -EINVAL for a bad
 * core, -EDEADLK when called from another reactor of rt.
 */
URT_API int urt_rt_stats(struct urt_rt *rt, unsigned core, struct urt_stats *out);

/** Sum of all cores' counters (histograms merged).  Same rules as urt_rt_stats. */
URT_API int urt_rt_stats_total(struct urt_rt *rt, struct urt_stats *out);

/** Kernel features found by probing, for reports and for skips in tests. */
struct urt_kernel_features {
	bool io_uring;		/**< io_uring_setup works for this process (not blocked); else all below are false. */
	bool single_issuer;	/**< IORING_SETUP_SINGLE_ISSUER accepted. */
	bool defer_taskrun;	/**< IORING_SETUP_DEFER_TASKRUN accepted. */
	bool sqpoll;		/**< IORING_SETUP_SQPOLL accepted. */
	bool iopoll;		/**< IORING_SETUP_IOPOLL accepted (device support is separate). */
	bool hybrid_iopoll;	/**< IORING_SETUP_HYBRID_IOPOLL accepted. */
	bool sqe128;		/**< IORING_SETUP_SQE128|CQE32 accepted. */
	bool msg_ring;		/**< IORING_OP_MSG_RING supported. */
	bool uring_cmd;		/**< IORING_OP_URING_CMD supported. */
	bool link_timeout;	/**< IORING_OP_LINK_TIMEOUT supported. */
	bool rw_vec_fixed;	/**< IORING_OP_READV_FIXED and WRITEV_FIXED supported (6.15). */
};
/**
 * Probe the running kernel and copy the result; returns 0.  Any thread.
 * Answers are kept: only a probe that got none (ENOMEM from a low
 * RLIMIT_MEMLOCK, EPERM from a policy) is tried again by the next call,
 * and its feature reads false meanwhile.
 */
URT_API int urt_kernel_probe(struct urt_kernel_features *out);

/**
 * Whether this process may use io_uring at all.  Returns 0, or the -errno
 * of io_uring_setup (-EPERM when kernel.io_uring_disabled or a seccomp
 * filter blocks it, -ENOSYS without io_uring) with why (len bytes, may be
 * NULL) naming the likely cause and what to do.  Cached; any thread.
 * urt_rt_start fails the same way, with the same text in urt_last_error().
 */
URT_API int urt_io_uring_check(char *why, size_t len);

URT_END_DECLS

#endif /* URT_RT_H */
