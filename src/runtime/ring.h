/*
 * The rings of a core (ring.c has the design notes): setup, submission,
 * reaping and waiting, and the inline SQE helpers of the submit path.
 */
#ifndef URT_RUNTIME_RING_H
#define URT_RUNTIME_RING_H

#include "runtime/core.h"

/* ring.c */
int ring_setup(struct urt_core *c, enum ring_kind kind);
void ring_teardown(struct urt_core *c, enum ring_kind kind);
struct io_uring_sqe *ring_sqe(struct urt_core *c, enum ring_kind kind);
int ring_submit(struct urt_core *c, enum ring_kind kind, bool wait);
unsigned ring_reap(struct urt_core *c, enum ring_kind kind);
unsigned ring_reap_main(struct urt_core *c);
void ring_wait(struct urt_core *c);
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
	if (sqe->opcode == IORING_OP_READ_FIXED || sqe->opcode == IORING_OP_WRITE_FIXED)
		c->stats.sqes_fixed_buf++;
}

#endif /* URT_RUNTIME_RING_H */
