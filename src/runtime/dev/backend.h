/*
 * The device backend interface.
 *
 * A backend is a table of functions in one file (dev/file.c,
 * dev/psync.c, dev/sim.c, passthru/dev_passthru.c).  The runtime calls it
 * at three points of a request's life:
 *
 *   urt_io_submit -> validate      (may reject before anything is queued)
 *   reactor      -> prep           (fill the SQE for the remaining part)
 *                   plain_rw       (flag: the runtime fills a whole READ/WRITE
 *                                   itself, no request, no call; dev.h)
 *   reactor      -> complete       (turn the CQE into bytes or -errno)
 *
 * Adding a backend is adding one file that defines a struct urt_backend and
 * one line in the table in dev.c; no caller changes.
 */
#ifndef URT_RUNTIME_BACKEND_H
#define URT_RUNTIME_BACKEND_H

#include <liburing.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "urt/dev.h"
#include "runtime/dev/health.h"

struct urt_core;
struct urt_io;
struct urt_req;
struct sched_queue;

/* Cores a device's scheduler can have queues on (sched.h SCHED_CORES_MAX; rt.c never starts more). */
#define DEV_SCHED_CORES_MAX 256
struct sched_dev;

struct urt_backend {
	const char *name;
	/* Whether this backend takes path (used when opts->backend is NULL). */
	bool (*match)(const char *path);
	/* Open: fill dev->fd, dev->info, dev->priv.  0 or -errno with urt_set_error. */
	int (*open)(struct urt_dev *dev, const char *path, const struct urt_dev_opts *opts);
	void (*close)(struct urt_dev *dev);
	/* Extra checks before queueing (op supported, limits); 0 or -errno. */
	int (*validate)(struct urt_dev *dev, const struct urt_io *io);
	/*
	 * Fill sqe for the remaining part of req (req->buf/len/off or iov).
	 * The runtime sets user_data and may add IOSQE_IO_LINK afterwards.
	 * Returns the number of bytes this SQE transfers (for splits), 0 for
	 * ops without a length, or -errno.
	 */
	int64_t (*prep)(struct urt_dev *dev, struct urt_core *c, struct urt_req *req, struct io_uring_sqe *sqe);
	/*
	 * Optional, for a backend whose reads and writes are not plain_rw:
	 * fill sqe for a whole READ or WRITE (op, flags as in struct urt_io)
	 * of len <= info.max_io_bytes bytes at buf and off, without a request;
	 * it cannot fail.  With zero_is_whole and needs_big_sqe (passthrough),
	 * the device's reads and writes without a deadline go bare on the big
	 * ring (io.c).
	 */
	void (*prep_rw)(struct urt_dev *dev, struct urt_core *c, struct io_uring_sqe *sqe, unsigned op, void *buf,
			uint64_t len, uint64_t off, unsigned flags);
	/* Map the CQE to a result; NULL means cqe->res as is. */
	int (*complete)(struct urt_dev *dev, struct urt_req *req, int32_t res, const struct io_uring_cqe *cqe);
	/*
	 * Whether a failed result of req may be retried; NULL = the runtime's
	 * table.  *delay_ns comes in as the runtime's backoff for this retry;
	 * the backend may raise it (an NVMe status's command retry delay).
	 */
	bool (*retryable)(struct urt_dev *dev, const struct urt_req *req, int res, uint64_t *delay_ns);
	/*
	 * Optional: reset the controller behind the device and wait, at most
	 * wait_ms, until it is back (health.c calls it on its own thread, never
	 * on a reactor).  0, or -errno with urt_set_error saying what failed.
	 * NULL: the backend has no reset, and an escalation counts as a failed
	 * reset.
	 */
	int (*reset)(struct urt_dev *dev, uint32_t wait_ms);
	/* Which ring the device's data ops go to. */
	bool needs_big_sqe;	/* SQE128|CQE32 (passthrough). */
	/*
	 * A CQE result of 0 means that the command moved all its bytes, and
	 * complete is needed only for other results (passthrough: an NVMe
	 * completion carries no byte count).  With prep_rw and needs_big_sqe,
	 * the device's reads and writes go bare on the big ring despite the
	 * complete hook; complete must then cope with a request that
	 * req_from_bare made, whose be[] is zero.
	 */
	bool zero_is_whole;
	bool cancellable;	/* In-flight ops can be cancelled by the kernel. */
	/*
	 * A READ or WRITE of at most info.max_io_bytes is one plain io_uring
	 * READ/WRITE (or READ_FIXED/WRITE_FIXED) of dev->fd or its fixed slot,
	 * RWF_DSYNC for FUA: the runtime fills that SQE itself
	 * (dev_prep_plain_rw in dev.h), with no request and no call into the
	 * backend.  With no complete hook either, reads and writes without a
	 * deadline run as bare ops (io.c).
	 */
	bool plain_rw;
};

struct urt_dev {
	const struct urt_backend *be;	/* Backend table. */
	int fd;				/* File descriptor, -1 if none. */
	struct urt_dev_info info;	/* What the backend found. */
	void *priv;			/* Backend state. */
	_Atomic int error;		/* Sticky error after a failed flush. */
	_Atomic int slot;		/* Fixed-file slot in rt's tables, -1 if none. */
	struct urt_rt *reg_rt;		/* Runtime it is registered with. */
	bool readonly;			/* Opened read-only: writes get -EPERM. */
	struct sched_dev *sched;	/* Its I/O scheduler (sched/), NULL = ops go straight to the ring. */
	/*
	 * With a scheduler, each core's queue (sched/sched.c: sched_queue_absent
	 * until the core's first op), by core index; NULL without one.  Here
	 * and not in struct sched_dev so that the pass-through (sched_pass_quick)
	 * and a bare op's CQE (bare_complete) reach the queue from the device in
	 * one load rather than two dependent ones: that chain, at every CQE,
	 * cost more time than its instructions (docs/runtime.md, issue 13).
	 */
	struct sched_queue *sched_q[DEV_SCHED_CORES_MAX];
	struct dev_health health;	/* Recovery from timeouts (dev/health.c). */
	bool deadline_abort;		/* opts.deadline_abort: deadlines go to the device (passthru). */
	/*
	 * The fast path of urt_io_submit (io.c), precomputed at open by
	 * dev_fast_init (dev.c).  rw_fast has bit 1 << URT_OP_READ and
	 * 1 << URT_OP_WRITE set when such an op, once its length and
	 * alignment pass the masks below, needs no other check: a plain_rw
	 * backend without validate or complete hook, power-of-two alignments,
	 * not poll-capable, and (WRITE) not read-only.  dev_set_sticky clears
	 * it, so after a failed flush (and OFFLINE, health.c H3) every op goes
	 * through the full checks and their messages again.
	 */
	_Atomic uint8_t rw_fast;
	uint32_t mem_mask;		/* info.mem_align - 1 with O_DIRECT, else 0. */
	uint32_t off_mask;		/* info.off_align - 1 with O_DIRECT, else 0. */
	uint64_t rw_len_max;		/* A bare op's largest length: min(info.max_io_bytes, 2 GiB). */
	char path[256];			/* For messages. */
};

/* The runtime's own backends (one file each under src/runtime/dev/). */
extern const struct urt_backend urt_backend_file;
extern const struct urt_backend urt_backend_psync;
extern const struct urt_backend urt_backend_sim;

/*
 * Every backend compiled into the library, in the order urt_dev_open tries
 * them by path (the file backend, which accepts anything, last).  Defined
 * in src/backends.c, the one place that names backends from other folders
 * (src/passthru), so the runtime never includes them.
 */
extern const struct urt_backend *const urt_backends[];
extern const unsigned urt_backends_count;

/* Helpers for backends. */
void dev_set_sticky(struct urt_dev *dev, int err);
void dev_fast_init(struct urt_dev *dev);
/* The registered buffer index for [p, p+len) on core c, or -1. */
int dev_buf_index(const struct urt_core *c, const void *p, uint64_t len);

#endif /* URT_RUNTIME_BACKEND_H */
