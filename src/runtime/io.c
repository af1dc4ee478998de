/*
 * The public op API: prep helpers, validation and submission.
 *
 * Everything that can be known wrong before the kernel sees an op is
 * rejected here with a negative errno and a message in urt_last_error(), and
 * the callback never runs.  That covers misaligned O_DIRECT I/O, which the
 * kernel would otherwise report as a bare EINVAL far from its cause.
 *
 * Design notes: bare ops
 * ----------------------
 * Most ops need nothing beyond what their urt_io already holds.  An op is
 * bare when it has no deadline, fault injection is off, it is not
 * multishot, and it is a NOP, or a READ/WRITE of at most max_io_bytes on
 * the main ring of a device whose backend's reads and writes are plain
 * io_uring SQEs (plain_rw: the runtime fills them, dev_prep_plain_rw) and
 * has no complete hook, and which has no scheduler (sched/)
 * or whose scheduler would send the op at once and alone (sched_fast_bare:
 * FIFO, nothing queued, depth room, random I/O; the op then holds a depth
 * unit until bare_complete).  NVMe passthrough reads and writes go bare
 * too, on the big ring once it exists (the device's first op sets it up
 * through a request), on a healthy device without a scheduler: their
 * backend says that a 0 result is the whole transfer (zero_is_whole),
 * which ring_reap turns into the byte count, so only other results need
 * its complete hook, and they reach it through req_bare_slow.  A bare op
 * takes no request:
 *
 *   submit  its SQE's user_data is the urt_io tagged UD_TAG_BARE, and
 *           io->priv holds its submission time with bit 0 set, and bit 1
 *           when it holds a scheduler's depth unit (req.h bare_priv);
 *   CQE     a NOP, or a READ/WRITE that moved all its bytes, is done:
 *           bare_complete (req.h) records it in the histogram and the
 *           counters and calls back, as req_deliver does;
 *   else    any other result (an error, a short transfer, -EAGAIN), and
 *           urt_io_cancel, give it a request at that moment, in the state
 *           it would have had from the start (req_from_bare, req.c), and
 *           req.c's rules take over.
 *
 * Invariants:
 *   B1. ops_live counts bare ops like requests, so req_max bounds both and
 *       the pool (req_max requests) always has one for a bare op.
 *   B2. A bare op needs SQ room and an empty backlog; otherwise the op
 *       takes a request at once, which keeps the backlog's FIFO order.
 *   B3. While a bare op is in flight, io->priv is its time (bit 0 set) or,
 *       after urt_io_cancel, its request (64-byte aligned); the caller
 *       leaves the urt_io alone until the callback (io.h), so its op, len
 *       and callback are still there when the CQE arrives.
 *
 * The fast path
 * -------------
 * urt_io_submit sends a NOP straight to io_queue, and a READ or WRITE that
 * passes io_rw_fast straight to io_submit_read/io_submit_write, which
 * queue it bare with no further test (on a device with a scheduler, bare
 * if its inline pass-through test, sched.h sched_pass_quick, lets it
 * through: io_queue_sched); everything else goes through
 * io_submit_checked (io_validate, then io_bare_ok).  io_rw_fast is
 * io_validate and io_bare_ok for the common case, folded: what depends on
 * the device alone was computed at open (dev_fast_init: struct urt_dev's
 * rw_fast bits, alignment masks and length bound), and the rest is one
 * compare and branch each.  It only ever says "fast" for an op that the
 * checked path would accept and send bare (F1), so an op it declines gets
 * exactly the checked path's result and message.
 *
 *   F1. rw_fast bit op set  => the backend is plain_rw with no validate or
 *       complete hook and no big SQE, the device is not poll-capable, its
 *       O_DIRECT alignments are powers of two, (WRITE) it is not read-only,
 *       and no sticky error was set: dev_set_sticky clears rw_fast, and
 *       OFFLINE sets the sticky error first (dev/health.c H3).
 *   F2. core->io_checked  <=> fault injection is on or the mode is IOPOLL
 *       (set at core start): then io_validate's IOPOLL rule and the faults
 *       need the checked path.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/dev/backend.h"
#include "runtime/core.h"
#include "urt/error.h"

static void io_prep(struct urt_io *io, unsigned op, struct urt_dev *dev, void *buf, uint64_t len,
		    uint64_t off)
{
	*io = (struct urt_io){ .op = (uint8_t)op, .dev = dev, .buf = buf, .len = len, .off = off };
}

URT_API void urt_io_prep_nop(struct urt_io *io)
{
	io_prep(io, URT_OP_NOP, NULL, NULL, 0, 0);
}

URT_API void urt_io_prep_read(struct urt_io *io, struct urt_dev *dev, void *buf, size_t len, uint64_t off)
{
	io_prep(io, URT_OP_READ, dev, buf, len, off);
}

URT_API void urt_io_prep_write(struct urt_io *io, struct urt_dev *dev, const void *buf, size_t len,
			       uint64_t off)
{
	io_prep(io, URT_OP_WRITE, dev, (void *)buf, len, off);
}

URT_API void urt_io_prep_readv(struct urt_io *io, struct urt_dev *dev, const struct iovec *iov,
			       unsigned nr_iov, uint64_t off)
{
	io_prep(io, URT_OP_READV, dev, NULL, 0, off);
	io->iov = iov;
	io->nr_iov = (uint16_t)nr_iov;
}

URT_API void urt_io_prep_writev(struct urt_io *io, struct urt_dev *dev, const struct iovec *iov,
				unsigned nr_iov, uint64_t off)
{
	io_prep(io, URT_OP_WRITEV, dev, NULL, 0, off);
	io->iov = iov;
	io->nr_iov = (uint16_t)nr_iov;
}

URT_API void urt_io_prep_fsync(struct urt_io *io, struct urt_dev *dev)
{
	io_prep(io, URT_OP_FSYNC, dev, NULL, 0, 0);
}

URT_API void urt_io_prep_flush(struct urt_io *io, struct urt_dev *dev)
{
	io_prep(io, URT_OP_FLUSH, dev, NULL, 0, 0);
}

URT_API void urt_io_prep_timeout(struct urt_io *io, uint64_t ns)
{
	io_prep(io, URT_OP_TIMEOUT, NULL, NULL, 0, 0);
	io->timeout_ns = ns;
}

URT_API void urt_io_prep_write_zeroes(struct urt_io *io, struct urt_dev *dev, uint64_t len, uint64_t off)
{
	io_prep(io, URT_OP_WRITE_ZEROES, dev, NULL, len, off);
}

URT_API void urt_io_prep_deallocate(struct urt_io *io, struct urt_dev *dev, uint64_t len, uint64_t off)
{
	io_prep(io, URT_OP_DEALLOCATE, dev, NULL, len, off);
}

static bool op_writes(unsigned op)
{
	return op == URT_OP_WRITE || op == URT_OP_WRITEV || op == URT_OP_FLUSH || op == URT_OP_FSYNC ||
	       op == URT_OP_WRITE_ZEROES || op == URT_OP_DEALLOCATE;
}

static int io_check_align(const struct urt_dev *dev, const void *buf, uint64_t len, uint64_t off,
			  const char *what)
{
	const struct urt_dev_info *in = &dev->info;

	if (!in->direct)
		return 0;
	if ((uintptr_t)buf % in->mem_align) {
		urt_set_error("%s: %s buffer %p is not aligned to %u bytes (O_DIRECT memory alignment of %s); "
			      "use urt_buf_get or aligned_alloc", dev->path, what, buf, in->mem_align, dev->path);
		return -EINVAL;
	}
	if (off % in->off_align || len % in->off_align) {
		urt_set_error("%s: %s at offset %llu length %llu is not a multiple of %u bytes "
			      "(O_DIRECT block size of %s)", dev->path, what, (unsigned long long)off,
			      (unsigned long long)len, in->off_align, dev->path);
		return -EINVAL;
	}
	return 0;
}

static int io_validate(struct urt_core *c, const struct urt_io *io)
{
	struct urt_dev *dev = io->dev;
	int ret;

	if (io->op >= URT_OP_COUNT) {
		urt_set_error("unknown op %u", io->op);
		return -EINVAL;
	}
	if (io->prio >= URT_PRIO_COUNT) {
		urt_set_error("unknown priority class %u", io->prio);
		return -EINVAL;
	}
	if (urt_unlikely(io->timeout_ns > URT_IO_TIMEOUT_MAX_NS)) {
		/* submit_ns + timeout_ns would wrap to a deadline in the past. */
		urt_set_error("timeout_ns %llu is above the largest deadline or sleep, %llu ns (about "
			      "146 years)", (unsigned long long)io->timeout_ns,
			      (unsigned long long)URT_IO_TIMEOUT_MAX_NS);
		return -EINVAL;
	}
	if (io->op == URT_OP_NOP || io->op == URT_OP_TIMEOUT)
		return 0;
	if (io->op == URT_OP_ACCEPT || io->op == URT_OP_RECV || io->op == URT_OP_SEND) {
		if (io->fd < 0) {
			urt_set_error("socket op on fd %d", io->fd);
			return -EBADF;
		}
		if ((io->flags & URT_IO_MULTISHOT) && io->timeout_ns) {
			urt_set_error("multishot ops take no deadline (the kernel cannot link them to a timeout)");
			return -EINVAL;
		}
		if ((io->flags & URT_IO_MULTISHOT) && io->op == URT_OP_RECV && !io->buf) {
			urt_set_error("multishot recv needs a provided-buffer ring (urt_pbuf_create)");
			return -EINVAL;
		}
		if ((io->flags & URT_IO_MULTISHOT) && io->op == URT_OP_SEND) {
			urt_set_error("send has no multishot form");
			return -EINVAL;
		}
		if (io->op != URT_OP_ACCEPT && !(io->flags & URT_IO_MULTISHOT) &&
		    (io->len == 0 || io->len > (1u << 30) || !io->buf)) {
			urt_set_error("%s of %llu bytes: length must be 1 B..1 GiB with a buffer",
				      io->op == URT_OP_RECV ? "recv" : "send", (unsigned long long)io->len);
			return -EINVAL;
		}
		return 0;
	}
	if (!dev) {
		urt_set_error("op %u needs a device", io->op);
		return -EINVAL;
	}
	if (urt_unlikely(health_state(&dev->health) == URT_DEV_OFFLINE))
		return health_offline_error(dev);	/* dev/health.c: fail at once. */
	if (op_writes(io->op)) {
		if (dev->readonly) {
			urt_set_error("%s: opened read-only", dev->path);
			return -EPERM;
		}
		ret = atomic_load_explicit(&dev->error, memory_order_relaxed);
		if (ret) {
			urt_set_error("%s: an earlier flush failed (%s); the device's data is in doubt, "
				      "so writes and flushes are refused until it is reopened",
				      dev->path, urt_strerror(ret));
			return ret;
		}
	}
	switch (io->op) {
	case URT_OP_READ:
	case URT_OP_WRITE:
		if (io->len == 0 || io->len > (1ull << 31)) {
			urt_set_error("%s: length %llu out of range (1 B..2 GiB)", dev->path,
				      (unsigned long long)io->len);
			return -EINVAL;
		}
		ret = io_check_align(dev, io->buf, io->len, io->off, io->op == URT_OP_READ ? "read" : "write");
		if (ret)
			return ret;
		break;
	case URT_OP_READV:
	case URT_OP_WRITEV: {
		uint64_t total = 0;

		if (io->nr_iov == 0 || io->nr_iov > 1024) {
			urt_set_error("%s: %u iovecs out of range (1..1024)", dev->path, io->nr_iov);
			return -EINVAL;
		}
		for (unsigned i = 0; i < io->nr_iov; i++) {
			ret = io_check_align(dev, io->iov[i].iov_base, io->iov[i].iov_len, io->off,
					     io->op == URT_OP_READV ? "readv" : "writev");
			if (ret)
				return ret;
			total += io->iov[i].iov_len;
		}
		if (total == 0 || total > (1ull << 31)) {
			urt_set_error("%s: vector of %llu bytes out of range", dev->path, (unsigned long long)total);
			return -EINVAL;
		}
		break;
	}
	case URT_OP_WRITE_ZEROES:
	case URT_OP_DEALLOCATE:
		if (io->len == 0 || io->off % dev->info.block_bytes || io->len % dev->info.block_bytes) {
			urt_set_error("%s: range must be whole %u-byte blocks", dev->path, dev->info.block_bytes);
			return -EINVAL;
		}
		if ((io->op == URT_OP_WRITE_ZEROES && !dev->info.write_zeroes) ||
		    (io->op == URT_OP_DEALLOCATE && !dev->info.deallocate)) {
			urt_set_error("%s: the device does not support %s", dev->path,
				      io->op == URT_OP_WRITE_ZEROES ? "Write Zeroes" : "deallocate");
			return -EOPNOTSUPP;
		}
		break;
	default:
		break;
	}
	if (c->rt->opts.mode == URT_POLL_IOPOLL && !dev->info.poll_capable &&
	    (io->op == URT_OP_READ || io->op == URT_OP_WRITE || io->op == URT_OP_READV ||
	     io->op == URT_OP_WRITEV)) {
		urt_set_error("%s: IOPOLL needs a device with poll queues (NVMe with nvme.poll_queues>0, "
			      "O_DIRECT); this one has none: use the interrupt or hybrid mode", dev->path);
		return -EOPNOTSUPP;
	}
	if (dev->be->validate)
		return dev->be->validate(dev, io);
	return 0;
}

/* The parts of a request that only some ops have: a sleep, a vector, a deadline. */
static void io_req_extras(struct urt_core *c, struct urt_io *io, struct urt_req *req)
{
	if (io->op == URT_OP_TIMEOUT) {
		req->len = io->timeout_ns;
		return;
	}
	if (io->op == URT_OP_READV || io->op == URT_OP_WRITEV) {
		req->iov = (struct iovec *)io->iov;
		req->nr_iov = io->nr_iov;
		req->len = 0;
		for (unsigned i = 0; i < io->nr_iov; i++)
			req->len += io->iov[i].iov_len;
	}
	if (io->timeout_ns)
		req->deadline_ns = req->submit_ns + io->timeout_ns;
	/* Hold the urt_buf while the op may outlive its answer (see io.h). */
	if (req->deadline_ns && (io->op == URT_OP_READ || io->op == URT_OP_WRITE) &&
	    buf_region_contains(c, io->buf, io->len)) {
		req->buf_ref = true;
		req->buf_ref_ptr = io->buf;
		buf_ref(c, io->buf);
	}
}

static __attribute__((noinline, cold)) int io_pool_empty(const struct urt_core *c)
{
	urt_set_error("%u requests already in flight on core %u (req_max)", c->rt->opts.req_max, c->index);
	return -EAGAIN;
}

/* io_bare_ok for a passthrough READ/WRITE (zero_is_whole), on the big ring: room there, a healthy device. */
static bool io_bare_big_ok(struct urt_core *c, const struct urt_io *io)
{
	const struct urt_dev *dev = io->dev;

	return dev->be->prep_rw && dev->be->needs_big_sqe && !dev->sched && io->len <= dev->info.max_io_bytes &&
	       c->rings[RING_BIG].ready && !ring_sq_full(&c->rings[RING_BIG]) &&
	       health_state(&dev->health) == URT_DEV_HEALTHY;
}

/* Whether io, with op io->op, can go bare on core c (see the design notes). */
static inline bool io_bare_ok(struct urt_core *c, const struct urt_io *io, unsigned op)
{
	struct urt_dev *dev = io->dev;

	if (io->timeout_ns || c->faults_on || (io->flags & URT_IO_MULTISHOT) || !STAILQ_EMPTY(&c->backlog))
		return false;
	/* Only reads and writes have a device here (socket ops have none). */
	if (urt_unlikely((op == URT_OP_READ || op == URT_OP_WRITE) && dev->be->zero_is_whole))
		return io_bare_big_ok(c, io);
	if (ring_sq_full(&c->rings[RING_MAIN]))
		return false;
	if (op == URT_OP_NOP)
		return true;
	/* Last: with a scheduler, admission books the op's depth unit. */
	return (op == URT_OP_READ || op == URT_OP_WRITE) && dev->be->plain_rw && !dev->be->complete &&
	       !dev->be->needs_big_sqe && !(c->rings[RING_POLL].ready && dev->info.poll_capable) &&
	       io->len <= dev->info.max_io_bytes && (!dev->sched || sched_fast_bare(c, dev, io));
}

/*
 * The SQE of a bare passthrough op, on the big ring (io_bare_big_ok
 * checked its room).  As the backend's prep does for a request, the op
 * starts with no NVMe status.
 */
static __attribute__((noinline)) int io_queue_big(struct urt_core *c, struct urt_io *io, unsigned op)
{
	struct urt_ring *r = &c->rings[RING_BIG];
	struct io_uring_sqe *sqe = ring_sqe_take_big(r);

	io->dev_status = 0;
	io->dev->be->prep_rw(io->dev, c, sqe, op, io->buf, io->len, io->off, io->flags);
	ring_count_dev_sqe(c, io->dev, sqe);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)io | UD_TAG_BARE);
	r->inflight++;
	ring_arm_efd(c, RING_BIG);
	return 0;
}

/*
 * Whether io, a READ or WRITE (op), can skip io_validate and io_bare_ok:
 * the fast path of the design notes.  Everything io_validate would check
 * for it is either precomputed in dev->rw_fast (backend, poll queues,
 * read-only, sticky error and OFFLINE, which clear it) or tested here, in
 * one combined test: priority class, length (1 B up to rw_len_max, which
 * is also io_bare_ok's bound), O_DIRECT alignment by mask, no deadline, not
 * multishot, a core without fault injection or IOPOLL, and room in the SQ
 * with an empty backlog.  A device with a scheduler passes too: its
 * scheduler's test comes last (io_queue_sched), as in io_bare_ok, and an
 * op it declines takes a request.  Whatever fails goes the checked way,
 * which gives the same op the same clear error as before.
 */
static inline bool io_rw_fast(const struct urt_core *c, const struct urt_io *io, const struct urt_dev *dev,
			      unsigned op)
{
	/* Predictable tests are a compare and a branch each; the masks are folded into one. */
	if (urt_unlikely(!dev) ||
	    !((atomic_load_explicit(&((struct urt_dev *)dev)->rw_fast, memory_order_relaxed) >> op) & 1) ||
	    io->timeout_ns || (io->flags & URT_IO_MULTISHOT) || io->prio >= URT_PRIO_COUNT ||
	    io->len - 1 >= dev->rw_len_max ||
	    (((uintptr_t)io->buf & dev->mem_mask) | ((io->off | io->len) & dev->off_mask)) || c->io_checked ||
	    !STAILQ_EMPTY(&c->backlog))
		return false;
	return !ring_sq_full(&c->rings[RING_MAIN]);
}

/* Give io, counted in ops_live, a request, copy the op into it and issue it. */
static __attribute__((noinline)) int io_queue_req(struct urt_core *c, struct urt_io *io)
{
	struct urt_req *req = req_take(c);

	req_bind_io(req, io);
	req->submit_ns = core_now(c);
	io_req_extras(c, io, req);
	return req_start(c, req);
}

/*
 * The SQE of the bare READ/WRITE io (op) that its device's scheduler let
 * pass (io_queue_sched): as io_queue's, with its class's ioprio.
 */
static inline __attribute__((always_inline)) int io_queue_sched_sqe(struct urt_core *c, struct urt_io *io,
								     unsigned op, uint16_t ioprio)
{
	struct urt_ring *r = &c->rings[RING_MAIN];
	struct io_uring_sqe *sqe = ring_sqe_take(r);

	io->priv = bare_priv(core_now(c), true);
	dev_prep_plain_rw(c, io->dev, sqe, op, io->buf, io->len, io->off, io->flags, true);
	sqe->ioprio = ioprio;	/* A READ/WRITE: sched_set_ioprio's case. */
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)io | UD_TAG_BARE);
	r->inflight++;
	return 0;
}

/* io_queue_sched's op when the quick test declined it: the full test, then bare or with a request. */
static __attribute__((noinline)) int io_queue_sched_slow(struct urt_core *c, struct urt_io *io, unsigned op)
{
	if (!sched_pass_bare(c, io->dev, io))
		return io_queue_req(c, io);
	return io_queue_sched_sqe(c, io, op, io->dev->sched->ioprio[io->prio]);
}

/*
 * A READ/WRITE that passed io_rw_fast, on a device with a scheduler: bare
 * if its scheduler lets it pass at once (sched_pass_quick, else the full
 * test: the op holds a depth unit and carries its class's ioprio), else
 * with a request, which the scheduler queues or sends.  Out of line, so
 * that the devices without a scheduler pay only io_queue's one test of
 * dev->sched; one copy per op, with no call but tail calls, so that the
 * common case needs no stack frame.
 */
static inline __attribute__((always_inline)) int io_queue_sched(struct urt_core *c, struct urt_io *io, unsigned op)
{
	struct sched_queue *q = sched_pass_quick(c, io->dev, io);

	if (urt_unlikely(!q))
		return io_queue_sched_slow(c, io, op);
	return io_queue_sched_sqe(c, io, op, q->ioprio[io->prio]);
}

static __attribute__((noinline)) int io_queue_sched_read(struct urt_core *c, struct urt_io *io)
{
	return io_queue_sched(c, io, URT_OP_READ);
}

static __attribute__((noinline)) int io_queue_sched_write(struct urt_core *c, struct urt_io *io)
{
	return io_queue_sched(c, io, URT_OP_WRITE);
}

/*
 * Queue a validated io: bare when it can be, else with a request.  Inlined
 * three times: with op a constant NOP; for a READ/WRITE that io_rw_fast
 * passed (fast: bare is known); and for everything else.  Every call on
 * the common path is a tail call, so that it needs no stack frame.
 */
static inline __attribute__((always_inline)) int io_queue(struct urt_core *c, struct urt_io *io, urt_io_cb cb,
							  void *arg, unsigned op, bool fast)
{
	struct urt_ring *r = &c->rings[RING_MAIN];
	struct io_uring_sqe *sqe;

	if (urt_unlikely(c->ops_live >= c->req_max))
		return io_pool_empty(c);
	c->ops_live++;
	c->stats.submitted++;
	io->cb = cb;
	io->arg = arg;
	io->res = 0;
	io->buf_id = 0;
	io->flags &= (uint8_t)~URT_IO_MORE;
	if (!fast && !io_bare_ok(c, io, op))
		return io_queue_req(c, io);
	if (fast && urt_unlikely(io->dev->sched))
		return op == URT_OP_READ ? io_queue_sched_read(c, io) : io_queue_sched_write(c, io);
	/* Not fast: io_bare_ok took a depth unit for a READ/WRITE on a device with a scheduler. */
	io->priv = bare_priv(core_now(c), !fast && op != URT_OP_NOP && io->dev->sched);
	/* The fast path's devices are plain files: never passthrough. */
	if (!fast && op != URT_OP_NOP && urt_unlikely(io->dev->be->zero_is_whole))
		return io_queue_big(c, io, op);
	sqe = ring_sqe_take(r);
	if (op == URT_OP_NOP) {
		io_uring_prep_nop(sqe);
	} else {
		dev_prep_plain_rw(c, io->dev, sqe, op, io->buf, io->len, io->off, io->flags, true);
		if (!fast && io->dev->sched)
			sqe->ioprio = io->dev->sched->ioprio[io->prio];	/* A READ/WRITE: sched_set_ioprio's case. */
	}
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)io | UD_TAG_BARE);
	r->inflight++;
	return 0;
}

/*
 * The out-of-line submit paths take urt_io_submit's arguments in its order,
 * then the core, so that its tail calls move no argument register.
 */
static __attribute__((noinline)) int io_submit_checked(struct urt_io *io, urt_io_cb cb, void *arg,
						       struct urt_core *c)
{
	int ret = io_validate(c, io);

	if (ret)
		return ret;
	return io_queue(c, io, cb, arg, io->op, false);
}

/* A READ or WRITE that passed io_rw_fast: bare, no further check; one copy per op. */
static __attribute__((noinline)) int io_submit_read(struct urt_io *io, urt_io_cb cb, void *arg, struct urt_core *c)
{
	return io_queue(c, io, cb, arg, URT_OP_READ, true);
}

static __attribute__((noinline)) int io_submit_write(struct urt_io *io, urt_io_cb cb, void *arg, struct urt_core *c)
{
	return io_queue(c, io, cb, arg, URT_OP_WRITE, true);
}

URT_API int urt_io_submit(struct urt_io *io, urt_io_cb cb, void *arg)
{
	struct urt_core *c = core_self();
	unsigned op = io->op;

	URT_ASSERT(c && "urt_io_submit runs on a reactor thread");
	if (urt_unlikely(c->stopping))
		return -ESHUTDOWN;
	/* A NOP has nothing to check. */
	if (op == URT_OP_NOP)
		return io_queue(c, io, cb, arg, URT_OP_NOP, false);
	if ((op == URT_OP_READ || op == URT_OP_WRITE) && io_rw_fast(c, io, io->dev, op))
		return op == URT_OP_READ ? io_submit_read(io, cb, arg, c) : io_submit_write(io, cb, arg, c);
	return io_submit_checked(io, cb, arg, c);
}

URT_API int urt_io_cancel(struct urt_io *io)
{
	struct urt_core *c = core_self();
	struct urt_req *req = io->priv;

	if (!c || !req)
		return -ENOENT;
	if (io_is_bare(io)) {
		req_bare_cancel(c, io);
		return 0;
	}
	/* Another core's request: cancelling it here would race that core. */
	if ((uintptr_t)req - (uintptr_t)c->reqs >= (uintptr_t)c->req_max * sizeof(*req))
		return -EXDEV;
	if (req->io != io)
		return -ENOENT;
	req_cancel(c, req);
	return 0;
}
