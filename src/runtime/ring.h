/*
 * The rings of a core (ring.c has the design notes): setup, submission,
 * reaping and waiting, and the inline SQE helpers of the submit path.
 */
#ifndef URT_RUNTIME_RING_H
#define URT_RUNTIME_RING_H

#include <string.h>

#include "runtime/core.h"

/* ring.c */
int ring_setup(struct urt_core *c, enum ring_kind kind);
void ring_teardown(struct urt_core *c, enum ring_kind kind);
struct io_uring_sqe *ring_sqe(struct urt_core *c, enum ring_kind kind);
int ring_submit(struct urt_core *c, enum ring_kind kind, bool wait);
unsigned ring_reap(struct urt_core *c, enum ring_kind kind);
void ring_cqe_other(struct urt_core *c, struct urt_ring *r, const struct io_uring_cqe *cqe);
void ring_wait_general(struct urt_core *c, bool idle);
void ring_wait_poll_sleep(struct urt_ring *r);
void ring_cqe_copy(void *dst, const void *src, size_t bytes);
void ring_arm_efd(struct urt_core *c, enum ring_kind kind);


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

/* The same for RING_BIG, whose 128-byte SQEs take two slots of sq->sqes each. */
static inline struct io_uring_sqe *ring_sqe_take_big(struct urt_ring *r)
{
	struct io_uring_sq *sq = &r->ring.sq;
	unsigned tail = sq->sqe_tail;

	sq->sqe_tail = tail + 1;
	r->queued++;
	return &sq->sqes[(tail & sq->ring_mask) << 1];
}

/*
 * Count a device's SQE by how it names its file and memory, so that a
 * registered file or buffer that silently went by the plain fd or plain
 * memory shows in the stats (fixed_file_misses stays 0 when it works).
 */
static inline void ring_count_dev_sqe(struct urt_core *c, const struct urt_dev *dev,
				      const struct io_uring_sqe *sqe)
{
	if (sqe->flags & IOSQE_FIXED_FILE) {
		c->stats.sqes_fixed_file++;
	} else {
		c->stats.sqes_plain_fd++;
		if (urt_unlikely(dev->reg_rt == c->rt))
			c->stats.fixed_file_misses++;
	}
	/*
	 * Registered memory: READ/WRITE_FIXED, READV/WRITEV_FIXED, or a
	 * passthrough command with IORING_URING_CMD_FIXED.
	 */
	if (sqe->opcode == IORING_OP_READ_FIXED || sqe->opcode == IORING_OP_WRITE_FIXED ||
	    sqe->opcode == URT_IORING_OP_READV_FIXED || sqe->opcode == URT_IORING_OP_WRITEV_FIXED ||
	    (sqe->opcode == IORING_OP_URING_CMD && (sqe->uring_cmd_flags & IORING_URING_CMD_FIXED)))
		c->stats.sqes_fixed_buf++;
}

/*
 * The loop's own steps (rt.c): the wait of a core with one main ring in
 * interrupt mode, and the reap, inline so that an iteration of the loop
 * makes no call of its own before the callbacks.  ring.c's design notes
 * cover them; the other cases are out of line there.
 */

/*
 * ring_submit for a main ring without SQPOLL (c->wait_plain), inline: hand
 * the queued SQEs to the kernel as liburing's __io_uring_flush_sq does,
 * then one io_uring_enter that runs the deferred task work (GETEVENTS)
 * and, with wait, sleeps until a CQE; in the poll-wait mode it sleeps in
 * poll(2) after the enter instead (ring_wait_poll_sleep).
 */
static inline __attribute__((always_inline)) int ring_enter_plain(struct urt_core *c, struct urt_ring *r, bool wait)
{
	struct io_uring_sq *sq = &r->ring.sq;
	unsigned tail = sq->sqe_tail;
	int ret;

	if (sq->sqe_head != tail) {
		sq->sqe_head = tail;
		/* Release: the kernel reads the SQEs after the tail that publishes them. */
		io_uring_smp_store_release(sq->ktail, tail);
	}
	ret = io_uring_enter((unsigned)r->ring.enter_ring_fd, tail - *sq->khead, wait && !c->wait_poll,
			     r->enter_flags, NULL);
	c->stats.enters++;
	if (urt_unlikely(ret < 0))
		return ret;	/* EAGAIN, EBUSY, EINTR: the loop reaps and comes back (ring_submit). */
	if (urt_unlikely(wait && c->wait_poll))
		ring_wait_poll_sleep(r);
	c->stats.sqes_submitted += (unsigned)ret;
	r->queued = tail - *sq->khead;
	return ret;
}

/*
 * Step 4 of the loop (rt.c): submit what is queued and, if nothing is
 * runnable, sleep until a CQE.  Inline in the loop for the common case.
 */
static inline __attribute__((always_inline)) void ring_wait(struct urt_core *c)
{
	bool idle = !fiber_has_ready(c) && !atomic_load_explicit(&c->doorbell, memory_order_acquire) &&
		    STAILQ_EMPTY(&c->backlog);

	/*
	 * The common case, one main ring in interrupt mode: the general path
	 * below reduced to its two outcomes.  A core sleeps only with ops in
	 * flight (else nothing could end the sleep; I2 keeps the wake
	 * eventfd's read in flight while running).
	 */
	if (urt_likely(c->wait_plain)) {
		struct urt_ring *r = &c->rings[RING_MAIN];

		/* Next to stats.enters: a path that silently stops being taken shows (test_wait_path). */
		c->stats.waits_inline++;
		if (idle && r->inflight && msg_sleep_begin(c)) {
			ring_enter_plain(c, r, true);
			msg_sleep_end(c);
		} else if (r->queued || r->inflight) {
			ring_enter_plain(c, r, false);
		}
		return;
	}
	ring_wait_general(c, idle);
}

#define REAP_BATCH 128

/*
 * Copy up to REAP_BATCH CQEs of r into batch (one slot per CQE, two on a
 * CQE32 ring: the second holds big_cqe[]) and release their ring slots.
 * This is io_uring_peek_batch_cqe without the array of pointers and the
 * library call: the ring is read once, from head to the tail the kernel
 * published, and the head is stored once.  As in liburing, an empty CQ
 * with IORING_SQ_CQ_OVERFLOW or IORING_SQ_TASKRUN set means completions
 * wait in the kernel: one enter flushes them, then the ring is read again.
 */
static inline __attribute__((always_inline)) unsigned ring_peek_batch(struct urt_ring *r,
									struct io_uring_cqe *batch, bool big)
{
	struct io_uring_cq *cq = &r->ring.cq;
	unsigned head = *cq->khead;
	/* Acquire: the CQE contents are read after the tail that publishes them. */
	unsigned n = io_uring_smp_load_acquire(cq->ktail) - head;
	/* Bytes per CQE, as a shift: 16, or 32 on a CQE32 ring (whose cqes[] has two slots per CQE). */
	const unsigned shift = big ? 5 : 4;
	unsigned start, first;

	if (urt_unlikely(n == 0)) {
		if (!(IO_URING_READ_ONCE(*r->ring.sq.kflags) & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN)))
			return 0;
		io_uring_get_events(&r->ring);
		n = io_uring_smp_load_acquire(cq->ktail) - head;
	}
	if (n > REAP_BATCH)
		n = REAP_BATCH;
	/*
	 * The n CQEs are one run of the ring, or two when they wrap: one
	 * library copy each; a single CQE (every iteration at queue depth 1)
	 * is copied by two or four moves instead of a call.
	 */
	start = head & cq->ring_mask;
	if (n == 1) {
		const struct io_uring_cqe *src = (const struct io_uring_cqe *)((const char *)cq->cqes +
									    ((size_t)start << shift));

		batch[0] = src[0];
		if (big)
			batch[1] = src[1];
	} else {
		first = cq->ring_entries - start < n ? cq->ring_entries - start : n;
		ring_cqe_copy(batch, (const char *)cq->cqes + ((size_t)start << shift), (size_t)first << shift);
		if (urt_unlikely(first < n))
			ring_cqe_copy((char *)batch + ((size_t)first << shift), cq->cqes, (size_t)(n - first) << shift);
	}
	/* Release the slots before any callback can submit and need CQ room (one store for the batch). */
	io_uring_smp_store_release(cq->khead, head + n);
	return n;
}

/*
 * The reap loop of ring r, inlined twice with big a constant: the rings
 * with 16-byte CQEs (main, IOPOLL) and the CQE32 ring of passthrough.
 */
static inline __attribute__((always_inline)) unsigned ring_reap_ring(struct urt_core *c, struct urt_ring *r,
								     bool big)
{
	/* Local copies of the CQEs: one slot each, two on the big ring (see ring_peek_batch). */
	struct io_uring_cqe batch[2 * REAP_BATCH];
	unsigned total = 0, n;

	do {
		unsigned bare = 0;

		n = ring_peek_batch(r, batch, big);
		c->stats.cqes_reaped += n;
		for (unsigned i = 0; i < n; i++) {
			const struct io_uring_cqe *cqe = &batch[(big ? 2 : 1) * i];
			uint64_t ud = cqe->user_data;

			/* First the common case: the only CQE of a bare op (io.c). */
			if (urt_likely((ud & UD_TAG_MASK) == UD_TAG_BARE)) {
				struct urt_io *io = (struct urt_io *)(uintptr_t)(ud & ~(uint64_t)UD_TAG_MASK);
				int32_t res = cqe->res;

				bare++;
				/*
				 * On the big ring (passthrough, zero_is_whole) 0 is the
				 * whole transfer, and anything else (an NVMe status or
				 * -errno) needs the backend: the slow path.
				 */
				if (big)
					res = res == 0 ? (int32_t)io->len : INT32_MIN;
				if (urt_unlikely(!io_is_bare(io)) || urt_unlikely(!bare_complete(c, io, res)))
					req_bare_slow(c, io, cqe->res, cqe);
				continue;
			}
			ring_cqe_other(c, r, cqe);
		}
		/*
		 * The bare ops' CQEs leave the in-flight count once per batch.
		 * The callbacks above only added to it (their new ops), and
		 * nothing they call reads it as a bound, so the count is exact
		 * again here; more CQEs than it ever held is an accounting bug.
		 */
		if (urt_unlikely(bare > r->inflight))
			abort();
		r->inflight -= bare;
		total += n;
	} while (urt_unlikely(n == REAP_BATCH));
	return total;
}

/* Step 5 of the loop (rt.c): reap the main ring and answer its CQEs; inline in the loop. */
static inline __attribute__((always_inline)) unsigned ring_reap_main(struct urt_core *c)
{
	return ring_reap_ring(c, &c->rings[RING_MAIN], false);
}

#endif /* URT_RUNTIME_RING_H */
