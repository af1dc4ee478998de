/*
 * Write-ahead log with pipelined group commit.
 *
 * Design notes.
 *
 * Two batch buffers alternate.  Committers append their records to the
 * "fill" batch; one writer fiber per shard seals it, swaps the buffers and
 * writes the sealed batch while the next commits fill the other buffer.
 * A commit arriving while a log write is in flight therefore joins the next
 * batch, and that batch goes out as soon as the device is done with the
 * current one: the batch size adapts to the device latency by itself.
 *
 * Invariants:
 *  1. A transaction's records (full page images, then COMMIT) all lie in
 *     one batch; a batch is valid as a whole (body CRC) or not at all, so
 *     recovery never half-applies a transaction.
 *  2. Batches are written in LSN order, at most one at a time, and a
 *     committer resumes only once its own batch is durable (durable_seq >=
 *     its batch's seq).  Acknowledgements therefore follow LSN order: when
 *     commit N is acknowledged, every batch before it is durable too, so the
 *     valid prefix recovery finds contains every acknowledged commit.
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
 *     ones URT_E_STICKY, and nothing written after it is ever acknowledged.
 *
 * Durability of one batch, by policy (docs/engine.md has the reasoning):
 *   FUA    the WRAP block (if any) and the batch are written with FUA;
 *   FLUSH  plain writes, then one flush that covers both;
 *   NONE   plain writes only: acknowledged commits may be lost.
 *
 * Writer states: idle (waiting on writer_wq) -> sealing (fill has commits;
 * optionally waits group_delay_ns to gather more) -> writing (writer_busy)
 * -> idle.  wal_commit wakes the writer; ps close sets stopping.
 */
#include <errno.h>
#include <string.h>

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
	for (int i = 0; i < 2; i++) {
		ps->batch[i].buf = urt_buf_get(ps->opts.batch_bytes_max);
		ps->batch[i].wrap_buf = urt_buf_get(ps->block_size);
		if (!ps->batch[i].buf || !ps->batch[i].wrap_buf) {
			wal_exit(ps);
			urt_set_error("page store: two %u-byte log buffers do not fit the core's "
				      "buffer region", ps->opts.batch_bytes_max);
			return -ENOMEM;
		}
	}
	ps->fill = &ps->batch[0];
	return 0;
}

void wal_exit(struct urt_ps *ps)
{
	for (int i = 0; i < 2; i++) {
		urt_buf_put(ps->batch[i].buf);
		urt_buf_put(ps->batch[i].wrap_buf);
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
	b->open = true;
	return 0;
}

/* The LSN at which the next checkpoint may start replay: the fill batch's start. */
uint64_t wal_checkpoint_lsn(struct urt_ps *ps)
{
	struct batch *b = ps->fill;

	if (b->open)
		return b->has_wrap ? b->wrap_lsn : b->enc.lsn;
	return ps->next_lsn;
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
	uint64_t end = b->open ? b->enc.lsn + b->enc.off : ps->next_lsn;

	return end - ps->ckpt_lsn_old;
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

int wal_commit(struct urt_ps *ps, struct urt_tx *tx)
{
	uint64_t need = tx->nwrite * rec_bytes(ps->page_size) + rec_bytes(0);
	uint64_t txid, seq;
	struct batch *b;
	int ret;

	for (;;) {
		uint64_t end;

		if (ps->sticky)
			return URT_E_STICKY;
		b = ps->fill;
		if (!b->open)
			batch_open(ps, b, need);
		if (logrec_enc_room(&b->enc) < need) {
			if (b->ncommits == 0) {
				/* Opened empty for a smaller commit: start it again for this one. */
				b->open = false;
				continue;
			}
			/* Full: this commit goes into the next batch. */
			urt_waitq_wake_one(&ps->writer_wq);
			urt_waitq_wait(&ps->sealed_wq);
			continue;
		}
		end = b->enc.lsn + round_up(b->enc.off + need, ps->block_size);
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

	/* Append and install without yielding, so the batch holds the whole tx. */
	txid = ps->txid_next++;
	for (uint32_t i = 0; i < tx->nwrite; i++) {
		struct frame *f = tx->wr[i];
		uint64_t lsn;

		ret = logrec_enc_add(&b->enc, LOGREC_PAGE_IMAGE, txid, f->pgno, tx->shadow[i],
				     ps->page_size, &lsn);
		URT_ASSERT(ret == 0);
		memcpy(f->data, tx->shadow[i], ps->page_size);
		f->page_lsn = lsn;
		f->dirty = true;
		f->writer = NULL;
	}
	ret = logrec_enc_add(&b->enc, LOGREC_COMMIT, txid, 0, NULL, 0, NULL);
	URT_ASSERT(ret == 0);
	b->ncommits++;
	seq = b->seq;
	if (!ps->writer_busy)
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
		ret = disk_flush(ps);
	return ret;
}

static void writer_main(void *arg)
{
	struct urt_ps *ps = arg;

	urt_fiber_io_prio(URT_PRIO_URGENT);	/* Log writes and their flushes go first (runtime sched). */
	for (;;) {
		struct batch *b = ps->fill;
		uint64_t span, wspan;
		int ret;

		if (!b->open || b->ncommits == 0) {
			if (ps->stopping)
				break;
			urt_waitq_wait(&ps->writer_wq);
			continue;
		}
		/* Bounded delay window: give more committers a chance to join. */
		if (ps->opts.group_delay_ns && !ps->sticky)
			urt_sleep_ns(ps->opts.group_delay_ns);

		ret = logrec_enc_finish(&b->enc, &span);
		URT_ASSERT(ret == 0);
		if (b->has_wrap) {
			ret = logrec_wrap_encode(b->wrap_buf, ps->block_size, &ps->geom, b->wrap_lsn,
						 ps->epoch, &wspan);
			URT_ASSERT(ret == 0 && b->wrap_lsn + wspan == b->enc.lsn);
		}
		ps->next_lsn = b->enc.lsn + span;
		/* Swap: new commits fill the other buffer while this one is written. */
		ps->fill = b == &ps->batch[0] ? &ps->batch[1] : &ps->batch[0];
		URT_ASSERT(!ps->fill->open);
		ps->writer_busy = true;
		urt_waitq_wake_all(&ps->sealed_wq);

		ret = ps->sticky ? URT_E_STICKY : batch_write(ps, b, span);
		if (ret) {
			disk_set_sticky(ps, ret, "writing a log batch");
		} else {
			ps->durable_lsn = ps->next_lsn > b->enc.lsn + span ? b->enc.lsn + span
									    : ps->next_lsn;
			ps->durable_seq = b->seq;
			ps->stats.batches++;
			ps->stats.commits += b->ncommits;
		}
		b->open = false;
		ps->writer_busy = false;
		urt_waitq_wake_all(&b->wq);
		urt_waitq_wake_all(&ps->durable_wq);
		if (ps->sticky) {
			/* Nobody waits for space that will never come. */
			urt_waitq_wake_all(&ps->space_wq);
			urt_waitq_wake_all(&ps->sealed_wq);
		}
		/*
		 * Let the committers just woken run first: most of them commit
		 * again at once, and they should join the next batch together.
		 * Sealing at once would send a batch holding only the stragglers
		 * that arrived during the write, and the rest would follow in a
		 * batch of their own: a convoy that halves throughput.
		 */
		urt_fiber_yield();
	}
	ps->writer_running = false;
	urt_waitq_wake_all(&ps->writer_exit_wq);
}

int wal_start(struct urt_ps *ps)
{
	int ret = urt_fiber_spawn(writer_main, ps);

	if (ret == 0)
		ps->writer_running = true;
	return ret;
}

void wal_stop(struct urt_ps *ps)
{
	ps->stopping = true;
	urt_waitq_wake_all(&ps->writer_wq);
	while (ps->writer_running)
		urt_waitq_wait(&ps->writer_exit_wq);
}
