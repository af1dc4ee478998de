/*
 * Buffer pool: a bounded set of page frames carved from the core's
 * registered buffer region, so every page read and write is READ_FIXED /
 * WRITE_FIXED on an O_DIRECT device.
 *
 * Design notes.
 *
 * Invariants:
 *  1. A page is in at most one frame, found through the direct index or
 *     the hash chains; a frame is indexed exactly when its state is not
 *     FREE.
 *  2. A frame holds committed bytes only: transactions write private
 *     copies (tx.c) that commit installs, so eviction and checkpoints never
 *     see uncommitted data and there is no undo.
 *  3. WAL rule: a dirty frame is written home only when its page_lsn is
 *     below durable_lsn (its image is durable in the log).
 *  4. A dirty frame's latest full image, and every delta after it, lie in
 *     the log at or after the durable checkpoint LSN (checkpoint.c and
 *     wal.c rule D1 keep this), so a torn home write is always repaired
 *     by recovery.
 *  5. A pinned frame (pins > 0) is never evicted.
 *
 * States: FREE -> READING (pool_get miss) -> VALID (read done) or FREE (read
 * failed); VALID -> EVICTING (CLOCK picked a dirty victim) -> FREE/reused.
 * Fibers that find a frame READING or EVICTING wait on its wait queue and
 * look the page up again when woken; this is how two fibers asking for the
 * same missing page share one read.
 *
 * Kept copies (copy on first write).  A transaction writes a private copy
 * of the page (tx.c); at commit the changed chunks are installed, after
 * which the copy equals the frame.  Instead of freeing it, commit hands it
 * to the frame (pool_copy_keep): the next transaction that writes the page
 * takes it (pool_copy_take) and needs no 4 KiB copy and no buffer
 * allocation.  Invariant 6: a frame's kept copy (twin) equals its data
 * byte for byte; it is attached only right after an install under the
 * write lock, every writer detaches it before writing, and the only other
 * writes into a frame's data (a page read, recovery, page_seal at
 * eviction) happen to frames without one (a frame loses its copy when it
 * is reused, pool_copy_drop).  At most opts.write_copies_kept frames keep
 * one; the least recently kept is freed first, and a transaction that
 * finds the buffer region empty takes one (pool_copy_steal).  Debug builds
 * check invariant 6 on every take.
 *
 * Lookup.  A store of up to pool_direct_pages_max pages (2^28: 1 TiB of
 * 4 KiB pages) keeps a direct index, one u32 per page holding its frame's
 * number + 1 (0: not cached), so a hit reads one index entry and one frame
 * line; the index is calloc'ed, so the kernel backs only the parts that
 * ever named a frame (at most 4 bytes per page, 0.1% of the store).  A
 * larger store uses a chained hash of page numbers (buckets at most half
 * full), where a hit may also read the other frames of its chain.  Either
 * way the fields a lookup reads (page, state, pins, reference bit, writer)
 * share the frame's first cache line (struct frame).
 *
 * Eviction is CLOCK: the hand clears reference bits and takes the first
 * unpinned VALID frame whose bit is clear; it skips dirty frames whose image
 * is not durable yet.  When every frame is pinned the caller gets
 * URT_E_FULL at once (never a wait that could deadlock); when some are only
 * waiting for log durability, it waits for the log writer.
 */
#include <errno.h>
#include <string.h>

#include "engine/ps_impl.h"
#include "base/error.h"
#include "urt/buf.h"
#include "urt/error.h"

static uint32_t hash_pgno(const struct urt_ps *ps, uint64_t pgno)
{
	/* Fibonacci hashing spreads consecutive page numbers over the buckets. */
	return (uint32_t)((pgno * 0x9e3779b97f4a7c15ull) >> 32) & ps->hash_mask;
}

uint64_t pool_direct_pages_max = 1ull << 28;

int pool_init(struct urt_ps *ps)
{
	uint32_t buckets = 1;

	ps->nframes = ps->opts.pool_pages;
	ps->frames = aligned_alloc(_Alignof(struct frame), ps->nframes * sizeof(*ps->frames));
	if (!ps->frames)
		goto err_free;
	memset(ps->frames, 0, ps->nframes * sizeof(*ps->frames));
	if (ps->sb.page_count <= pool_direct_pages_max) {
		ps->index = calloc(ps->sb.page_count, sizeof(*ps->index));
		if (!ps->index) {
			urt_set_error("page store: no memory for the frame index of %llu pages",
				      (unsigned long long)ps->sb.page_count);
			pool_exit(ps);
			return -ENOMEM;
		}
	} else {
		while (buckets < 2 * ps->nframes)
			buckets <<= 1;
		ps->hash_mask = buckets - 1;
		ps->hash = malloc(buckets * sizeof(*ps->hash));
		if (!ps->hash)
			goto err_free;
		memset(ps->hash, 0xff, buckets * sizeof(*ps->hash));
	}
	for (uint32_t i = 0; i < ps->nframes; i++) {
		ps->frames[i].data = urt_buf_get(ps->page_size);
		ps->frames[i].next = -1;
		if (!ps->frames[i].data)
			goto err_free;
	}
	for (int i = 0; i < CKPT_WRITES_MAX; i++) {
		ps->ckpt_bufs[i] = urt_buf_get(ps->page_size);
		if (!ps->ckpt_bufs[i])
			goto err_free;
	}
	return 0;

err_free:
	urt_set_error("page store: %u pool frames of %u bytes do not fit the core's buffer region "
		      "(raise buf_region_bytes or lower pool_pages)", ps->nframes, ps->page_size);
	pool_exit(ps);
	return -ENOMEM;
}

void pool_exit(struct urt_ps *ps)
{
	if (ps->frames)
		for (uint32_t i = 0; i < ps->nframes; i++) {
			urt_buf_put(ps->frames[i].data);
			urt_buf_put(ps->frames[i].twin);
		}
	for (int i = 0; i < CKPT_WRITES_MAX; i++) {
		urt_buf_put(ps->ckpt_bufs[i]);
		ps->ckpt_bufs[i] = NULL;
	}
	free(ps->frames);
	free(ps->index);
	free(ps->hash);
	ps->frames = NULL;
	ps->index = NULL;
	ps->hash = NULL;
}

/* Unlinks f's kept copy from the list and returns it (f has one). */
static uint8_t *copy_unlink(struct urt_ps *ps, struct frame *f)
{
	uint8_t *c = f->twin;

	URT_ASSERT(c != NULL && ps->twins > 0);
	if (f->twin_prev)
		f->twin_prev->twin_next = f->twin_next;
	else
		ps->twin_head = f->twin_next;
	if (f->twin_next)
		f->twin_next->twin_prev = f->twin_prev;
	else
		ps->twin_tail = f->twin_prev;
	f->twin = NULL;
	f->twin_prev = NULL;
	f->twin_next = NULL;
	ps->twins--;
	return c;
}

/* Frees f's kept copy, if any (f is being reused for another page). */
static void copy_drop(struct urt_ps *ps, struct frame *f)
{
	if (f->twin)
		urt_buf_put(copy_unlink(ps, f));
}

/*
 * The kept copy of f for a writer that holds f's write lock, detached, or
 * NULL when f has none.  It equals f's data (invariant 6).
 */
uint8_t *pool_copy_take(struct urt_ps *ps, struct frame *f)
{
	uint8_t *c;

	if (!f->twin)
		return NULL;
	c = copy_unlink(ps, f);
#ifndef NDEBUG
	URT_ASSERT(memcmp(c, f->data, ps->page_size) == 0);
#endif
	return c;
}

/* Detaches the least recently kept copy for use as another page's copy; NULL if none. */
uint8_t *pool_copy_steal(struct urt_ps *ps)
{
	return ps->twin_head ? copy_unlink(ps, ps->twin_head) : NULL;
}

/*
 * Gives f the copy that a commit just installed (equal to f's data, f
 * still write-locked by the committer), or frees it when copies are not
 * kept; the least recently kept copy makes room when at the limit.
 */
void pool_copy_keep(struct urt_ps *ps, struct frame *f, uint8_t *copy)
{
	URT_ASSERT(f->twin == NULL && f->state == FRAME_VALID);
	if (ps->opts.write_copies_kept == 0) {
		urt_buf_put(copy);
		return;
	}
	if (ps->twins == ps->opts.write_copies_kept)
		urt_buf_put(copy_unlink(ps, ps->twin_head));
	f->twin = copy;
	f->twin_next = NULL;
	f->twin_prev = ps->twin_tail;
	if (ps->twin_tail)
		ps->twin_tail->twin_next = f;
	else
		ps->twin_head = f;
	ps->twin_tail = f;
	ps->twins++;
}

static struct frame *lookup(struct urt_ps *ps, uint64_t pgno)
{
	if (ps->index) {
		uint32_t i = ps->index[pgno];

		return i ? &ps->frames[i - 1] : NULL;
	}
	for (int32_t i = ps->hash[hash_pgno(ps, pgno)]; i >= 0; i = ps->frames[i].next)
		if (ps->frames[i].pgno == pgno)
			return &ps->frames[i];
	return NULL;
}

static void hash_insert(struct urt_ps *ps, struct frame *f)
{
	uint32_t b;

	if (ps->index) {
		URT_ASSERT(ps->index[f->pgno] == 0);
		ps->index[f->pgno] = (uint32_t)(f - ps->frames) + 1;
		return;
	}
	b = hash_pgno(ps, f->pgno);
	f->next = ps->hash[b];
	ps->hash[b] = (int32_t)(f - ps->frames);
}

static void hash_remove(struct urt_ps *ps, struct frame *f)
{
	int32_t *link;
	int32_t idx = (int32_t)(f - ps->frames);

	if (ps->index) {
		URT_ASSERT(ps->index[f->pgno] == (uint32_t)idx + 1);
		ps->index[f->pgno] = 0;
		return;
	}
	link = &ps->hash[hash_pgno(ps, f->pgno)];
	while (*link != idx) {
		URT_ASSERT(*link >= 0);
		link = &ps->frames[*link].next;
	}
	*link = f->next;
	f->next = -1;
}

/*
 * Seals a copy of frame f into scratch (or into the frame itself when
 * scratch is NULL) and writes it to the page's home.
 */
int pool_write_home(struct urt_ps *ps, struct frame *f, uint8_t *scratch)
{
	uint8_t *p = scratch ? scratch : f->data;
	enum urt_io_prio prev;
	int ret;

	if (scratch)
		memcpy(scratch, f->data, ps->page_size);
	page_seal(p, ps->page_size, f->pgno, f->page_lsn);
	prev = urt_fiber_io_prio(URT_PRIO_BACKGROUND);	/* Eviction writes yield to the log. */
	ret = disk_write(ps, p, ps->page_size, disk_page_off(ps, f->pgno), false);
	urt_fiber_io_prio(prev);
	return ret;
}

/*
 * Finds a frame to reuse: FREE, or the CLOCK victim (written home first
 * when dirty).  Returns the frame (FREE, off the hash) or NULL with
 * *err: URT_E_FULL (all pinned) or a sticky error.
 */
static struct frame *victim(struct urt_ps *ps, int *err)
{
	for (;;) {
		uint32_t pinned = 0, waiting = 0;

		if (ps->sticky) {
			*err = URT_E_STICKY;
			return NULL;
		}
		/* Two sweeps: the first may only clear reference bits. */
		for (uint32_t n = 0; n < 2 * ps->nframes; n++) {
			struct frame *f = &ps->frames[ps->clock_hand];

			ps->clock_hand = (ps->clock_hand + 1) % ps->nframes;
			if (f->state == FRAME_FREE)
				return f;
			if (f->state != FRAME_VALID || f->pins) {
				pinned += n < ps->nframes;
				continue;
			}
			if (f->ref) {
				f->ref = false;
				continue;
			}
			if (f->dirty && f->page_lsn >= ps->durable_lsn) {
				waiting += n < ps->nframes;
				continue;
			}
			ps->stats.evictions++;
			copy_drop(ps, f);	/* Before page_seal writes into the frame (invariant 6). */
			if (f->dirty) {
				int ret;

				/* Readers of this page wait until the write is done (invariant 1). */
				f->state = FRAME_EVICTING;
				ret = pool_write_home(ps, f, NULL);
				ps->stats.evict_writes++;
				if (ret) {
					disk_set_sticky(ps, ret, "writing an evicted page home");
					f->state = FRAME_VALID;
					urt_waitq_wake_all(&f->wq);
					*err = ret;
					return NULL;
				}
				f->dirty = false;
				/* A reader may have pinned it meanwhile?  No: readers wait while EVICTING. */
			}
			hash_remove(ps, f);
			f->state = FRAME_FREE;
			urt_waitq_wake_all(&f->wq);
			return f;
		}
		if (pinned >= ps->nframes) {
			*err = URT_E_FULL;
			urt_set_error("page store: all %u pool frames are pinned", ps->nframes);
			return NULL;
		}
		if (waiting) {
			/* Dirty frames become evictable once their batch is durable. */
			int ret = wal_wait_durable(ps, ps->durable_lsn + 1);

			if (ret) {
				*err = ret;
				return NULL;
			}
		}
		/* Otherwise frames were busy reading or evicting: look again. */
		if (!waiting)
			urt_fiber_yield();
	}
}

static int read_page(struct urt_ps *ps, struct frame *f)
{
	const char *why = NULL;
	int ret = 0;

	for (uint32_t attempt = 0; attempt <= ps->opts.read_retry_max; attempt++) {
		if (attempt)
			ps->stats.read_retries++;
		ret = disk_read(ps, f->data, ps->page_size, disk_page_off(ps, f->pgno));
		if (ret == 0)
			break;
	}
	if (ret) {
		ps->stats.bad_pgno = f->pgno;
		urt_set_error("page store: reading page %llu failed after %u attempts: %s",
			      (unsigned long long)f->pgno, ps->opts.read_retry_max + 1,
			      urt_strerror(ret));
		return ret;
	}
	ret = page_verify(f->data, ps->page_size, f->pgno, ps->sb.store_id, &why);
	if (ret == PAGE_UNUSED) {
		page_init(f->data, ps->page_size, f->pgno, PS_PAGE_TYPE_DATA, ps->sb.store_id);
		f->page_lsn = 0;
		return 0;
	}
	if (ret) {
		ps->stats.bad_pgno = f->pgno;
		urt_set_error("page store: page %llu is corrupt (%s) and the log holds no image of it",
			      (unsigned long long)f->pgno, why ? why : "?");
		return URT_E_CORRUPT;
	}
	if (ps->opts.page_check) {
		/* The user's check of the contents, once per read (ps.h). */
		why = ps->opts.page_check(f->data + URT_PAGE_HDR_SIZE,
					  ps->page_size - URT_PAGE_HDR_SIZE, ps->opts.page_check_arg);
		if (why) {
			ps->stats.bad_pgno = f->pgno;
			urt_set_error("page store: page %llu is corrupt (%s)",
				      (unsigned long long)f->pgno, why);
			return URT_E_CORRUPT;
		}
	}
	{
		struct page_hdr h;

		page_hdr_read(f->data, &h);
		f->page_lsn = h.lsn;
	}
	return 0;
}

/* The cache lines of [start, start + len), for urt_page_prefetch. */
static void prefetch_range(const uint8_t *start, uint32_t len)
{
	const uint8_t *a = (const uint8_t *)((uintptr_t)start & ~(uintptr_t)63), *end = start + len;

	for (; a < end; a += 64)
		__builtin_prefetch(a);
}

const void *urt_page_peek(struct urt_ps *ps, uint64_t pgno)
{
	struct frame *f;

	URT_ASSERT(urt_core_id() == ps->core);
	if (pgno >= ps->sb.page_count)
		return NULL;
	f = lookup(ps, pgno);
	/* Only VALID frames hold a whole page: READING ones are being filled. */
	if (!f || f->state != FRAME_VALID)
		return NULL;
	return f->data + URT_PAGE_HDR_SIZE;
}

void urt_page_prefetch_locate(struct urt_ps *ps, uint64_t pgno, unsigned step)
{
	struct frame *f;

	URT_ASSERT(urt_core_id() == ps->core);
	if (pgno >= ps->sb.page_count)
		return;
	if (step == 0) {
		if (ps->index)
			__builtin_prefetch(&ps->index[pgno]);
		else
			__builtin_prefetch(&ps->hash[hash_pgno(ps, pgno)]);
		return;
	}
	f = lookup(ps, pgno);
	if (f)
		__builtin_prefetch(f);
}

void urt_page_prefetch(struct urt_ps *ps, uint64_t pgno, uint32_t off, uint32_t len)
{
	uint32_t usable = ps->page_size - URT_PAGE_HDR_SIZE;
	const uint8_t *data;

	if (off >= usable || len == 0)
		return;
	if (len > usable - off)
		len = usable - off;
	data = urt_page_peek(ps, pgno);	/* The same frame test: held whole, or nothing to ask for. */
	if (data)
		prefetch_range(data + off, len);
}

/*
 * Returns pgno's frame pinned.  load false: the caller overwrites the
 * whole page (recovery) or its old contents are dead (URT_PAGE_NEW), so a
 * miss does not read the device and the frame holds an empty page.
 */
int pool_get(struct urt_ps *ps, uint64_t pgno, bool load, struct frame **out)
{
	struct frame *f;
	int ret;

	URT_ASSERT(pgno < ps->sb.page_count);	/* Callers check (tx.c, the log decoder). */
	for (;;) {
		if (ps->sticky)
			return URT_E_STICKY;
		f = lookup(ps, pgno);
		if (!f)
			break;
		if (f->state == FRAME_VALID) {
			f->pins++;
			f->ref = true;
			ps->stats.hits++;
			*out = f;
			return 0;
		}
		/* READING or EVICTING: share the read, or wait for the write-out. */
		urt_waitq_wait(&f->wq);
	}
	f = victim(ps, &ret);
	if (!f)
		return ret;
	/* victim() may have blocked: another fiber may have loaded pgno meanwhile. */
	if (lookup(ps, pgno))
		return pool_get(ps, pgno, load, out);
	f->pgno = pgno;
	f->pins = 1;
	f->dirty = false;
	f->ref = true;
	f->writer = NULL;
	f->page_lsn = 0;
	f->chain = false;	/* Read from home: its next change is logged as an image. */
	URT_ASSERT(!f->in_fill && !f->twin);
	hash_insert(ps, f);
	if (!load) {
		/* Never a stale frame's bytes: an empty page until the caller overwrites it. */
		page_init(f->data, ps->page_size, pgno, PS_PAGE_TYPE_DATA, ps->sb.store_id);
		f->state = FRAME_VALID;
		*out = f;
		return 0;
	}
	f->state = FRAME_READING;
	ret = read_page(ps, f);
	ps->stats.misses++;
	if (ret) {
		hash_remove(ps, f);
		f->state = FRAME_FREE;
		f->pins = 0;
		urt_waitq_wake_all(&f->wq);
		return ret;
	}
	f->state = FRAME_VALID;
	urt_waitq_wake_all(&f->wq);
	*out = f;
	return 0;
}

void pool_unpin(struct urt_ps *ps, struct frame *f)
{
	(void)ps;
	URT_ASSERT(f->pins > 0);
	f->pins--;
}
