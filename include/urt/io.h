/**
 * @file
 * urt I/O operations with caller-owned completions.
 *
 * A struct urt_io describes one operation and receives its result.  The
 * caller owns it (on its stack, in its own struct, anywhere) and must keep
 * it alive, and leave it unchanged, until the callback runs; urt never
 * allocates per I/O, and a simple op (no deadline) has no other record.
 *
 *     struct urt_io io;
 *     urt_io_prep_read(&io, dev, buf, 4096, off);
 *     io.timeout_ns = 5000000;              // optional deadline
 *     urt_io_submit(&io, read_done, ctx);   // on a reactor thread
 *
 * The callback runs on the same core, exactly once, with the final result
 * (multishot socket ops are the exception, see net.h):
 * bytes transferred (reads and writes; a short count only at end of file),
 * 0 (flush, nop, timeout), or a negative errno.  EAGAIN, EINTR and short
 * transfers are resubmitted; transient errors are retried with backoff;
 * docs/runtime.md has the full table.
 *
 * Priority and order: io.prio (enum urt_io_prio) matters on a device with
 * a scheduler (urt_dev_sched_set in dev.h): its ops are queued per core and
 * sent by class, expiry and the device's ordering policy, and contiguous
 * ones are merged into one command whose result is split back per op.
 *
 * Deadlines: when timeout_ns passes, the op is cancelled and the callback
 * gets -ETIMEDOUT once.  Block I/O already issued cannot be cancelled: the
 * runtime keeps the request until the device completes it.  If the buffer
 * came from urt_buf_get, -ETIMEDOUT is delivered at once and the buffer is
 * only recycled after the device is done with it.  For any other memory,
 * -ETIMEDOUT is delivered when the device has finished with the buffer.
 */
#ifndef URT_IO_H
#define URT_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "urt/common.h"

URT_BEGIN_DECLS

struct urt_dev;
struct urt_io;

/** Largest timeout_ns (2^62 ns, about 146 years): a deadline past it could wrap. */
#define URT_IO_TIMEOUT_MAX_NS (1ull << 62)

/** The operation a struct urt_io describes. */
enum urt_op {
	URT_OP_NOP = 0,		/**< Nothing: a round trip through the ring. */
	URT_OP_READ,		/**< Read len bytes at off into buf. */
	URT_OP_WRITE,		/**< Write len bytes of buf at off. */
	URT_OP_READV,		/**< Read into the iovec array. */
	URT_OP_WRITEV,		/**< Write the iovec array. */
	URT_OP_FSYNC,		/**< Data and metadata durable. */
	URT_OP_FLUSH,		/**< fdatasync / NVMe Flush: data durable. */
	URT_OP_TIMEOUT,		/**< Sleep for timeout_ns (no device). */
	URT_OP_WRITE_ZEROES,	/**< Zero [off, off+len). */
	URT_OP_DEALLOCATE,	/**< Discard [off, off+len) (trim / DSM deallocate). */
	URT_OP_ACCEPT,		/**< Accept on a listening socket (net.h). */
	URT_OP_RECV,		/**< Receive from a socket (net.h). */
	URT_OP_SEND,		/**< Send all of buf on a socket (net.h). */
	URT_OP_COUNT,		/**< Number of ops (not an op). */
};

/** Flags of struct urt_io. */
enum urt_io_flags {
	URT_IO_FUA = 1u << 0,		/**< Write: durable on completion (RWF_DSYNC / NVMe FUA). */
	URT_IO_MULTISHOT = 1u << 1,	/**< ACCEPT/RECV: one submission, many completions (net.h). */
	URT_IO_MORE = 1u << 7,		/**< Set by urt on a multishot result: more will follow. */
};

/**
 * Priority class of an op (struct urt_io.prio).  On a device with a
 * scheduler (urt_dev_sched_set) higher classes dispatch first, BACKGROUND
 * keeps a bounded share, and every queued op has an expiry; the class is
 * also the SQE's ioprio (RT, BE, IDLE) so the kernel's scheduler sees it.
 * Without a scheduler the class is ignored.
 */
enum urt_io_prio {
	URT_PRIO_NORMAL = 0,	/**< Foreground reads and writes (the default; ioprio BE). */
	URT_PRIO_URGENT,	/**< Log writes and their flushes (ioprio RT, or BE 0 without CAP_SYS_NICE). */
	URT_PRIO_BACKGROUND,	/**< Checkpoint and eviction writes (ioprio IDLE). */
	URT_PRIO_COUNT,		/**< Number of classes (not a class). */
};

/** Completion callback: runs once on the submitting core with the final result res. */
typedef void (*urt_io_cb)(struct urt_io *io, int res, void *arg);

/** One operation and its result; owned by the caller (see the file comment). */
struct urt_io {
	uint8_t op;		/**< enum urt_op. */
	uint8_t flags;		/**< enum urt_io_flags. */
	uint16_t nr_iov;	/**< READV/WRITEV: entries in iov. */
	int32_t res;		/**< Final result, also passed to the callback. */
	union {
		int32_t fd;		/**< ACCEPT/RECV/SEND: the socket. */
		uint32_t dev_status;	/**< Device ops, written by urt: the last device command's status
					 * (urt_io_nvme_status in nvme.h decodes it); 0 = none.  The prep
					 * functions zero it: re-prep an io before submitting it again. */
	};
	uint16_t buf_id;	/**< RECV multishot: the provided buffer holding the data. */
	uint8_t prio;		/**< enum urt_io_prio (prep sets NORMAL; set it after prep). */
	uint8_t reserved;	/**< Zero. */
	struct urt_dev *dev;	/**< Target device (NULL for NOP and TIMEOUT). */
	union {
		void *buf;		/**< READ/WRITE buffer. */
		const struct iovec *iov;/**< READV/WRITEV vector, kept alive by the caller. */
	};
	uint64_t len;		/**< Bytes (READ, WRITE, WRITE_ZEROES, DEALLOCATE, RECV, SEND). */
	uint64_t off;		/**< Device offset in bytes. */
	uint64_t timeout_ns;	/**< Deadline relative to submission; 0 = none. For TIMEOUT: the sleep.
				 *   At most URT_IO_TIMEOUT_MAX_NS (else -EINVAL). */
	urt_io_cb cb;		/**< Set by urt_io_submit. */
	void *arg;		/**< Set by urt_io_submit. */
	void *priv;		/**< Runtime-private: the request while in flight. */
};

/** Prepare a NOP.  The prep functions only fill *io (zeroing the rest); any thread may call them. */
URT_API void urt_io_prep_nop(struct urt_io *io);
/** Prepare a read of len bytes at device offset off into buf. */
URT_API void urt_io_prep_read(struct urt_io *io, struct urt_dev *dev, void *buf, size_t len, uint64_t off);
/** Prepare a write of len bytes of buf at device offset off (set URT_IO_FUA in flags for FUA). */
URT_API void urt_io_prep_write(struct urt_io *io, struct urt_dev *dev, const void *buf, size_t len,
			       uint64_t off);
/** Prepare a vectored read; iov must stay valid until the callback. */
URT_API void urt_io_prep_readv(struct urt_io *io, struct urt_dev *dev, const struct iovec *iov,
			       unsigned nr_iov, uint64_t off);
/** Prepare a vectored write; iov must stay valid until the callback. */
URT_API void urt_io_prep_writev(struct urt_io *io, struct urt_dev *dev, const struct iovec *iov,
				unsigned nr_iov, uint64_t off);
/** Prepare an fsync: data and metadata durable. */
URT_API void urt_io_prep_fsync(struct urt_io *io, struct urt_dev *dev);
/** Prepare a flush (fdatasync, NVMe Flush): the device's write cache drained. */
URT_API void urt_io_prep_flush(struct urt_io *io, struct urt_dev *dev);
/** Prepare a sleep of ns nanoseconds; it completes with 0. */
URT_API void urt_io_prep_timeout(struct urt_io *io, uint64_t ns);
/** Prepare zeroing of [off, off+len), whole blocks (fallocate ZERO_RANGE, NVMe Write Zeroes). */
URT_API void urt_io_prep_write_zeroes(struct urt_io *io, struct urt_dev *dev, uint64_t len, uint64_t off);
/** Prepare a discard of [off, off+len), whole blocks (PUNCH_HOLE, NVMe DSM deallocate). */
URT_API void urt_io_prep_deallocate(struct urt_io *io, struct urt_dev *dev, uint64_t len, uint64_t off);

/**
 * Queue io on the calling core; it reaches the kernel in this loop
 * iteration's single io_uring_enter.  Returns 0, or a negative errno and
 * the callback never runs:
 *   -EINVAL     misaligned O_DIRECT buffer, offset or length (see
 *               urt_dev_info: mem_align, off_align), or a bad op;
 *   -EOPNOTSUPP the device cannot do this op (or IOPOLL on a device
 *               without poll queues);
 *   -EAGAIN     req_max ops already in flight on this core;
 *   -EPERM      a write to a read-only device;
 *   -ESHUTDOWN  the runtime is stopping;
 *   the device's sticky error for writes and flushes after a failed flush.
 * Must run on a reactor thread (asserted).
 */
URT_API int urt_io_submit(struct urt_io *io, urt_io_cb cb, void *arg);

/**
 * Ask the kernel to cancel io.  Its callback still runs once, with
 * -ECANCELED or, when the op could not be stopped, its real result.
 * Call it on the core that submitted io (from another core, post the
 * cancel there with urt_core_post).  Returns 0, -ENOENT when io is not in
 * flight, or -EXDEV when io is another core's op that holds a request (one
 * with a deadline, faults, or after an error); for a bare op (no deadline,
 * no faults) that check is not possible and a cancel from another core is
 * undefined behaviour.
 */
URT_API int urt_io_cancel(struct urt_io *io);

URT_END_DECLS

#endif /* URT_IO_H */
