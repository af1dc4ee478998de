/*
 * Transactions: page access with private write copies.
 *
 * Design notes.
 *
 * A transaction pins every frame it touches until it ends.  A WRITE get
 * takes the frame's write lock (frame->writer) without waiting: a second
 * writer gets -EBUSY, so two transactions can never wait for each other.
 * The writer works on a shadow copy (a registered page buffer); commit
 * (wal.c) diffs each shadow against its frame and installs only the
 * changed chunks, logging them as a page delta (or the page as an image,
 * rule D1 of wal.c), in one step without yielding, so the frame only ever
 * holds committed bytes.  Abort drops the shadows, which restores the committed
 * images by construction.  A shadow is the frame's kept copy when it has
 * one (pool.c: the copy a previous commit installed, equal to the frame),
 * so a page written again needs neither a copy nor a buffer; commit hands
 * each shadow back to its frame once installed.
 *
 * Written ranges.  A page written only through urt_page_write_at is
 * "ranged": the transaction ORs the chunks of every range it writes into
 * the entry's diff mask, so commit logs and installs those chunks without
 * comparing the copy with the frame (delta_diff reads 8 KiB per page).
 * The caller never holds a pointer into such a copy, so no byte can change
 * outside the mask: a READ get of the page returns the copy (read-your-
 * writes), but nobody writes through a READ pointer (urt_page_get's
 * contract; the kv tests' pager checks it of the tree).  A WRITE or NEW
 * get of the page, first or repeated, ends the guarantee: the entry
 * becomes a diffed one for the rest of the transaction (entry states:
 * ranged -> diffed, never back).
 *
 * Sparse copies.  When urt_page_write_at opens the write entry of a page
 * whose frame keeps no copy, it takes a buffer without copying the page
 * into it: the entry is "sparse", and its shadow holds valid bytes only
 * in the chunks of its mask (each range write first copies the chunks it
 * touches from the frame, so a partly written chunk is whole).  Commit
 * installs and logs exactly those chunks, so it never needs the rest; a
 * urkv SET of a 1 KiB value into a leaf thus copies about 1 KiB instead
 * of the 4 KiB page.  Anything that needs the whole copy first fills in
 * the other chunks from the frame (tx_materialize): a get of the page in
 * the same transaction (read-your-writes, or a write pointer), and commit
 * when the page is logged as an image (the hole search reads the page).
 * A sparse shadow is never kept with its frame (pool.c invariant 6: a
 * kept copy equals the frame); commit gives its buffer back.  States of
 * an entry: sparse+ranged -> ranged (materialized) -> diffed.
 *
 * Transaction structs are recycled through a per-store free list, so the
 * steady state allocates nothing; shadows come from the core's buffer
 * region (a free-list allocator, no malloc).
 *
 * Page index.  A transaction may hold hundreds of pages (urkv applies
 * hundreds of requests per transaction), and every get must first find
 * whether the transaction already holds the page (read-your-writes, one
 * pin per page).  An open-addressed table keyed by page number, tagged
 * with the transaction's generation so that it is never cleared, answers
 * that in one or two probes of memory the transaction owns (index_find,
 * index_add); scanning the wr and rd lists instead cost a load of every
 * listed frame per get, 16% of urkv's CPU under SET -P 16.
 */
#include <errno.h>
#include <string.h>

#include "engine/ps_impl.h"
#include "base/error.h"
#include "urt/buf.h"
#include "urt/error.h"

#define TX_READ_FACTOR 4	/* Read pins per write slot: reads are cheap, but bounded. */

static uint32_t index_hash(uint64_t pgno)
{
	return (uint32_t)((pgno * 0x9e3779b97f4a7c15ull) >> 32);
}

/* The index slot of pgno in tx: its entry if held, else the empty slot to fill. */
static struct tx_slot *index_slot(struct urt_tx *tx, uint64_t pgno)
{
	uint32_t i = index_hash(pgno) & tx->slot_mask;

	for (;;) {
		struct tx_slot *s = &tx->slots[i];

		if (s->gen != tx->gen || s->pgno == pgno)
			return s;
		i = (i + 1) & tx->slot_mask;
	}
}

static void index_set(struct urt_tx *tx, struct tx_slot *s, uint64_t pgno, int32_t idx)
{
	s->gen = tx->gen;
	s->pgno = pgno;
	s->idx = idx;
}

int urt_tx_begin(struct urt_ps *ps, struct urt_tx **out)
{
	struct urt_tx *tx;
	uint32_t n = ps->opts.tx_pages_max;
	uint32_t slots = 16;

	URT_ASSERT(urt_core_id() == ps->core && urt_in_fiber());
	URT_ASSERT(ps_is_serving(ps));
	if (ps->sticky)
		return URT_E_STICKY;
	/* Every page a transaction may hold, at most half the slots. */
	while (slots < 2 * n * (TX_READ_FACTOR + 1))
		slots <<= 1;
	tx = ps->tx_free;
	if (tx) {
		ps->tx_free = tx->next_free;
	} else {
		tx = calloc(1, sizeof(*tx) + n * (TX_READ_FACTOR + 2) * sizeof(void *) +
				   n * sizeof(struct delta_mask) + slots * sizeof(struct tx_slot) +
				   2 * n * sizeof(uint64_t) + 2 * n * sizeof(bool));
		if (!tx)
			return -ENOMEM;
		tx->wr = (struct frame **)(tx + 1);
		tx->shadow = (uint8_t **)(tx->wr + n);
		tx->rd = (struct frame **)(tx->shadow + n);
		tx->diff = (struct delta_mask *)(tx->rd + n * TX_READ_FACTOR);
		tx->slots = (struct tx_slot *)(tx->diff + n);
		tx->rec = (uint64_t *)(tx->slots + slots);
		tx->rec_how = tx->rec + n;
		tx->ranged = (bool *)(tx->rec_how + n);
		tx->sparse = tx->ranged + n;
		tx->slot_mask = slots - 1;
	}
	if (++tx->gen == 0) {
		/* Generation wrapped: clear once, so that no stale slot matches. */
		memset(tx->slots, 0, (tx->slot_mask + 1) * sizeof(*tx->slots));
		tx->gen = 1;
	}
	tx->ps = ps;
	tx->nread = 0;
	tx->nwrite = 0;
	ps->tx_open++;
	*out = tx;
	return 0;
}

/* Releases pins, locks and shadows, and recycles tx. */
static void tx_end(struct urt_tx *tx)
{
	struct urt_ps *ps = tx->ps;

	for (uint32_t i = 0; i < tx->nwrite; i++) {
		if (tx->wr[i]->writer == tx)
			tx->wr[i]->writer = NULL;
		pool_unpin(ps, tx->wr[i]);
		urt_buf_put(tx->shadow[i]);	/* NULL when commit kept it with the frame. */
	}
	for (uint32_t i = 0; i < tx->nread; i++)
		pool_unpin(ps, tx->rd[i]);
	tx->nwrite = 0;
	tx->nread = 0;
	tx->next_free = ps->tx_free;
	ps->tx_free = tx;
	ps->tx_open--;
}

void tx_free_all(struct urt_ps *ps)
{
	while (ps->tx_free) {
		struct urt_tx *tx = ps->tx_free;

		ps->tx_free = tx->next_free;
		free(tx);
	}
}

void tx_materialize(struct urt_tx *tx, uint32_t i)
{
	struct delta_mask rest;

	if (!tx->sparse[i])
		return;
	for (unsigned w = 0; w < DELTA_WORDS; w++)
		rest.w[w] = ~tx->diff[i].w[w];
	delta_copy(tx->shadow[i], tx->wr[i]->data, tx->ps->page_size, &rest);
	tx->sparse[i] = false;
	tx->ps->stats.write_copies_filled++;
}

static int page_get_write(struct urt_tx *tx, uint64_t pgno, enum urt_page_intent intent, bool lazy,
			  void **data);

int urt_page_get(struct urt_tx *tx, uint64_t pgno, enum urt_page_intent intent, void **data)
{
	struct urt_ps *ps = tx->ps;
	struct tx_slot *slot;
	struct frame *f;
	int ret;

	URT_ASSERT(urt_core_id() == ps->core && urt_in_fiber());
	if (ps->sticky)
		return URT_E_STICKY;
	if (pgno >= ps->sb.page_count)
		return -ERANGE;
	slot = index_slot(tx, pgno);
	if (slot->gen == tx->gen && slot->idx >= 0) {
		/* Read-your-writes: a page this transaction writes is its shadow, made whole. */
		tx_materialize(tx, (uint32_t)slot->idx);
		*data = tx->shadow[slot->idx] + URT_PAGE_HDR_SIZE;
		/* A write pointer into the copy: commit must diff it (READ pointers are not written). */
		if (intent != URT_PAGE_READ)
			tx->ranged[slot->idx] = false;
		return 0;
	}
	if (intent == URT_PAGE_READ) {
		if (slot->gen == tx->gen) {
			*data = tx->rd[-1 - slot->idx]->data + URT_PAGE_HDR_SIZE;
			return 0;
		}
		if (tx->nread == ps->opts.tx_pages_max * TX_READ_FACTOR)
			return URT_E_TOOBIG;
		ret = pool_get(ps, pgno, true, &f);
		if (ret)
			return ret;
		/* pool_get may have yielded: look the slot up again. */
		index_set(tx, index_slot(tx, pgno), pgno, -1 - (int32_t)tx->nread);
		tx->rd[tx->nread++] = f;
		*data = f->data + URT_PAGE_HDR_SIZE;
		return 0;
	}
	return page_get_write(tx, pgno, intent, false, data);
}

/*
 * Opens the write entry of pgno (not held for writing yet) with its
 * shadow: the frame's kept copy, or a copy of the page; with lazy, no copy
 * at all (a sparse entry) when the frame keeps none.
 */
static int page_get_write(struct urt_tx *tx, uint64_t pgno, enum urt_page_intent intent, bool lazy,
			  void **data)
{
	struct urt_ps *ps = tx->ps;
	uint8_t *shadow;
	struct frame *f;
	bool sparse = false;
	int ret;

	if (tx->nwrite == ps->opts.tx_pages_max)
		return URT_E_TOOBIG;
	/* NEW: nobody reads a dead page, so a frame made without reading it holds an empty one. */
	ret = pool_get(ps, pgno, intent != URT_PAGE_NEW, &f);
	if (ret)
		return ret;
	if (f->writer) {
		pool_unpin(ps, f);
		return -EBUSY;
	}
	/* The copy a commit left with the frame, or a new one (pool.c, kept copies). */
	shadow = pool_copy_take(ps, f);
	if (!shadow) {
		shadow = urt_buf_get(ps->page_size);
		if (!shadow)
			shadow = pool_copy_steal(ps);
		if (!shadow) {
			pool_unpin(ps, f);
			urt_set_error("page store: no buffer for a copy of page %llu (the core's "
				      "buffer region is exhausted)", (unsigned long long)pgno);
			return -ENOMEM;
		}
		if (lazy) {
			sparse = true;	/* urt_page_write_at copies what it touches. */
			ps->stats.write_copies_sparse++;
		} else {
			memcpy(shadow, f->data,
			       intent == URT_PAGE_NEW ? URT_PAGE_HDR_SIZE : ps->page_size);
			ps->stats.write_copies++;
		}
	} else {
		ps->stats.write_copies_reused++;
	}
	if (intent == URT_PAGE_NEW)
		memset(shadow + URT_PAGE_HDR_SIZE, 0, ps->page_size - URT_PAGE_HDR_SIZE);
	f->writer = tx;
	/*
	 * A page read first and now written keeps its read pin (rd) and gets a
	 * write entry; the index names the write entry from now on.
	 */
	index_set(tx, index_slot(tx, pgno), pgno, (int32_t)tx->nwrite);
	tx->wr[tx->nwrite] = f;
	tx->shadow[tx->nwrite] = shadow;
	tx->ranged[tx->nwrite] = false;
	tx->sparse[tx->nwrite] = sparse;
	tx->nwrite++;
	*data = shadow + URT_PAGE_HDR_SIZE;
	return 0;
}

/* Sets *m to exactly the chunks first..last. */
static void range_mask(struct delta_mask *m, uint32_t first, uint32_t last)
{
	for (unsigned w = 0; w < DELTA_WORDS; w++) {
		uint32_t lo = w * 64, hi = lo + 63;

		if (last < lo || first > hi) {
			m->w[w] = 0;
			continue;
		}
		m->w[w] = ~0ull;
		if (first > lo)
			m->w[w] &= ~0ull << (first - lo);
		if (last < hi)
			m->w[w] &= ~0ull >> (hi - last);
	}
}

int urt_page_write_at(struct urt_tx *tx, uint64_t pgno, uint32_t off, const void *src, uint32_t len)
{
	struct urt_ps *ps = tx->ps;
	uint32_t cb = delta_chunk_bytes(ps->page_size), held = tx->nwrite, idx, first, last;
	struct delta_mask touch;
	struct tx_slot *slot;
	uint8_t *dst;
	void *data;
	int ret;

	URT_ASSERT(len > 0 && off <= ps->page_size - URT_PAGE_HDR_SIZE &&
		   len <= ps->page_size - URT_PAGE_HDR_SIZE - off);
	if (ps->sticky)
		return URT_E_STICKY;
	if (pgno >= ps->sb.page_count)
		return -ERANGE;
	/* A copy this transaction already holds stays ranged (and sparse) only if it was. */
	slot = index_slot(tx, pgno);
	if (slot->gen == tx->gen && slot->idx >= 0) {
		idx = (uint32_t)slot->idx;
	} else {
		ret = page_get_write(tx, pgno, URT_PAGE_WRITE, true, &data);
		if (ret)
			return ret;
		idx = held;
		URT_ASSERT(tx->nwrite == held + 1);
		delta_mask_clear(&tx->diff[idx]);	/* A new entry: its mask starts empty. */
		tx->ranged[idx] = true;
	}
	URT_ASSERT(!tx->sparse[idx] || tx->ranged[idx]);
	first = (URT_PAGE_HDR_SIZE + off) / cb;
	last = (URT_PAGE_HDR_SIZE + off + len - 1) / cb;
	range_mask(&touch, first, last);
	if (tx->sparse[idx]) {
		/* Make the chunks this range touches whole from the frame, where not yet written. */
		struct delta_mask fill;
		uint64_t any = 0;

		for (unsigned w = 0; w < DELTA_WORDS; w++)
			any |= fill.w[w] = touch.w[w] & ~tx->diff[idx].w[w];
		if (any)
			delta_copy(tx->shadow[idx], tx->wr[idx]->data, ps->page_size, &fill);
	}
	dst = tx->shadow[idx] + URT_PAGE_HDR_SIZE + off;
	if (memcmp(dst, src, len) == 0)
		return 0;	/* Nothing changes: nothing to log. */
	memcpy(dst, src, len);
	if (tx->ranged[idx])
		delta_mask_or(&tx->diff[idx], &touch);
	return 0;
}

int urt_tx_commit(struct urt_tx *tx)
{
	struct urt_ps *ps = tx->ps;
	int ret = 0;

	URT_ASSERT(urt_core_id() == ps->core && urt_in_fiber());
	if (tx->nwrite == 0) {
		ps->stats.commits_readonly++;
		tx_end(tx);
		return ps->sticky ? URT_E_STICKY : 0;
	}
	ret = wal_commit(ps, tx);
	if (ret && ret == URT_E_STICKY)
		ps->stats.aborts++;
	tx_end(tx);
	return ret;
}

void urt_tx_abort(struct urt_tx *tx)
{
	URT_ASSERT(urt_core_id() == tx->ps->core);
	tx->ps->stats.aborts++;
	tx_end(tx);
}
