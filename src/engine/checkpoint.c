/*
 * Checkpoints: bound the log that recovery must replay, and recycle it.
 *
 * Design notes.
 *
 * A checkpoint picks B, the LSN of a batch boundary with nothing logged
 * after it yet (wal_checkpoint_begin seals a fill batch that holds commits
 * first), and in the same step raises img_floor to B, so the first change
 * of every page from here on is logged as a full image (wal.c rule D1).
 * Then it:
 *   1. waits until the log is durable up to B;
 *   2. writes home every dirty frame whose page_lsn < B (from a scratch
 *      copy, so commits may keep installing into the frame meanwhile);
 *   3. flushes, so those page writes are durable (wal_flush: the log
 *      writer's next flush, shared with a batch when one is due);
 *   4. writes the superblock copy of the next generation with
 *      checkpoint_lsn = B, then flushes (shared again) and adopts it;
 *   5. only now sets ckpt_lsn = B (and ckpt_lsn_old to the previous
 *      checkpoint, still named by the other superblock copy), which lets
 *      the WAL overwrite the log before the older of the two, and wakes
 *      committers waiting for space.
 * Why the order is safe:
 *  - Step 1 before 2 is the WAL rule: no page reaches home before the log
 *    record of its latest change is durable.
 *  - A dirty frame with page_lsn >= B is skipped: it changed after B, and
 *    by rule D1 its first change at or after B was logged as a full image,
 *    so replay from B rebuilds it from that image and the deltas after it.
 *    But those records may still sit in a batch that is not durable, while
 *    the changes before B are in the log before B: so before step 4 the
 *    checkpoint waits until the log is durable past the highest skipped
 *    page_lsn (found by the crash test: without the wait, a crash right
 *    after the superblock write lost an acknowledged commit).  Hence after
 *    step 5 every dirty frame's image and later deltas lie at or after the
 *    checkpoint (pool.c invariant 4), and a page write torn by a crash,
 *    whether by a checkpoint or an eviction, is repaired by replay.
 *  - A page written home at step 2 and changed again later gets an image
 *    at its next change (its chain's image is below B = img_floor), so a
 *    later home write of it that tears is repaired from the log as well.
 *  - Step 3 before 4: the superblock must not claim pages are home before
 *    they are.  A crash before step 4 completes leaves the older copy (other
 *    slot) valid with the older checkpoint, whose log is still intact
 *    because step 5 has not happened.
 *  - Step 4's flush before 5: log space is reused only once the new
 *    checkpoint is durable.
 * Frames being evicted are waited for, so their home write is inside the
 * flush of step 3.
 *
 * One checkpoint runs at a time (ckpt_busy); a background fiber runs them
 * when the WAL asks (log use above checkpoint_pct, or a committer out of
 * space), and urt_ps_checkpoint runs one in the caller's fiber.
 *
 * Store states (ps.c): a checkpoint of an open store moves it from OPEN to
 * CHECKPOINTING and back.  The open checkpoint runs in RECOVERING and
 * leaves that state alone (urt_ps_open moves on to OPEN).  Every failure
 * makes the store sticky, so a failed checkpoint ends in ERROR, and ERROR
 * is never turned back into OPEN here.
 */
#include <errno.h>
#include <string.h>

#include "engine/ps_impl.h"
#include "urt/buf.h"
#include "urt/error.h"

/* One page write of a checkpoint in flight (CKPT_WRITES_MAX at once). */
struct ckpt_write {
	struct urt_io io;		/* The write; its callback is ckpt_write_done. */
	struct urt_ps *ps;		/* Owning store. */
	struct frame *f;		/* Frame being written (pinned). */
	uint64_t lsn;			/* page_lsn of the copy being written. */
	bool busy;			/* In flight. */
};

struct ckpt_ctx {
	struct ckpt_write w[CKPT_WRITES_MAX];	/* Write slots, buffers in ps->ckpt_bufs. */
	unsigned inflight;		/* Writes in flight. */
	int err;			/* First write error. */
	struct urt_waitq wq;		/* The checkpoint waits here for a free slot. */
};

static void ckpt_write_done(struct urt_io *io, int res, void *arg)
{
	struct ckpt_ctx *c = arg;
	struct ckpt_write *w = (struct ckpt_write *)io;	/* io is the first member. */
	struct urt_ps *ps = w->ps;

	if (res >= 0 && (uint64_t)res != ps->page_size)
		res = -EIO;
	if (res < 0) {
		if (!c->err)
			c->err = res;
	} else {
		/* Clean unless a commit installed a newer image meanwhile. */
		if (w->f->page_lsn == w->lsn)
			w->f->dirty = false;
		ps->stats.checkpoint_pages++;
	}
	pool_unpin(ps, w->f);
	w->busy = false;
	c->inflight--;
	urt_waitq_wake_all(&c->wq);
}

/* Copies, seals and submits frame f's page into a free slot (one exists); never blocks. */
static int ckpt_write_page(struct urt_ps *ps, struct ckpt_ctx *c, struct frame *f)
{
	struct ckpt_write *w = NULL;
	int ret;

	for (unsigned k = 0; k < CKPT_WRITES_MAX && !w; k++)
		if (!c->w[k].busy)
			w = &c->w[k];
	URT_ASSERT(w);
	memcpy(ps->ckpt_bufs[w - c->w], f->data, ps->page_size);
	page_seal(ps->ckpt_bufs[w - c->w], ps->page_size, f->pgno, f->page_lsn);
	w->ps = ps;
	w->f = f;
	w->lsn = f->page_lsn;
	/* The pin keeps eviction away while the copy is written. */
	f->pins++;
	urt_io_prep_write(&w->io, ps->dev, ps->ckpt_bufs[w - c->w], ps->page_size,
			  ps->base + disk_page_off(ps, f->pgno));
	w->io.prio = URT_PRIO_BACKGROUND;	/* Sorted and merged by the device's scheduler, behind the log. */
	ret = urt_io_submit(&w->io, ckpt_write_done, c);
	if (ret) {
		pool_unpin(ps, f);
		return ret;
	}
	w->busy = true;
	c->inflight++;
	return 0;
}

int ckpt_run(struct urt_ps *ps)
{
	uint64_t b_lsn, epoch, skipped_lsn = 0;
	struct superblock sb;
	struct ckpt_ctx c;
	int ret;

	URT_ASSERT(ps->state == PS_RECOVERING || ps_is_serving(ps));
	URT_ASSERT(ps_state_consistent(ps));
	while (ps->ckpt_busy)
		urt_waitq_wait(&ps->ckpt_wq);
	if (ps->sticky)
		return URT_E_STICKY;
	/* ps.c invariant 4: with the lock free, no checkpoint state is left over. */
	URT_ASSERT(ps->state == PS_RECOVERING || ps->state == PS_OPEN);
	ps->ckpt_busy = true;
	if (ps->state == PS_OPEN)
		ps->state = PS_CHECKPOINTING;
	memset(&c, 0, sizeof(c));
	ret = wal_checkpoint_begin(ps, &b_lsn);
	if (ret)
		goto out;
	epoch = ps->epoch;
	ret = wal_wait_durable(ps, b_lsn);
	if (ret)
		goto out;
	for (uint32_t i = 0; i < ps->nframes; i++) {
		struct frame *f = &ps->frames[i];

		/*
		 * Wait for a free slot first, then for an eviction of this frame:
		 * nothing may block between the checks below and the submit.
		 */
		while (c.inflight == CKPT_WRITES_MAX)
			urt_waitq_wait(&c.wq);
		if (c.err)
			break;
		while (f->state == FRAME_EVICTING)
			urt_waitq_wait(&f->wq);
		if (f->state != FRAME_VALID || !f->dirty)
			continue;
		if (f->page_lsn >= b_lsn) {
			if (f->page_lsn > skipped_lsn)
				skipped_lsn = f->page_lsn;
			continue;
		}
		ret = ckpt_write_page(ps, &c, f);
		if (ret)
			break;
	}
	/* Every page write must be complete before the flush that covers it. */
	while (c.inflight)
		urt_waitq_wait(&c.wq);
	if (!ret)
		ret = c.err;
	if (ret) {
		disk_set_sticky(ps, ret, "writing a page home during a checkpoint");
		goto out;
	}
	ret = wal_flush(ps);
	if (ret) {
		disk_set_sticky(ps, ret, "flushing pages during a checkpoint");
		goto out;
	}
	/* The images of the skipped frames replace the ones before B: they must be durable. */
	if (skipped_lsn) {
		ret = wal_wait_durable(ps, skipped_lsn + 1);
		if (ret)
			goto out;
	}
	ret = disk_sb_write(ps, b_lsn, epoch, &sb);
	if (ret == 0)
		ret = wal_flush(ps);
	if (ret) {
		disk_set_sticky(ps, ret, "writing the superblock");
		goto out;
	}
	ps->sb = sb;
	ps->ckpt_lsn_old = ps->ckpt_lsn;
	ps->ckpt_lsn = b_lsn;
	ps->stats.checkpoints++;
	urt_waitq_wake_all(&ps->space_wq);
out:
	/* A checkpoint fails only by making the store sticky (ps.c invariant 4). */
	URT_ASSERT(ret == 0 || ps->state == PS_ERROR);
	if (ps->state == PS_CHECKPOINTING)
		ps->state = PS_OPEN;
	ps->ckpt_busy = false;
	urt_waitq_wake_all(&ps->ckpt_wq);
	if (ret)
		urt_waitq_wake_all(&ps->space_wq);
	return ret;
}

static void ckpt_main(void *arg)
{
	struct urt_ps *ps = arg;

	for (;;) {
		if (ps->stopping)
			break;
		if (!ps->ckpt_wanted) {
			urt_waitq_wait(&ps->ckpt_fiber_wq);
			continue;
		}
		ps->ckpt_wanted = false;
		if (ckpt_run(ps))
			urt_waitq_wake_all(&ps->space_wq);
	}
	ps->ckpt_running = false;
	urt_waitq_wake_all(&ps->writer_exit_wq);
}

void ckpt_request(struct urt_ps *ps)
{
	ps->ckpt_wanted = true;
	urt_waitq_wake_one(&ps->ckpt_fiber_wq);
}

int ckpt_start(struct urt_ps *ps)
{
	int ret = urt_fiber_spawn(ckpt_main, ps);

	if (ret == 0)
		ps->ckpt_running = true;
	return ret;
}

void ckpt_stop(struct urt_ps *ps)
{
	ps->stopping = true;
	urt_waitq_wake_all(&ps->ckpt_fiber_wq);
	while (ps->ckpt_running)
		urt_waitq_wait(&ps->writer_exit_wq);
}
