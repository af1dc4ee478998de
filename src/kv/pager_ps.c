/*
 * The B+tree's pager over a page-store transaction.
 *
 * Design notes.
 *
 * Every page the tree reads or writes goes through urt_page_get on the
 * bound transaction, so every change of one tree operation (splits,
 * merges, overflow chains, the free list, the root pointer) lands in that
 * transaction: it commits as a whole or not at all, and a crash at any
 * point leaves the tree as the last durable commit left it.
 *
 * Page 0 is the shard meta page (struct kv_shard_meta).  A writer pins it
 * for write as the first step of every transaction, which has two effects:
 *  1. write transactions of one shard exclude each other (the second gets
 *     -EBUSY at once, before it has read anything stale);
 *  2. tx_seq, bumped by each write transaction, changes in the committed
 *     page exactly when a transaction is installed, which is what readers
 *     check to detect that pages changed while they were suspended.
 *
 * Allocation takes the top entry of the head free-list trunk, else the
 * empty head trunk itself, else the high-water mark.  Freeing pushes onto
 * the head trunk, or makes the freed page the new head trunk when it is
 * full.  A page's number is valid for the tree iff 0 < pgno < hwm; a
 * pointer outside that range is reported as URT_E_CORRUPT.
 *
 * A transaction pins every page it touches until it ends (the page store
 * releases pins at commit or abort), so put() does nothing.  Writers count
 * the distinct pages they touch in a small generation-tagged hash set, so
 * the shard can size its batches to the page store's per-transaction
 * limit without an allocation per transaction.
 *
 * Memo.  A transaction that carries many requests (a writer's batch, a
 * pipeline's reads) reads the meta page, the root and the inner nodes once
 * per request.  page_intent answers a read of a page already pinned in the
 * transaction from a direct-mapped memo (kv_pps_memo, tagged with gen)
 * holding the pointer the store gave last: the private copy once the page
 * is written, else the committed frame, which is what urt_page_get(READ)
 * would return.  Writes always go to the store (it must learn that the
 * page is written through a pointer), and write_at, which may move the
 * page to its copy, clears the entry.  States of an entry: empty (gen
 * differs) -> filled by page_intent -> emptied by pps_write_at or by the
 * next bind's gen.  memo_hits and memo_misses count the reads
 * it answered and those it sent to the store (writes are neither), so a
 * memo that silently stopped answering shows in urt_kv_shard_stats
 * (tests/kv/test_kv_tree.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "kv/btree_node.h"
#include "kv/pager_ps.h"
#include "urt/error.h"
#include "urt/ps.h"

static struct kv_pps *pps(struct kv_pager *p)
{
	return (struct kv_pps *)p;
}

static uint32_t slot_hash(uint64_t pgno)
{
	return (uint32_t)((pgno * 0x9e3779b97f4a7c15ull) >> 32);
}

/* Records that tx touched pgno (writer only). */
static void track(struct kv_pps *p, uint64_t pgno, bool write)
{
	uint32_t i = slot_hash(pgno) & p->set_mask;

	if (!p->set)
		return;
	for (;;) {
		struct kv_pps_slot *s = &p->set[i];

		if (s->gen != p->gen) {
			s->gen = p->gen;
			s->pgno = pgno;
			s->written = write;
			if (write)
				p->nwritten++;
			else
				p->nread++;
			return;
		}
		if (s->pgno == pgno) {
			/* A page read first and written later counts as both, as in the store. */
			if (write && !s->written) {
				s->written = 1;
				p->nwritten++;
			}
			return;
		}
		i = (i + 1) & p->set_mask;
	}
}

static struct kv_pps_memo *memo_slot(struct kv_pps *p, uint64_t pgno)
{
	return &p->memo[slot_hash(pgno) & (KV_PPS_MEMO - 1)];
}

/*
 * A read of a page the transaction already pinned gets the pointer the
 * store gave last: its private copy once written, else the committed
 * frame, exactly what urt_page_get(READ) would return, and the page is
 * tracked already.  Writes always go to the store, which must learn that
 * the page is written through a pointer (and may hand out its copy).
 */
static int page_intent(struct kv_pps *p, uint64_t pgno, enum urt_page_intent intent, void **data)
{
	struct kv_pps_memo *m = memo_slot(p, pgno);
	int ret;

	if (intent == URT_PAGE_READ) {
		if (m->gen == p->gen && m->pgno == pgno) {
			*data = m->data;
			p->gets++;
			p->memo_hits++;
			return 0;
		}
		p->memo_misses++;
	}
	ret = urt_page_get(p->tx, pgno, intent, data);
	if (ret == 0) {
		p->gets++;
		track(p, pgno, intent != URT_PAGE_READ);
		m->gen = p->gen;
		m->pgno = pgno;
		m->data = *data;
	}
	return ret;
}

static int page(struct kv_pps *p, uint64_t pgno, bool write, void **data)
{
	return page_intent(p, pgno, write ? URT_PAGE_WRITE : URT_PAGE_READ, data);
}

/* A page number the tree may use: allocated, not the meta page. */
static bool pgno_valid(const struct kv_pps *p, uint64_t pgno)
{
	return pgno != 0 && pgno < p->meta->hwm;
}

/* Damage found in pgno: recorded now (writer) or once confirmed (reader); see pager_ps.h. */
static int damage(struct kv_pps *p, uint64_t pgno, const char *why)
{
	URT_ASSERT(pgno < p->page_count);
	if (p->writer)
		urt_ps_page_corrupt(p->ps, pgno, why);
	else if (!p->bad_why) {
		p->bad_pgno = pgno;
		p->bad_why = why;
	}
	return URT_E_CORRUPT;
}

static void pps_corrupt(struct kv_pager *kp, uint64_t pgno, const char *why)
{
	struct kv_pps *p = pps(kp);

	/* A page number the tree read from a damaged pointer may be out of range: none to name. */
	if (pgno < p->page_count)
		damage(p, pgno, why);
}

void kv_pps_corrupt_confirm(struct kv_pps *p)
{
	if (p->bad_why)
		urt_ps_page_corrupt(p->ps, p->bad_pgno, p->bad_why);
	p->bad_why = NULL;
}

void kv_pps_corrupt_forget(struct kv_pps *p)
{
	p->bad_why = NULL;
}

static int pps_get(struct kv_pager *kp, uint64_t pgno, bool write, void **data)
{
	struct kv_pps *p = pps(kp);

	if (!pgno_valid(p, pgno))
		return URT_E_CORRUPT;
	if (write && !p->writer)
		return -EPERM;
	return page(p, pgno, write, data);
}

static int pps_make_writable(struct kv_pager *kp, uint64_t pgno, void **data)
{
	return pps_get(kp, pgno, true, data);
}

/* The store logs the written range only (urt_page_write_at): no compare of the whole page. */
static int pps_write_at(struct kv_pager *kp, uint64_t pgno, size_t off, const void *src, size_t len)
{
	struct kv_pps *p = pps(kp);
	int ret;

	if (!pgno_valid(p, pgno))
		return URT_E_CORRUPT;
	if (!p->writer)
		return -EPERM;
	/* The write may move the page to its private copy: forget the pointer. */
	memo_slot(p, pgno)->gen = 0;
	ret = urt_page_write_at(p->tx, pgno, (uint32_t)off, src, (uint32_t)len);
	if (ret == 0) {
		p->gets++;
		track(p, pgno, true);
	}
	return ret;
}

static void pps_put(struct kv_pager *kp, uint64_t pgno)
{
	/* The transaction holds every pin until it ends. */
	(void)kp;
	(void)pgno;
}

static uint32_t trunk_cap(const struct kv_pps *p)
{
	return (uint32_t)((p->ops.page_usable - sizeof(struct kv_free_trunk)) / sizeof(uint64_t));
}

static int pps_alloc(struct kv_pager *kp, uint64_t *out, void **data)
{
	struct kv_pps *p = pps(kp);
	struct kv_shard_meta *m = p->meta;
	struct kv_free_trunk *t;
	uint64_t pgno;
	void *pg;
	int ret;

	if (!p->writer)
		return -EPERM;
	p->store_full = false;
	if (m->free_head) {
		if (!pgno_valid(p, m->free_head))
			return damage(p, 0, "free-list head out of range");
		ret = page(p, m->free_head, true, &pg);
		if (ret)
			return ret;
		t = pg;
		if (t->magic != KV_TRUNK_MAGIC || t->count > trunk_cap(p))
			return damage(p, m->free_head, "not a free-list trunk");
		if (t->count) {
			pgno = t->pgno[--t->count];
			if (!pgno_valid(p, pgno))
				return damage(p, m->free_head, "free-list entry out of range");
		} else {
			/* The empty trunk is the page handed out. */
			pgno = m->free_head;
			m->free_head = t->next;
		}
		if (m->free_pages == 0)
			return damage(p, 0, "free-page count is 0 with a free list");
		m->free_pages--;
	} else {
		if (m->hwm >= p->page_count) {
			p->store_full = true;
			return URT_E_FULL;
		}
		pgno = m->hwm++;
	}
	/* Its old contents are dead (free or above hwm): not read from the device. */
	ret = page_intent(p, pgno, URT_PAGE_NEW, &pg);
	if (ret)
		return ret;
	memset(pg, 0, p->ops.page_usable);
	*out = pgno;
	*data = pg;
	return 0;
}

static int pps_free(struct kv_pager *kp, uint64_t pgno)
{
	struct kv_pps *p = pps(kp);
	struct kv_shard_meta *m = p->meta;
	struct kv_free_trunk *t;
	void *pg;
	int ret;

	if (!p->writer)
		return -EPERM;
	if (!pgno_valid(p, pgno))
		return URT_E_CORRUPT;
	if (m->free_head) {
		if (!pgno_valid(p, m->free_head))
			return damage(p, 0, "free-list head out of range");
		ret = page(p, m->free_head, true, &pg);
		if (ret)
			return ret;
		t = pg;
		if (t->magic != KV_TRUNK_MAGIC || t->count > trunk_cap(p))
			return damage(p, m->free_head, "not a free-list trunk");
		if (t->count < trunk_cap(p)) {
			t->pgno[t->count++] = pgno;
			m->free_pages++;
			return 0;
		}
	}
	/* No trunk, or a full one: the freed page becomes the head trunk. */
	ret = page(p, pgno, true, &pg);
	if (ret)
		return ret;
	memset(pg, 0, p->ops.page_usable);
	t = pg;
	t->magic = KV_TRUNK_MAGIC;
	t->count = 0;
	t->next = m->free_head;
	m->free_head = pgno;
	m->free_pages++;
	return 0;
}

static int pps_get_root(struct kv_pager *kp, uint64_t *pgno)
{
	struct kv_pps *p = pps(kp);

	*pgno = p->meta->root;
	if (*pgno && !pgno_valid(p, *pgno))
		return URT_E_CORRUPT;
	return 0;
}

static int pps_set_root(struct kv_pager *kp, uint64_t pgno)
{
	struct kv_pps *p = pps(kp);

	if (!p->writer)
		return -EPERM;
	p->meta->root = pgno;
	return 0;
}

/*
 * A reader's epoch is the committed tx_seq, read from page 0's frame, which
 * commits install into: it changes exactly when a write transaction's
 * pages are installed.  A writer changes pages itself, and an aborted
 * transaction can leave a tx_seq that the next one reuses, so a writer
 * says "unknown".
 */
static uint64_t pps_epoch(struct kv_pager *kp)
{
	struct kv_pps *p = pps(kp);

	return p->writer ? 0 : p->meta->tx_seq;
}

const char *kv_pps_page_check(const void *data, size_t len, void *arg)
{
	uint8_t type = *(const uint8_t *)data;

	(void)arg;
	if (type != KV_PAGE_LEAF && type != KV_PAGE_INTERNAL)
		return NULL;
	return kv_node_check_cells(data, len);
}

uint32_t kv_pps_page_hole(const void *data, size_t len, uint32_t *off, void *arg)
{
	const uint8_t *p = data;
	size_t start, end;

	(void)arg;
	if (len < KV_NODE_HDR_SIZE)
		return 0;
	if (p[0] == KV_PAGE_LEAF || p[0] == KV_PAGE_INTERNAL) {
		const struct kv_node_hdr *h = kv_node_hdr_const(data);

		start = KV_NODE_HDR_SIZE + KV_SLOT_SIZE * (size_t)h->count;
		end = h->cell_start;
	} else if (p[0] == KV_PAGE_OVERFLOW) {
		struct kv_ovf_hdr h;

		memcpy(&h, data, sizeof(h));
		start = sizeof(h) + (size_t)h.len;
		end = len;
	} else {
		return 0;
	}
	/* Whatever the header says, only a run inside the page; the store checks the zeros. */
	if (start >= end || end > len)
		return 0;
	*off = (uint32_t)start;
	return (uint32_t)(end - start);
}

/* The page store's hints check pgno against its page count (the pager's) themselves. */
static const void *pps_peek(struct kv_pager *kp, uint64_t pgno)
{
	return urt_page_peek(pps(kp)->ps, pgno);
}

static void pps_locate(struct kv_pager *kp, uint64_t pgno, unsigned step)
{
	urt_page_prefetch_locate(pps(kp)->ps, pgno, step);
}

static void pps_prefetch(struct kv_pager *kp, uint64_t pgno, size_t off, size_t len)
{
	urt_page_prefetch(pps(kp)->ps, pgno, (uint32_t)off, (uint32_t)len);
}

const struct kv_pager_ops kv_pps_ops_template = {
	.epoch = pps_epoch,
	.get = pps_get,
	.make_writable = pps_make_writable,
	.write_at = pps_write_at,
	.put = pps_put,
	.alloc = pps_alloc,
	.free = pps_free,
	.get_root = pps_get_root,
	.set_root = pps_set_root,
	.peek = pps_peek,
	.locate = pps_locate,
	.prefetch = pps_prefetch,
	.corrupt = pps_corrupt,
};

int kv_pps_init(struct kv_pps *p, struct urt_ps *ps, bool writer, uint32_t pages_write_max,
		uint32_t pages_read_max)
{
	memset(p, 0, sizeof(*p));
	p->ops = kv_pps_ops_template;
	p->ops.page_usable = urt_ps_page_data_bytes(ps);
	/* Node headers are checked per device read only if the store runs the check. */
	p->ops.nodes_checked = urt_ps_page_check(ps) == kv_pps_page_check;
	p->ps = ps;
	p->page_count = urt_ps_page_count(ps);
	p->writer = writer;
	p->pages_write_max = pages_write_max;
	p->pages_read_max = pages_read_max;
	if (writer) {
		uint32_t n = 16;

		/* At most half full, so probes stay short. */
		while (n < 2 * (pages_write_max + pages_read_max))
			n <<= 1;
		p->set = calloc(n, sizeof(*p->set));
		if (!p->set)
			return -ENOMEM;
		p->set_mask = n - 1;
	}
	return 0;
}

void kv_pps_exit(struct kv_pps *p)
{
	free(p->set);
	p->set = NULL;
}

static bool meta_valid(const struct kv_pps *p, const struct kv_shard_meta *m)
{
	return m->magic == KV_META_MAGIC && m->version == KV_META_VERSION &&
	       m->page_usable == p->ops.page_usable && m->hwm >= 1 && m->hwm <= p->page_count &&
	       m->root < m->hwm && m->free_head < m->hwm && m->free_pages < m->hwm &&
	       m->chain_pending < m->hwm && m->chain_free < m->hwm;
}

int kv_pps_bind(struct kv_pps *p, struct urt_tx *tx)
{
	void *pg;
	int ret;

	p->tx = tx;
	p->nwritten = 0;
	p->nread = 0;
	p->gets = 0;
	p->store_full = false;
	p->bad_why = NULL;
	if (++p->gen == 0) {
		/* Generation wrapped: clear the set once so no stale slot matches. */
		if (p->set)
			memset(p->set, 0, (p->set_mask + 1) * sizeof(*p->set));
		memset(p->memo, 0, sizeof(p->memo));
		p->gen = 1;
	}
	ret = urt_page_get(tx, 0, p->writer ? URT_PAGE_WRITE : URT_PAGE_READ, &pg);
	if (ret) {
		p->tx = NULL;
		return ret;
	}
	p->meta = pg;
	track(p, 0, p->writer);
	if (!meta_valid(p, p->meta)) {
		p->tx = NULL;
		p->meta = NULL;
		/* Installs are atomic for fibers: page 0 as any transaction sees it is a commit's. */
		urt_ps_page_corrupt(p->ps, 0, "not a shard meta page of this layout");
		return URT_E_CORRUPT;
	}
	return 0;
}

void kv_pps_unbind(struct kv_pps *p)
{
	p->tx = NULL;
	p->meta = NULL;
}

int kv_pps_format(struct urt_tx *tx, size_t page_usable, uint32_t id, uint32_t count,
		  uint64_t store_id)
{
	struct kv_shard_meta *m;
	void *pg;
	int ret = urt_page_get(tx, 0, URT_PAGE_WRITE, &pg);

	if (ret)
		return ret;
	memset(pg, 0, page_usable);
	m = pg;
	m->magic = KV_META_MAGIC;
	m->version = KV_META_VERSION;
	m->page_usable = (uint32_t)page_usable;
	m->shard_id = id;
	m->shard_count = count;
	m->store_id = store_id;
	m->root = 0;
	m->hwm = 1;
	m->free_head = 0;
	m->free_pages = 0;
	m->tx_seq = 1;
	m->keys = 0;
	m->volatile_keys = 0;
	return 0;
}

void kv_pps_clear(struct kv_pps *p)
{
	/* Pages at or above hwm are garbage; alloc zeroes each page it hands out. */
	p->meta->root = 0;
	p->meta->hwm = 1;
	p->meta->free_head = 0;
	p->meta->free_pages = 0;
	p->meta->keys = 0;
	p->meta->volatile_keys = 0;
	p->meta->chain_pending = 0;
	p->meta->chain_free = 0;
}

bool kv_pps_has_room(const struct kv_pps *p, uint32_t w, uint32_t r)
{
	return p->nwritten + w <= p->pages_write_max && p->nread + r <= p->pages_read_max;
}
