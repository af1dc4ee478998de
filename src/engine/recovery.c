/*
 * Crash recovery: replay the log from the checkpoint to its last valid
 * batch.
 *
 * Design notes.
 *
 * The log end is decided by the batches themselves (format.h): starting at
 * checkpoint_lsn, each batch must carry this store's id, the LSN it is
 * expected at (so stale batches of an earlier lap end the log), an epoch no
 * lower than the previous batch's (so stale batches of a crashed
 * incarnation end it), a good header CRC and a good body CRC (so a torn
 * batch ends it).  A good checksum over impossible contents is
 * URT_E_CORRUPT, never a silent end.
 *
 * Nor is damage to a batch that had been acknowledged: a crash tears only
 * batches in flight, and every batch sealed after one became durable
 * records that in its header (durable_lsn, format version 4).  So where
 * the log seems to end, end_check looks past it; a later batch of this
 * store and incarnation whose durable_lsn lies above the end proves the
 * batch there was durable once and is damaged now: URT_E_CORRUPT naming
 * both, where ending the log would silently drop that batch and every
 * acknowledged commit after it.
 *
 * Every record of a valid batch is applied: a batch holds whole
 * transactions only (wal.c invariant 1), and only durable batches can be
 * followed by further valid ones in LSN order (wal.c invariant 2), so the
 * valid prefix is exactly a prefix of acknowledged-or-in-flight commits.
 *
 * Page images are installed into pool frames without reading the page
 * from the device: the image replaces the page whole, so a home copy torn
 * by the crash is never even looked at.  Replayed frames are dirty; the
 * checkpoint that ends urt_ps_open writes them home.  During replay the
 * whole log is durable, so durable_lsn is infinite and eviction may write
 * replayed pages home early when the pool is smaller than the replay set.
 *
 * After replay the epoch is bumped (max seen + 1) and the open checkpoint
 * records it, so batches left past the end by the crashed incarnation can
 * never be mistaken for new ones.
 *
 * Store states (ps.c): recovery_run moves the store from OPENING to
 * RECOVERING, where it stays through the open checkpoint; an eviction
 * that fails to write a replayed page home moves it to ERROR.
 */
#include <errno.h>
#include <string.h>

#include "engine/ps_impl.h"
#include "base/clock.h"
#include "base/error.h"
#include "urt/buf.h"
#include "urt/error.h"

/*
 * Finds the base a PAGE_DELTA record of pgno applies to: the frame that
 * replay has built from an image (f->chain), or, failing that, the page's
 * home copy, but only when it is valid and was written at or after the
 * checkpoint (then it holds every change before it, and replaying later
 * records onto it is exact).  Anything else means the image the delta
 * rests on is missing or corrupt: URT_E_CORRUPT naming the page, never a
 * delta applied to the wrong bytes.
 */
static int delta_base(struct urt_ps *ps, const struct logrec *rec, struct frame **out)
{
	struct frame *f;
	int ret = pool_get(ps, rec->pgno, true, &f);

	if (ret == URT_E_CORRUPT) {
		ps->stats.bad_pgno = rec->pgno;
		urt_set_error("page store: page %llu: the log delta at LSN %llu has no base image: "
			      "the log holds no image of the page since the checkpoint at LSN %llu "
			      "and its home copy is corrupt",
			      (unsigned long long)rec->pgno, (unsigned long long)rec->lsn,
			      (unsigned long long)ps->sb.checkpoint_lsn);
		return URT_E_CORRUPT;
	}
	if (ret)
		return ret;
	if (!f->chain && (f->page_lsn == 0 || f->page_lsn < ps->sb.checkpoint_lsn)) {
		ps->stats.bad_pgno = rec->pgno;
		urt_set_error("page store: page %llu: the log delta at LSN %llu has no base image: "
			      "the log holds no image of the page since the checkpoint at LSN %llu "
			      "and its home copy is %s",
			      (unsigned long long)rec->pgno, (unsigned long long)rec->lsn,
			      (unsigned long long)ps->sb.checkpoint_lsn,
			      f->page_lsn == 0 ? "unwritten" : "older than the checkpoint");
		pool_unpin(ps, f);
		return URT_E_CORRUPT;
	}
	*out = f;
	return 0;
}

static int apply_batch(struct urt_ps *ps, const uint8_t *buf, uint64_t len,
		       const struct logrec_batch *b)
{
	struct logrec_iter it;
	struct logrec rec;
	const char *why = NULL;
	int ret;

	logrec_iter_init(&it, buf, len, &ps->geom, b);
	while ((ret = logrec_iter_next(&it, &rec, &why)) == 1) {
		struct frame *f;

		if (logrec_is_image(rec.type)) {
			ret = pool_get(ps, rec.pgno, false, &f);
			if (ret)
				return ret;
			/* Checked by the iterator, so it cannot fail (a hole is zeroed). */
			ret = logrec_apply(f->data, ps->page_size, &rec, &why);
			URT_ASSERT(ret == 0);
			f->chain = true;
			f->img_lsn = rec.lsn;
		} else if (rec.type == LOGREC_PAGE_DELTA) {
			ret = delta_base(ps, &rec, &f);
			if (ret)
				return ret;
			ret = logrec_apply(f->data, ps->page_size, &rec, &why);
			f->chain = true;
		} else {
			continue;
		}
		if (ret == 0) {
			f->page_lsn = rec.lsn;
			f->dirty = true;
			ps->stats.recovered_pages++;
			ps->stats.recovered_deltas += rec.type == LOGREC_PAGE_DELTA;
			ps->stats.recovered_image_holes += rec.type == LOGREC_PAGE_IMAGE_HOLE;
		}
		pool_unpin(ps, f);
		if (ret)
			break;
	}
	if (ret < 0 && why)
		urt_set_error("page store: log record in batch at LSN %llu: %s",
			      (unsigned long long)b->lsn, why);
	return ret < 0 ? ret : 0;
}

/* Batches end_check follows past the end: more than log_depth can leave in flight. */
#define END_CHAIN_MAX (URT_PS_LOG_DEPTH_MAX + 1)
/* Bytes end_check searches for the next batch when the end has no whole header. */
#define END_SCAN_MIN (4u << 20)

/*
 * Reads and checks the header of the batch expected at lsn; 0 when it is
 * a valid header of this store and incarnation, else positive (no batch
 * there) or an I/O error.  Anything but a valid header is only "no
 * evidence" here: end_check must not fail where recovery would not.
 */
static int end_header(struct urt_ps *ps, uint8_t *buf, uint64_t lsn, uint64_t min_epoch,
		      struct logrec_batch *b)
{
	const char *why = NULL;
	int ret = disk_read(ps, buf, ps->block_size, ps->sb.log_start + lsn % ps->sb.log_len);

	if (ret)
		return ret;
	return logrec_batch_check_header(buf, ps->block_size, &ps->geom, lsn, min_epoch, b,
					 &why) == 0 ? 0 : 1;
}

/*
 * The log seems to end at lsn: the batch expected there was never written,
 * is torn, or is damaged (design notes).  next is lsn + its span when its
 * header was whole (only the body failed), else 0: then the next batch is
 * searched for block by block over max(cap, END_SCAN_MIN) bytes.  From the
 * first valid header found, up to END_CHAIN_MAX batches are followed; the
 * ones sealed while lsn's batch was in flight (at most log_depth - 1)
 * claim nothing, and any claim above lsn is URT_E_CORRUPT.  Returns 0 when
 * lsn may end the log.
 */
static int end_check(struct urt_ps *ps, uint64_t lsn, uint64_t next, uint64_t min_epoch,
		     const char *why_end, uint8_t *buf, size_t cap)
{
	uint64_t window = cap > END_SCAN_MIN ? cap : END_SCAN_MIN;
	struct logrec_batch b;
	uint64_t q = 0;
	int ret;

	if (window > ps->sb.log_len)
		window = ps->sb.log_len;
	if (next) {
		ret = end_header(ps, buf, next, min_epoch, &b);
		if (ret)
			return ret < 0 ? ret : 0;
		q = next;
	}
	for (uint64_t done = ps->block_size; !q && done < window;) {
		uint64_t at = lsn + done, pos = at % ps->sb.log_len;
		uint64_t len = window - done;

		if (len > cap)
			len = cap;
		if (len > ps->sb.log_len - pos)
			len = ps->sb.log_len - pos;	/* Up to the region's end; the next lap follows. */
		len = len / ps->block_size * ps->block_size;
		URT_ASSERT(len > 0);
		ret = disk_read(ps, buf, len, ps->sb.log_start + pos);
		if (ret)
			return ret;
		for (uint64_t k = 0; k < len; k += ps->block_size) {
			const char *why = NULL;

			if (memcmp(buf + k, URT_LOG_MAGIC, 4) != 0)
				continue;
			if (logrec_batch_check_header(buf + k, ps->block_size, &ps->geom, at + k,
						      min_epoch, &b, &why) == 0) {
				q = at + k;
				break;
			}
		}
		done += len;
	}
	for (unsigned i = 0; q && i < END_CHAIN_MAX; i++) {
		if (b.durable_lsn > lsn) {
			urt_set_error("page store: the log batch at LSN %llu is damaged (%s), but the "
				      "batch at LSN %llu, sealed once the log was durable up to LSN "
				      "%llu, is intact: the damaged batch had been acknowledged, so this "
				      "is not a crash's torn tail; refusing to open the store, since "
				      "ending the log there would drop it and every commit after it",
				      (unsigned long long)lsn, why_end, (unsigned long long)b.lsn,
				      (unsigned long long)b.durable_lsn);
			return URT_E_CORRUPT;
		}
		min_epoch = b.epoch;
		q += b.span;
		ret = end_header(ps, buf, q, min_epoch, &b);
		if (ret)
			return ret < 0 ? ret : 0;
	}
	return 0;
}

int recovery_run(struct urt_ps *ps)
{
	uint64_t lsn = ps->sb.checkpoint_lsn;
	uint64_t min_epoch = ps->sb.checkpoint_epoch;
	uint64_t max_epoch = ps->sb.log_epoch;
	size_t cap = ps->opts.batch_bytes_max;
	uint8_t *buf = urt_buf_get(cap);
	uint8_t *big = NULL;
	uint64_t t0 = urt_clock_ns();
	int ret = 0;

	URT_ASSERT(ps->state == PS_OPENING && ps_state_consistent(ps));
	if (!buf)
		return -ENOMEM;
	ps->state = PS_RECOVERING;
	/* The whole log is durable while it is replayed (see the notes). */
	ps->durable_lsn = UINT64_MAX;
	for (;;) {
		struct logrec_batch b;
		const char *why = NULL;
		uint64_t off = ps->sb.log_start + lsn % ps->sb.log_len;
		uint8_t *p = buf;

		ret = disk_read(ps, buf, ps->block_size, off);
		if (ret)
			goto out;
		ret = logrec_batch_check_header(buf, ps->block_size, &ps->geom, lsn, min_epoch, &b,
						&why);
		if (ret == LOGREC_END) {
			ret = end_check(ps, lsn, 0, min_epoch, why, buf, cap);
			if (ret)
				goto out;
			break;
		}
		if (ret < 0) {
			urt_set_error("page store: log batch at LSN %llu: %s",
				      (unsigned long long)lsn, why ? why : "?");
			goto out;
		}
		if (b.type == LOGREC_BATCH_DATA) {
			if (b.span > cap) {
				/* Written with a larger batch_bytes_max: read it unregistered. */
				free(big);
				big = NULL;
				if (posix_memalign((void **)&big, 4096, b.span)) {
					ret = -ENOMEM;
					goto out;
				}
				p = big;
			}
			if (b.span > ps->block_size || p != buf) {
				ret = disk_read(ps, p, b.span, off);
				if (ret)
					goto out;
			}
			ret = logrec_batch_check_body(p, b.span, &ps->geom, &b, &why);
			if (ret == LOGREC_END) {
				ret = end_check(ps, lsn, lsn + b.span, b.epoch, why, buf, cap);
				if (ret)
					goto out;
				break;
			}
			if (ret < 0) {
				urt_set_error("page store: log batch at LSN %llu: %s",
					      (unsigned long long)lsn, why ? why : "?");
				goto out;
			}
			ret = apply_batch(ps, p, b.span, &b);
			if (ret)
				goto out;
			ps->stats.recovered_batches++;
		}
		min_epoch = b.epoch;
		if (b.epoch > max_epoch)
			max_epoch = b.epoch;
		lsn += b.span;
	}
	ret = 0;
	ps->next_lsn = lsn;
	ps->durable_lsn = lsn;
	ps->ckpt_lsn = ps->sb.checkpoint_lsn;
	ps->ckpt_lsn_old = ps->sb.checkpoint_lsn;
	ps->epoch = max_epoch + 1;
	ps->stats.recovery_ns = urt_clock_ns() - t0;
out:
	if (ret)
		ps->durable_lsn = 0;
	free(big);
	urt_buf_put(buf);
	return ret;
}
