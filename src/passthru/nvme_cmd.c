/*
 * One NVMe passthrough command in an SQE128 entry (nvme_cmd.h).
 *
 * Mapping of urt ops to NVMe commands (one SQE each):
 *   READ, READV          Read (02h); vectors use NVME_URING_CMD_IO_VEC
 *   WRITE, WRITEV        Write (01h), FUA (CDW12 bit 30) with URT_IO_FUA
 *   FLUSH, FSYNC         Flush (00h); without a volatile write cache there
 *                        is nothing to flush and a NOP stands in
 *   WRITE_ZEROES         Write Zeroes (08h)
 *   DEALLOCATE           Dataset Management (09h), one range, AD set
 * The kernel does not split passthrough commands, so no command carries
 * more than max_io_bytes; the caller resubmits the rest.  A vector larger
 * than that goes as its longest prefix of whole entries, or, when its
 * first entry alone is too long, as a plain command on part of it.
 */
#include <errno.h>
#include <stddef.h>
#include <linux/nvme_ioctl.h>
#include <string.h>

#include "passthru/nvme_cmd.h"
#include "urt/io.h"

/* The passthrough command lives in the second half of a 128-byte SQE. */
_Static_assert(sizeof(struct nvme_uring_cmd) <= 80, "nvme_uring_cmd fits in sqe->cmd of an SQE128");
_Static_assert(offsetof(struct nvme_uring_cmd, opcode) == 0, "nvme_cmd_opcode reads the first byte of the command");

/* Start a command on sqe: the SQE and its 80-byte command area zeroed. */
static struct nvme_uring_cmd *cmd_init(const struct nvme_cmd_target *t, struct io_uring_sqe *sqe, uint32_t cmd_op,
				       uint8_t opcode)
{
	struct nvme_uring_cmd *cmd = (struct nvme_uring_cmd *)sqe->cmd;

	/* An SQE128 entry is two struct io_uring_sqe long. */
	memset(sqe, 0, 2 * sizeof(*sqe));
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->cmd_op = cmd_op;
	sqe->fd = t->fd;
	if (t->fixed_file)
		sqe->flags |= IOSQE_FIXED_FILE;
	cmd->opcode = opcode;
	cmd->nsid = t->nsid;
	cmd->timeout_ms = t->timeout_ms;
	return cmd;
}

/* The starting LBA (CDW10-11) and the zero-based block count (CDW12 bits 0-15). */
static void cmd_set_range(const struct nvme_cmd_target *t, struct nvme_uring_cmd *cmd, uint64_t off, uint64_t len)
{
	uint64_t slba = off >> t->lba_shift;
	uint64_t nlb = len >> t->lba_shift;

	cmd->cdw10 = (uint32_t)slba;
	cmd->cdw11 = (uint32_t)(slba >> 32);
	cmd->cdw12 = (uint32_t)(nlb - 1);
}

/* READV/WRITEV: the whole vector, its longest prefix, or part of its first entry. */
static int64_t cmd_vec(const struct nvme_cmd_target *t, const struct nvme_cmd_op *op, struct io_uring_sqe *sqe,
		       uint8_t opcode)
{
	uint64_t n = 0;
	struct nvme_uring_cmd *cmd;
	unsigned k = 0;

	while (k < op->nr_iov && n + op->iov[k].iov_len <= t->max_io_bytes)
		n += op->iov[k++].iov_len;
	if (k == 0) {
		/* The first entry alone is over the limit: send part of it as a plain command. */
		n = t->max_io_bytes;
		cmd = cmd_init(t, sqe, NVME_URING_CMD_IO, opcode);
		cmd->addr = (uint64_t)(uintptr_t)op->iov[0].iov_base;
		cmd->data_len = (uint32_t)n;
	} else {
		cmd = cmd_init(t, sqe, NVME_URING_CMD_IO_VEC, opcode);
		cmd->addr = (uint64_t)(uintptr_t)op->iov;
		cmd->data_len = k;
	}
	cmd_set_range(t, cmd, op->off, n);
	if (opcode == PT_IO_WRITE && (op->flags & URT_IO_FUA))
		cmd->cdw12 |= NVME_RW_FUA;
	return (int64_t)n;
}

int64_t nvme_cmd_prep(const struct nvme_cmd_target *t, const struct nvme_cmd_op *op, struct io_uring_sqe *sqe)
{
	struct nvme_uring_cmd *cmd;
	uint64_t len;

	switch (op->op) {
	case URT_OP_READ:
	case URT_OP_WRITE:
		len = op->len < t->max_io_bytes ? op->len : t->max_io_bytes;
		cmd = cmd_init(t, sqe, NVME_URING_CMD_IO, op->op == URT_OP_READ ? PT_IO_READ : PT_IO_WRITE);
		cmd->addr = (uint64_t)(uintptr_t)op->buf;
		cmd->data_len = (uint32_t)len;
		cmd_set_range(t, cmd, op->off, len);
		if (op->buf_index >= 0) {
			sqe->uring_cmd_flags = IORING_URING_CMD_FIXED;
			sqe->buf_index = (uint16_t)op->buf_index;
		}
		if (op->op == URT_OP_WRITE && (op->flags & URT_IO_FUA))
			cmd->cdw12 |= NVME_RW_FUA;
		return (int64_t)len;
	case URT_OP_READV:
	case URT_OP_WRITEV:
		return cmd_vec(t, op, sqe, op->op == URT_OP_READV ? PT_IO_READ : PT_IO_WRITE);
	case URT_OP_FLUSH:
	case URT_OP_FSYNC:
		if (!t->volatile_cache) {
			/* Every completed write is already durable: nothing to send to the device. */
			memset(sqe, 0, 2 * sizeof(*sqe));
			io_uring_prep_nop(sqe);
			return 0;
		}
		cmd_init(t, sqe, NVME_URING_CMD_IO, PT_IO_FLUSH);
		return 0;
	case URT_OP_WRITE_ZEROES:
		cmd = cmd_init(t, sqe, NVME_URING_CMD_IO, PT_IO_WRITE_ZEROES);
		cmd_set_range(t, cmd, op->off, op->len);
		return 0;
	case URT_OP_DEALLOCATE:
		op->range->cattr = 0;
		op->range->nlb = (uint32_t)(op->len >> t->lba_shift);
		op->range->slba = op->off >> t->lba_shift;
		cmd = cmd_init(t, sqe, NVME_URING_CMD_IO, PT_IO_DSM);
		cmd->addr = (uint64_t)(uintptr_t)op->range;
		cmd->data_len = sizeof(*op->range);
		cmd->cdw10 = 0;	/* Number of ranges, zero-based: one. */
		cmd->cdw11 = NVME_DSM_ATTR_DEALLOCATE;
		return 0;
	default:
		return -EOPNOTSUPP;
	}
}
