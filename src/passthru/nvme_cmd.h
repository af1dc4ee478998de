/*
 * Building one NVMe passthrough command into an SQE128 entry, with no
 * runtime state: what the command goes to (struct nvme_cmd_target) and
 * what it does (struct nvme_cmd_op) in, the SQE out.  dev_passthru.c calls
 * it for every op; tests/passthru/test_nvme_cmd.c inspects the SQEs it
 * builds without a device.
 */
#ifndef URT_PASSTHRU_NVME_CMD_H
#define URT_PASSTHRU_NVME_CMD_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "passthru/passthru.h"

/* The namespace a command goes to; fixed per device and core. */
struct nvme_cmd_target {
	int fd;			/* The ng file descriptor, or its fixed-file slot when fixed_file. */
	bool fixed_file;	/* fd is a slot of the ring's registered files (IOSQE_FIXED_FILE). */
	uint32_t nsid;		/* Namespace id. */
	uint32_t lba_shift;	/* log2 of the LBA data size. */
	uint32_t timeout_ms;	/* The command's timeout_ms, 0 = the driver's io_timeout. */
	uint32_t max_io_bytes;	/* Largest transfer one command may carry (whole blocks). */
	bool volatile_cache;	/* VWC: a Flush has something to do. */
};

/* One op, or the remaining part of one (urt ops: include/urt/io.h). */
struct nvme_cmd_op {
	unsigned op;		/* enum urt_op. */
	unsigned flags;		/* enum urt_io_flags (URT_IO_FUA). */
	void *buf;		/* READ/WRITE buffer. */
	uint64_t len;		/* Bytes (READ, WRITE, WRITE_ZEROES, DEALLOCATE). */
	uint64_t off;		/* Device offset in bytes, a multiple of the block size. */
	const struct iovec *iov;/* READV/WRITEV vector. */
	unsigned nr_iov;	/* Its entries. */
	int buf_index;		/* Registered buffer holding the READ/WRITE transfer, -1 = none. */
	struct nvme_dsm_range_le *range;/* DEALLOCATE: the range, valid until the command completes. */
};

/*
 * Fill the 128-byte sqe for op on t.  Returns the bytes this command
 * transfers (at most t->max_io_bytes; 0 for ops without data), or
 * -EOPNOTSUPP for an op the backend does not send.  A FLUSH without a
 * volatile cache becomes a NOP SQE: there is nothing to flush.
 */
int64_t nvme_cmd_prep(const struct nvme_cmd_target *t, const struct nvme_cmd_op *op, struct io_uring_sqe *sqe);

/* The NVMe opcode a prepared sqe carries, or -1 when it carries no NVMe command (a NOP). */
static inline int nvme_cmd_opcode(const struct io_uring_sqe *sqe)
{
	/* struct nvme_uring_cmd starts with its opcode byte, at the start of sqe->cmd. */
	return sqe->opcode == IORING_OP_URING_CMD ? *(const uint8_t *)sqe->cmd : -1;
}

#endif /* URT_PASSTHRU_NVME_CMD_H */
