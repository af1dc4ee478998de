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
 * images by construction.
 *
 * Transaction structs are recycled through a per-store free list, so the
 * steady state allocates nothing; shadows come from the core's buffer
 * region (a free-list allocator, no malloc).
 */
#include <errno.h>
#include <string.h>

#include "engine/ps_impl.h"
#include "base/error.h"
#include "urt/buf.h"
#include "urt/error.h"

#define TX_READ_FACTOR 4	/* Read pins per write slot: reads are cheap, but bounded. */

int urt_tx_begin(struct urt_ps *ps, struct urt_tx **out)
{
	struct urt_tx *tx;
	uint32_t n = ps->opts.tx_pages_max;

	URT_ASSERT(urt_core_id() == ps->core && urt_in_fiber());
	URT_ASSERT(ps_is_serving(ps));
	if (ps->sticky)
		return URT_E_STICKY;
	tx = ps->tx_free;
	if (tx) {
		ps->tx_free = tx->next_free;
	} else {
		tx = calloc(1, sizeof(*tx) + n * (TX_READ_FACTOR + 2) * sizeof(void *) +
				   n * sizeof(struct delta_mask));
		if (!tx)
			return -ENOMEM;
		tx->wr = (struct frame **)(tx + 1);
		tx->shadow = (uint8_t **)(tx->wr + n);
		tx->rd = (struct frame **)(tx->shadow + n);
		tx->diff = (struct delta_mask *)(tx->rd + n * TX_READ_FACTOR);
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
		urt_buf_put(tx->shadow[i]);
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

int urt_page_get(struct urt_tx *tx, uint64_t pgno, enum urt_page_intent intent, void **data)
{
	struct urt_ps *ps = tx->ps;
	struct frame *f;
	uint8_t *shadow;
	int ret;

	URT_ASSERT(urt_core_id() == ps->core && urt_in_fiber());
	if (ps->sticky)
		return URT_E_STICKY;
	if (pgno >= ps->sb.page_count)
		return -ERANGE;
	/* Read-your-writes: a page this transaction writes is its shadow. */
	for (uint32_t i = 0; i < tx->nwrite; i++)
		if (tx->wr[i]->pgno == pgno) {
			*data = tx->shadow[i] + URT_PAGE_HDR_SIZE;
			return 0;
		}
	if (intent == URT_PAGE_READ) {
		for (uint32_t i = 0; i < tx->nread; i++)
			if (tx->rd[i]->pgno == pgno) {
				*data = tx->rd[i]->data + URT_PAGE_HDR_SIZE;
				return 0;
			}
		if (tx->nread == ps->opts.tx_pages_max * TX_READ_FACTOR)
			return URT_E_TOOBIG;
		ret = pool_get(ps, pgno, true, &f);
		if (ret)
			return ret;
		tx->rd[tx->nread++] = f;
		*data = f->data + URT_PAGE_HDR_SIZE;
		return 0;
	}
	if (tx->nwrite == ps->opts.tx_pages_max)
		return URT_E_TOOBIG;
	shadow = urt_buf_get(ps->page_size);
	if (!shadow)
		return -ENOMEM;
	/* NEW: nobody reads a dead page, so a frame made without reading it holds an empty one. */
	ret = pool_get(ps, pgno, intent != URT_PAGE_NEW, &f);
	if (ret)
		goto err_put_shadow;
	if (f->writer) {
		ret = -EBUSY;
		goto err_unpin;
	}
	f->writer = tx;
	if (intent == URT_PAGE_NEW) {
		memcpy(shadow, f->data, URT_PAGE_HDR_SIZE);
		memset(shadow + URT_PAGE_HDR_SIZE, 0, ps->page_size - URT_PAGE_HDR_SIZE);
	} else {
		memcpy(shadow, f->data, ps->page_size);
	}
	tx->wr[tx->nwrite] = f;
	tx->shadow[tx->nwrite] = shadow;
	tx->nwrite++;
	*data = shadow + URT_PAGE_HDR_SIZE;
	return 0;

err_unpin:
	pool_unpin(ps, f);
err_put_shadow:
	urt_buf_put(shadow);
	return ret;
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
