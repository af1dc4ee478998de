/*
 * Write-ahead log with pipelined group commit.
 *
 * Design notes.
 *
 * A ring of opts.log_depth + 1 batch buffers.  Committers append their
 * records to the "fill" batch; a writer fiber seals it, moves the fill to
 * the next buffer of the ring and writes the sealed batch while the next
 * commits fill that buffer.  A commit arriving while a log write is in
 * flight therefore joins the next batch, and that batch goes out as soon as
 * a writer is free: the batch size adapts to the device latency by itself.
 *
 * Log depth.  There are opts.log_depth writer fibers, so up to that many
 * sealed batches are written (and flushed) at once: with depth 2, batch k+1
 * is written and flushed while batch k's write or flush is still on the
 * device.  Depth 1 is one writer, one batch in flight: batch k+1 goes out
 * only once batch k is durable.  Batches may finish out of order; each
 * marks itself written, and batch_ack acknowledges them strictly in log
 * order (the ring order, oldest first), so a batch's committers resume
 * only once it and every earlier batch are durable (invariant 2).  A
 * writer seals only while fewer than log_depth batches are unacknowledged,
 * so the buffer the fill moves to is always free.  docs/engine.md ("More
 * than one log batch in flight") has the measurements behind the default.
 *
 * Page deltas.  A committer diffs each write copy against the committed
 * frame (delta_diff), checks that the batch has room for what that adds,
 * then installs only the changed chunks into the frame and ORs them into
 * the frame's fill_mask; the first change of a page in a batch lists the
 * frame in the batch's pages.  Nothing is encoded at commit: when the
 * writer seals the batch it encodes, straight into the registered batch
 * buffer, one record per listed page from the frame's bytes (batch_encode)
 * and one COMMIT record carrying the batch's highest txid.  So the changes
 * of one page by all the commits of a batch are coalesced into one record,
 * every byte is copied once (frame -> batch buffer) and checksummed once
 * per record, and the batch's size is known exactly before it is sealed
 * (batch->bytes).  The frames cannot change or leave the pool between the
 * install and the seal: their page_lsn is the batch's LSN, above
 * durable_lsn, so neither eviction nor a checkpoint writes them home, and
 * only commits joining the same batch touch them.
 *
 * Rule D1 (images): a page is logged as a full image, not a delta, when
 * its delta chain does not rest on an image at or after img_floor, the LSN
 * of the newest checkpoint begun (or the page has no chain: it was read
 * from its home), or when the image is the smaller record.  A checkpoint
 * chooses its LSN B only at a batch boundary with nothing after it
 * (wal_checkpoint_begin seals a non-empty fill batch first) and sets
 * img_floor = B in the same step, so every record at or after B was logged
 * under a floor >= B.  Hence in the log from any checkpoint on, the first
 * record of every page is a full image: recovery never needs a page's home
 * copy to apply a delta, and a home write torn by the crash (checkpoint or
 * eviction) is always overwritten by an image before any delta applies.
 * This is PostgreSQL's full_page_writes rule, at batch granularity.
 *
 * Invariants:
 *  1. A transaction's records all lie in one batch, followed by the
 *     batch's COMMIT; a batch is valid as a whole (body CRC) or not at
 *     all, so recovery never half-applies a transaction.
 *  2. Batches are sealed in LSN order, at most log_depth of them are
 *     unacknowledged at once, and durable_seq / durable_lsn only move past
 *     a batch once it and every earlier batch are written and flushed
 *     (batch_ack).  A committer resumes only once durable_seq >= its
 *     batch's seq.  Acknowledgements therefore follow LSN order: when
 *     commit N is acknowledged, every batch before it is durable too, so the
 *     valid prefix recovery finds contains every acknowledged commit.  A
 *     later batch that reached the device while an earlier one did not (or
 *     was torn) lies past that prefix: recovery stops at the earlier one
 *     (its header's LSN or its body CRC fails), and the next incarnation's
 *     higher epoch keeps the later one from ever passing as part of its
 *     own log (recovery.c).
 *  3. The log never overwrites itself: a batch ending at `end` is only
 *     started when end - ckpt_lsn_old <= log_len, where ckpt_lsn_old is the
 *     checkpoint of the *older* superblock copy (format.md rule W3, the
 *     stricter option).  So either copy alone can recover the store: when
 *     the newest copy rots, the fallback to the other one still finds its
 *     whole log.  Otherwise the committer asks for a checkpoint and waits
 *     on space_wq (each checkpoint moves ckpt_lsn_old up).
 *  4. A batch that would cross the end of the log region is preceded by a
 *     one-block WRAP batch, and starts at the next lap.
 *  5. A failed log write or flush makes the store sticky (disk_set_sticky
 *     moves it to ERROR, ps.c): the batch's committers get the error, later
 *     ones URT_E_STICKY, and nothing written after it is ever acknowledged
 *     (batch_ack stops moving durable_seq; every waiter is woken and sees
 *     the error, including those of earlier batches still in flight).
 *
 * Shared flushes.  A checkpoint needs its page writes and its superblock
 * write durable, and the log writer flushes after every batch anyway
 * (policy FLUSH).  wal_flush asks for a flush *issued after the call*
 * (flush number flush_started + 1, so it covers every write completed
 * before the call) and waits for it; the writer's next batch flush serves
 * it, or, when no batch is due (or batches use FUA, which flushes nothing
 * else), the writer issues one flush of its own for all such waiters.
 * Under load a checkpoint thus adds no flush to the device's queue.
 *
 * Durability of one batch, by policy (docs/engine.md has the reasoning):
 *   FUA    the WRAP block (if any) and the batch are written with FUA;
 *   FLUSH  plain writes, then one flush that covers both;
 *   NONE   plain writes only: acknowledged commits may be lost.
 *
 * Writer states (each of the log_depth writers): idle (waiting on
 * writer_wq: no commit in the fill, another writer sealing, or log_depth
 * batches unacknowledged) -> sealing (ps->sealing; optionally waits
 * group_delay_ns to gather more; batch_seal) -> writing (batch_write) ->
 * written (batch_ack acknowledges it and any later written batches once
 * every earlier one is) -> idle.  Two other steps from idle: flushing for
 * wal_flush callers (writer_shared_flush, when no batch flush will serve
 * them) -> idle; and, once the store is sticky, dropping the fill batch
 * (batch_drop: its committers get the error, nothing is written) -> idle.
 * wal_commit wakes a writer when one could seal; batch_ack wakes one when
 * it frees a slot; ps close sets stopping and the writers exit when idle.
 *
 * Batch buffer states: free (!open) -> fill (open, batch_open) -> closed
 * (still the fill, b->closed: a checkpoint waits for its seal and no
 * further commit joins it, wal_checkpoint_begin) -> sealed (in flight,
 * batch_seal) -> written (batch_write ended) -> free (batch_ack, in ring
 * order).  A sticky error takes a fill (or closed) batch straight to free
 * (batch_drop).
 */
#include <errno.h>
#include <string.h>

#include "base/mem.h"
#include "engine/ps_impl.h"
#include "base/error.h"
#include "urt/buf.h"
#include "urt/error.h"

static uint64_t round_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

/* Bytes a record with a payload of len bytes takes in a batch body. */
static uint64_t rec_bytes(uint64_t len)
{
	return round_up(URT_LOG_REC_HDR_SIZE + len, URT_LOG_REC_ALIGN);
}

static uint64_t log_off(const struct urt_ps *ps, uint64_t lsn)
{
	return ps->sb.log_start + lsn % ps->sb.log_len;
}

int wal_init(struct urt_ps *ps)
{
	ps->nbatch = ps->opts.log_depth + 1;
	for (uint32_t i = 0; i < ps->nbatch; i++) {
		ps->batch[i].buf = urt_buf_get(ps->opts.batch_bytes_max);
		ps->batch[i].wrap_buf = urt_buf_get(ps->block_size);
		ps->batch[i].pages = mem_core_alloc((size_t)ps->nframes * sizeof(*ps->batch[i].pages));
		if (!ps->batch[i].pages) {
			wal_exit(ps);
			return -ENOMEM;
		}
		if (!ps->batch[i].buf || !ps->batch[i].wrap_buf) {
			wal_exit(ps);
			urt_set_error("page store: %u log buffers of %u bytes (log_depth %u + 1) do "
				      "not fit the core's buffer region", ps->nbatch,
				      ps->opts.batch_bytes_max, ps->opts.log_depth);
			return -ENOMEM;
		}
	}
	ps->fill_idx = 0;
	ps->ack_idx = 0;
	ps->fill = &ps->batch[0];
	return 0;
}

void wal_exit(struct urt_ps *ps)
{
	for (uint32_t i = 0; i < ps->nbatch; i++) {
		urt_buf_put(ps->batch[i].buf);
		urt_buf_put(ps->batch[i].wrap_buf);
		mem_core_free(ps->batch[i].pages);
		ps->batch[i].pages = NULL;
		ps->batch[i].buf = NULL;
		ps->batch[i].wrap_buf = NULL;
	}
}

/* Starts the fill batch at next_lsn, wrapping first when need bytes would not fit. */
static int batch_open(struct urt_ps *ps, struct batch *b, uint64_t need)
{
	uint64_t lsn = ps->next_lsn;
	uint64_t room = ps->sb.log_len - lsn % ps->sb.log_len;
	uint64_t cap;
	int ret;

	b->has_wrap = false;
	if (room < round_up(URT_LOG_BATCH_HDR_SIZE + need, ps->block_size)) {
		b->has_wrap = true;
		b->wrap_lsn = lsn;
		lsn += room;
		room = ps->sb.log_len;
	}
	cap = ps->opts.batch_bytes_max < room ? ps->opts.batch_bytes_max : room;
	cap = cap / ps->block_size * ps->block_size;
	ret = logrec_enc_begin(&b->enc, b->buf, cap, &ps->geom, lsn, ps->epoch);
	URT_ASSERT(ret == 0);
	b->seq = ++ps->seq_next;
	b->ncommits = 0;
	b->npages = 0;
	b->bytes = URT_LOG_BATCH_HDR_SIZE + rec_bytes(0);	/* Header and the COMMIT record. */
	b->last_txid = 0;
	b->closed = false;
	b->open = true;
	return 0;
}

/*
 * Picks the LSN B at which a checkpoint may start replay and sets
 * img_floor = B (rule D1): the start of the fill batch, once it holds no
 * commit.  A fill batch with commits is closed to new ones and sealed
 * first, since commits logged before the floor moved may be deltas.
 */
int wal_checkpoint_begin(struct urt_ps *ps, uint64_t *lsn)
{
	for (;;) {
		struct batch *b = ps->fill;

		if (ps->sticky)
			return URT_E_STICKY;
		if (!b->open || b->ncommits == 0) {
			*lsn = !b->open ? ps->next_lsn : b->has_wrap ? b->wrap_lsn : b->enc.lsn;
			ps->img_floor = *lsn;
			return 0;
		}
		b->closed = true;
		urt_waitq_wake_one(&ps->writer_wq);
		urt_waitq_wait(&ps->sealed_wq);
	}
}

/*
 * The hole an image of page may leave out (PAGE_IMAGE_HOLE): the run the
 * store's user names as unused (opts.page_hole), if it is at least
 * IMAGE_HOLE_MIN bytes, inside the page and all zero; else none (0).  The
 * zero test makes the hint safe: a wrong hint costs bytes, never data.
 * Returns the hole's length and sets *off (page offset).
 */
#define IMAGE_HOLE_MIN 64u
static uint32_t image_hole(const struct urt_ps *ps, const uint8_t *page, uint32_t *off)
{
	uint32_t data = ps->page_size - URT_PAGE_HDR_SIZE, o = 0, len;

	if (!ps->opts.page_hole)
		return 0;
	len = ps->opts.page_hole(page + URT_PAGE_HDR_SIZE, data, &o, ps->opts.page_hole_arg);
	if (len < IMAGE_HOLE_MIN || o > data || len > data - o ||
	    !urt_is_zero(page + URT_PAGE_HDR_SIZE + o, len))
		return 0;
	*off = URT_PAGE_HDR_SIZE + o;
	return len;
}

/*
 * How the fill batch logs a page (frame fill_rec, tx->rec_how): FILL_IMAGE set
 * for an image, whose hole is then offset << 16 | length (0: none).
 */
#define FILL_IMAGE (1ull << 32)

/*
 * Is the fill batch's record of a page (changed chunks m) an image?  When
 * rule D1 says so (image), or when the delta would take at least a whole
 * page image (the hole is not weighed there, so that the common small
 * delta costs no hole search).  Otherwise *d gets the delta's bytes.
 */
static bool rec_is_image(const struct urt_ps *ps, bool image, const struct delta_mask *m,
			 uint64_t *d)
{
	if (image)
		return true;
	*d = delta_rec_bytes(m, ps->page_size);
	return *d >= rec_bytes(ps->page_size);
}

/*
 * Bytes of an image record of page, and in *how FILL_IMAGE and its hole,
 * which the frame keeps for batch_encode, so the zeros are checked once.
 */
static uint64_t image_rec_bytes(const struct urt_ps *ps, const uint8_t *page, uint64_t *how)
{
	uint32_t off = 0, len = image_hole(ps, page, &off);

	_Static_assert(URT_PAGE_SIZE_MAX <= 65535u, "a hole's offset and length fit 16 bits each");
	*how = FILL_IMAGE | off << 16 | len;
	return rec_bytes(logrec_image_len(ps->page_size, len));
}

#ifndef NDEBUG
/*
 * Debug builds: the record bytes and kind of a page as commit_bytes
 * chooses them, recomputed from the installed frame after the install.
 */
static uint64_t frame_rec_bytes(const struct urt_ps *ps, bool image, const struct delta_mask *m,
				const uint8_t *page, uint64_t *how)
{
	uint64_t d;

	if (rec_is_image(ps, image, m, &d))
		return image_rec_bytes(ps, page, how);
	*how = 0;
	return d;
}
#endif

/* Rule D1 for a page's first change in a batch: does it need a full image? */
static bool frame_needs_image(const struct urt_ps *ps, const struct frame *f)
{
	return !f->chain || f->img_lsn < ps->img_floor;
}

/*
 * Bytes tx's changes add to the fill batch (exact: what batch_encode will
 * emit for them).  Sets tx->rec[i] to what the record of page i takes once
 * the change is installed, and tx->rec_how[i] to what it is (FILL_IMAGE
 * and hole), which the install uses as they are, provided
 * nothing yields in between (the batch, in_fill and rule D1 stay as they
 * were): each record's size is computed once per commit, not per step.
 */
static uint64_t commit_bytes(const struct urt_ps *ps, struct urt_tx *tx)
{
	uint64_t need = 0;

	for (uint32_t i = 0; i < tx->nwrite; i++) {
		const struct frame *f = tx->wr[i];
		struct delta_mask m = tx->diff[i];
		bool image = f->in_fill ? f->fill_image : frame_needs_image(ps, f);
		uint64_t d;

		tx->rec[i] = 0;
		if (delta_mask_empty(&m))
			continue;
		if (f->in_fill)
			delta_mask_or(&m, &f->fill_mask);
		if (rec_is_image(ps, image, &m, &d)) {
			/* The hole is searched in the whole page: fill a sparse copy in. */
			tx_materialize(tx, i);
			tx->rec[i] = image_rec_bytes(ps, tx->shadow[i], &tx->rec_how[i]);
		} else {
			tx->rec[i] = d;
			tx->rec_how[i] = 0;
		}
		need += tx->rec[i] - (f->in_fill ? f->fill_bytes : 0);
	}
	return need;
}

/*
 * Bytes of log that cannot be reused yet: from the older checkpoint (the
 * bound of invariant 3) to the end of what has been appended.  The
 * checkpoint trigger uses it, so that a checkpoint starts early enough for
 * committers not to wait for space.
 */
uint64_t wal_used(const struct urt_ps *ps)
{
	const struct batch *b = ps->fill;
	uint64_t end = b->open ? b->enc.lsn + b->bytes : ps->next_lsn;

	return end - ps->ckpt_lsn_old;
}

/*
 * Returns once a device flush issued after the call has completed: the
 * writes the caller completed before are durable.  Shared with the log
 * writer's flushes (see the notes); a flush failure is sticky.
 */
int wal_flush(struct urt_ps *ps)
{
	uint64_t want;

	if (!ps->writers_running || ps->stopping)
		return disk_flush(ps);	/* No writer to share a flush with. */
	want = ps->flush_started + 1;
	if (ps->flush_wanted < want)
		ps->flush_wanted = want;
	urt_waitq_wake_one(&ps->writer_wq);
	while (ps->flush_done < want) {
		if (ps->sticky)
			return URT_E_STICKY;
		urt_waitq_wait(&ps->flush_wq);
	}
	return 0;
}

/* The writer's flushes: numbered, so that wal_flush callers know which one covers them. */
static int writer_flush(struct urt_ps *ps)
{
	uint64_t n = ++ps->flush_started;
	int ret = disk_flush(ps);

	if (ret == 0) {
		/* With log_depth > 1 flushes may end out of order: any n >= a waiter's want covers it. */
		if (n > ps->flush_done)
			ps->flush_done = n;
		urt_waitq_wake_all(&ps->flush_wq);
	}
	return ret;
}

/* A flush of the writer's own for wal_flush callers that no batch flush served. */
static void writer_shared_flush(struct urt_ps *ps)
{
	int ret;

	ret = writer_flush(ps);
	if (ret)
		disk_set_sticky(ps, ret, "flushing the device for a checkpoint");
	urt_waitq_wake_all(&ps->flush_wq);
}

int wal_wait_durable(struct urt_ps *ps, uint64_t lsn)
{
	while (ps->durable_lsn < lsn) {
		if (ps->sticky)
			return URT_E_STICKY;
		urt_waitq_wake_one(&ps->writer_wq);
		urt_waitq_wait(&ps->durable_wq);
	}
	return 0;
}

/* Could an idle writer seal the fill batch now (nobody sealing, a slot free)? */
static bool writer_can_seal(const struct urt_ps *ps)
{
	return !ps->sealing && ps->inflight < ps->opts.log_depth;
}

/* Debug check of a ranged copy (tx.c): every chunk that differs from the frame is in its mask. */
static bool ranged_mask_covers(const struct urt_ps *ps, const struct urt_tx *tx, uint32_t i)
{
	struct delta_mask d;

	delta_diff(tx->wr[i]->data, tx->shadow[i], ps->page_size, &d);
	for (unsigned w = 0; w < DELTA_WORDS; w++)
		if (d.w[w] & ~tx->diff[i].w[w])
			return false;
	return true;
}

/*
 * Hands tx's shadow i, now equal to its frame, to the frame as its kept
 * copy (pool.c invariant 6); a sparse one equals the frame only in its
 * mask, so its buffer goes back instead.
 */
static void shadow_release(struct urt_ps *ps, struct urt_tx *tx, uint32_t i)
{
	if (tx->sparse[i])
		urt_buf_put(tx->shadow[i]);
	else
		pool_copy_keep(ps, tx->wr[i], tx->shadow[i]);
	tx->shadow[i] = NULL;
}

int wal_commit(struct urt_ps *ps, struct urt_tx *tx)
{
	/* Worst case (full images), for the wrap decision of a batch this commit opens. */
	uint64_t worst = tx->nwrite * rec_bytes(ps->page_size) + rec_bytes(0);
	uint64_t txid, seq, need;
	uint32_t changed = 0;
	struct batch *b;

	/*
	 * The write locks keep frames and copies fixed from here on: diff once;
	 * a ranged copy's mask already holds every chunk it wrote (tx.c).
	 */
	for (uint32_t i = 0; i < tx->nwrite; i++) {
		if (!tx->ranged[i]) {
			changed += delta_diff(tx->wr[i]->data, tx->shadow[i], ps->page_size, &tx->diff[i]);
			continue;
		}
		changed += !delta_mask_empty(&tx->diff[i]);
		/* A sparse copy differs from the frame outside its mask by design (tx.c). */
		URT_DEBUG_ASSERT(tx->sparse[i] || ranged_mask_covers(ps, tx, i));
	}
	if (changed == 0) {
		/*
		 * Written pages, but no byte changed: nothing to log.  The bytes
		 * the transaction saw may still be an earlier commit's whose
		 * batch is not durable yet (the same value SET twice), and this
		 * commit must not be acknowledged before them: wait until every
		 * written page's last change is durable (pool.c invariant 3's
		 * test, page_lsn below durable_lsn).  The write locks go first,
		 * so that the wait holds nobody up.
		 */
		uint64_t last = 0;
		bool wait = false;

		for (uint32_t i = 0; i < tx->nwrite; i++) {
			struct frame *f = tx->wr[i];

			f->writer = NULL;
			if (f->dirty && f->page_lsn >= ps->durable_lsn && f->page_lsn >= last) {
				last = f->page_lsn;
				wait = true;
			}
			shadow_release(ps, tx, i);
		}
		ps->stats.commits_readonly++;
		if (wait)
			return wal_wait_durable(ps, last + 1);
		return ps->sticky ? URT_E_STICKY : 0;
	}
	for (;;) {
		uint64_t end;

		if (ps->sticky)
			return URT_E_STICKY;
		b = ps->fill;
		if (!b->open)
			batch_open(ps, b, worst);
		need = commit_bytes(ps, tx);
		if (b->closed || b->bytes + need > b->enc.cap) {
			if (b->ncommits == 0 && !b->closed) {
				/* Opened empty for a smaller commit: start it again for this one. */
				b->open = false;
				continue;
			}
			/* Full, or being sealed for a checkpoint: this commit goes into the next batch. */
			urt_waitq_wake_one(&ps->writer_wq);
			urt_waitq_wait(&ps->sealed_wq);
			continue;
		}
		end = b->enc.lsn + round_up(b->bytes + need, ps->block_size);
		if (end - ps->ckpt_lsn_old > ps->sb.log_len) {
			/* Invariant 3: wait for a checkpoint to recycle log space. */
			ps->stats.log_waits++;
			ckpt_request(ps);
			if (b->ncommits)
				urt_waitq_wake_one(&ps->writer_wq);
			urt_waitq_wait(&ps->space_wq);
			continue;
		}
		break;
	}

	/* Install and account without yielding, so the batch holds the whole tx. */
	txid = ps->txid_next++;
	for (uint32_t i = 0; i < tx->nwrite; i++) {
		struct frame *f = tx->wr[i];
		const struct delta_mask *m = &tx->diff[i];

		f->writer = NULL;
		if (delta_mask_empty(m)) {
			shadow_release(ps, tx, i);
			continue;
		}
		if (!f->in_fill) {
			b->pages[b->npages++] = f;
			f->in_fill = true;
			f->fill_image = frame_needs_image(ps, f);
			delta_mask_clear(&f->fill_mask);
			f->fill_bytes = 0;
		}
		/* commit_bytes sized this record just before, without a yield since. */
		b->bytes += tx->rec[i] - f->fill_bytes;
		f->fill_bytes = tx->rec[i];
		f->fill_rec = tx->rec_how[i];
		delta_copy(f->data, tx->shadow[i], ps->page_size, m);
		/* Equal to the frame now: kept for its next writer (pool.c invariant 6). */
		shadow_release(ps, tx, i);
		delta_mask_or(&f->fill_mask, m);
#ifndef NDEBUG
		{
			uint64_t how;

			URT_DEBUG_ASSERT(f->fill_bytes == frame_rec_bytes(ps, f->fill_image, &f->fill_mask,
									  f->data, &how) &&
					 how == f->fill_rec);
		}
#endif
		/* Above durable_lsn until the batch is: no home write before then. */
		f->page_lsn = b->enc.lsn;
		f->dirty = true;
	}
	URT_ASSERT(b->bytes <= b->enc.cap);
	b->last_txid = txid;
	b->ncommits++;
	seq = b->seq;
	if (writer_can_seal(ps))
		urt_waitq_wake_one(&ps->writer_wq);
	if (!ps->ckpt_busy && wal_used(ps) * 100 > ps->sb.log_len * ps->opts.checkpoint_pct)
		ckpt_request(ps);

	/* Invariant 2: resume only once this batch is durable. */
	while (ps->durable_seq < seq) {
		if (ps->sticky)
			return ps->sticky;
		urt_waitq_wait(&b->wq);
	}
	return 0;
}

/*
 * Encodes the sealed batch b from its frames: one record per page (rule
 * D1 picks image or delta) and the COMMIT record; takes exactly b->bytes.
 */
static void batch_encode(struct urt_ps *ps, struct batch *b)
{
	int ret;

	for (uint32_t i = 0; i < b->npages; i++) {
		struct frame *f = b->pages[i];
		uint64_t lsn;

		URT_ASSERT(f->in_fill && f->state == FRAME_VALID && f->dirty);
		/* The record frame_rec_bytes sized, with the hole it found (the bytes are the same). */
		if (f->fill_rec & FILL_IMAGE) {
			uint32_t off = (uint32_t)(f->fill_rec >> 16) & 0xffff, hole = f->fill_rec & 0xffff;

			ret = logrec_enc_image(&b->enc, b->last_txid, f->pgno, f->data, off, hole, &lsn);
			ps->stats.log_image_holes += hole != 0;
			ps->stats.log_image_hole_bytes += hole;
			f->chain = true;
			f->img_lsn = lsn;
			ps->stats.log_images++;
		} else {
			ret = delta_encode(&b->enc, b->last_txid, f->pgno, f->data, &f->fill_mask,
					   &lsn);
			ps->stats.log_deltas++;
		}
		URT_ASSERT(ret == 0);
		f->page_lsn = lsn;
		f->in_fill = false;
		delta_mask_clear(&f->fill_mask);
		f->fill_bytes = 0;
	}
	ret = logrec_enc_add(&b->enc, LOGREC_COMMIT, b->last_txid, 0, NULL, 0, NULL);
	URT_ASSERT(ret == 0 && b->enc.off == b->bytes);
	b->npages = 0;
}

/* Writes the sealed batch b (and its WRAP block) per the sync policy. */
static int batch_write(struct urt_ps *ps, struct batch *b, uint64_t span)
{
	int ret = 0;

	if (b->has_wrap) {
		ret = disk_write(ps, b->wrap_buf, ps->block_size, log_off(ps, b->wrap_lsn), ps->use_fua);
		ps->stats.log_writes++;
		ps->stats.log_bytes += ps->block_size;
		ps->stats.fua_writes += ps->use_fua;
		if (ret)
			return ret;
	}
	ret = disk_write(ps, b->buf, span, log_off(ps, b->enc.lsn), ps->use_fua);
	ps->stats.log_writes++;
	ps->stats.log_bytes += span;
	ps->stats.fua_writes += ps->use_fua;
	if (ret)
		return ret;
	if (ps->use_flush && !ps->use_fua)
		ret = writer_flush(ps);
	return ret;
}

/*
 * Acknowledges, in ring (log) order, every written batch that has no
 * unwritten batch before it: moves durable_seq and durable_lsn past it
 * (unless the store is sticky, invariant 5), frees its buffer and wakes its
 * committers.
 */
static void batch_ack(struct urt_ps *ps)
{
	bool freed = false;

	while (ps->inflight) {
		struct batch *a = &ps->batch[ps->ack_idx];

		if (!a->written)
			break;
		if (!ps->sticky) {
			ps->durable_lsn = a->end_lsn;
			ps->durable_seq = a->seq;
			ps->stats.batches++;
			ps->stats.commits += a->ncommits;
		}
		a->written = false;
		a->open = false;
		ps->inflight--;
		ps->ack_idx = (ps->ack_idx + 1) % ps->nbatch;
		urt_waitq_wake_all(&a->wq);
		freed = true;
	}
	urt_waitq_wake_all(&ps->durable_wq);
	if (ps->sticky) {
		/* Committers of earlier batches still in flight see the error now too. */
		for (uint32_t i = 0; i < ps->nbatch; i++)
			urt_waitq_wake_all(&ps->batch[i].wq);
		/* Nobody waits for space that will never come. */
		urt_waitq_wake_all(&ps->space_wq);
		urt_waitq_wake_all(&ps->sealed_wq);
	}
	if (freed)
		urt_waitq_wake_one(&ps->writer_wq);	/* A slot is free: another writer may seal. */
}

/*
 * Seals the fill batch b: encodes it, fixes its end, and moves the fill to
 * the next buffer of the ring (free: fewer than log_depth were in flight).
 * Does not yield.  Returns the bytes to write.
 */
static uint64_t batch_seal(struct urt_ps *ps, struct batch *b)
{
	uint64_t span, wspan;
	int ret;

	batch_encode(ps, b);
	/*
	 * The durable point now: every batch below it is on stable media, so
	 * a crash cannot have torn it, and recovery may call it damaged if
	 * this batch is found after it (recovery.c, end_check).  Under
	 * NONE_UNSAFE acknowledged batches are not durable: 0, no claim.
	 */
	b->enc.durable_lsn = ps->use_flush ? ps->durable_lsn : 0;
	ret = logrec_enc_finish(&b->enc, &span);
	URT_ASSERT(ret == 0);
	if (b->has_wrap) {
		ret = logrec_wrap_encode(b->wrap_buf, ps->block_size, &ps->geom, b->wrap_lsn,
					 ps->epoch, &wspan);
		URT_ASSERT(ret == 0 && b->wrap_lsn + wspan == b->enc.lsn);
	}
	b->end_lsn = b->enc.lsn + span;
	b->written = false;
	ps->next_lsn = b->end_lsn;
	URT_ASSERT(ps->inflight < ps->opts.log_depth && b == &ps->batch[ps->fill_idx]);
	/* The unacknowledged batches are the inflight buffers before the fill, in ring order. */
	URT_ASSERT((ps->ack_idx + ps->inflight) % ps->nbatch == ps->fill_idx);
	ps->stats.batches_overlapped += ps->inflight > 0;
	ps->inflight++;
	/* New commits fill the next buffer while this one is written. */
	ps->fill_idx = (ps->fill_idx + 1) % ps->nbatch;
	ps->fill = &ps->batch[ps->fill_idx];
	URT_ASSERT(!ps->fill->open);
	return span;
}

/*
 * After a sticky error nothing more is written: the fill batch's
 * committers are woken to see the error, and the batch is dropped (its
 * frames leave the fill through batch_encode, into a buffer never written).
 */
static void batch_drop(struct urt_ps *ps, struct batch *b)
{
	batch_encode(ps, b);
	b->open = false;
	urt_waitq_wake_all(&b->wq);
	urt_waitq_wake_all(&ps->sealed_wq);
	urt_waitq_wake_all(&ps->space_wq);
}

static void writer_main(void *arg)
{
	struct urt_ps *ps = arg;

	urt_fiber_io_prio(URT_PRIO_URGENT);	/* Log writes and their flushes go first (runtime sched). */
	for (;;) {
		struct batch *b = ps->fill;
		bool empty = !b->open || b->ncommits == 0;
		uint64_t span;
		int ret;

		/*
		 * A wal_flush caller is served by the next batch's flush when one
		 * is due and flushes (policy FLUSH); otherwise by a flush of its
		 * own now, so that a stream of FUA batches never starves it.
		 */
		if (ps->flush_wanted > ps->flush_done && !ps->sticky &&
		    (empty || !ps->use_flush || ps->use_fua)) {
			writer_shared_flush(ps);
			continue;
		}
		if (!empty && ps->sticky && !ps->sealing) {
			batch_drop(ps, b);
			continue;
		}
		if (empty || !writer_can_seal(ps)) {
			if (empty && ps->stopping)
				break;
			urt_waitq_wait(&ps->writer_wq);
			continue;
		}
		ps->sealing = true;
		/* Bounded delay window: give more committers a chance to join. */
		if (ps->opts.group_delay_ns && !ps->sticky)
			urt_sleep_ns(ps->opts.group_delay_ns);
		if (ps->sticky) {
			ps->sealing = false;
			batch_drop(ps, b);
			continue;
		}
		span = batch_seal(ps, b);
		ps->sealing = false;
		urt_waitq_wake_all(&ps->sealed_wq);

		ret = batch_write(ps, b, span);
		if (ret)
			disk_set_sticky(ps, ret, "writing a log batch");
		b->written = true;
		batch_ack(ps);
		/*
		 * Let the committers just woken run first: most of them commit
		 * again at once, and they should join the next batch together.
		 * Sealing at once would send a batch holding only the stragglers
		 * that arrived during the write, and the rest would follow in a
		 * batch of their own: a convoy that halves throughput.
		 */
		urt_fiber_yield();
	}
	ps->writers_running--;
	urt_waitq_wake_all(&ps->writer_exit_wq);
	/* A writer waiting for a slot must see stopping too. */
	urt_waitq_wake_all(&ps->writer_wq);
}

int wal_start(struct urt_ps *ps)
{
	for (uint32_t i = 0; i < ps->opts.log_depth; i++) {
		int ret = urt_fiber_spawn(writer_main, ps);

		if (ret) {
			wal_stop(ps);	/* Ends the writers already running. */
			return ret;
		}
		ps->writers_running++;
	}
	return 0;
}

void wal_stop(struct urt_ps *ps)
{
	ps->stopping = true;
	urt_waitq_wake_all(&ps->writer_wq);
	while (ps->writers_running)
		urt_waitq_wait(&ps->writer_exit_wq);
}
