/*
 * The key-value store's device layout: the store header, the plan that
 * places the shard regions, and the creation of a new data file.
 *
 * Design notes.
 *
 *   device: | store header (4 KiB) | ... | shard 0 region | shard 1 region | ...
 *                                    1 MiB
 *   region: | superblocks (8 KiB) | log | page 0 (shard meta) | tree pages ... |
 *
 * Each region is one page-store shard (urt_ps_open with region_offset and
 * region_bytes; docs/format.md has its inside).  Invariants:
 *  1. The header fills one sector at offset 0 and the rest of the first
 *     4 KiB is zero.  It is written once, then flushed, so a crash leaves
 *     it whole or blank, never half written.
 *  2. A valid header's regions fit the device: region_offset +
 *     shard_count * region_bytes <= device size.  Regions are 1 MiB
 *     aligned, and each holds the superblocks, a log of whole 4 KiB blocks
 *     and at least KV_REGION_PAGES_MIN pages (kv_layout_plan).
 *  3. A device whose first 4 KiB is neither blank nor a valid header is
 *     never written to (URT_E_BADFORMAT): it may hold someone's data.  Nor
 *     is a blank-headed one whose first MiB holds data (an ISO image, a ZFS
 *     label, a file system, a file with only its first block zeroed), or a
 *     block device whose last MiB does (GPT backup, MD superblocks):
 *     kv_layout_claim reads those before a header may be written.  Zeroing
 *     the first MiB (and a device's last) is how a user says "reuse it", as
 *     wipefs does for mkfs.
 *  4. One store at a time: an exclusive flock on the file for the store's
 *     life (taken by kv_layout_file_create through the descriptor that
 *     created it, or by kv_layout_claim on an existing file), so two opens
 *     of one file never both write it.
 *  5. The device is the locked file: kv_layout_same_file compares the
 *     device's descriptor with the lock's (st_dev, st_ino) before anything
 *     is written, so a file moved over the path between the two opens is
 *     refused, never written unlocked or unchecked.
 *
 * States of a store's device and the function performing each transition:
 *
 *   no file --kv_layout_file_create--> blank (sized, superblocks and logs
 *       zero, fsynced), locked by this store from its creation
 *   any existing --kv_layout_claim--> locked by this store (a blank one
 *       checked to hold no data: invariant 3)
 *   locked --kv_layout_same_file--> the device opened from the path is
 *       the locked file (else the open fails, nothing written)
 *   blank --kv_layout_load (create set)--> shards' superblock slots zeroed
 *       and flushed, then the header written (flushed)
 *   header written --kv_shard_open (shard.c), per shard--> page 0 formatted
 *
 * A crash between two steps is resumed by the next open: a blank file gets
 * its header, and a shard whose page 0 is still zero is formatted then.
 * Block devices and caller-opened devices start at "blank" (or later).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kv/kv_impl.h"
#include "kv/layout.h"
#include "base/clock.h"
#include "base/error.h"
#include "urt/buf.h"
#include "urt/dev.h"
#include "urt/error.h"

#define KV_LOG_MAX (1ull << 30)		/* Largest automatic log per shard. */
#define KV_LOG_BY_CACHE_MAX (1ull << 30)	/* Largest log the cache rule asks for. */
#define KV_REGION_PAGES_MIN 256u	/* Smallest page region a shard may have. */
/*
 * Smallest log of a shard.  A log batch is at most a quarter of the log
 * (ps.c) and must hold the pages of the largest tree transaction (a split
 * up the tree, the chain of a big value: kv_tx_pages, KV_CHAIN_TX_PAGES
 * in shard.c); a 64 KiB batch does, and 256 KiB is the smallest log the
 * urkv tests run (test_urkv_ops.sh).  Smaller logs were accepted at plan
 * time and then refused by the page store after the header was written,
 * leaving a file no later open could use.
 */
#define KV_LOG_MIN (256u << 10)
#define KV_SUPERBLOCKS_BYTES 8192u	/* The page store's two 4 KiB superblock slots. */
#define KV_ZERO_CHUNK (1u << 20)	/* Unit of zero-filling a new file's logs; the MiB checked for data. */

int kv_layout_plan(const struct urt_kv_opts *o, uint64_t dev_bytes, unsigned shards,
		   struct kv_store_hdr *h)
{
	uint32_t page_size = o->page_size ? o->page_size : 4096;
	uint64_t region, log, pages_min;

	if (dev_bytes < 2ull * KV_REGION_ALIGN) {
		urt_set_error("kv: the device has %llu bytes, too few for a store",
			      (unsigned long long)dev_bytes);
		return -EINVAL;
	}
	region = (dev_bytes - KV_REGION_ALIGN) / shards / KV_REGION_ALIGN * KV_REGION_ALIGN;
	pages_min = KV_SUPERBLOCKS_BYTES + (uint64_t)KV_REGION_PAGES_MIN * page_size;
	log = o->log_bytes;
	if (!log) {
		/*
		 * An eighth of the region, and at least twice the shard's share
		 * of the cache (up to half the region, or 1 GiB).  The first
		 * change of a page after a checkpoint is logged as a full image
		 * (wal.c, rule D1), so a log smaller than the pages a workload
		 * keeps changing fills with images, checkpoints again, and
		 * writes kilobytes per small change (docs/engine.md, "Log
		 * size").  The cache is the best guess at format time of how
		 * many pages stay hot.
		 */
		uint64_t by_cache = o->cache_bytes / shards;
		/* What the smallest page region leaves (0 when it does not fit: refused below). */
		uint64_t room = region > pages_min ? region - pages_min : 0;

		/* Doubled without wrapping: a share above 2^63 asks for the most. */
		by_cache = by_cache > UINT64_MAX / 2 ? UINT64_MAX : by_cache * 2;
		if (by_cache > region / 2)
			by_cache = region / 2;
		/* A guess, so never more than fits beside the smallest page region. */
		if (by_cache > room)
			by_cache = room;
		if (by_cache > KV_LOG_BY_CACHE_MAX)
			by_cache = KV_LOG_BY_CACHE_MAX;
		log = region / 8;
		if (log < by_cache)
			log = by_cache;
		if (log < 4ull * o->batch_bytes_max)
			log = 4ull * o->batch_bytes_max;
		if (log > KV_LOG_MAX)
			log = KV_LOG_MAX;
	}
	if (log < KV_LOG_MIN) {
		/* Checked here, before anything is written: a store formatted with it could never open. */
		urt_set_error("kv: log_bytes %llu is below the smallest log of a shard, %u KiB (0 sizes "
			      "the log automatically)", (unsigned long long)log, KV_LOG_MIN >> 10);
		return -EINVAL;
	}
	log = log / 4096 * 4096;
	/* Compared without adding to log, which an explicit log_bytes near 2^64 would wrap. */
	if (region < pages_min || log > region - pages_min) {
		urt_set_error("kv: %llu bytes give each of %u shards %llu bytes, too few for a "
			      "%llu-byte log and %u pages", (unsigned long long)dev_bytes, shards,
			      (unsigned long long)region, (unsigned long long)log, KV_REGION_PAGES_MIN);
		return -EINVAL;
	}
	h->shard_count = shards;
	h->region_offset = KV_REGION_ALIGN;
	h->region_bytes = region;
	h->log_bytes = log;
	h->page_size = page_size;
	return 0;
}

static uint64_t hdr_check(const struct kv_store_hdr *h)
{
	return kv_hash64(h, offsetof(struct kv_store_hdr, check), KV_HDR_MAGIC);
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

int kv_layout_hdr_decode(const void *buf, uint64_t dev_bytes, uint32_t page_size,
			 struct kv_store_hdr *out)
{
	struct kv_store_hdr h;

	memcpy(&h, buf, sizeof(h));
	if (h.magic != KV_HDR_MAGIC || h.check != hdr_check(&h)) {
		if (all_zero(buf, KV_HDR_BYTES))
			return KV_HDR_BLANK;
		urt_set_error("kv: the device holds something that is not a urt kv store");
		return URT_E_BADFORMAT;
	}
	if (h.version != KV_HDR_VERSION) {
		urt_set_error("kv: the store is in format version %u, this build reads version %u "
			      "only (the B+tree node format changed; no upgrade in place: dump the "
			      "data with the build that wrote it and load it into a new store)",
			      h.version, KV_HDR_VERSION);
		return URT_E_VERSION;
	}
	if (h.shard_count == 0 || h.shard_count > URT_KV_SHARDS_MAX) {
		urt_set_error("kv: the store header describes %u shards (1 to %u are possible)",
			      h.shard_count, URT_KV_SHARDS_MAX);
		return URT_E_CORRUPT;
	}
	if (h.region_offset + h.shard_count * h.region_bytes > dev_bytes) {
		/* The common cause: a file cut short (a partial copy, a full disk). */
		urt_set_error("kv: the data file is truncated: its store header says it has %llu "
			      "bytes (%u shards of %llu bytes from offset %llu), the device has %llu",
			      (unsigned long long)(h.region_offset + h.shard_count * h.region_bytes),
			      h.shard_count, (unsigned long long)h.region_bytes,
			      (unsigned long long)h.region_offset, (unsigned long long)dev_bytes);
		return URT_E_CORRUPT;
	}
	if (page_size && h.page_size != page_size) {
		urt_set_error("kv: the store has %u-byte pages, %u were asked for", h.page_size,
			      page_size);
		return -EINVAL;
	}
	*out = h;
	return 0;
}

void kv_layout_hdr_encode(struct kv_store_hdr *h, void *buf)
{
	h->magic = KV_HDR_MAGIC;
	h->version = KV_HDR_VERSION;
	h->check = hdr_check(h);
	memset(buf, 0, KV_HDR_BYTES);
	memcpy(buf, h, sizeof(*h));
}

/* Writes a new, flushed header for `shards` shards on the blank device dev; buf is scratch. */
static int hdr_write_new(struct urt_dev *dev, const struct urt_kv_opts *o, unsigned shards,
			 uint8_t *buf, struct kv_store_hdr *h)
{
	ssize_t n;
	int ret;

	if (!o->create) {
		urt_set_error("kv: no store on the device (create not set)");
		return URT_E_BADFORMAT;
	}
	memset(h, 0, sizeof(*h));
	ret = kv_layout_plan(o, urt_dev_info(dev)->size_bytes, shards, h);
	if (ret)
		return ret;
	/* Never 0: that is the store_id of a zeroed meta page. */
	do {
		if (getrandom(&h->store_id, sizeof(h->store_id), 0) != sizeof(h->store_id))
			return -errno;
	} while (h->store_id == 0);
	h->created_ns = urt_clock_wall_ns();
	/*
	 * The header gives the shard regions to this store: blank their
	 * superblock slots first, flushed before the header, so that the page
	 * store formats them (it creates only over zeroed slots, never over
	 * other data) even on a device that held something there before.
	 */
	memset(buf, 0, KV_HDR_BYTES);
	for (unsigned s = 0; s < h->shard_count; s++) {
		uint64_t off = h->region_offset + (uint64_t)s * h->region_bytes;

		for (uint32_t b = 0; b < KV_SUPERBLOCKS_BYTES; b += KV_HDR_BYTES) {
			n = urt_write(dev, buf, KV_HDR_BYTES, off + b);
			if (n != KV_HDR_BYTES) {
				ret = n < 0 ? (int)n : -EIO;
				urt_set_error("kv: blanking shard %u's superblocks failed (%s)", s,
					      urt_strerror(ret));
				return ret;
			}
		}
	}
	ret = urt_flush(dev);
	if (ret) {
		urt_set_error("kv: flushing the blanked superblocks failed (%s)", urt_strerror(ret));
		return ret;
	}
	kv_layout_hdr_encode(h, buf);
	/* One 512-byte sector holds the header, so a crash leaves it whole or blank (invariant 1). */
	n = urt_write(dev, buf, KV_HDR_BYTES, 0);
	ret = n == KV_HDR_BYTES ? urt_flush(dev) : n < 0 ? (int)n : -EIO;
	if (ret)
		urt_set_error("kv: writing the store header failed (%s)", urt_strerror(ret));
	return ret;
}

int kv_layout_load(struct urt_dev *dev, const struct urt_kv_opts *o, unsigned shards,
		   struct kv_store_hdr *out)
{
	uint8_t *buf = urt_buf_get(KV_HDR_BYTES);
	struct kv_store_hdr h;
	ssize_t n;
	int ret;

	if (!buf)
		return -ENOMEM;
	if (urt_dev_info(dev)->size_bytes < KV_HDR_BYTES) {
		ret = URT_E_BADFORMAT;
		urt_set_error("kv: the device has %llu bytes, fewer than the %u of a store header: "
			      "it is truncated, or not a store",
			      (unsigned long long)urt_dev_info(dev)->size_bytes, KV_HDR_BYTES);
		goto out;
	}
	n = urt_read(dev, buf, KV_HDR_BYTES, 0);
	if (n != KV_HDR_BYTES) {
		ret = n < 0 ? (int)n : -EIO;
		urt_set_error("kv: reading the store header failed (%s)", urt_strerror(ret));
		goto out;
	}
	ret = kv_layout_hdr_decode(buf, urt_dev_info(dev)->size_bytes, o->page_size, &h);
	if (ret == KV_HDR_BLANK)
		ret = hdr_write_new(dev, o, shards, buf, &h);
	if (ret == 0)
		*out = h;
out:
	urt_buf_put(buf);
	return ret;
}

/* Reads [off, end) of fd; *bad is set to the offset of the first non-zero byte, if any. */
static int zero_check(int fd, uint8_t *buf, uint64_t off, uint64_t end, uint64_t *bad)
{
	while (off < end) {
		size_t len = end - off < KV_ZERO_CHUNK ? (size_t)(end - off) : KV_ZERO_CHUNK;
		ssize_t n = pread(fd, buf, len, (off_t)off);

		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;	/* The file ends here. */
		for (ssize_t i = 0; i < n; i++)
			if (buf[i]) {
				*bad = off + (uint64_t)i;
				return 0;
			}
		off += (uint64_t)n;
	}
	return 0;
}

/*
 * Finds the first non-zero byte where other data keeps its signature
 * (kv_layout_claim): the first MiB of any device (partition tables, file
 * systems, LVM and RAID labels, ISO images, ZFS's front labels), and on a
 * block device also its last MiB (GPT's backup header, MD 0.90 and 1.0
 * superblocks, ZFS's back labels).  UINT64_MAX if none.
 */
static int data_find(int fd, const struct stat *st, uint64_t *bad)
{
	uint8_t *buf = malloc(KV_ZERO_CHUNK);
	uint64_t size;
	int ret;

	if (!buf)
		return -ENOMEM;
	*bad = UINT64_MAX;
	if (S_ISREG(st->st_mode)) {
		size = (uint64_t)st->st_size;
	} else {
		off_t end = lseek(fd, 0, SEEK_END);

		if (end < 0) {
			ret = -errno;
			goto out;
		}
		size = (uint64_t)end;
	}
	ret = zero_check(fd, buf, 0, size < KV_ZERO_CHUNK ? size : KV_ZERO_CHUNK, bad);
	if (ret == 0 && *bad == UINT64_MAX && !S_ISREG(st->st_mode) && size > KV_ZERO_CHUNK)
		ret = zero_check(fd, buf, size - KV_ZERO_CHUNK, size, bad);
out:
	free(buf);
	return ret;
}

int kv_layout_claim(const char *path, bool create, int *lock_fd)
{
	uint8_t head[KV_HDR_BYTES];
	struct stat st;
	uint64_t bad;
	ssize_t n;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		urt_set_error("kv: cannot open %s: %s", path, strerror(errno));
		return ret;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		ret = -errno;
		if (ret == -EWOULDBLOCK) {
			urt_set_error("kv: %s is in use by another store (an urkv server, or a program "
				      "on urt_kv, holds its lock): two stores on one file would overwrite "
				      "each other's writes", path);
			ret = -EBUSY;
		} else {
			urt_set_error("kv: cannot lock %s: %s", path, strerror(-ret));
		}
		goto err;
	}
	if (!create)
		goto out;
	/* Only a blank header may be followed by a format (kv_layout_load): check that case. */
	n = pread(fd, head, sizeof(head), 0);
	if (n != (ssize_t)sizeof(head) || !all_zero(head, sizeof(head)))
		goto out;	/* A store, or something kv_layout_load refuses with its own message. */
	if (fstat(fd, &st) != 0) {
		ret = -errno;
		urt_set_error("kv: cannot stat %s: %s", path, strerror(errno));
		goto err;
	}
	ret = data_find(fd, &st, &bad);
	if (ret) {
		urt_set_error("kv: reading %s to check that it holds no data failed: %s", path,
			      strerror(-ret));
		goto err;
	}
	if (bad != UINT64_MAX) {
		urt_set_error("kv: %s has no store header (its first %u bytes are zero) but holds "
			      "data at offset %llu, where file systems, partition tables and images "
			      "keep their signatures: creating a store there would overwrite that "
			      "data; name another file, or delete it (a device: zero its first and "
			      "last MiB) first", path, KV_HDR_BYTES, (unsigned long long)bad);
		ret = URT_E_BADFORMAT;
		goto err;
	}
out:
	*lock_fd = fd;
	return 0;
err:
	close(fd);
	return ret;
}

/* Removes path only while it still names the file open as fd: never a file moved over it since. */
static void unlink_if_same(const char *path, int fd)
{
	struct stat a, b;

	if (fstat(fd, &a) == 0 && lstat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
		unlink(path);
}

int kv_layout_file_create(const struct urt_kv_opts *o, const char *path, unsigned shards, int *lock_fd)
{
	struct kv_store_hdr h = { 0 };
	uint8_t *zero;
	int fd, ret;

	ret = kv_layout_plan(o, o->size_bytes, shards, &h);
	if (ret)
		return ret;
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		char target[256];
		struct stat st;
		ssize_t n;

		ret = -errno;
		if (ret == -EEXIST && lstat(path, &st) == 0 && S_ISLNK(st.st_mode) &&
		    (n = readlink(path, target, sizeof(target) - 1)) >= 0) {
			/* O_EXCL never follows a link, and stat found nothing behind it. */
			target[n] = 0;
			urt_set_error("kv: cannot create %s: it is a symbolic link to %s, which does not "
				      "exist; create the store at the target's path or fix the link",
				      path, target);
		} else {
			urt_set_error("kv: cannot create %s: %s", path, strerror(-ret));
		}
		return ret;
	}
	/*
	 * Locked before anything is written, through the descriptor that made
	 * it: a second open of the path could find another file there (moved
	 * over it meanwhile), which would be locked, and formatted, unchecked.
	 * A new file is nobody else's, so the lock is practically never
	 * refused (another process would have to flock it in the moment
	 * between the open and this call).
	 */
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		ret = -errno;
		urt_set_error("kv: cannot lock %s, which this open just created: %s", path, strerror(-ret));
		goto err_unlink;
	}
	zero = calloc(1, KV_ZERO_CHUNK);
	if (!zero) {
		ret = -ENOMEM;
		goto err_unlink;
	}
	if (posix_fallocate(fd, 0, (off_t)o->size_bytes) != 0 &&
	    ftruncate(fd, (off_t)o->size_bytes) != 0) {
		ret = -errno;
		urt_set_error("kv: cannot size %s to %llu bytes: %s", path,
			      (unsigned long long)o->size_bytes, strerror(errno));
		goto err_free;
	}
	/* Superblocks and log as zeros: the log's first lap then needs no metadata commit. */
	for (unsigned s = 0; s < shards; s++) {
		uint64_t off = h.region_offset + s * h.region_bytes;
		uint64_t end = off + KV_SUPERBLOCKS_BYTES + h.log_bytes;

		while (off < end) {
			size_t len = end - off < KV_ZERO_CHUNK ? (size_t)(end - off) : KV_ZERO_CHUNK;

			if (pwrite(fd, zero, len, (off_t)off) != (ssize_t)len) {
				ret = -EIO;
				urt_set_error("kv: cannot write %s: %s", path, strerror(errno));
				goto err_free;
			}
			off += len;
		}
	}
	if (fsync(fd) != 0) {
		ret = -errno;
		goto err_free;
	}
	free(zero);
	*lock_fd = fd;
	return 0;

err_free:
	free(zero);
err_unlink:
	unlink_if_same(path, fd);
	close(fd);
	return ret;
}

void (*kv_layout_open_hook)(const char *path);

int kv_layout_same_file(const char *path, int lock_fd, const struct urt_dev_info *in)
{
	struct stat st;

	if (fstat(lock_fd, &st) != 0) {
		int ret = -errno;

		urt_set_error("kv: cannot stat %s: %s", path, strerror(-ret));
		return ret;
	}
	if (in->file_dev == 0 && in->file_ino == 0) {
		urt_set_error("kv: cannot tell which file the device opened from %s is (its descriptor "
			      "could not be examined): not opened", path);
		return -EIO;
	}
	if ((uint64_t)st.st_dev == in->file_dev && (uint64_t)st.st_ino == in->file_ino)
		return 0;
	urt_set_error("kv: %s was replaced while the store was being opened (its lock is held on one "
		      "file, device %llu inode %llu, and the path then named another, device %llu "
		      "inode %llu): nothing was written; open it again", path,
		      (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
		      (unsigned long long)in->file_dev, (unsigned long long)in->file_ino);
	return -EAGAIN;
}
