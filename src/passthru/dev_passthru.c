/*
 * src/passthru: the NVMe passthrough backend.  dev_passthru.c (this file)
 * drives I/O; nvme_id.c identifies the namespace and its controller;
 * nvme_status.c maps NVMe status codes.  It plugs into the runtime through
 * src/runtime/dev/backend.h and is listed in src/backends.c.  May include
 * src/base and src/runtime.
 *
 * NVMe passthrough backend: NVM commands on /dev/ngXnY through
 * IORING_OP_URING_CMD (NVME_URING_CMD_IO), on the per-core SQE128|CQE32
 * ring (RING_BIG).
 *
 * Design notes
 * ------------
 * 1. Mapping of urt ops to NVMe commands (one SQE each):
 *      READ, READV          Read (02h); vectors use NVME_URING_CMD_IO_VEC
 *      WRITE, WRITEV        Write (01h), FUA (CDW12 bit 30) with URT_IO_FUA
 *      FLUSH, FSYNC         Flush (00h); without a volatile write cache
 *                           there is nothing to flush and a NOP stands in
 *      WRITE_ZEROES         Write Zeroes (08h)
 *      DEALLOCATE           Dataset Management (09h), one range, AD set
 * 2. The kernel does not split passthrough commands, so prep never sends
 *    more than info.max_io_bytes (nvme_id.c); the runtime resubmits the
 *    rest, which gives MDTS splitting for READ/WRITE.  A vector larger than
 *    the limit goes as its longest prefix of whole entries, or, when its
 *    first entry alone is too long, as a plain command on part of it.
 * 3. prep returns the bytes the SQE transfers; the runtime keeps them in
 *    req->seg, and complete() turns a zero CQE result (NVMe success) into
 *    that count, because a passthrough CQE carries no byte count.
 * 4. A positive CQE result is the NVMe status field (phase dropped).  It
 *    becomes URT_E_NVME(status), DNR and CRD included, so that retryable()
 *    and the caller see everything the device said.
 * 5. The DSM range must stay valid until the command completes; it lives
 *    in req->be[0..1], which the runtime keeps until the last CQE.
 * 6. The driver completes a command it had to abort (its timeout fired,
 *    or the controller was reset) with -EINTR.  The runtime would resubmit
 *    -EINTR at once and without bound, so complete() reports it as
 *    -ETIMEDOUT: retried with backoff up to retry_max, and sticky on a
 *    flush, whose effect is then unknown.
 * 7. Passthrough commands cannot be cancelled once issued (cancellable is
 *    false): a deadline is a standalone timer, the caller hears -ETIMEDOUT
 *    and the request and its urt_buf stay owned until the real CQE.
 * 8. A READ or WRITE within max_io_bytes and without a deadline goes bare
 *    (src/runtime/io.c): pt_prep_rw fills its SQE without a request, and
 *    a 0 result is the whole transfer (zero_is_whole), so no request and
 *    no complete() call is spent on a successful command.  Any other
 *    result gives the op a request and reaches pt_complete as before.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/nvme_ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "passthru/nvme_status.h"
#include "passthru/passthru.h"
#include "runtime/dev/backend.h"
#include "runtime/core.h"
#include "runtime/probe.h"
#include "urt/error.h"

/* The passthrough command lives in the second half of a 128-byte SQE. */
_Static_assert(sizeof(struct nvme_uring_cmd) <= 80, "nvme_uring_cmd fits in sqe->cmd of an SQE128");
_Static_assert(sizeof(((struct urt_req *)0)->be) >= sizeof(struct nvme_dsm_range_le),
	       "the DSM range fits in the request's backend scratch");

struct pt_dev {
	struct pt_geometry geo;	/* Identify results beyond urt_dev_info. */
	uint32_t timeout_ms;	/* Per-command timeout, 0 = the driver's default. */
	char name[32];		/* "ng0n1". */
};

static bool pt_match(const char *path)
{
	char name[32];

	return nvme_id_generic_name(path, name, sizeof(name));
}

static int pt_open(struct urt_dev *dev, const char *path, const struct urt_dev_opts *o)
{
	const struct urt_kernel_features *kf = probe_features();
	struct pt_dev *pt;
	char name[32];
	struct stat st;
	int fd, ret;

	if (!kf->uring_cmd || !kf->sqe128) {
		urt_set_error("%s: this kernel lacks %s, which NVMe passthrough needs (Linux 5.19+); use the block "
			      "device /dev/nvmeXnY with the file backend", path,
			      !kf->uring_cmd ? "IORING_OP_URING_CMD" : "IORING_SETUP_SQE128|CQE32");
		return -EOPNOTSUPP;
	}
	if (stat(path, &st)) {
		ret = -errno;
		urt_set_error("%s: %s", path, strerror(-ret));
		return ret;
	}
	if (!nvme_id_generic_name(path, name, sizeof(name))) {
		urt_set_error("%s: not an NVMe generic character device (/dev/ngXnY, listed in "
			      "/sys/class/nvme-generic/); block devices and files use the file backend", path);
		return -ENODEV;
	}
	fd = open(path, (o->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		if (ret == -EACCES || ret == -EPERM)
			urt_set_error("%s: permission denied: NVMe generic devices are root:root 0600 by default; "
				      "run as root, or give a group access with a udev rule such as "
				      "KERNEL==\"ng[0-9]*n[0-9]*\", GROUP=\"disk\", MODE=\"0660\"", path);
		else
			urt_set_error("%s: %s", path, strerror(-ret));
		return ret;
	}
	pt = calloc(1, sizeof(*pt));
	if (!pt) {
		ret = -ENOMEM;
		goto err_close;
	}
	ret = nvme_id_probe(fd, path, name, &dev->info, &pt->geo);
	if (ret)
		goto err_free;
	pt->timeout_ms = o->nvme_timeout_ms;
	snprintf(pt->name, sizeof(pt->name), "%s", name);
	dev->fd = fd;
	dev->priv = pt;
	return 0;

err_free:
	free(pt);
err_close:
	close(fd);
	return ret;
}

static void pt_close(struct urt_dev *dev)
{
	if (dev->fd >= 0)
		close(dev->fd);
	dev->fd = -1;
	free(dev->priv);
	dev->priv = NULL;
}

static int pt_validate(struct urt_dev *dev, const struct urt_io *io)
{
	switch (io->op) {
	case URT_OP_READ:
	case URT_OP_WRITE:
	case URT_OP_READV:
	case URT_OP_WRITEV:
	case URT_OP_FLUSH:
	case URT_OP_FSYNC:
		return 0;
	case URT_OP_DEALLOCATE:
		if (io->len / dev->info.block_bytes > UINT32_MAX) {
			urt_set_error("%s: deallocate of %llu bytes is more than one range's 2^32 - 1 blocks; "
				      "split it", dev->path, (unsigned long long)io->len);
			return -EINVAL;
		}
		return 0;
	case URT_OP_WRITE_ZEROES:
		if (io->len / dev->info.block_bytes > NVME_NLB_MAX) {
			urt_set_error("%s: Write Zeroes of %llu bytes is more than one command's %u blocks; "
				      "split it", dev->path, (unsigned long long)io->len, NVME_NLB_MAX);
			return -EINVAL;
		}
		return 0;
	default:
		urt_set_error("%s: op %u is not supported by the passthru backend", dev->path, io->op);
		return -EOPNOTSUPP;
	}
}

/* Start a passthrough command on sqe: the SQE and its 80-byte command area zeroed. */
static struct nvme_uring_cmd *pt_sqe_init(struct urt_dev *dev, struct urt_core *c, struct io_uring_sqe *sqe,
					  uint32_t cmd_op, uint8_t opcode)
{
	const struct pt_dev *pt = dev->priv;
	struct nvme_uring_cmd *cmd = (struct nvme_uring_cmd *)sqe->cmd;
	int slot = dev_fixed_slot(dev, c);

	/* An SQE128 entry is two struct io_uring_sqe long. */
	memset(sqe, 0, 2 * sizeof(*sqe));
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->cmd_op = cmd_op;
	if (slot >= 0) {
		sqe->fd = slot;
		sqe->flags |= IOSQE_FIXED_FILE;
	} else {
		sqe->fd = dev->fd;
	}
	cmd->opcode = opcode;
	cmd->nsid = dev->info.nsid;
	cmd->timeout_ms = pt->timeout_ms;
	return cmd;
}

/* Fill the starting LBA and the zero-based block count of a ranged command. */
static void pt_set_range(const struct urt_dev *dev, struct nvme_uring_cmd *cmd, uint64_t off, uint64_t len)
{
	const struct pt_dev *pt = dev->priv;
	uint64_t slba = off >> pt->geo.lba_shift;
	uint64_t nlb = len >> pt->geo.lba_shift;

	cmd->cdw10 = (uint32_t)slba;
	cmd->cdw11 = (uint32_t)(slba >> 32);
	cmd->cdw12 = (uint32_t)(nlb - 1);
}

/* A READV/WRITEV SQE: the whole vector, its longest prefix, or part of its first entry. */
static int64_t pt_prep_vec(struct urt_dev *dev, struct urt_core *c, struct urt_req *req, struct io_uring_sqe *sqe,
			   uint8_t opcode)
{
	uint64_t max = dev->info.max_io_bytes, n = 0;
	struct nvme_uring_cmd *cmd;
	unsigned k = 0;

	while (k < req->nr_iov && n + req->iov[k].iov_len <= max)
		n += req->iov[k++].iov_len;
	if (k == 0) {
		/* The first entry alone is over the limit: send part of it as a plain command. */
		n = max;
		cmd = pt_sqe_init(dev, c, sqe, NVME_URING_CMD_IO, opcode);
		cmd->addr = (uint64_t)(uintptr_t)req->iov[0].iov_base;
		cmd->data_len = (uint32_t)n;
	} else {
		cmd = pt_sqe_init(dev, c, sqe, NVME_URING_CMD_IO_VEC, opcode);
		cmd->addr = (uint64_t)(uintptr_t)req->iov;
		cmd->data_len = k;
	}
	pt_set_range(dev, cmd, req->off, n);
	return (int64_t)n;
}

/*
 * A Read or Write of len <= max_io_bytes bytes at buf and off; op and flags
 * as in struct urt_io.  Also the backend's prep_rw, for bare ops (note 8).
 */
static void pt_prep_rw(struct urt_dev *dev, struct urt_core *c, struct io_uring_sqe *sqe, unsigned op, void *buf,
		       uint64_t len, uint64_t off, unsigned flags)
{
	struct nvme_uring_cmd *cmd = pt_sqe_init(dev, c, sqe, NVME_URING_CMD_IO,
						 op == URT_OP_READ ? PT_IO_READ : PT_IO_WRITE);
	int idx = dev_buf_index(c, buf, len);

	cmd->addr = (uint64_t)(uintptr_t)buf;
	cmd->data_len = (uint32_t)len;
	pt_set_range(dev, cmd, off, len);
	if (idx >= 0) {
		sqe->uring_cmd_flags = IORING_URING_CMD_FIXED;
		sqe->buf_index = (uint16_t)idx;
	}
	if (op == URT_OP_WRITE && (flags & URT_IO_FUA))
		cmd->cdw12 |= NVME_RW_FUA;
}

static int64_t pt_prep(struct urt_dev *dev, struct urt_core *c, struct urt_req *req, struct io_uring_sqe *sqe)
{
	struct nvme_uring_cmd *cmd;
	struct nvme_dsm_range_le *range;
	uint64_t len;

	switch (req->op) {
	case URT_OP_READ:
	case URT_OP_WRITE:
		len = req->len < dev->info.max_io_bytes ? req->len : dev->info.max_io_bytes;
		pt_prep_rw(dev, c, sqe, req->op, req->buf, len, req->off, req->flags);
		return (int64_t)len;
	case URT_OP_READV:
	case URT_OP_WRITEV: {
		int64_t n = pt_prep_vec(dev, c, req, sqe, req->op == URT_OP_READV ? PT_IO_READ : PT_IO_WRITE);

		if (req->op == URT_OP_WRITEV && (req->flags & URT_IO_FUA))
			((struct nvme_uring_cmd *)sqe->cmd)->cdw12 |= NVME_RW_FUA;
		return n;
	}
	case URT_OP_FLUSH:
	case URT_OP_FSYNC:
		if (!dev->info.volatile_cache) {
			/* Every completed write is already durable: nothing to send to the device. */
			io_uring_prep_nop(sqe);
			return 0;
		}
		pt_sqe_init(dev, c, sqe, NVME_URING_CMD_IO, PT_IO_FLUSH);
		return 0;
	case URT_OP_WRITE_ZEROES:
		cmd = pt_sqe_init(dev, c, sqe, NVME_URING_CMD_IO, PT_IO_WRITE_ZEROES);
		pt_set_range(dev, cmd, req->off, req->len);
		return 0;
	case URT_OP_DEALLOCATE:
		range = (struct nvme_dsm_range_le *)req->be;
		range->cattr = 0;
		range->nlb = (uint32_t)(req->len >> ((const struct pt_dev *)dev->priv)->geo.lba_shift);
		range->slba = req->off >> ((const struct pt_dev *)dev->priv)->geo.lba_shift;
		cmd = pt_sqe_init(dev, c, sqe, NVME_URING_CMD_IO, PT_IO_DSM);
		cmd->addr = (uint64_t)(uintptr_t)range;
		cmd->data_len = sizeof(*range);
		cmd->cdw10 = 0;	/* Number of ranges, zero-based: one. */
		cmd->cdw11 = NVME_DSM_ATTR_DEALLOCATE;
		return 0;
	default:
		return -EOPNOTSUPP;
	}
}

static int pt_complete(struct urt_dev *dev, struct urt_req *req, int32_t res, const struct io_uring_cqe *cqe)
{
	(void)dev;
	(void)cqe;
	if (res == -EINTR)
		return -ETIMEDOUT;	/* The driver aborted the command (note 6). */
	if (res < 0)
		return res;	/* The kernel's own error (mapping the buffer, ...). */
	if (res > 0)
		return nvme_status_to_err((uint16_t)res);
	/* Success carries no count: the SQE moved what prep said it would. */
	return (int)req->seg;
}

static bool pt_retryable(struct urt_dev *dev, int res)
{
	(void)dev;
	if (urt_err_is_nvme(res))
		return nvme_status_retryable(urt_err_nvme_status(res));
	return res == -EIO || res == -ENOMEM || res == -EBUSY || res == -ETIMEDOUT || res == -ENOLINK;
}

const struct urt_backend urt_backend_passthru = {
	.name = "passthru",
	.match = pt_match,
	.open = pt_open,
	.close = pt_close,
	.validate = pt_validate,
	.prep = pt_prep,
	.prep_rw = pt_prep_rw,
	.complete = pt_complete,
	.retryable = pt_retryable,
	.needs_big_sqe = true,
	.zero_is_whole = true,
	.cancellable = false,
};
