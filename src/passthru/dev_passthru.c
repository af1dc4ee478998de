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
 * 1. Commands are built by nvme_cmd_prep (nvme_cmd.c has the mapping of
 *    urt ops to NVMe commands); this file gives it the namespace, the
 *    ring's file slot and the registered buffer index.
 * 2. The kernel does not split passthrough commands, so prep never sends
 *    more than info.max_io_bytes (nvme_id.c); the runtime resubmits the
 *    rest, which gives MDTS splitting for READ/WRITE.
 * 3. prep returns the bytes the SQE transfers; the runtime keeps them in
 *    req->seg, and complete() turns a zero CQE result (NVMe success) into
 *    that count, because a passthrough CQE carries no byte count.
 * 4. A positive CQE result is the NVMe status field (phase dropped).  It
 *    becomes the errno the Linux driver gives on the block path
 *    (nvme_status_errno), and the status itself, with the opcode, goes to
 *    req->be[PT_BE_CMD] for retryable() and to the caller's
 *    urt_io.dev_status (urt_io_nvme_status).  prep clears dev_status, so it
 *    always describes the op's last command.
 * 4a. Retries: a status with DNR set is never retried; one with DNR clear
 *    is, after the runtime's backoff or the controller's CRDT[CRD] delay,
 *    whichever is longer.
 * 5. The DSM range must stay valid until the command completes; it lives
 *    in req->be[0..1], which the runtime keeps until the last CQE.
 * 6. The driver completes a command it had to abort (its timeout fired,
 *    or the controller was reset) with -EINTR; a controller that honours
 *    the driver's Abort completes the command with status 0/07h (Command
 *    Abort Requested), and urt never sends an Abort itself, so that status
 *    (and 3/71h, Command Aborted By Host) is a timeout too.  The runtime would resubmit
 *    -EINTR at once and without bound, so complete() reports it as
 *    -ETIMEDOUT: retried with backoff up to retry_max, and sticky on a
 *    flush, whose effect is then unknown.
 * 7. Passthrough commands cannot be cancelled once issued (cancellable is
 *    false): a deadline is a standalone timer, the caller hears -ETIMEDOUT
 *    and the request and its urt_buf stay owned until the real CQE.
 * 8. The command's timeout_ms is the device's nvme_timeout_ms; with
 *    deadline_abort, an op's deadline goes too (the sooner of the two,
 *    rounded up to whole ms), so the driver aborts the command when the
 *    deadline passes instead of letting it hold the buffer for its own
 *    io_timeout.  The abort comes back as note 6's -ETIMEDOUT, which
 *    dev/health.c counts; its reset is pt_reset (nvme_reset.c).
 * 9. A READ or WRITE of at most max_io_bytes without a deadline, on a
 *    healthy device, goes bare (src/runtime/io.c): pt_prep_rw fills its
 *    SQE without a request, and a 0 result is the whole transfer
 *    (zero_is_whole), so a successful command costs no request and no
 *    complete() call.  Any other result gives the op a request
 *    (req_from_bare, with be[] zeroed) and reaches pt_complete, which
 *    then takes the command's opcode from the op.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/nvme_ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "passthru/nvme_cmd.h"
#include "passthru/nvme_status.h"
#include "passthru/passthru.h"
#include "runtime/dev/backend.h"
#include "runtime/core.h"
#include "runtime/probe.h"
#include "urt/error.h"
#include "urt/nvme.h"

_Static_assert(sizeof(((struct urt_req *)0)->be) >= sizeof(struct nvme_dsm_range_le) + sizeof(uint64_t),
	       "the DSM range and the command word fit in the request's backend scratch");
_Static_assert(PT_BE_CMD * sizeof(uint64_t) >= sizeof(struct nvme_dsm_range_le) &&
		       PT_BE_CMD < sizeof(((struct urt_req *)0)->be) / sizeof(uint64_t),
	       "the command word lies past the DSM range, inside be[]");

static bool pt_match(const char *path)
{
	char name[32];

	return nvme_id_generic_name(path, name, sizeof(name));
}

static int pt_open(struct urt_dev *dev, const char *path, const struct urt_dev_opts *o)
{
	const struct urt_kernel_features *kf = probe_refresh();
	struct pt_dev *pt;
	bool no_cmd;
	char name[32];
	struct stat st;
	int fd, ret;

	/* Only the kernel's answer counts: a probe that met ENOMEM or EPERM has none (probe.c). */
	no_cmd = probe_answered(PROBE_OPCODES) && !kf->uring_cmd;
	if (no_cmd || probe_refused(PROBE_SQE128)) {
		/* An unanswered opcode probe reads as "no URING_CMD", so name what the kernel refused. */
		urt_set_error("%s: this kernel lacks %s, which NVMe passthrough needs (Linux 5.19+); use the block "
			      "device /dev/nvmeXnY with the file backend", path,
			      no_cmd ? "IORING_OP_URING_CMD" : "IORING_SETUP_SQE128|CQE32");
		return -EOPNOTSUPP;
	}
	if (stat(path, &st)) {
		ret = -errno;
		urt_set_error("%s: %s", path, urt_strerror(ret));
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
			urt_set_error("%s: %s", path, urt_strerror(ret));
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
	if (o->nvme_coalesce) {
		ret = nvme_coalesce_apply(fd, path, o->nvme_coalesce->threshold, o->nvme_coalesce->time_100us);
		if (ret)
			goto err_free;
	}
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

/*
 * The command's timeout in ms (0 = the driver's io_timeout): the device's
 * nvme_timeout_ms, or, with deadline_abort, what is left of the op's
 * deadline when that is sooner (note 8).
 */
static uint32_t pt_timeout_ms(const struct urt_dev *dev, struct urt_core *c, const struct urt_req *req)
{
	const struct pt_dev *pt = dev->priv;
	uint64_t left_ms, now;

	if (!dev->deadline_abort || !req->deadline_ns)
		return pt->timeout_ms;
	/* Rounded up, and at least 1: 0 would mean the driver's default. */
	now = core_now(c);
	left_ms = req->deadline_ns > now ? (req->deadline_ns - now + 999999) / 1000000 : 1;
	if (left_ms == 0)
		left_ms = 1;
	if (pt->timeout_ms && pt->timeout_ms < left_ms)
		return pt->timeout_ms;
	return left_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)left_ms;
}

/* The namespace on core c, as nvme_cmd_prep wants it, with the command's timeout. */
static struct nvme_cmd_target pt_target(const struct urt_dev *dev, struct urt_core *c, uint32_t timeout_ms)
{
	const struct pt_dev *pt = dev->priv;
	int slot = dev_fixed_slot(dev, c);

	return (struct nvme_cmd_target){
		.fd = slot >= 0 ? slot : dev->fd,
		.fixed_file = slot >= 0,
		.nsid = dev->info.nsid,
		.lba_shift = pt->geo.lba_shift,
		.timeout_ms = timeout_ms,
		.max_io_bytes = dev->info.max_io_bytes,
		.volatile_cache = dev->info.volatile_cache,
	};
}

/*
 * A whole READ or WRITE without a request (note 9): the same command as
 * pt_prep's, with the device's timeout (a bare op has no deadline).
 */
static void pt_prep_rw(struct urt_dev *dev, struct urt_core *c, struct io_uring_sqe *sqe, unsigned op, void *buf,
		       uint64_t len, uint64_t off, unsigned flags)
{
	const struct pt_dev *pt = dev->priv;
	struct nvme_cmd_target t = pt_target(dev, c, pt->timeout_ms);
	struct nvme_cmd_op o = {
		.op = op,
		.flags = flags,
		.buf = buf,
		.len = len,
		.off = off,
		.buf_index = dev_buf_index(c, buf, len),
	};
	int64_t n = nvme_cmd_prep(&t, &o, sqe);

	URT_ASSERT(n == (int64_t)len);
	(void)n;
}

static int64_t pt_prep(struct urt_dev *dev, struct urt_core *c, struct urt_req *req, struct io_uring_sqe *sqe)
{
	struct nvme_cmd_target t = pt_target(dev, c, pt_timeout_ms(dev, c, req));
	struct nvme_cmd_op op = {
		.op = req->op,
		.flags = req->flags,
		.buf = req->buf,
		.len = req->len,
		.off = req->off,
		.iov = req->iov,
		.nr_iov = req->nr_iov,
		.buf_index = -1,
		.range = (struct nvme_dsm_range_le *)req->be,
	};
	int64_t n;
	int opcode;

	if (req->op == URT_OP_READ || req->op == URT_OP_WRITE)
		op.buf_index = dev_buf_index(c, req->buf, req->len < t.max_io_bytes ? req->len : t.max_io_bytes);
	n = nvme_cmd_prep(&t, &op, sqe);
	if (n < 0)
		return n;
	/* Note 4: the command word for complete(), and no status yet for the caller. */
	opcode = nvme_cmd_opcode(sqe);
	req->be[PT_BE_CMD] = opcode >= 0 ? (uint64_t)opcode << 16 : 0;
	if (req->io)
		req->io->dev_status = 0;
	return n;
}

static int pt_complete(struct urt_dev *dev, struct urt_req *req, int32_t res, const struct io_uring_cqe *cqe)
{
	uint16_t status;
	int err;

	(void)dev;
	(void)cqe;
	req->be[PT_BE_CMD] &= ~(uint64_t)0xffff;
	/* A bare op's request (note 9): its prep never ran; its command was this. */
	if (!req->be[PT_BE_CMD] && (req->op == URT_OP_READ || req->op == URT_OP_WRITE))
		req->be[PT_BE_CMD] = (uint64_t)(req->op == URT_OP_READ ? PT_IO_READ : PT_IO_WRITE) << 16;
	if (res == -EINTR)
		return -ETIMEDOUT;	/* The driver aborted the command (note 6). */
	if (res < 0)
		return res;	/* The kernel's own error (mapping the buffer, ...). */
	if (res > 0) {
		/* Note 4: the errno of the block path, the status kept beside it. */
		status = (uint16_t)(res & 0x7fff);
		req->be[PT_BE_CMD] |= status;
		if (req->io)
			req->io->dev_status = PT_IO_STATUS(status, (req->be[PT_BE_CMD] >> 16) & 0xff);
		if ((status & NVME_STATUS_CODE_MASK) == PT_STATUS_ABORT_REQUESTED ||
		    (status & NVME_STATUS_CODE_MASK) == PT_STATUS_HOST_ABORTED)
			return -ETIMEDOUT;	/* The driver's timeout handler aborted it (note 6). */
		err = nvme_status_errno(status);
		if (err)
			return err;
	}
	/* Success carries no count: the SQE moved what prep said it would. */
	return (int)req->seg;
}

static bool pt_retryable(struct urt_dev *dev, const struct urt_req *req, int res, uint64_t *delay_ns)
{
	const struct pt_dev *pt = dev->priv;
	uint16_t status = (uint16_t)(req->be[PT_BE_CMD] & 0x7fff);
	uint64_t crd_ns;

	if (!status)	/* No NVMe status: the kernel's errno decides, as for any device. */
		return res == -EIO || res == -ENOMEM || res == -EBUSY || res == -ETIMEDOUT || res == -ENOLINK;
	if (!nvme_status_retryable(status))
		return false;	/* DNR: the same command will fail again. */
	crd_ns = nvme_status_retry_delay_ns(status, pt->geo.crdt);
	if (crd_ns > *delay_ns)
		*delay_ns = crd_ns;	/* The controller asked for a longer pause (CRD). */
	return true;
}

/* The recovery's reset (dev/health.c): the controller behind this namespace. */
static int pt_reset(struct urt_dev *dev, uint32_t wait_ms)
{
	const struct pt_dev *pt = dev->priv;

	return nvme_reset_wait(pt->geo.ctrl_name, dev->path, wait_ms);
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
	.reset = pt_reset,
	.needs_big_sqe = true,
	.zero_is_whole = true,
	.cancellable = false,
};
