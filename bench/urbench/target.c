/*
 * Target checks and creation.
 *
 * The order matters: the mode is checked against the kind of file first
 * (passthrough needs an NVMe char device, the others refuse one), then the
 * size, then the O_DIRECT alignment of --bs, so that the one line printed
 * names the first thing to change.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "urbench/job.h"
#include "urbench/target.h"

#ifndef STATX_DIOALIGN
#define STATX_DIOALIGN 0x00002000U
#endif

#define FILL_CHUNK (1u << 20)	/* Bytes per write while filling a new file. */

static int fail(char *err, size_t errlen, int ret, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return ret;
}

bool ub_path_is_nvme_generic(const char *path)
{
	char copy[UB_PATH_MAX];
	struct stat st;
	const char *base;

	if (stat(path, &st) || !S_ISCHR(st.st_mode))
		return false;
	snprintf(copy, sizeof(copy), "%s", path);
	base = basename(copy);
	return strncmp(base, "ng", 2) == 0;
}

/* Create path with size bytes of the data signature. */
static int target_create(const struct ub_opts *o, char *err, size_t errlen)
{
	bool direct = o->direct && o->size_bytes % 4096 == 0;
	uint64_t off;
	void *buf;
	int fd, ret = 0;

	fd = open(o->target, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | (direct ? O_DIRECT : 0), 0644);
	if (fd < 0 && direct && errno == EINVAL) {
		direct = false;
		fd = open(o->target, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	}
	if (fd < 0)
		return fail(err, errlen, -errno, "cannot create %s: %s (check the directory exists and is writable)",
			    o->target, strerror(errno));
	buf = aligned_alloc(4096, FILL_CHUNK);
	if (!buf) {
		ret = -ENOMEM;
		goto err_close;
	}
	for (off = 0; off < o->size_bytes; off += FILL_CHUNK) {
		uint64_t n = o->size_bytes - off < FILL_CHUNK ? o->size_bytes - off : FILL_CHUNK;
		ssize_t w;

		ub_pattern_fill(buf, (uint32_t)(n & ~7ull), off);
		if (n & 7)
			memset((char *)buf + (n & ~7ull), 0, n & 7);
		w = pwrite(fd, buf, n, (off_t)off);
		if (w != (ssize_t)n) {
			ret = w < 0 ? -errno : -EIO;
			fail(err, errlen, ret, "filling %s: %s (is the file system full? use a smaller --size)",
			     o->target, strerror(-ret));
			goto err_free;
		}
	}
	if (fdatasync(fd)) {
		ret = -errno;
		fail(err, errlen, ret, "filling %s: fdatasync: %s", o->target, strerror(-ret));
		goto err_free;
	}
	/* Drop the filled pages, so a buffered run starts from a cold cache. */
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	free(buf);
	close(fd);
	return 0;

err_free:
	free(buf);
err_close:
	close(fd);
	unlink(o->target);
	return ret;
}

/*
 * path is a symbolic link whose destination is missing: creating the
 * target would fail with EEXIST (O_EXCL does not follow links), which
 * names neither the link nor where it points.
 */
static int dangling_link(const char *path, char *err, size_t errlen)
{
	char dest[UB_PATH_MAX];
	ssize_t n = readlink(path, dest, sizeof(dest) - 1);

	if (n < 0)
		return fail(err, errlen, -ENOENT, "%s is a dangling symbolic link: fix or remove the link, or give "
			    "another target", path);
	dest[n] = '\0';
	return fail(err, errlen, -ENOENT, "%s is a dangling symbolic link to %s, which does not exist: fix or "
		    "remove the link, or give another target", path, dest);
}

static void dio_align(int fd, const struct stat *st, uint32_t *mem, uint32_t *off)
{
	struct statx stx;
	int lbs = 0;

	*mem = 512;
	*off = 512;
	if (S_ISBLK(st->st_mode)) {
		if (ioctl(fd, BLKSSZGET, &lbs) == 0 && lbs > 0) {
			*mem = (uint32_t)lbs;
			*off = (uint32_t)lbs;
		}
		return;
	}
	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 && (stx.stx_mask & STATX_DIOALIGN) &&
	    stx.stx_dio_offset_align) {
		*mem = stx.stx_dio_mem_align;
		*off = stx.stx_dio_offset_align;
	}
}

int ub_target_open(const struct ub_opts *o, const struct ub_mode *modes, unsigned nmodes, struct ub_target *t,
		   bool *created, char *err, size_t errlen)
{
	bool passthru = false, other = false;
	char name[96];
	struct stat st;
	uint64_t size;
	int fd, ret;

	memset(t, 0, sizeof(*t));
	*created = false;
	t->kind = o->target_kind;
	t->path = o->target;
	t->mem_align = 1;
	t->off_align = 1;
	for (unsigned i = 0; i < nmodes; i++) {
		if (modes[i].engine == UB_ENGINE_PASSTHRU) {
			passthru = true;
			ub_mode_name(&modes[i], name, sizeof(name));
		} else {
			other = true;
		}
	}
	if (t->kind == UB_TARGET_NOP) {
		t->span_bytes = o->bs;
		return 0;
	}
	if (t->kind == UB_TARGET_SIM) {
		t->span_bytes = o->size_bytes - o->size_bytes % o->bs;
		return 0;
	}
	if (stat(o->target, &st)) {
		if (errno != ENOENT)
			return fail(err, errlen, -errno, "%s: %s", o->target, strerror(errno));
		if (lstat(o->target, &st) == 0 && S_ISLNK(st.st_mode))
			return dangling_link(o->target, err, errlen);
		if (passthru)
			return fail(err, errlen, -ENOENT, "%s does not exist: --mode %s needs an NVMe generic char "
				    "device /dev/ngXnY (ls /dev/ng*)", o->target, name);
		if (strncmp(o->target, "/dev/", 5) == 0)
			return fail(err, errlen, -ENOENT, "%s does not exist: check the device name (lsblk)", o->target);
		ret = target_create(o, err, errlen);
		if (ret)
			return ret;
		*created = true;
		if (stat(o->target, &st))
			return fail(err, errlen, -errno, "%s: %s", o->target, strerror(errno));
	}
	if (S_ISCHR(st.st_mode)) {
		if (!ub_path_is_nvme_generic(o->target))
			return fail(err, errlen, -ENODEV, "%s is a char device but not an NVMe generic device "
				    "(/dev/ngXnY): give a file, block device or /dev/ngXnY", o->target);
		if (other)
			return fail(err, errlen, -EINVAL, "%s is an NVMe generic char device: use --mode passthru "
				    "(or the block device /dev/nvmeXnY with psync/uring)", o->target);
		t->is_chardev = true;
		/* The passthrough backend reports the capacity when it opens the device (engine_uring.c). */
		t->span_bytes = o->size_given ? o->size_bytes - o->size_bytes % o->bs : UINT64_MAX - UINT64_MAX % o->bs;
		return 0;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return fail(err, errlen, -EINVAL, "%s is neither a regular file nor a block device", o->target);
	if (passthru)
		return fail(err, errlen, -EINVAL, "%s is not an NVMe generic char device: --mode %s needs "
			    "/dev/ngXnY; use --mode uring for files and block devices", o->target, name);
	fd = open(o->target, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(err, errlen, -errno, "cannot open %s: %s", o->target, strerror(errno));
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &size)) {
			ret = -errno;
			close(fd);
			return fail(err, errlen, ret, "%s: BLKGETSIZE64: %s", o->target, strerror(-ret));
		}
	} else {
		size = (uint64_t)st.st_size;
	}
	if (o->direct)
		dio_align(fd, &st, &t->mem_align, &t->off_align);
	close(fd);
	if (size < o->bs)
		return fail(err, errlen, -EINVAL, "%s holds %llu bytes, less than one --bs %u block: use a smaller "
			    "--bs or a bigger file", o->target, (unsigned long long)size, o->bs);
	if (o->direct && o->bs % t->off_align)
		return fail(err, errlen, -EINVAL, "--bs %u is not a multiple of %u, the O_DIRECT block size of %s: "
			    "use --bs %u or a multiple, or --buffered", o->bs, t->off_align, o->target,
			    t->off_align);
	/* Like fio's size=, --size bounds the region used on an existing target. */
	if (o->size_given && !*created && o->size_bytes < size)
		size = o->size_bytes;
	if (size < o->bs)
		return fail(err, errlen, -EINVAL, "--size %llu is less than one --bs %u block", (unsigned long long)size,
			    o->bs);
	t->span_bytes = size - size % o->bs;
	return 0;
}
