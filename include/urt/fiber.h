/**
 * @file
 * Fibers: lightweight stackful tasks on a reactor.
 *
 * A fiber runs on the core that spawned it and never migrates.  The blocking
 * calls below suspend the fiber (not the thread) until the op completes;
 * other fibers and callbacks keep running meanwhile.  Stacks are mmap'ed with
 * a guard page, so an overflow faults instead of corrupting memory.
 *
 * All functions here must run on a reactor thread; the blocking ones must
 * run inside a fiber (asserted).
 */
#ifndef URT_FIBER_H
#define URT_FIBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "urt/common.h"
#include "urt/io.h"

URT_BEGIN_DECLS

struct urt_dev;
struct urt_rt;

/** Start fn(arg) as a fiber on the calling core.  -EAGAIN past fiber_max. */
URT_API int urt_fiber_spawn(void (*fn)(void *arg), void *arg);

/** Start a fiber on another core (posts; any thread may call it). */
URT_API int urt_fiber_spawn_on(struct urt_rt *rt, unsigned core, void (*fn)(void *arg), void *arg);

/** Whether the caller runs inside a fiber (false in callbacks and off-reactor). */
URT_API bool urt_in_fiber(void);

/** Let the other runnable fibers and the reactor loop run. */
URT_API void urt_fiber_yield(void);

/**
 * For long computations in a fiber (a transaction of hundreds of requests
 * being built): if an URT_PRIO_URGENT fiber of this core waits for I/O,
 * completions wait, and the core has not reaped them for 50 us, reap them
 * now, run the urgent fibers they woke, and come back; the fibers of other
 * classes they woke run in the next pass as usual.  So a build does not
 * hold up the log writer's next write or flush.  Costs a few loads when
 * nothing is due.  Returns whether it yielded.  Fiber only; a no-op
 * elsewhere.
 */
URT_API bool urt_fiber_yield_to_io(void);

/**
 * Set the class (enum urt_io_prio) that urt_io_wait and the shorthands
 * below give this fiber's ops whose prio is left NORMAL; returns the
 * previous one.  A new fiber starts with NORMAL.  Fiber only.
 */
URT_API enum urt_io_prio urt_fiber_io_prio(enum urt_io_prio prio);

/** Submit io and suspend until it completes.  Returns io->res or a submit error. */
URT_API int urt_io_wait(struct urt_io *io);

/** Blocking shorthands (fiber only).  Same results as urt_io_submit + callback. */
/** Read len bytes at off into buf; returns bytes or -errno. */
URT_API ssize_t urt_read(struct urt_dev *dev, void *buf, size_t len, uint64_t off);
/** Write len bytes at off; returns bytes or -errno. */
URT_API ssize_t urt_write(struct urt_dev *dev, const void *buf, size_t len, uint64_t off);
/** Write with FUA: durable when it returns; a failure makes the device sticky. */
URT_API ssize_t urt_write_fua(struct urt_dev *dev, const void *buf, size_t len, uint64_t off);
/** Vectored read; returns bytes or -errno. */
URT_API ssize_t urt_readv(struct urt_dev *dev, const struct iovec *iov, unsigned nr, uint64_t off);
/** Vectored write; returns bytes or -errno. */
URT_API ssize_t urt_writev(struct urt_dev *dev, const struct iovec *iov, unsigned nr, uint64_t off);
/** fsync the device: 0 or -errno (a failure makes it sticky). */
URT_API int urt_fsync(struct urt_dev *dev);
/** Flush the device's write cache: 0 or -errno (a failure makes it sticky). */
URT_API int urt_flush(struct urt_dev *dev);
/** Sleep ns nanoseconds on the ring; returns 0, or -ECANCELED at stop. */
URT_API int urt_sleep_ns(uint64_t ns);

struct urt_fiber;

/**
 * A wait queue of fibers on one core: the building block for locks,
 * conditions and group-commit waiters.  Zero-initialise it.
 */
struct urt_waitq {
	STAILQ_HEAD(, urt_fiber) fibers;	/**< Waiting fibers, oldest first (private). */
};

/** Suspend the calling fiber until woken. */
URT_API void urt_waitq_wait(struct urt_waitq *wq);

/** Make the first waiter runnable; returns whether there was one. */
URT_API bool urt_waitq_wake_one(struct urt_waitq *wq);

/** Make every waiter runnable; returns how many. */
URT_API unsigned urt_waitq_wake_all(struct urt_waitq *wq);

URT_END_DECLS

#endif /* URT_FIBER_H */
