/*
 * File and block-device backend: io_uring read/write/fsync/fallocate.
 *
 * What open discovers:
 *   alignment       statx(STATX_DIOALIGN) for files (Linux 6.1+), else the
 *                   logical block size; BLKSSZGET/BLKPBSZGET for devices.
 *   write cache     /sys/dev/block/M:m/queue/write_cache ("write back"
 *                   means a volatile cache that a flush must drain); for a
 *                   file, the queue of the device under its file system.
 *   FUA             queue/fua: 1 means the device honours FUA natively;
 *                   otherwise the kernel emulates RWF_DSYNC with a flush.
 *   polling         queue/io_poll: 1 when the device has poll queues.
 *
 * FUA here is RWF_DSYNC on the write: on a block device or an O_DIRECT file
 * that is a FUA write, or a write plus a flush when the device lacks FUA.
 */
#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "base/sysfs.h"
#include "runtime/dev/backend.h"
#include "runtime/core.h"
#include "runtime/probe.h"

#ifndef STATX_DIOALIGN
#define STATX_DIOALIGN 0x00002000U
#endif

static bool file_match(const char *path)
{
	(void)path;
	return true;
}

/* Read a sysfs attribute of the block queue behind (major, minor). */
static int queue_attr(unsigned maj, unsigned min, const char *attr, char *buf, size_t len)
{
	char path[128];
	int ret;

	/* A partition has no queue/ of its own: its parent directory does. */
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/queue/%s", maj, min, attr);
	ret = urt_sysfs_line(path, buf, len);
	if (ret == -ENOENT) {
		snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/../queue/%s", maj, min, attr);
		ret = urt_sysfs_line(path, buf, len);
	}
	return ret;
}

static void file_queue_info(struct urt_dev_info *in, dev_t d)
{
	char v[64];

	if (queue_attr(major(d), minor(d), "write_cache", v, sizeof(v)) == 0)
		in->volatile_cache = strcmp(v, "write back") == 0;
	else
		in->volatile_cache = true;	/* Unknown: assume the worst, flushes stay on. */
	if (queue_attr(major(d), minor(d), "fua", v, sizeof(v)) == 0)
		in->fua = v[0] == '1';
	if (queue_attr(major(d), minor(d), "io_poll", v, sizeof(v)) == 0)
		in->poll_capable = v[0] == '1';
	if (!in->block_bytes && queue_attr(major(d), minor(d), "logical_block_size", v, sizeof(v)) == 0)
		in->block_bytes = (uint32_t)strtoul(v, NULL, 10);
	if (!in->phys_block_bytes && queue_attr(major(d), minor(d), "physical_block_size", v, sizeof(v)) == 0)
		in->phys_block_bytes = (uint32_t)strtoul(v, NULL, 10);
}

static int file_open(struct urt_dev *dev, const char *path, const struct urt_dev_opts *o)
{
	struct urt_dev_info *in = &dev->info;
	int flags = (o->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	struct statx stx;
	struct stat st;
	int fd, ret;

	if (stat(path, &st)) {
		ret = -errno;
		if (ret != -ENOENT || !o->create) {
			urt_set_error("%s: %s", path, strerror(-ret));
			return ret;
		}
		flags |= O_CREAT;
	} else if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		urt_set_error("%s: not a regular file or block device%s", path,
			      S_ISCHR(st.st_mode) ? " (NVMe generic devices /dev/ngXnY use the passthru backend)" : "");
		return -EINVAL;
	}
	if (o->direct)
		flags |= O_DIRECT;
	fd = open(path, flags, 0644);
	if (fd < 0) {
		ret = -errno;
		if (ret == -EINVAL && o->direct)
			urt_set_error("%s: the file system does not support O_DIRECT; open with direct = false "
				      "(page cache)", path);
		else
			urt_set_error("%s: %s", path, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st)) {
		ret = -errno;
		goto err_close;
	}
	if (S_ISREG(st.st_mode) && o->create && (uint64_t)st.st_size < o->size_bytes) {
		if (st.st_size > 0 && !(flags & O_CREAT)) {
			/*
			 * Growing a file that already holds data would hide a
			 * truncation (a partial copy, a full disk) from the store
			 * above, which would then read zeros where its data was.
			 */
			urt_set_error("%s has %llu bytes, fewer than the %llu asked for: it may be "
				      "truncated, and an existing file is never grown (open it without "
				      "a size, or delete it to create a new one)", path,
				      (unsigned long long)st.st_size, (unsigned long long)o->size_bytes);
			ret = -EINVAL;
			goto err_close;
		}
		if (ftruncate(fd, (off_t)o->size_bytes)) {
			ret = -errno;
			urt_set_error("%s: extending to %llu bytes: %s", path, (unsigned long long)o->size_bytes,
				      strerror(-ret));
			goto err_close;
		}
		st.st_size = (off_t)o->size_bytes;
	}
	in->direct = o->direct;
	if (S_ISBLK(st.st_mode)) {
		uint64_t size = 0;
		int lbs = 0, pbs = 0;

		in->is_blockdev = true;
		if (ioctl(fd, BLKGETSIZE64, &size) || ioctl(fd, BLKSSZGET, &lbs) || ioctl(fd, BLKPBSZGET, &pbs)) {
			ret = -errno;
			urt_set_error("%s: block device ioctl: %s", path, strerror(-ret));
			goto err_close;
		}
		in->size_bytes = size;
		in->block_bytes = (uint32_t)lbs;
		in->phys_block_bytes = (uint32_t)pbs;
		in->mem_align = (uint32_t)lbs;
		in->off_align = (uint32_t)lbs;
		file_queue_info(in, st.st_rdev);
	} else {
		in->size_bytes = (uint64_t)st.st_size;
		file_queue_info(in, st.st_dev);
		if (!in->block_bytes)
			in->block_bytes = 512;
		in->mem_align = in->block_bytes;
		in->off_align = in->block_bytes;
		if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 && (stx.stx_mask & STATX_DIOALIGN)) {
			if (o->direct && stx.stx_dio_offset_align == 0) {
				urt_set_error("%s: the file system reports no O_DIRECT support; open with direct = false",
					      path);
				ret = -EINVAL;
				goto err_close;
			}
			if (stx.stx_dio_offset_align) {
				in->mem_align = stx.stx_dio_mem_align;
				in->off_align = stx.stx_dio_offset_align;
			}
		}
	}
	if (!in->phys_block_bytes)
		in->phys_block_bytes = in->block_bytes;
	in->write_zeroes = true;	/* fallocate(ZERO_RANGE); a file system without it says EOPNOTSUPP. */
	in->deallocate = true;		/* fallocate(PUNCH_HOLE). */
	in->max_io_bytes = 1u << 30;
	if (!o->direct)
		in->poll_capable = false;	/* Buffered I/O cannot be polled. */
	dev->fd = fd;
	return 0;

err_close:
	close(fd);
	return ret;
}

static void file_close(struct urt_dev *dev)
{
	if (dev->fd >= 0)
		close(dev->fd);
	dev->fd = -1;
}

/*
 * The registered buffer holding every entry of iov, or -1: then a vectored
 * op can be READV_FIXED/WRITEV_FIXED (kernel 6.15, probed), which spares
 * the kernel pinning the pages of each entry.
 */
static int file_iov_index(const struct urt_core *c, const struct iovec *iov, unsigned nr)
{
	int idx;

	if (!probe_features()->rw_vec_fixed)
		return -1;
	idx = dev_buf_index(c, iov[0].iov_base, iov[0].iov_len);
	for (unsigned i = 1; i < nr && idx >= 0; i++)
		if (dev_buf_index(c, iov[i].iov_base, iov[i].iov_len) != idx)
			idx = -1;
	return idx;
}

static int64_t file_prep(struct urt_dev *dev, struct urt_core *c, struct urt_req *req, struct io_uring_sqe *sqe)
{
	uint64_t len = req->len < dev->info.max_io_bytes ? req->len : dev->info.max_io_bytes;
	int slot, fd, idx;
	int64_t n = 0;

	if (req->op == URT_OP_READ || req->op == URT_OP_WRITE) {
		/* req.c counts the SQE (ring_count_dev_sqe). */
		dev_prep_plain_rw(c, dev, sqe, req->op, req->buf, len, req->off, req->flags, false);
		return (int64_t)len;
	}
	slot = dev_fixed_slot(dev, c);
	fd = slot >= 0 ? slot : dev->fd;
	switch (req->op) {
	case URT_OP_READV:
	case URT_OP_WRITEV:
		if (req->op == URT_OP_READV)
			io_uring_prep_readv(sqe, fd, req->iov, req->nr_iov, req->off);
		else
			io_uring_prep_writev(sqe, fd, req->iov, req->nr_iov, req->off);
		idx = file_iov_index(c, req->iov, req->nr_iov);
		if (idx >= 0) {
			/* Same SQE layout as READV/WRITEV, plus the buffer's index. */
			sqe->opcode = req->op == URT_OP_READV ? URT_IORING_OP_READV_FIXED : URT_IORING_OP_WRITEV_FIXED;
			sqe->buf_index = (uint16_t)idx;
		}
		if (req->op == URT_OP_WRITEV && (req->flags & URT_IO_FUA))
			sqe->rw_flags = RWF_DSYNC;
		for (unsigned i = 0; i < req->nr_iov; i++)
			n += (int64_t)req->iov[i].iov_len;
		break;
	case URT_OP_FSYNC:
		io_uring_prep_fsync(sqe, fd, 0);
		break;
	case URT_OP_FLUSH:
		io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
		break;
	case URT_OP_WRITE_ZEROES:
		io_uring_prep_fallocate(sqe, fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, req->off, req->len);
		break;
	case URT_OP_DEALLOCATE:
		io_uring_prep_fallocate(sqe, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, req->off, req->len);
		break;
	default:
		return -EOPNOTSUPP;
	}
	/* After the prep helper, which zeroes sqe->flags. */
	if (slot >= 0)
		sqe->flags |= IOSQE_FIXED_FILE;
	return n;
}

const struct urt_backend urt_backend_file = {
	.name = "file",
	.match = file_match,
	.open = file_open,
	.close = file_close,
	.prep = file_prep,
	.plain_rw = true,
	.cancellable = true,
};
