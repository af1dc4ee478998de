/*
 * Page store shard: open (format or recover), close, the store's state,
 * and the small public accessors.
 *
 * Design notes.
 *
 * src/engine is the page store: a transactional store of fixed-size pages
 * on one region of a urt device (docs/engine.md).  It may include only the
 * public API (include/urt/) and the support code of src/base/, plus its own
 * headers: never the runtime's internal headers nor the io_uring library,
 * whose work reaches it only through urt_dev, urt_io and the fibers.  Its
 * files, top to bottom:
 *
 *   ps.c          open, close, lifecycle state, accessors (this file)
 *   tx.c          transactions (public calls)
 *   checkpoint.c  checkpoints and the background checkpointer
 *   recovery.c    log replay on open
 *   pool.c        buffer pool (eviction waits for the log)
 *   wal.c         log writer fiber and group commit
 *   disk.c        device I/O, superblock writes, the sticky error
 *   format/       the on-disk format: pure codecs, no I/O
 *   region.c      splitting a device into per-core regions (stands alone)
 *
 * A file calls only files below it, with one exception: a committer short
 * of log space asks for a checkpoint (wal.c calls ckpt_request, which only
 * sets a flag and wakes the checkpointer fiber).  Nothing calls back into
 * ps.c, so the store's state is set only by the functions in the table
 * below, each in the file that does the work.
 *
 * Invariants:
 *  1. A store belongs to the core whose fiber opened it, and every call runs
 *     there (asserted): nothing needs a lock.
 *  2. ps->state changes only in the functions of the table below, and each
 *     asserts on entry the states it may be called in.
 *  3. Errors are sticky.  ps->sticky is nonzero exactly when the store has
 *     entered ERROR, and ERROR is left only for CLOSED.  After an unclear
 *     I/O failure (a log write or flush, a page written home, a superblock
 *     write) the committers of the failed batch get the original error,
 *     every later call URT_E_STICKY, and urt_ps_error and urt_ps_close the
 *     original error.  Nothing is retried as if it had succeeded: after a
 *     failed flush the device cache may have dropped the data (fsyncgate).
 *     The next open recovers from what is really on the device.
 *  4. CHECKPOINTING implies ckpt_busy.  ckpt_busy is the checkpoint lock and
 *     is also held without that state: by the open checkpoint (RECOVERING)
 *     and by a failed checkpoint unwinding (ERROR).  A checkpoint fails only
 *     by making the store sticky.
 *  5. The store is handed out only in OPEN: after the open checkpoint has
 *     written the replayed pages home and made the new epoch durable, so
 *     batches a crashed incarnation left past the log end are never
 *     replayed (recovery.c), and with the writer and checkpointer running.
 *
 * States (enum ps_state in ps_impl.h):
 *
 *   (new) --> OPENING --> RECOVERING --> OPEN <------> CHECKPOINTING
 *                             |           |  \               |
 *                             |           |   `--> CLOSED    |
 *                             |           v          ^       |
 *                             +------->  ERROR ------'       |
 *                                         ^                  |
 *                                         +------------------+
 *
 * A failed urt_ps_open frees the store from OPENING, RECOVERING or ERROR
 * without handing it out.  Transitions and the function performing each:
 *
 *   from                        to             function
 *   (none)                      OPENING        urt_ps_open (ps.c)
 *   OPENING                     RECOVERING     recovery_run (recovery.c)
 *   RECOVERING                  OPEN           urt_ps_open (ps.c)
 *   OPEN                        CHECKPOINTING  ckpt_run (checkpoint.c)
 *   CHECKPOINTING               OPEN           ckpt_run (checkpoint.c)
 *   RECOVERING, OPEN,
 *     CHECKPOINTING             ERROR          disk_set_sticky (disk.c)
 *   OPEN, ERROR                 CLOSED         urt_ps_close (ps.c)
 *
 * urt_ps_close may be called in CHECKPOINTING (the checkpointer fiber is
 * running one): its final checkpoint waits for that one first, so by the
 * time the fibers are stopped the store is OPEN or ERROR.
 *
 * Region layout (format.h): two 4 KiB superblock slots, the circular log,
 * the page region.  Every offset below is relative to the region start
 * `base`, so several shards can share one device in disjoint regions.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "base/mem.h"
#include "engine/ps_impl.h"
#include "base/clock.h"
#include "base/error.h"
#include "urt/buf.h"
#include "urt/error.h"

#define PS_LOG_MIN (256u << 10)		/* Smallest default log: four 64 KiB batches. */
#define PS_LOG_MAX (1ull << 30)		/* Largest default log. */

void urt_ps_opts_default(struct urt_ps_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->format_zero_pages = true;
	o->page_size = URT_PAGE_SIZE_DEFAULT;
	o->pool_pages = 256;
	o->sync = URT_PS_SYNC_AUTO;
	o->batch_bytes_max = 1u << 20;
	o->tx_pages_max = 32;
	o->checkpoint_pct = 50;
	o->read_retry_max = 2;
	o->shard_count = 1;
	o->write_copies_kept = 64;
	o->log_depth = 1;
}

/* Plans a new store over the region, zeroes its pages if asked, and writes its superblock. */
static int format(struct urt_ps *ps, uint64_t region_bytes)
{
	struct superblock sb;
	const char *why = NULL;
	uint64_t log_len = ps->opts.log_bytes;
	int ret;

	if (!log_len) {
		log_len = region_bytes / 8;
		log_len = log_len < PS_LOG_MIN ? PS_LOG_MIN : log_len > PS_LOG_MAX ? PS_LOG_MAX : log_len;
	}
	log_len = log_len / ps->block_size * ps->block_size;
	ret = superblock_plan(&sb, region_bytes,
			      ps->opts.page_size ? ps->opts.page_size : URT_PAGE_SIZE_DEFAULT, ps->block_size, log_len, &why);
	if (ret) {
		urt_set_error("page store: cannot format %llu bytes: %s",
			      (unsigned long long)region_bytes, why);
		return ret;
	}
	do {
		if (getrandom(&sb.store_id, sizeof(sb.store_id), 0) != sizeof(sb.store_id) ||
		    getrandom(sb.store_uuid, sizeof(sb.store_uuid), 0) != sizeof(sb.store_uuid))
			return -errno;
	} while (sb.store_id == 0);
	sb.shard_id = ps->opts.shard_id;
	sb.shard_count = ps->opts.shard_count;
	sb.checkpoint_lsn = 0;
	sb.checkpoint_epoch = 1;
	sb.log_epoch = 1;
	sb.created_ns = urt_clock_wall_ns();
	if (ps->opts.format_zero_pages) {
		ret = disk_zero(ps, sb.page_start, sb.page_count * sb.page_size);
		if (ret)
			return ret;
	}
	return disk_sb_format(ps, &sb);
}

/* True when the len bytes at p are all zero: a blank region, never written. */
static bool region_blank(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/*
 * Reads both slots and picks; formats when asked to and the region is
 * blank.  create formats only a region whose superblock slots are all
 * zeroes: slots holding something else are another program's data (a
 * wrong path), which create must not overwrite; format does that.
 */
static int load_superblock(struct urt_ps *ps, uint64_t region_bytes)
{
	struct superblock_pick_info info;
	uint8_t *buf;
	int ret;

	if (ps->opts.format)
		return format(ps, region_bytes);
	buf = urt_buf_get(URT_SB_REGION_SIZE);
	if (!buf)
		return -ENOMEM;
	ret = disk_read(ps, buf, URT_SB_REGION_SIZE, 0);
	if (ret)
		goto out;
	ret = superblock_pick(buf, buf + URT_SB_SLOT_SIZE, URT_SB_SLOT_SIZE, &ps->sb, &info);
	if (ret == URT_E_BADFORMAT && info.err[0] == URT_E_BADFORMAT &&
	    info.err[1] == URT_E_BADFORMAT && ps->opts.create) {
		if (region_blank(buf, URT_SB_REGION_SIZE)) {
			urt_buf_put(buf);
			return format(ps, region_bytes);
		}
		urt_set_error("page store: the region at offset %llu holds data but no urt page store "
			      "(slot A: %s; slot B: %s); not formatting over it: name a blank or new file, "
			      "or set format to overwrite it",
			      (unsigned long long)ps->opts.region_offset, info.why[0] ? info.why[0] : "?",
			      info.why[1] ? info.why[1] : "?");
		goto out;
	}
	if (ret == URT_E_VERSION) {
		/* A checksummed copy claims the newer version: name both versions. */
		int slot = info.err[0] == URT_E_VERSION ? 0 : 1;
		uint32_t v = urt_load_le32(buf + slot * URT_SB_SLOT_SIZE +
					   offsetof(struct urt_sb_disk, version));

		urt_set_error("page store: the store's on-disk format is version %u, newer than "
			      "this build's version %u (it reads versions %u to %u); open it with a "
			      "newer urt", v, URT_FORMAT_VERSION, URT_FORMAT_VERSION_MIN,
			      URT_FORMAT_VERSION);
	} else if (ret) {
		urt_set_error("page store: no usable superblock (slot A: %s; slot B: %s)",
			      info.why[0] ? info.why[0] : "valid", info.why[1] ? info.why[1] : "valid");
	}
out:
	urt_buf_put(buf);
	return ret;
}

static int check_opts(struct urt_ps *ps, const struct urt_dev_info *info, uint64_t *region_bytes)
{
	struct urt_ps_opts *o = &ps->opts;
	uint32_t bs = info->block_bytes > 512 ? info->block_bytes : 512;

	if (info->off_align > bs)
		bs = info->off_align;
	ps->block_size = bs;
	if (!urt_block_size_valid(bs)) {
		urt_set_error("page store: device block size %u is not supported", bs);
		return -EINVAL;
	}
	if ((o->page_size && !urt_page_size_valid(o->page_size)) || o->region_offset % 4096 ||
	    o->region_offset > info->size_bytes || o->pool_pages < 2 || o->tx_pages_max == 0 ||
	    o->checkpoint_pct == 0 || o->checkpoint_pct > 100 || o->shard_count == 0 ||
	    o->shard_id >= o->shard_count) {
		urt_set_error("page store: invalid options (page size, region offset, pool, tx or "
			      "shard fields)");
		return -EINVAL;
	}
	if (o->log_depth == 0 || o->log_depth > URT_PS_LOG_DEPTH_MAX) {
		urt_set_error("page store: log_depth %u is outside 1..%u", o->log_depth,
			      URT_PS_LOG_DEPTH_MAX);
		return -EINVAL;
	}
	*region_bytes = o->region_bytes ? o->region_bytes : info->size_bytes - o->region_offset;
	if (o->region_offset > info->size_bytes ||
	    o->region_offset + *region_bytes > info->size_bytes) {
		urt_set_error("page store: region ends past the device (%llu bytes)",
			      (unsigned long long)info->size_bytes);
		return URT_E_BADFORMAT;
	}
	if (*region_bytes < URT_SB_REGION_SIZE) {
		/* A short read of the superblocks would only say "Input/output error". */
		urt_set_error("page store: the region has %llu bytes, fewer than the %u of its two "
			      "superblocks: the device is truncated, or not a store",
			      (unsigned long long)*region_bytes, URT_SB_REGION_SIZE);
		return URT_E_BADFORMAT;
	}
	if (o->batch_bytes_max > URT_BUF_MAX_BYTES)
		o->batch_bytes_max = URT_BUF_MAX_BYTES;
	return 0;
}

/* Checks the picked superblock against the device and options; sizes the batch. */
static int check_sb(struct urt_ps *ps, uint64_t region_bytes)
{
	struct superblock *sb = &ps->sb;
	struct urt_ps_opts *o = &ps->opts;
	uint64_t tx_bytes;

	if (sb->device_size > region_bytes) {
		urt_set_error("page store: the store spans %llu bytes but the region has only %llu "
			      "(truncated device?)", (unsigned long long)sb->device_size,
			      (unsigned long long)region_bytes);
		return URT_E_BADFORMAT;
	}
	if (o->page_size && sb->page_size != o->page_size) {
		urt_set_error("page store: the store has %u-byte pages, %u were asked for",
			      sb->page_size, o->page_size);
		return URT_E_BADFORMAT;
	}
	if (sb->block_size < ps->block_size || sb->block_size % ps->block_size) {
		urt_set_error("page store: log block size %u does not suit this device (%u)",
			      sb->block_size, ps->block_size);
		return -EINVAL;
	}
	ps->block_size = sb->block_size;
	ps->page_size = sb->page_size;
	logrec_geom_from_sb(&ps->geom, sb);
	/* A batch must be at most a quarter of the log, and hold one full transaction. */
	if (o->batch_bytes_max > sb->log_len / 4)
		o->batch_bytes_max = (uint32_t)(sb->log_len / 4);
	o->batch_bytes_max = o->batch_bytes_max / ps->block_size * ps->block_size;
	/* Clamp tx_pages_max so that one transaction always fits one batch. */
	tx_bytes = URT_LOG_BATCH_HDR_SIZE + URT_LOG_REC_HDR_SIZE + ps->block_size;
	if (tx_bytes + URT_LOG_REC_HDR_SIZE + sb->page_size > o->batch_bytes_max) {
		urt_set_error("page store: the log (%llu bytes) is too small for even one page per "
			      "transaction", (unsigned long long)sb->log_len);
		return -EINVAL;
	}
	if (tx_bytes + o->tx_pages_max * (uint64_t)(URT_LOG_REC_HDR_SIZE + sb->page_size) >
	    o->batch_bytes_max)
		o->tx_pages_max = (uint32_t)((o->batch_bytes_max - tx_bytes) /
					      (URT_LOG_REC_HDR_SIZE + sb->page_size));
	return 0;
}

int urt_ps_open(struct urt_dev *dev, const struct urt_ps_opts *opts, struct urt_ps **out)
{
	const struct urt_dev_info *info = urt_dev_info(dev);
	uint64_t region_bytes = 0;
	struct urt_ps *ps;
	int ret;

	URT_ASSERT(urt_in_fiber());
	ps = mem_core_alloc(sizeof(*ps));	/* This core's arena (mem.h). */
	if (!ps)
		return -ENOMEM;
	ps->state = PS_OPENING;
	ps->dev = dev;
	ps->core = urt_core_id();
	ps->opts = *opts;
	ps->stats.bad_pgno = UINT64_MAX;
	ret = check_opts(ps, info, &region_bytes);
	if (ret)
		goto err_free;
	ps->base = opts->region_offset;
	ret = load_superblock(ps, region_bytes);
	if (ret)
		goto err_free;
	ret = check_sb(ps, region_bytes);
	if (ret)
		goto err_free;
	switch (opts->sync) {
	case URT_PS_SYNC_AUTO:
		ps->use_fua = info->fua || !info->volatile_cache;
		ps->use_flush = true;
		break;
	case URT_PS_SYNC_FUA:
		ps->use_fua = true;
		ps->use_flush = true;
		break;
	case URT_PS_SYNC_FLUSH:
		ps->use_flush = true;
		break;
	case URT_PS_SYNC_NONE_UNSAFE:
		break;
	}
	ret = pool_init(ps);
	if (ret)
		goto err_free;
	ret = wal_init(ps);
	if (ret)
		goto err_pool;
	ps->txid_next = 1;
	ret = recovery_run(ps);
	if (ret)
		goto err_wal;
	ret = wal_start(ps);
	if (ret)
		goto err_wal;
	/* The open checkpoint: replayed pages home, new epoch durable. */
	ret = ckpt_run(ps);
	if (ret)
		goto err_writer;
	ret = ckpt_start(ps);
	if (ret)
		goto err_writer;
	ps->stats.checkpoint_lsn = ps->ckpt_lsn;
	/* Invariant 5: handed out only now; the open checkpoint cannot leave it sticky and succeed. */
	URT_ASSERT(ps->state == PS_RECOVERING && ps_state_consistent(ps));
	ps->state = PS_OPEN;
	*out = ps;
	return 0;

err_writer:
	wal_stop(ps);
err_wal:
	wal_exit(ps);
err_pool:
	pool_exit(ps);
err_free:
	mem_core_free(ps);
	return ret;
}

int urt_ps_close(struct urt_ps *ps)
{
	int ret = 0;

	URT_ASSERT(urt_core_id() == ps->core && urt_in_fiber());
	URT_ASSERT(ps_is_serving(ps) && ps_state_consistent(ps));
	URT_ASSERT(ps->tx_open == 0);
	if (!ps->sticky)
		ret = ckpt_run(ps);
	ckpt_stop(ps);
	wal_stop(ps);
	/* The fibers are gone, so no checkpoint can be running (invariant 4). */
	URT_ASSERT(ps->state == PS_OPEN || ps->state == PS_ERROR);
	ps->state = PS_CLOSED;
	if (ps->sticky)
		ret = ps->sticky;
	tx_free_all(ps);
	wal_exit(ps);
	pool_exit(ps);
	mem_core_free(ps);
	return ret;
}

uint64_t urt_ps_page_count(const struct urt_ps *ps)
{
	return ps->sb.page_count;
}

size_t urt_ps_page_data_bytes(const struct urt_ps *ps)
{
	return ps->page_size - URT_PAGE_HDR_SIZE;
}

urt_ps_page_check_fn urt_ps_page_check(const struct urt_ps *ps)
{
	return ps->opts.page_check;
}

void urt_ps_page_corrupt(struct urt_ps *ps, uint64_t pgno, const char *why)
{
	URT_ASSERT(urt_core_id() == ps->core);
	URT_ASSERT(pgno < ps->sb.page_count && why);
	ps->stats.bad_pgno = pgno;
	urt_set_error("page store: page %llu is corrupt (%s)", (unsigned long long)pgno, why);
}

int urt_ps_checkpoint(struct urt_ps *ps)
{
	URT_ASSERT(urt_core_id() == ps->core && urt_in_fiber());
	URT_ASSERT(ps_is_serving(ps));
	return ckpt_run(ps);
}

int urt_ps_stats(const struct urt_ps *ps, struct urt_ps_stats *out)
{
	*out = ps->stats;
	out->commits_per_batch = ps->stats.batches ? (double)ps->stats.commits / ps->stats.batches : 0;
	out->checkpoint_lsn = ps->ckpt_lsn;
	out->durable_lsn = ps->durable_lsn;
	out->sticky_error = ps->sticky;
	return 0;
}

int urt_ps_error(const struct urt_ps *ps)
{
	return ps->sticky;
}
