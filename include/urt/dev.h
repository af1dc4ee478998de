/**
 * @file
 * urt devices: one interface over every backend.
 *
 *   file      regular file or block device through io_uring (O_DIRECT default)
 *   passthru  NVMe generic char device /dev/ngXnY through IORING_OP_URING_CMD
 *   sim       in-memory SSD with a volatile write cache (tests, see sim.h)
 *   psync     pread/pwrite in the reactor thread (benchmark baseline)
 *
 * urt_dev_open picks the backend from the path (or opts->backend).  Every
 * backend is driven by the same ops in io.h, so callers never change when a
 * backend is added.
 *
 * Threading: open/close from any thread while no I/O on the device is in
 * flight; a device may be used by every core of a runtime at once.
 */
#ifndef URT_DEV_H
#define URT_DEV_H

#include <stdbool.h>
#include <stdint.h>

#include "urt/common.h"

URT_BEGIN_DECLS

struct urt_dev;
struct urt_nvme_coalesce;
struct urt_rt;

/** Ordering policy of a device's scheduler (struct urt_sched_opts). */
enum urt_sched_policy {
	URT_SCHED_NONE = 0,	/**< No scheduler: ops go straight to the ring (the bare fast path). */
	URT_SCHED_FIFO,		/**< Arrival order. */
	URT_SCHED_SSTF,		/**< Shortest seek first: the queued op nearest the head. */
	URT_SCHED_SCAN,		/**< Elevator: sweep up, then down, by offset. */
	URT_SCHED_CSCAN,	/**< Circular elevator: sweep up, then jump back to the lowest. */
};

/**
 * A device's I/O scheduler: one queue per core, between urt_io_submit and
 * the ring (docs/runtime.md, "The I/O scheduler").  Start from
 * urt_sched_opts_default().
 */
struct urt_sched_opts {
	enum urt_sched_policy policy;	/**< Ordering within a class (default FIFO). */
	bool merge;			/**< Merge contiguous same-direction same-class ops (default true). */
	uint32_t depth_max;		/**< Device commands in flight per core (default 32). */
	uint32_t class_depth_max[3];	/**< Per class (enum urt_io_prio), 0 = depth_max (default 0). */
	uint64_t expire_ns[3];		/**< Per class: a queued op older than this dispatches next,
					 * whatever the policy (default 50 ms, 10 ms, 200 ms for NORMAL,
					 * URGENT, BACKGROUND); 0 = no expiry (sstf may starve). */
	uint32_t background_share;	/**< Of every this many dispatches, one goes to BACKGROUND when it
					 * waits (default 8); 0 = background only when nothing else waits. */
	uint32_t merge_bytes_max;	/**< Largest merged command, 0 = max_io_bytes (MDTS). */
	uint32_t merge_ops_max;		/**< Most ops in one merged command (default 64, at most 64). */
};

/** Counters of a device's scheduler, summed over cores (urt_dev_sched_stats). */
struct urt_sched_stats {
	uint64_t queued;		/**< Ops the scheduler took (fast-path ones included). */
	uint64_t dispatched;		/**< Ops that left it for the device. */
	uint64_t commands;		/**< Device commands (SQEs) they became. */
	uint64_t merged;		/**< Ops that went out inside a merged command. */
	uint64_t merge_retries;		/**< Ops retried alone after a short or failed merged command. */
	uint64_t expired;		/**< Dispatches forced by an expired op. */
	uint64_t background_turns;	/**< Dispatches forced by the background share. */
	uint64_t seek_bytes;		/**< Sum of |offset - previous end| over commands dispatched from the queue (not fast ones). */
	uint64_t wait_ns_max;		/**< Longest time an op waited in a queue. */
	uint64_t fast;			/**< Ops sent at submit time, past an empty queue (fast path). */
	uint64_t timed_out;		/**< Ops answered -ETIMEDOUT while queued (their deadline passed
					 * before dispatch): they never reached the device. */
};

/** Fill o with the defaults listed in struct urt_sched_opts. */
URT_API void urt_sched_opts_default(struct urt_sched_opts *o);

/** Parse "none", "fifo", "sstf", "scan" or "cscan".  0 or -EINVAL. */
URT_API int urt_sched_policy_parse(const char *name, enum urt_sched_policy *out);

/** The name of a policy ("none", "fifo", ...). */
URT_API const char *urt_sched_policy_name(enum urt_sched_policy policy);

/**
 * Where a device stands in urt's recovery from command timeouts
 * (src/runtime/dev/health.c, docs/passthru.md "Recovery from timeouts").
 */
enum urt_dev_state {
	URT_DEV_HEALTHY = 0,	/**< No timeout within the window. */
	URT_DEV_DEGRADED,	/**< A command timed out lately; ops that time out are retried. */
	URT_DEV_RESETTING,	/**< A controller reset is under way; retries wait for it. */
	URT_DEV_OFFLINE,	/**< Resets failed, or the device is gone: every op fails at once with -ENODEV
				 * until reopened. */
};

/** The recovery policy of a device; start from urt_dev_health_opts_default(). */
struct urt_dev_health_opts {
	uint32_t timeouts_max;		/**< N: timeout rounds within window_ns that ask for a controller
					 * reset (default 3); 0 = never reset, never go offline. */
	uint64_t window_ns;		/**< The window of N, and how long a device stays DEGRADED after
					 * its last timeout (default 30 s). */
	uint32_t resets_max;		/**< M: failed resets in a row that take the device offline
					 * (default 2). */
	uint32_t reset_wait_ms;		/**< How long a reset may take to bring the controller back
					 * (default 30000). */
	uint32_t op_timeouts_max;	/**< Times one op may time out and be reissued before it fails
					 * with -ETIMEDOUT (default 8). */
};

/** A device's recovery state and counters, from urt_dev_health(). */
struct urt_dev_health {
	enum urt_dev_state state;	/**< Now. */
	uint64_t timeouts;		/**< Commands the device (or its driver) timed out. */
	uint64_t rounds;		/**< Of those, the ones that count towards N (a timeout of a command
					 * issued before an earlier counted one, or before a reset, is part
					 * of the same round). */
	uint64_t retries;		/**< Ops reissued after a timeout. */
	uint64_t resets;		/**< Controller resets urt asked for. */
	uint64_t reset_failures;	/**< Resets that failed or did not cure the timeouts. */
	int last_reset_err;		/**< 0, or the -errno of the last failed reset. */
	bool gone;			/**< OFFLINE because the device went away, not because resets failed:
					 * a command failed with ENODEV, a reset found the controller gone,
					 * or a block device ended before its size at open. */
};

/** Fill o with the defaults listed in struct urt_dev_health_opts. */
URT_API void urt_dev_health_opts_default(struct urt_dev_health_opts *o);

/** "healthy", "degraded", "resetting" or "offline". */
URT_API const char *urt_dev_state_name(enum urt_dev_state state);

/** How to open a device; start from urt_dev_opts_default(). */
struct urt_dev_opts {
	const char *backend;	/**< NULL = choose by path; or "file", "passthru", "psync". */
	bool direct;		/**< O_DIRECT (default true; false for the page cache). */
	bool readonly;		/**< Open read-only. */
	bool create;		/**< Create a regular file when missing. */
	uint64_t size_bytes;	/**< With create: the size of a file created now (or of an empty one);
				 *   an existing non-empty file smaller than this is refused
				 *   (-EINVAL: it may be truncated), never grown. */
	uint32_t nvme_timeout_ms;/**< passthru: device-side command timeout, 0 = driver default. */
	const struct urt_sched_opts *sched;/**< NULL or policy NONE: no scheduler (default). */
	const struct urt_dev_health_opts *health;/**< Recovery from timeouts; NULL = the defaults. */
	bool deadline_abort;	/**< passthru: send an op's deadline (urt_io.timeout_ns) to the device as
				 * the command's timeout, so that the driver aborts the command when it
				 * passes (and resets the controller if the abort fails); default false,
				 * because that reset also hits every other user of the controller. */
	const struct urt_nvme_coalesce *nvme_coalesce;/**< passthru: set the controller's Interrupt Coalescing
					 * (Feature 08h, include/urt/nvme.h) at open; needs CAP_SYS_ADMIN.
					 * NULL = leave it (default). */
};

/** What the backend found about a device; urt_dev_info() returns it. */
struct urt_dev_info {
	const char *backend;	/**< Name of the backend. */
	uint64_t size_bytes;	/**< Capacity. */
	uint32_t block_bytes;	/**< Logical block: the unit of offsets and lengths. */
	uint32_t phys_block_bytes;/**< Physical block (atomic write unit if unknown). */
	uint32_t mem_align;	/**< Required buffer address alignment (1 = none). */
	uint32_t off_align;	/**< Required offset and length alignment (1 = none). */
	uint32_t max_io_bytes;	/**< Largest single transfer; larger ops are split. */
	uint32_t atomic_write_bytes;/**< Writes up to this size are not torn (AWUPF); 0 unknown. */
	bool direct;		/**< Opened with O_DIRECT (or passthrough: always). */
	bool volatile_cache;	/**< A write cache that a flush must drain. */
	bool fua;		/**< FUA writes are native (otherwise emulated with a flush). */
	bool poll_capable;	/**< I/O can be completed by IOPOLL. */
	bool write_zeroes;	/**< URT_OP_WRITE_ZEROES is supported. */
	bool deallocate;	/**< URT_OP_DEALLOCATE is supported. */
	bool is_blockdev;	/**< A block device (or NVMe namespace). */
	bool is_nvme;		/**< NVMe passthrough. */
	uint32_t nsid;		/**< NVMe namespace id (passthrough). */
	uint64_t file_dev;	/**< st_dev of the open file (fstat of its fd); 0 with file_ino 0 if none (sim). */
	uint64_t file_ino;	/**< st_ino of the same: tells a caller's own open of the path is this file. */
};

/** Fill *opts with the defaults: backend by path, O_DIRECT, read-write. */
URT_API void urt_dev_opts_default(struct urt_dev_opts *opts);

/**
 * Open path.  Returns 0 or a negative errno with urt_last_error() set:
 * -ENOENT/-EACCES for a bad path, -EINVAL when O_DIRECT is impossible on the
 * file system, -ENODEV when a requested backend does not handle the path.
 */
URT_API int urt_dev_open(const char *path, const struct urt_dev_opts *opts, struct urt_dev **out);

/**
 * Close; unregisters the device from its runtime first.  No I/O may be in
 * flight.  Waits for a controller reset of its recovery that is under way
 * (at most urt_dev_health_opts.reset_wait_ms per reset).
 */
URT_API void urt_dev_close(struct urt_dev *dev);

/** The device's properties; valid until urt_dev_close.  Any thread. */
URT_API const struct urt_dev_info *urt_dev_info(const struct urt_dev *dev);

/**
 * The sticky error of the device: after a failed flush or FUA write the data
 * on it is in an unknown state, so every later write and flush returns this
 * error (fsyncgate).  0 when healthy.
 */
URT_API int urt_dev_error(const struct urt_dev *dev);

/**
 * The device's recovery state and counters (struct urt_dev_health).  Any
 * thread.  0, or -EINVAL for a NULL argument.
 */
URT_API int urt_dev_health(const struct urt_dev *dev, struct urt_dev_health *out);

/**
 * Change the recovery policy of an open device (o NULL: the defaults).
 * Call it while no I/O on the device is in flight.  0 or -EINVAL.
 */
URT_API int urt_dev_health_set(struct urt_dev *dev, const struct urt_dev_health_opts *o);

/**
 * Register the device's file descriptor in every core's fixed-file table of
 * rt, so that its ops carry IOSQE_FIXED_FILE.  Call it from outside the
 * runtime or from a fiber.  -ENFILE when the tables are full, -EBUSY when
 * the device is registered with another runtime.
 */
URT_API int urt_dev_register(struct urt_rt *rt, struct urt_dev *dev);
/**
 * Put a scheduler in front of dev (o->policy NONE, or o NULL, removes it).
 * Call it while no I/O on the device is in flight and from outside the
 * runtime's cores (like urt_dev_open).  0, -EINVAL (bad option, with
 * urt_last_error set), -ENOMEM.
 */
URT_API int urt_dev_sched_set(struct urt_dev *dev, const struct urt_sched_opts *o);

/**
 * Sum the scheduler counters of every core into out.  Exact when no I/O is
 * in flight on the device, or from the device's only core.  -ENOENT when the
 * device has no scheduler.
 */
URT_API int urt_dev_sched_stats(const struct urt_dev *dev, struct urt_sched_stats *out);

/** Undo urt_dev_register (same threading rules); 0 when not registered. */
URT_API int urt_dev_unregister(struct urt_dev *dev);

URT_END_DECLS

#endif /* URT_DEV_H */
