/*
 * The device registry (dev/dev.c): fixed-file slots per core.
 */
#ifndef URT_RUNTIME_DEV_DEV_H
#define URT_RUNTIME_DEV_DEV_H

#include "runtime/core.h"

/* dev.c: registered-file slot of dev on core c, or -1. */
int dev_fixed_slot(const struct urt_dev *dev, const struct urt_core *c);
void dev_registry_drop(struct urt_rt *rt);
int dev_registry_ring_init(struct urt_core *c, struct io_uring *ring);
/*
 * dev.c: whether the block device dev now ends at or before off (its
 * capacity asked again, BLKGETSIZE64): a removed disk's is 0.  False for
 * other devices, or when the size cannot be read for another reason.
 */
bool dev_blk_ends_before(const struct urt_dev *dev, uint64_t off);

/*
 * Fill sqe with the READ (op URT_OP_READ) or WRITE of len bytes at buf and
 * off that a plain_rw backend's op is (backend.h): dev's fixed-file slot
 * on core c when it has one, else its fd; READ_FIXED/WRITE_FIXED when the
 * buffer is in c's registered region (buffer 0); RWF_DSYNC for a FUA
 * write.  Every field of the SQE is written, as io_uring_prep_rw does.
 * With count (a constant at every call), it also adds the SQE to the
 * stats that ring_count_dev_sqe keeps, from what it already knows.
 */
static inline __attribute__((always_inline)) void
dev_prep_plain_rw(struct urt_core *c, const struct urt_dev *dev, struct io_uring_sqe *sqe, unsigned op, void *buf,
		  uint64_t len, uint64_t off, unsigned flags, bool count)
{
	int slot = dev->reg_rt == c->rt ? atomic_load_explicit(&((struct urt_dev *)dev)->slot, memory_order_acquire)
					 : -1;
	uint8_t opcode = op == URT_OP_READ ? IORING_OP_READ : IORING_OP_WRITE;

	/* Each case straight-line; the plain fd with plain memory first. */
	if (urt_likely(slot < 0)) {
		sqe->flags = 0;
		sqe->fd = dev->fd;
		if (count) {
			c->stats.sqes_plain_fd++;
			if (urt_unlikely(dev->reg_rt == c->rt))
				c->stats.fixed_file_misses++;
		}
	} else {
		sqe->flags = IOSQE_FIXED_FILE;
		sqe->fd = slot;
		if (count)
			c->stats.sqes_fixed_file++;
	}
	if (buf_region_registered_has(c, buf, len)) {
		opcode = op == URT_OP_READ ? IORING_OP_READ_FIXED : IORING_OP_WRITE_FIXED;
		if (count)
			c->stats.sqes_fixed_buf++;
	}
	sqe->opcode = opcode;
	sqe->ioprio = 0;
	sqe->off = off;
	sqe->addr = (uint64_t)(uintptr_t)buf;
	sqe->len = (uint32_t)len;
	sqe->rw_flags = op == URT_OP_WRITE && (flags & URT_IO_FUA) ? RWF_DSYNC : 0;
	sqe->buf_index = 0;
	sqe->personality = 0;
	sqe->file_index = 0;
	sqe->addr3 = 0;
	sqe->__pad2[0] = 0;
}

#endif /* URT_RUNTIME_DEV_DEV_H */
