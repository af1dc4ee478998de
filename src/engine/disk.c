/*
 * The store's device I/O: synchronous reads and writes of the region,
 * flushes, zeroing at format, superblock writes, and the sticky error that
 * a fatal I/O failure leaves behind.
 *
 * Design notes.
 *
 * This file is the floor of the engine: pool.c, wal.c, checkpoint.c,
 * recovery.c and ps.c call down into it, and it calls nothing of theirs.
 * (The checkpoint's asynchronous page writes are the one device path that
 * bypasses it: they need a completion callback per write, and use only
 * disk_page_off from here.)
 *
 * Invariants:
 *  1. Every offset passed in is relative to the region start ps->base, so
 *     several shards can share one device in disjoint regions; only this
 *     file (and the checkpoint's writes) adds base.
 *  2. A short read or write is -EIO: the engine never works with part of a
 *     page, a batch or a superblock.
 *  3. Superblock writes alternate slots by generation parity
 *     (superblock_slot_offset): a write tears at most the slot being
 *     written, and the other slot still holds the previous generation.
 *     ps->sb changes only once the new copy is written and flushed.
 *  4. Format writes both slots (B with generation 1, then A with 2) before
 *     one flush, so no copy of a previous store on the device can win the
 *     pick.
 *  5. disk_set_sticky is the only way into PS_ERROR, and the first error
 *     wins: ps->sticky is set once and never cleared; every wait that could
 *     outlive the error is woken, and each waiter finds the error when it
 *     looks again.  Callers decide which failures are fatal (a failed log
 *     write, flush, page write home or superblock write; not a failed page
 *     read, which is reported and retried by the next reader).
 */
#include <errno.h>
#include <string.h>

#include "engine/ps_impl.h"
#include "base/error.h"
#include "urt/buf.h"
#include "urt/error.h"

#define DISK_ZERO_CHUNK (1u << 20)	/* Zeroing unit at format, when the device cannot write zeroes. */

void disk_set_sticky(struct urt_ps *ps, int err, const char *what)
{
	URT_ASSERT(err < 0);
	URT_ASSERT(ps_state_consistent(ps));
	URT_ASSERT(ps->state == PS_RECOVERING || ps->state == PS_OPEN ||
		   ps->state == PS_CHECKPOINTING || ps->state == PS_ERROR);
	if (ps->sticky)
		return;
	ps->sticky = err;
	ps->state = PS_ERROR;
	ps->stats.sticky_error = err;
	urt_set_error("page store: %s failed (%s); the store refuses further work",
		      what, urt_strerror(err));
	/* Wake everybody: no wait may outlive the error. */
	urt_waitq_wake_all(&ps->space_wq);
	urt_waitq_wake_all(&ps->durable_wq);
	urt_waitq_wake_all(&ps->sealed_wq);
	urt_waitq_wake_all(&ps->ckpt_wq);
	urt_waitq_wake_all(&ps->flush_wq);
}

int disk_read(struct urt_ps *ps, void *buf, size_t len, uint64_t off)
{
	ssize_t n = urt_read(ps->dev, buf, len, ps->base + off);

	if (n < 0)
		return (int)n;
	return (size_t)n == len ? 0 : -EIO;
}

int disk_write(struct urt_ps *ps, const void *buf, size_t len, uint64_t off, bool fua)
{
	ssize_t n = fua ? urt_write_fua(ps->dev, buf, len, ps->base + off)
			: urt_write(ps->dev, buf, len, ps->base + off);

	if (n < 0)
		return (int)n;
	return (size_t)n == len ? 0 : -EIO;
}

/* Flushes the device cache; also under NONE_UNSAFE, where only log batches skip it. */
int disk_flush(struct urt_ps *ps)
{
	ps->stats.flushes++;
	return urt_flush(ps->dev);
}

/* Zeroes [off, off+len): one write-zeroes command when the device has it, else plain writes. */
int disk_zero(struct urt_ps *ps, uint64_t off, uint64_t len)
{
	uint64_t end = off + len;
	uint8_t *buf;
	int ret = 0;

	if (urt_dev_info(ps->dev)->write_zeroes) {
		struct urt_io io;

		urt_io_prep_write_zeroes(&io, ps->dev, len, ps->base + off);
		if (urt_io_wait(&io) == 0)
			return 0;
	}
	buf = urt_buf_get(DISK_ZERO_CHUNK);
	if (!buf)
		return -ENOMEM;
	memset(buf, 0, DISK_ZERO_CHUNK);
	while (off < end && ret == 0) {
		uint64_t n = end - off < DISK_ZERO_CHUNK ? end - off : DISK_ZERO_CHUNK;

		ret = disk_write(ps, buf, n, off, false);
		off += n;
	}
	urt_buf_put(buf);
	return ret;
}

/* Offset from the region start of page pgno's home. */
uint64_t disk_page_off(const struct urt_ps *ps, uint64_t pgno)
{
	return ps->sb.page_start + pgno * ps->page_size;
}

/* Encodes sb into buf and writes it to the slot of its generation (no flush). */
static int sb_put(struct urt_ps *ps, const struct superblock *sb, uint8_t *buf)
{
	const char *why = NULL;
	int ret = superblock_encode(sb, buf, URT_SB_SLOT_SIZE, &why);

	URT_ASSERT(ret == 0);
	return disk_write(ps, buf, URT_SB_SLOT_SIZE, superblock_slot_offset(sb->generation), false);
}

/* Writes a new store's superblock to both slots (invariant 4), flushes, and adopts it. */
int disk_sb_format(struct urt_ps *ps, const struct superblock *sb)
{
	struct superblock copy = *sb;
	uint8_t *buf = urt_buf_get(URT_SB_SLOT_SIZE);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	/* Slot B gets generation 1, then slot A generation 2: both name this store. */
	for (uint64_t gen = 1; gen <= 2 && ret == 0; gen++) {
		copy.generation = gen;
		ret = sb_put(ps, &copy, buf);
	}
	urt_buf_put(buf);
	if (ret == 0)
		ret = disk_flush(ps);
	if (ret == 0)
		ps->sb = copy;
	return ret;
}

/*
 * Writes the next superblock generation (other slot, invariant 3) into
 * *out, without a flush: the caller flushes (sharing the log's flush,
 * wal_flush) and only then adopts *out as ps->sb.
 */
int disk_sb_write(struct urt_ps *ps, uint64_t ckpt_lsn, uint64_t ckpt_epoch, struct superblock *out)
{
	struct superblock sb = ps->sb;
	uint8_t *buf = urt_buf_get(URT_SB_SLOT_SIZE);
	int ret;

	if (!buf)
		return -ENOMEM;
	sb.generation++;
	/* A store of an older format version is upgraded here (format.h). */
	sb.version = URT_FORMAT_VERSION;
	sb.checkpoint_lsn = ckpt_lsn;
	sb.checkpoint_epoch = ckpt_epoch;
	sb.log_epoch = ps->epoch;
	ret = sb_put(ps, &sb, buf);
	if (ret == 0)
		*out = sb;
	urt_buf_put(buf);
	return ret;
}
