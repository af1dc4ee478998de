/*
 * pread/pwrite baseline backend, for benchmarks.
 *
 * The op runs synchronously inside prep, on the reactor thread, exactly as
 * a plain blocking program would; the ring only carries a NOP so that the
 * completion follows the normal path.  This is the "read/write" side of
 * every comparison, so it must stay as simple as the code it stands for.
 * It shares the file backend's open (same alignment and cache discovery).
 */
#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <unistd.h>

#include "runtime/dev/backend.h"
#include "runtime/core.h"

static bool psync_match(const char *path)
{
	(void)path;
	return false;	/* Only by name. */
}

static int psync_open(struct urt_dev *dev, const char *path, const struct urt_dev_opts *o)
{
	return urt_backend_file.open(dev, path, o);
}

static void psync_close(struct urt_dev *dev)
{
	urt_backend_file.close(dev);
}

static int64_t psync_prep(struct urt_dev *dev, struct urt_core *c, struct urt_req *req,
			  struct io_uring_sqe *sqe)
{
	ssize_t n;

	(void)c;
	switch (req->op) {
	case URT_OP_READ:
		n = pread(dev->fd, req->buf, req->len, (off_t)req->off);
		break;
	case URT_OP_WRITE:
		n = pwrite(dev->fd, req->buf, req->len, (off_t)req->off);
		if (n >= 0 && (req->flags & URT_IO_FUA) && fdatasync(dev->fd))
			n = -1;
		break;
	case URT_OP_READV:
		n = preadv(dev->fd, req->iov, req->nr_iov, (off_t)req->off);
		break;
	case URT_OP_WRITEV:
		n = pwritev(dev->fd, req->iov, req->nr_iov, (off_t)req->off);
		break;
	case URT_OP_FSYNC:
		n = fsync(dev->fd);
		break;
	case URT_OP_FLUSH:
		n = fdatasync(dev->fd);
		break;
	case URT_OP_WRITE_ZEROES:
		n = fallocate(dev->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)req->off, (off_t)req->len);
		break;
	case URT_OP_DEALLOCATE:
		n = fallocate(dev->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)req->off, (off_t)req->len);
		break;
	default:
		return -EOPNOTSUPP;
	}
	req->be[0] = (uint64_t)(n < 0 ? -errno : n);
	io_uring_prep_nop(sqe);
	return (int64_t)req->len;
}

static int psync_complete(struct urt_dev *dev, struct urt_req *req, int32_t res, const struct io_uring_cqe *cqe)
{
	(void)dev;
	(void)res;
	(void)cqe;
	return (int)(int64_t)req->be[0];
}

const struct urt_backend urt_backend_psync = {
	.name = "psync",
	.match = psync_match,
	.open = psync_open,
	.close = psync_close,
	.prep = psync_prep,
	.complete = psync_complete,
	.cancellable = false,
};
