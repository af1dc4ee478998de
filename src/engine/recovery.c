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
		if (ret == LOGREC_END)
			break;
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
			if (ret == LOGREC_END)
				break;
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
