/* SPDX-License-Identifier: MIT */
/*
 * The urkv B+tree over an abstract pager.
 *
 * Design notes
 * ------------
 * Pages (formats in btree_node.h): one meta page, named by the pager's root
 * pointer, holding the root node, the height and (if the tree counts keys)
 * the key count; internal nodes; leaves linked left to right; chains of
 * overflow pages for values too large to sit in a leaf.
 *
 * Invariants, checked by kv_btree_check():
 *   1. Keys in a node strictly increase.  Every key in child i of an
 *      internal node is >= separator i - 1 and < separator i.
 *   2. All leaves are at depth meta.height; the leaf chain visits them in key
 *      order and the last one links to 0.
 *   3. Every node but the root has at least one cell; an internal root has
 *      at least one (a root with one child is replaced by that child).
 *   4. A value is in overflow pages iff it is longer than 8 bytes and its
 *      inline leaf cell, with room for an expiry time, would take more than
 *      a third of the node (value_overflows()), so the decision depends on
 *      klen and vlen only: setting or dropping a key's expiry never moves
 *      its value between the leaf and an overflow chain.
 *      A third, not less, keeps 1 KiB values next to short keys inline on
 *      4 KiB pages: one page per put and per get instead of two or three.
 *   5. meta.count is the number of leaf cells if meta.flags has
 *      KV_BTREE_META_COUNTED, else 0.
 *   6. No page is reachable twice; every page the tree allocated is reachable
 *      (nothing leaks), so after deleting every key only the meta page and
 *      an empty root leaf remain.
 *
 * Cell sizes.  A node has cap = page_usable - 16 bytes for slots and cells.
 * The largest cell with its slot is max(cap / 3, 1056) bytes (an inline
 * value, or a 1 KiB key with an overflow pointer and an expiry, plus its
 * 8-byte slot), and
 * KV_BTREE_PAGE_USABLE_MIN keeps 1056 at most cap / 3.  Hence a node that overflows holds at least four cells (the new
 * one included), and a split can leave both halves non-empty and at most
 * cap.  So can rebalancing two siblings of which one is underfull (below
 * cap / 4): their cells, and between internal nodes the separator, total
 * under cap / 4 + cap + cap / 3, and the best cut leaves each side at most
 * half of that plus half a cell, under 23 cap / 24.
 *
 * Operations.  A modification descends from the root with read pins,
 * releasing each node before visiting its child, and changes the leaf.  On
 * the way back up each level learns from its child (struct kv_up) whether the
 * child split, which inserts the separator into this node (which may split
 * in turn), or became underfull, which merges it with a sibling or, if the
 * two do not fit in one node, redistributes their cells; both change this
 * node's separators, so it may become underfull or, when a longer separator
 * replaces a shorter one, split.  A root split adds a level; a root left with
 * one child is dropped.  The meta page is written last, and overflow pages
 * of a replaced value are freed after the tree no longer points at them.
 *
 *   change               function
 *   leaf insert/remove   leaf_modify()
 *   split                node_split()       (also for internal nodes)
 *   merge/redistribute   fix_child()
 *   new root             root_grow()
 *   drop root            root_shrink()
 *
 * Pins.  Every page is unpinned on every path.  At most three pages are
 * pinned at a time: a parent and two children during fix_child(), a node and
 * its new sibling during a split, a leaf and two overflow pages while a value
 * is written.  Pages are made writable before their first byte changes; the
 * pointer from make_writable() replaces the read pointer.  A put or del that
 * changes no key count, root or height leaves the meta page alone, so an
 * overwrite that fits its leaf writes one page (plus its overflow pages).
 *
 * Large values (over KV_BTREE_VALUE_MAX, up to KV_BTREE_BIG_MAX) never go
 * through one operation: the caller builds the chain back to front over
 * several transactions (kv_btree_chain_build), links it with a put of
 * flag KV_BTREE_CHAIN, reads it with kv_btree_chain_read and frees it
 * with kv_btree_chain_free; a put or del that replaces or removes one
 * hands its chain back in x->detached instead of freeing it, and a get
 * that would copy one returns URT_E_TOOBIG.
 *
 * Errors.  A pager error ends the operation at once with that error.  The
 * pages changed so far stay changed (the caller's transaction rolls them
 * back); the struct kv_btree itself holds scratch buffers, the cursor
 * generation and a copy of the meta page that is used only while the
 * pager's epoch is unchanged and is dropped by every modification, so it
 * stays usable.  A check of the tree's own that fails names the page it
 * found wrong to the pager (ops->corrupt, through corrupt()) before it
 * returns URT_E_CORRUPT, so the error can be traced to a page as a
 * checksum failure can.
 *
 * Trust.  A checksum says that a page is what was written, not that it
 * was written right, so every node is checked before it is searched:
 * kv_node_check_cells (its header, and every slot's cell in the cell area
 * with its key, value and expiry, with the node prefix and a matching
 * head), after which no search, decode or insert reads or writes outside
 * the page.  It runs once per device read when the pager says so
 * (nodes_checked: the page store runs kv_pps_page_check on every page it
 * reads, and the pages it did not read are the tree's own writes), so a
 * visit checks the type byte only; otherwise on every visit (node_get).
 * Key order and cell overlap are not checked there: damage of that kind
 * gives wrong answers, never a read outside the page.  What crosses pages
 * (a child pointer, the leaf chain, an overflow chain) is checked where it
 * is followed.  kv_btree_check() verifies everything.  The assertions (URT_ASSERT,
 * here and in btree_node.c) stay on in release builds: they are cheap (API
 * misuse, cut points, cell fits) and a failed one means a page is about to
 * be written wrong.
 */
#include "btree.h"
#include "btree_node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/error.h"

/* Longest chain an overflow value may have, for the loop guards. */
#define OVF_PAGES_MAX(chunk) (KV_BTREE_BIG_MAX / (chunk) + 1)
/* Deepest tree accepted from a meta page; far above any real height. */
#define HEIGHT_MAX 32u

/* One cell of a split or rebalance, in key order. */
struct kv_entry {
	const uint8_t *cell; /* Cell bytes, in a page copy or a cell buffer. */
	uint16_t size;	     /* Cell size, slot excluded. */
};

struct kv_btree {
	const struct kv_pager_ops *ops; /* Pager functions. */
	struct kv_pager *pager;		/* Pager instance. */
	size_t u;			/* Usable bytes per page. */
	size_t cap;			/* Bytes of a node for slots and cells. */
	size_t underfull;		/* A non-root node below this is rebalanced. */
	size_t ovf_chunk;		/* Value bytes per overflow page. */
	bool count_keys;		/* Create trees with KV_BTREE_META_COUNTED. */
	uint64_t gen;			/* Bumped by each modification, for cursors. */
	uint64_t meta_epoch;		/* Pager epoch at which meta_cached was read; 0: none. */
	uint64_t meta_pgno;		/* The meta page's number then (0: no tree). */
	struct kv_btree_meta meta_cached; /* Its contents then. */
	struct kv_btree_counters cnt;	/* Structural changes made. */
	uint8_t *copy[2];		/* Node copies read by split and rebalance. */
	uint8_t *compact;		/* Buffer of kv_node_insert() compaction. */
	uint8_t *cellbuf;		/* The leaf cell being inserted. */
	uint8_t *mid;			/* Separator pulled down by an internal merge. */
	uint8_t *sep;			/* New separator made by a rebalance. */
	struct kv_entry *ent;		/* Cell list of split and rebalance. */
};

/* A put or del on its way down, and what it did. */
struct kv_op {
	const uint8_t *key;	/* Key. */
	size_t klen;		/* Key length. */
	const uint8_t *val;	/* Value of a put. */
	size_t vlen;		/* Value length of a put. */
	bool del;		/* Delete rather than put. */
	unsigned flags;		/* enum kv_btree_put_flags / KV_BTREE_IF_EXPIRED. */
	struct kv_btree_xput *x;/* Expiry in and out (always set). */
	bool inserted;		/* Out: a key was added. */
	bool removed;		/* Out: a key was removed. */
	uint64_t old_ovf;	/* Out: overflow chain of the old value, or 0. */
	uint32_t old_vlen;	/* Out: length of that value. */
};

/* What a node reports to its parent after a modification. */
struct kv_up {
	bool split;	     /* The node split; cell points at the new right node. */
	bool underfull;	     /* The node is below t->underfull bytes. */
	uint16_t cell_size;  /* Size of cell. */
	uint8_t cell[KV_INTERNAL_CELL_MAX]; /* Separator cell for the parent. */
};

/* Stands in for the key of a seek to the first key (klen 0). */
static const uint8_t empty_key[1];

static bool value_overflows(const struct kv_btree *t, size_t klen, size_t vlen)
{
	/* An overflow pointer costs 8 bytes, so shorter values stay inline. */
	if (vlen <= sizeof(uint64_t))
		return false;
	return KV_SLOT_SIZE + kv_leaf_cell_size_x(klen, vlen, false, true) > t->cap / 3;
}

/* Pager wrappers: they check alignment and node headers. */

/* Page pgno does not hold what the tree expects (why, a literal): the pager records it. */
static int corrupt(struct kv_btree *t, uint64_t pgno, const char *why)
{
	if (t->ops->corrupt)
		t->ops->corrupt(t->pager, pgno, why);
	return URT_E_CORRUPT;
}

static int page_get(struct kv_btree *t, uint64_t pgno, bool write, void **pg)
{
	int rc = t->ops->get(t->pager, pgno, write, pg);

	if (rc == 0)
		URT_ASSERT(((uintptr_t)*pg & 7) == 0);
	return rc;
}

static void page_put(struct kv_btree *t, uint64_t pgno)
{
	t->ops->put(t->pager, pgno);
}

/* Pins a node and checks its header and, if want_leaf >= 0, its type. */
static int node_get(struct kv_btree *t, uint64_t pgno, bool write, int want_leaf,
		    void **pg)
{
	int rc = page_get(t, pgno, write, pg);
	const char *why = NULL;
	uint8_t type;

	if (rc != 0)
		return rc;
	type = kv_node_hdr_const(*pg)->type;
	if (t->ops->nodes_checked) {
		if (type != KV_PAGE_LEAF && type != KV_PAGE_INTERNAL)
			why = "the tree points at a page that is not a node";
	} else {
		why = kv_node_check_cells(*pg, t->u);
	}
	if (!why && want_leaf >= 0 && (type == KV_PAGE_LEAF) != (want_leaf != 0))
		why = want_leaf ? "an internal node where the tree expects a leaf"
				: "a leaf where the tree expects an internal node";
	if (!why)
		return 0;
	page_put(t, pgno);
	return corrupt(t, pgno, why);
}

static int make_writable(struct kv_btree *t, uint64_t pgno, void **pg)
{
	return t->ops->make_writable(t->pager, pgno, pg);
}

/* Meta page. */

static bool meta_valid(const struct kv_btree *t, const struct kv_btree_meta *m)
{
	return m->type == KV_PAGE_META && m->magic == KV_BTREE_META_MAGIC &&
	       m->version == KV_BTREE_META_VERSION && m->page_usable == t->u &&
	       (m->flags & ~KV_BTREE_META_COUNTED) == 0 &&
	       (m->count == 0 || (m->flags & KV_BTREE_META_COUNTED)) &&
	       m->height >= 1 && m->height <= HEIGHT_MAX && m->root != 0;
}

/*
 * Reads the meta page into *m; *mpgno is 0 if no tree exists.  While the
 * pager's epoch (pager.h) stays what it was at the last read, the copy
 * from that read is used instead: no page get, no validation again.
 */
static int meta_read(struct kv_btree *t, uint64_t *mpgno, struct kv_btree_meta *m)
{
	uint64_t epoch = t->ops->epoch ? t->ops->epoch(t->pager) : 0;
	void *pg;
	int rc;

	if (epoch != 0 && epoch == t->meta_epoch) {
		*mpgno = t->meta_pgno;
		*m = t->meta_cached;
		return 0;
	}
	rc = t->ops->get_root(t->pager, mpgno);
	if (rc != 0)
		return rc;
	if (*mpgno == 0) {
		t->meta_epoch = epoch;
		t->meta_pgno = 0;
		return 0;
	}
	rc = page_get(t, *mpgno, false, &pg);
	if (rc != 0)
		return rc;
	memcpy(m, pg, sizeof(*m));
	page_put(t, *mpgno);
	/* A valid tree built for another page size is a usage error. */
	if (m->type == KV_PAGE_META && m->magic == KV_BTREE_META_MAGIC && m->page_usable != t->u)
		return -EINVAL;
	if (m->type == KV_PAGE_META && m->magic == KV_BTREE_META_MAGIC &&
	    m->version != KV_BTREE_META_VERSION) {
		urt_set_error("kv: the tree's pages are in node format version %u, this build "
			      "reads version %u only (no upgrade in place: dump and reload the data "
			      "with the build that wrote it)", m->version, KV_BTREE_META_VERSION);
		return URT_E_VERSION;
	}
	if (!meta_valid(t, m))
		return corrupt(t, *mpgno, "not a valid tree meta page");
	t->meta_epoch = epoch;
	t->meta_pgno = *mpgno;
	t->meta_cached = *m;
	return 0;
}

static int meta_write(struct kv_btree *t, uint64_t mpgno, const struct kv_btree_meta *m)
{
	void *pg;
	int rc = page_get(t, mpgno, true, &pg);

	if (rc != 0)
		return rc;
	memcpy(pg, m, sizeof(*m));
	page_put(t, mpgno);
	return 0;
}

/* Creates the meta page and an empty root leaf, and points the pager at them. */
static int tree_create(struct kv_btree *t, uint64_t *mpgno, struct kv_btree_meta *m)
{
	uint64_t root;
	void *mpg, *rpg;
	int rc;

	rc = t->ops->alloc(t->pager, mpgno, &mpg);
	if (rc != 0)
		return rc;
	rc = t->ops->alloc(t->pager, &root, &rpg);
	if (rc != 0)
		goto err_put_meta;
	kv_node_init(rpg, t->u, KV_PAGE_LEAF, 0);
	page_put(t, root);
	memset(m, 0, sizeof(*m));
	m->type = KV_PAGE_META;
	m->version = KV_BTREE_META_VERSION;
	m->flags = t->count_keys ? KV_BTREE_META_COUNTED : 0;
	m->magic = KV_BTREE_META_MAGIC;
	m->page_usable = (uint32_t)t->u;
	m->height = 1;
	m->root = root;
	m->count = 0;
	memcpy(mpg, m, sizeof(*m));
	page_put(t, *mpgno);
	return t->ops->set_root(t->pager, *mpgno);

err_put_meta:
	page_put(t, *mpgno);
	return rc;
}

/* Overflow chains. */

/*
 * Writes val into a new chain and returns its head.  Pages are allocated in
 * value order, so that a sequential allocator lays the chain out in order;
 * each page stays pinned until the next one's number is known.
 */
static int ovf_write(struct kv_btree *t, const uint8_t *val, size_t vlen, uint64_t *head)
{
	struct kv_ovf_hdr *prev = NULL;
	uint64_t prev_pgno = 0;

	for (size_t off = 0; off < vlen; off += t->ovf_chunk) {
		size_t len = vlen - off < t->ovf_chunk ? vlen - off : t->ovf_chunk;
		uint64_t pgno;
		void *pg;
		int rc = t->ops->alloc(t->pager, &pgno, &pg);

		if (rc != 0) {
			if (prev != NULL)
				page_put(t, prev_pgno);
			return rc;
		}
		if (prev != NULL) {
			prev->next = pgno;
			page_put(t, prev_pgno);
		} else {
			*head = pgno;
		}
		prev = pg;
		prev_pgno = pgno;
		prev->type = KV_PAGE_OVERFLOW;
		prev->len = (uint32_t)len;
		prev->next = 0;
		memcpy((uint8_t *)pg + KV_OVF_HDR_SIZE, val + off, len);
		t->cnt.overflow_pages_written++;
	}
	page_put(t, prev_pgno);
	return 0;
}

/*
 * Copies the first want bytes of the vlen-byte value in chain head to buf;
 * leaf is the page holding head, named if head is 0.
 */
static int ovf_read(struct kv_btree *t, uint64_t leaf, uint64_t head, size_t vlen,
		    uint8_t *buf, size_t want)
{
	uint64_t pgno = head, prev = 0;
	size_t done = 0;

	while (done < want) {
		const struct kv_ovf_hdr *h;
		uint64_t next;
		size_t n;
		void *pg;
		int rc;

		if (pgno == 0)
			return prev ? corrupt(t, prev, "overflow chain ends before its value")
				    : corrupt(t, leaf, "an overflow value with no chain");
		rc = page_get(t, pgno, false, &pg);
		if (rc != 0)
			return rc;
		h = pg;
		if (h->type != KV_PAGE_OVERFLOW || h->len == 0 ||
		    h->len > t->ovf_chunk || done + h->len > vlen) {
			page_put(t, pgno);
			return corrupt(t, pgno, "not an overflow page of this value");
		}
		n = h->len < want - done ? h->len : want - done;
		memcpy(buf + done, (const uint8_t *)pg + KV_OVF_HDR_SIZE, n);
		next = h->next;
		page_put(t, pgno);
		done += n;
		prev = pgno;
		pgno = next;
	}
	return 0;
}

/* Frees overflow page pgno after reading the page it points to into *next. */
static int ovf_free_page(struct kv_btree *t, uint64_t pgno, uint64_t *next)
{
	void *pg;
	int rc = page_get(t, pgno, false, &pg);

	if (rc != 0)
		return rc;
	if (((const struct kv_ovf_hdr *)pg)->type != KV_PAGE_OVERFLOW) {
		page_put(t, pgno);
		return corrupt(t, pgno, "not an overflow page");
	}
	*next = ((const struct kv_ovf_hdr *)pg)->next;
	page_put(t, pgno);
	rc = t->ops->free(t->pager, pgno);
	if (rc != 0)
		return rc;
	t->cnt.overflow_pages_freed++;
	return 0;
}

/* Frees every page of the chain that starts at head. */
static int ovf_free(struct kv_btree *t, uint64_t head)
{
	uint64_t pgno = head;
	size_t steps = 0;

	while (pgno != 0) {
		int rc;

		if (++steps > OVF_PAGES_MAX(t->ovf_chunk))
			return corrupt(t, pgno, "overflow chain longer than any value");
		rc = ovf_free_page(t, pgno, &pgno);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Large values: chains built, freed and read over several transactions. */

int kv_btree_chain_build(struct kv_btree *t, const void *val, size_t vlen, size_t *end,
			 uint32_t max_pages, uint64_t *head)
{
	size_t chunk = t->ovf_chunk, first, last;
	uint64_t next = *head;

	URT_ASSERT(vlen <= KV_BTREE_BIG_MAX && *end <= vlen && max_pages > 0);
	if (*end == 0)
		return 0;
	/* Chunks first..last (inclusive) end at *end; page i holds [i * chunk, ...). */
	last = (*end - 1) / chunk;
	first = last + 1 > max_pages ? last + 1 - max_pages : 0;
	/* Back to front, each page pointing at the chain built so far. */
	for (size_t i = last + 1; i-- > first;) {
		size_t off = i * chunk, len = vlen - off < chunk ? vlen - off : chunk;
		struct kv_ovf_hdr *h;
		uint64_t pgno;
		void *pg;
		int rc = t->ops->alloc(t->pager, &pgno, &pg);

		if (rc != 0)
			return rc;
		h = pg;
		h->type = KV_PAGE_OVERFLOW;
		h->len = (uint32_t)len;
		h->next = next;
		memcpy((uint8_t *)pg + KV_OVF_HDR_SIZE, (const uint8_t *)val + off, len);
		page_put(t, pgno);
		t->cnt.overflow_pages_written++;
		next = pgno;
		*head = pgno;
		*end = off;
	}
	return 0;
}

int kv_btree_chain_free(struct kv_btree *t, uint64_t *head, uint32_t max_pages)
{
	for (uint32_t n = 0; n < max_pages && *head != 0; n++) {
		uint64_t next;
		int rc = ovf_free_page(t, *head, &next);

		if (rc != 0)
			return rc;
		*head = next;
	}
	return 0;
}

int kv_btree_chain_read(struct kv_btree *t, uint64_t *pgno, size_t *off, size_t vlen,
			void *buf, size_t buf_len, uint32_t max_pages)
{
	size_t want = buf_len < vlen ? buf_len : vlen;

	for (uint32_t n = 0; n < max_pages && *off < want; n++) {
		const struct kv_ovf_hdr *h;
		uint64_t next;
		size_t len;
		void *pg;
		int rc;

		if (*pgno == 0)
			return URT_E_CORRUPT;
		rc = page_get(t, *pgno, false, &pg);
		if (rc != 0)
			return rc;
		h = pg;
		if (h->type != KV_PAGE_OVERFLOW || h->len == 0 || h->len > t->ovf_chunk ||
		    *off + h->len > vlen) {
			page_put(t, *pgno);
			return corrupt(t, *pgno, "not an overflow page of this value");
		}
		len = h->len < want - *off ? h->len : want - *off;
		memcpy((uint8_t *)buf + *off, (const uint8_t *)pg + KV_OVF_HDR_SIZE, len);
		*off += len;
		next = h->next;
		page_put(t, *pgno);
		*pgno = next;
	}
	return 0;
}

/* Splits and rebalancing. */

/* Index of a level in the counter arrays. */
static unsigned level_index(unsigned level)
{
	return level < KV_BTREE_LEVELS ? level - 1 : KV_BTREE_LEVELS - 1;
}

/* Appends an entry for each cell of pg to t->ent from index n; returns the new n. */
static unsigned collect(struct kv_btree *t, const void *pg, unsigned n)
{
	for (unsigned i = 0; i < kv_node_count(pg); i++) {
		t->ent[n].cell = kv_node_cell(pg, i);
		t->ent[n].size = (uint16_t)kv_node_cell_size(pg, i);
		n++;
	}
	return n;
}

static const uint8_t *entry_key(const struct kv_entry *e, bool leaf, uint16_t *klen)
{
	*klen = kv_ld16(e->cell);
	return e->cell + (leaf ? KV_LEAF_CELL_HDR : KV_INTERNAL_CELL_HDR);
}

/*
 * Chooses where to cut the n entries: [0, m) go left; for leaves [m, n) go
 * right; for internal nodes entry m moves up to the parent and (m, n) go
 * right.  Picks the m that minimizes the fuller side; the cell size bounds
 * (design notes) guarantee that one exists with both sides within cap.
 */
static unsigned choose_cut(const struct kv_btree *t, unsigned n, bool leaf)
{
	size_t total = 0, left = 0, best_max = SIZE_MAX;
	unsigned best = 0;

	for (unsigned i = 0; i < n; i++)
		total += KV_SLOT_SIZE + t->ent[i].size;
	for (unsigned m = 1; m + (leaf ? 0 : 1) < n; m++) {
		size_t right;

		left += KV_SLOT_SIZE + t->ent[m - 1].size;
		right = total - left;
		if (!leaf)
			right -= KV_SLOT_SIZE + t->ent[m].size;
		if (left > t->cap || right > t->cap)
			continue;
		if ((left > right ? left : right) < best_max) {
			best_max = left > right ? left : right;
			best = m;
		}
	}
	URT_ASSERT(best != 0);
	return best;
}

/* Appends entries [a, b) to the node pg, which has room for them. */
static void fill(struct kv_btree *t, void *pg, unsigned a, unsigned b)
{
	for (unsigned i = a; i < b; i++) {
		bool ok = kv_node_insert(pg, t->u, kv_node_count(pg), t->ent[i].cell,
					 t->ent[i].size, t->compact);

		URT_ASSERT(ok);
	}
}

/*
 * The shortest separator s with left < s <= right: the prefix of right one
 * byte longer than the common prefix.  Encodes it as an internal cell
 * pointing at child into buf and returns the cell size.
 */
static size_t leaf_separator(uint8_t *buf, const uint8_t *lk, size_t ll,
			     const uint8_t *rk, size_t rl, uint64_t child)
{
	size_t n = 0;

	while (n < ll && n < rl && lk[n] == rk[n])
		n++;
	URT_ASSERT(n < rl);
	return kv_internal_cell_encode(buf, rk, n + 1, child);
}

/*
 * Splits the writable node pg at the given level, which has no room for the
 * size-byte cell that belongs at index idx, into pg and a new right sibling,
 * and leaves the separator cell for the parent in up.
 */
static int node_split(struct kv_btree *t, void *pg, unsigned level, unsigned idx,
		      const uint8_t *cell, size_t size, struct kv_up *up)
{
	bool leaf = kv_node_is_leaf(pg);
	uint64_t link = kv_node_hdr(pg)->link;
	uint64_t rpgno;
	unsigned n, m;
	void *rpg;
	int rc;

	rc = t->ops->alloc(t->pager, &rpgno, &rpg);
	if (rc != 0)
		return rc;
	memcpy(t->copy[0], pg, t->u);
	n = collect(t, t->copy[0], 0);
	memmove(&t->ent[idx + 1], &t->ent[idx], (n - idx) * sizeof(t->ent[0]));
	t->ent[idx].cell = cell;
	t->ent[idx].size = (uint16_t)size;
	n++;
	m = choose_cut(t, n, leaf);
	if (leaf) {
		uint16_t ll, rl;
		const uint8_t *lk = entry_key(&t->ent[m - 1], true, &ll);
		const uint8_t *rk = entry_key(&t->ent[m], true, &rl);

		kv_node_init(pg, t->u, KV_PAGE_LEAF, rpgno);
		kv_node_init(rpg, t->u, KV_PAGE_LEAF, link);
		fill(t, pg, 0, m);
		fill(t, rpg, m, n);
		up->cell_size = (uint16_t)leaf_separator(up->cell, lk, ll, rk, rl, rpgno);
		kv_node_refresh_prefix(pg);
		kv_node_refresh_prefix(rpg);
	} else {
		uint16_t klen;
		const uint8_t *key = entry_key(&t->ent[m], false, &klen);

		kv_node_init(pg, t->u, KV_PAGE_INTERNAL, link);
		kv_node_init(rpg, t->u, KV_PAGE_INTERNAL,
			     kv_internal_cell_child(t->ent[m].cell));
		fill(t, pg, 0, m);
		fill(t, rpg, m + 1, n);
		up->cell_size = (uint16_t)kv_internal_cell_encode(up->cell, key, klen, rpgno);
		kv_node_refresh_prefix(pg);
		kv_node_refresh_prefix(rpg);
	}
	page_put(t, rpgno);
	up->split = true;
	t->cnt.splits[level_index(level)]++;
	return 0;
}

/* Inserts cell at idx of the writable node pg, splitting it if it is full. */
static int node_insert_or_split(struct kv_btree *t, void *pg, unsigned level,
				unsigned idx, const uint8_t *cell, size_t size,
				struct kv_up *up)
{
	if (kv_node_insert(pg, t->u, idx, cell, size, t->compact))
		return 0;
	return node_split(t, pg, level, idx, cell, size, up);
}

/*
 * Child ci of the internal node ppgno, at the given level, became underfull:
 * merges it with a sibling, or, if both do not fit in one node, moves cells
 * between them and replaces their separator.  Reports this node's own state
 * in up.
 */
static int fix_child(struct kv_btree *t, uint64_t ppgno, unsigned level, unsigned ci,
		     struct kv_up *up)
{
	bool leaf = level == 2;
	size_t sep_size, mid_size = 0;
	uint64_t lpgno, rpgno;
	void *pp, *lpg, *rpg;
	unsigned s, n, m;
	int rc;

	rc = node_get(t, ppgno, true, 0, &pp);
	if (rc != 0)
		return rc;
	if (kv_node_count(pp) == 0) {
		rc = corrupt(t, ppgno, "an internal node with no cells");
		goto err_put_parent;
	}
	/* Pair the child with its right sibling, or its left one if it is last. */
	s = ci < kv_node_count(pp) ? ci : ci - 1;
	lpgno = kv_internal_child(pp, s);
	rpgno = kv_internal_child(pp, s + 1);
	rc = node_get(t, lpgno, true, leaf, &lpg);
	if (rc != 0)
		goto err_put_parent;
	rc = node_get(t, rpgno, true, leaf, &rpg);
	if (rc != 0)
		goto err_put_left;

	if (!leaf) {
		/* The separator comes down over R's child 0. */
		uint16_t klen;
		const uint8_t *key = kv_node_key(pp, s, &klen);

		mid_size = kv_internal_cell_encode(t->mid, key, klen, kv_node_hdr(rpg)->link);
	}
	if (kv_node_used(lpg, t->u) + kv_node_used(rpg, t->u) +
		    (leaf ? 0 : KV_SLOT_SIZE + mid_size) <=
	    t->cap) {
		/* Merge R into L and drop R. */
		if (!leaf) {
			bool ok = kv_node_insert(lpg, t->u, kv_node_count(lpg), t->mid,
						 mid_size, t->compact);
			URT_ASSERT(ok);
		}
		for (unsigned i = 0; i < kv_node_count(rpg); i++) {
			bool ok = kv_node_insert(lpg, t->u, kv_node_count(lpg),
						 kv_node_cell(rpg, i),
						 kv_node_cell_size(rpg, i), t->compact);
			URT_ASSERT(ok);
		}
		if (leaf)
			kv_node_hdr(lpg)->link = kv_node_hdr(rpg)->link;
		kv_node_refresh_prefix(lpg);
		page_put(t, rpgno);
		page_put(t, lpgno);
		rc = t->ops->free(t->pager, rpgno);
		if (rc != 0)
			goto err_put_parent;
		kv_node_remove(pp, t->u, s);
		t->cnt.merges[level_index(level - 1)]++;
		goto done;
	}

	/* Redistribute: cut the cells of both (and the separator) anew. */
	memcpy(t->copy[0], lpg, t->u);
	memcpy(t->copy[1], rpg, t->u);
	if (leaf) {
		uint16_t ll, rl;
		const uint8_t *lk, *rk;

		n = collect(t, t->copy[0], 0);
		n = collect(t, t->copy[1], n);
		m = choose_cut(t, n, true);
		kv_node_init(lpg, t->u, KV_PAGE_LEAF, rpgno);
		kv_node_init(rpg, t->u, KV_PAGE_LEAF, kv_node_hdr(t->copy[1])->link);
		fill(t, lpg, 0, m);
		fill(t, rpg, m, n);
		lk = entry_key(&t->ent[m - 1], true, &ll);
		rk = entry_key(&t->ent[m], true, &rl);
		sep_size = leaf_separator(t->sep, lk, ll, rk, rl, rpgno);
		kv_node_refresh_prefix(lpg);
		kv_node_refresh_prefix(rpg);
	} else {
		const uint8_t *key;
		uint16_t klen;

		n = collect(t, t->copy[0], 0);
		t->ent[n].cell = t->mid;
		t->ent[n].size = (uint16_t)mid_size;
		n = collect(t, t->copy[1], n + 1);
		m = choose_cut(t, n, false);
		key = entry_key(&t->ent[m], false, &klen);
		kv_node_init(lpg, t->u, KV_PAGE_INTERNAL, kv_node_hdr(t->copy[0])->link);
		kv_node_init(rpg, t->u, KV_PAGE_INTERNAL,
			     kv_internal_cell_child(t->ent[m].cell));
		fill(t, lpg, 0, m);
		fill(t, rpg, m + 1, n);
		sep_size = kv_internal_cell_encode(t->sep, key, klen, rpgno);
		kv_node_refresh_prefix(lpg);
		kv_node_refresh_prefix(rpg);
	}
	page_put(t, rpgno);
	page_put(t, lpgno);
	t->cnt.redistributions[level_index(level - 1)]++;
	kv_node_remove(pp, t->u, s);
	rc = node_insert_or_split(t, pp, level, s, t->sep, sep_size, up);
	if (rc != 0)
		goto err_put_parent;
	if (up->split)
		t->cnt.rebalance_splits++;
done:
	up->underfull = !up->split && kv_node_used(pp, t->u) < t->underfull;
	page_put(t, ppgno);
	return 0;

err_put_left:
	page_put(t, lpgno);
err_put_parent:
	page_put(t, ppgno);
	return rc;
}

/* True if the cell's key has expired at now (now 0: nothing has). */
static bool cell_expired(const struct kv_leaf_cell *c, uint64_t now)
{
	return now != 0 && c->expire_at != 0 && c->expire_at <= now;
}

/* Writes t->cellbuf's size bytes over the cell at off of the pinned leaf pgno (read pointer pg). */
static int cell_rewrite(struct kv_btree *t, uint64_t pgno, void *pg, unsigned off, size_t size)
{
	int rc;

	if (t->ops->write_at)
		return t->ops->write_at(t->pager, pgno, off, t->cellbuf, size);
	rc = make_writable(t, pgno, &pg);
	if (rc == 0)
		memcpy((uint8_t *)pg + off, t->cellbuf, size);
	return rc;
}

/* Applies op to the pinned leaf pgno, which it unpins. */
static int leaf_modify(struct kv_btree *t, uint64_t pgno, void *pg, struct kv_op *op,
		       struct kv_up *up)
{
	struct kv_btree_xput *x = op->x;
	struct kv_leaf_cell old = { 0 };
	bool found, live = false;
	uint64_t ovf = 0;
	size_t size = 0;
	unsigned idx;
	int rc = 0;

	idx = kv_node_lower_bound(pg, op->key, op->klen, &found);
	if (found) {
		kv_leaf_cell_decode(kv_node_cell(pg, idx), &old);
		live = !cell_expired(&old, x->now);
		x->found = true;
		x->old_expire_at = old.expire_at;
	}
	if (op->del) {
		if (!found || ((op->flags & KV_BTREE_IF_EXPIRED) && live)) {
			rc = -ENOENT;
			goto out_put;
		}
	} else if (op->flags & KV_BTREE_KEEPVAL) {
		/* A new expiry only: the value stays where it is (invariant 4). */
		if (!live) {
			rc = -ENOENT;
			goto out_put;
		}
		x->new_expire_at = x->expire_at;
		size = kv_leaf_cell_encode_x(t->cellbuf, op->key, op->klen, old.val, old.vlen,
					     old.overflow, old.ovf, x->expire_at);
	} else {
		bool overflow = value_overflows(t, op->klen, op->vlen);
		uint64_t exp = x->expire_at;

		if (live && (op->flags & KV_BTREE_NX)) {
			rc = -EEXIST;
			goto out_put;
		}
		if (!live && (op->flags & KV_BTREE_XX)) {
			rc = -ENOENT;
			goto out_put;
		}
		if (live && (op->flags & KV_BTREE_KEEPTTL))
			exp = old.expire_at;
		x->new_expire_at = exp;
		if (op->flags & KV_BTREE_CHAIN) {
			URT_ASSERT(overflow && x->chain != 0);
			ovf = x->chain;
		} else if (overflow) {
			rc = ovf_write(t, op->val, op->vlen, &ovf);
			if (rc != 0)
				goto out_put;
		}
		size = kv_leaf_cell_encode_x(t->cellbuf, op->key, op->klen, op->val,
					     op->vlen, overflow, ovf, exp);
	}
	if (found && !op->del && kv_node_cell_size(pg, idx) == size) {
		/*
		 * Same key, same cell size: the new cell takes the old one's
		 * bytes.  The slot (offset, key length, head) and the prefix
		 * stay valid, and only the value bytes change, so the page
		 * delta is the value, not a shifted slot array and a moved
		 * cell; a pager with write_at learns that range and need not
		 * compare the page to find it.
		 */
		rc = cell_rewrite(t, pgno, pg, kv_node_slot(pg, idx), size);
		if (rc != 0)
			goto out_put;
		if (old.overflow && !(op->flags & KV_BTREE_KEEPVAL)) {
			op->old_ovf = old.ovf;
			op->old_vlen = old.vlen;
		}
		t->cnt.overwrites++;
		goto out_put;
	}
	rc = make_writable(t, pgno, &pg);
	if (rc != 0)
		goto out_put;
	if (found) {
		if (old.overflow && !(op->flags & KV_BTREE_KEEPVAL)) {
			op->old_ovf = old.ovf;
			op->old_vlen = old.vlen;
		}
		kv_node_remove(pg, t->u, idx);
	}
	if (op->del) {
		op->removed = true;
	} else {
		op->inserted = !found;
		rc = node_insert_or_split(t, pg, 1, idx, t->cellbuf, size, up);
		if (rc != 0)
			goto out_put;
	}
	up->underfull = !up->split && kv_node_used(pg, t->u) < t->underfull;
out_put:
	page_put(t, pgno);
	return rc;
}

/* Applies op to the subtree of node pgno at the given level (1 = leaf). */
static int modify_rec(struct kv_btree *t, uint64_t pgno, unsigned level,
		      struct kv_op *op, struct kv_up *up)
{
	struct kv_up cu;
	uint64_t child;
	unsigned ci;
	void *pg;
	int rc;

	up->split = false;
	up->underfull = false;
	rc = node_get(t, pgno, false, level == 1, &pg);
	if (rc != 0)
		return rc;
	if (level == 1)
		return leaf_modify(t, pgno, pg, op, up);
	ci = kv_internal_child_index(pg, op->key, op->klen);
	child = kv_internal_child(pg, ci);
	page_put(t, pgno);

	rc = modify_rec(t, child, level - 1, op, &cu);
	if (rc != 0)
		return rc;
	if (cu.split) {
		rc = node_get(t, pgno, true, 0, &pg);
		if (rc != 0)
			return rc;
		rc = node_insert_or_split(t, pg, level, ci, cu.cell, cu.cell_size, up);
		page_put(t, pgno);
		return rc;
	}
	if (cu.underfull)
		return fix_child(t, pgno, level, ci, up);
	return 0;
}

/* The root split: a new root gets the old one as child 0 and up's separator. */
static int root_grow(struct kv_btree *t, struct kv_btree_meta *m, const struct kv_up *up)
{
	uint64_t pgno;
	void *pg;
	bool ok;
	int rc = t->ops->alloc(t->pager, &pgno, &pg);

	if (rc != 0)
		return rc;
	kv_node_init(pg, t->u, KV_PAGE_INTERNAL, m->root);
	ok = kv_node_insert(pg, t->u, 0, up->cell, up->cell_size, t->compact);
	URT_ASSERT(ok);
	page_put(t, pgno);
	m->root = pgno;
	m->height++;
	t->cnt.root_grows++;
	return 0;
}

/* Drops an internal root left with one child; sets *dropped if it did. */
static int root_shrink(struct kv_btree *t, struct kv_btree_meta *m, bool *dropped)
{
	uint64_t child;
	unsigned count;
	void *pg;
	int rc = node_get(t, m->root, false, 0, &pg);

	if (rc != 0)
		return rc;
	count = kv_node_count(pg);
	child = kv_node_hdr(pg)->link;
	page_put(t, m->root);
	if (count > 0)
		return 0;
	rc = t->ops->free(t->pager, m->root);
	if (rc != 0)
		return rc;
	m->root = child;
	m->height--;
	*dropped = true;
	t->cnt.root_shrinks++;
	return 0;
}

static int tree_modify(struct kv_btree *t, struct kv_op *op)
{
	struct kv_btree_meta m;
	struct kv_up up;
	uint64_t mpgno;
	bool dirty = false;
	int rc;

	t->gen++;
	/* This operation changes pages: the epoch rule alone cannot see a writer's own changes. */
	t->meta_epoch = 0;
	rc = meta_read(t, &mpgno, &m);
	t->meta_epoch = 0;
	if (rc != 0)
		return rc;
	if (mpgno == 0) {
		if (op->del || (op->flags & (KV_BTREE_XX | KV_BTREE_KEEPVAL)))
			return -ENOENT;
		rc = tree_create(t, &mpgno, &m);
		if (rc != 0)
			return rc;
	}
	rc = modify_rec(t, m.root, m.height, op, &up);
	if (rc != 0)
		return rc;
	if (up.split) {
		rc = root_grow(t, &m, &up);
		dirty = true;
	} else if (up.underfull && m.height > 1) {
		rc = root_shrink(t, &m, &dirty);
	}
	if (rc != 0)
		return rc;
	if (op->inserted && (m.flags & KV_BTREE_META_COUNTED)) {
		m.count++;
		dirty = true;
	}
	if (op->removed && (m.flags & KV_BTREE_META_COUNTED)) {
		if (m.count == 0)
			return corrupt(t, mpgno, "the tree's key count is 0 with a key in it");
		m.count--;
		dirty = true;
	}
	if (dirty) {
		rc = meta_write(t, mpgno, &m);
		if (rc != 0)
			return rc;
	}
	if (op->old_ovf != 0 && op->old_vlen > KV_BTREE_VALUE_MAX) {
		/* A large chain is the caller's to free, in bounded transactions. */
		op->x->detached = op->old_ovf;
	} else if (op->old_ovf != 0) {
		rc = ovf_free(t, op->old_ovf);
		if (rc != 0)
			return rc;
	}
	return op->inserted;
}

static int key_valid(const void *key, size_t klen)
{
	if (klen == 0)
		return -EINVAL;
	if (klen > KV_BTREE_KEY_MAX)
		return URT_E_TOOBIG;
	URT_ASSERT(key != NULL);
	return 0;
}

/*
 * Bytes of a leaf that its binary search reads: the header and up to 88
 * slots (a leaf of short keys holds about 85), twelve cache lines.
 */
#define PREFETCH_SLOT_BYTES 768u
#define PREFETCH_CELL_BYTES 128u	/* A short key and value: two lines. */

uint64_t kv_btree_prefetch_leaf(struct kv_btree *t, const void *key, size_t klen)
{
	uint64_t pgno;
	unsigned height;

	if (!t->ops->peek || !t->ops->nodes_checked || t->meta_pgno == 0 ||
	    key_valid(key, klen) != 0)
		return 0;
	/*
	 * The last meta the tree read: a root that moved since only makes the
	 * hint wrong.  The leaf itself is not read here (that is the miss to
	 * hide), so the height says where the internal levels end.
	 */
	pgno = t->meta_cached.root;
	height = t->meta_cached.height;
	for (unsigned level = height; level > 1; level--) {
		const void *pg = t->ops->peek(t->pager, pgno);

		if (!pg || kv_node_hdr_const(pg)->type != KV_PAGE_INTERNAL)
			return 0;
		/* Committed nodes the pager checked (nodes_checked): safe to search. */
		pgno = kv_internal_child(pg, kv_internal_child_index(pg, key, klen));
	}
	t->ops->locate(t->pager, pgno, 0);
	return pgno;
}

void kv_btree_prefetch_node(struct kv_btree *t, uint64_t leaf, unsigned step)
{
	if (leaf == 0 || !t->ops->peek)
		return;
	if (step == 0)
		t->ops->locate(t->pager, leaf, 1);
	else
		t->ops->prefetch(t->pager, leaf, 0, PREFETCH_SLOT_BYTES);
}

void kv_btree_prefetch_cell(struct kv_btree *t, uint64_t leaf, const void *key, size_t klen)
{
	const void *pg;
	unsigned idx;

	/* A peeked page is searched unchecked: only one the pager checked on read. */
	if (leaf == 0 || !t->ops->peek || !t->ops->nodes_checked || key_valid(key, klen) != 0)
		return;
	pg = t->ops->peek(t->pager, leaf);
	if (!pg || kv_node_hdr_const(pg)->type != KV_PAGE_LEAF)
		return;
	/* By key heads only: reading cells to settle ties would wait for the misses to hide. */
	idx = kv_node_guess(pg, key, klen);
	if (idx < kv_node_count(pg))
		t->ops->prefetch(t->pager, leaf, kv_node_slot(pg, idx), PREFETCH_CELL_BYTES);
}

int kv_btree_put(struct kv_btree *t, const void *key, size_t klen, const void *val,
		 size_t vlen, unsigned flags)
{
	struct kv_btree_xput x = { 0 };

	URT_ASSERT((flags & ~(unsigned)(KV_BTREE_NX | KV_BTREE_XX)) == 0);
	return kv_btree_put_x(t, key, klen, val, vlen, flags, &x);
}

int kv_btree_put_x(struct kv_btree *t, const void *key, size_t klen, const void *val,
		   size_t vlen, unsigned flags, struct kv_btree_xput *x)
{
	struct kv_op op = {
		.key = key, .klen = klen, .val = vlen ? val : empty_key, .vlen = vlen,
		.flags = flags, .x = x,
	};
	int rc = key_valid(key, klen);

	x->found = false;
	x->old_expire_at = 0;
	x->new_expire_at = 0;
	x->detached = 0;
	if (rc != 0)
		return rc;
	if (vlen > ((flags & KV_BTREE_CHAIN) ? KV_BTREE_BIG_MAX : KV_BTREE_VALUE_MAX))
		return URT_E_TOOBIG;
	URT_ASSERT(val != NULL || vlen == 0 || (flags & (KV_BTREE_KEEPVAL | KV_BTREE_CHAIN)));
	URT_ASSERT((flags & ~(unsigned)(KV_BTREE_NX | KV_BTREE_XX | KV_BTREE_KEEPTTL |
					KV_BTREE_KEEPVAL | KV_BTREE_CHAIN)) == 0);
	URT_ASSERT(!(flags & KV_BTREE_CHAIN) ||
		   (!(flags & KV_BTREE_KEEPVAL) && value_overflows(t, klen, vlen)));
	URT_ASSERT((flags & (KV_BTREE_NX | KV_BTREE_XX)) != (KV_BTREE_NX | KV_BTREE_XX));
	if (flags & KV_BTREE_KEEPVAL)
		op.vlen = 0;
	return tree_modify(t, &op);
}

int kv_btree_del(struct kv_btree *t, const void *key, size_t klen)
{
	struct kv_btree_xput x = { 0 };

	return kv_btree_del_x(t, key, klen, 0, &x);
}

int kv_btree_del_x(struct kv_btree *t, const void *key, size_t klen, unsigned flags,
		   struct kv_btree_xput *x)
{
	struct kv_op op = { .key = key, .klen = klen, .del = true, .flags = flags, .x = x };
	int rc = key_valid(key, klen);

	x->found = false;
	x->old_expire_at = 0;
	x->new_expire_at = 0;
	x->detached = 0;
	if (rc != 0)
		return rc;
	URT_ASSERT((flags & ~(unsigned)KV_BTREE_IF_EXPIRED) == 0);
	URT_ASSERT(!(flags & KV_BTREE_IF_EXPIRED) || x->now != 0);
	return tree_modify(t, &op);
}

/* Lookups. */

/*
 * Descends to the leaf whose range holds key and returns it pinned for
 * reading; sets *leaf to 0, pinning nothing, if no tree exists.
 */
static int descend(struct kv_btree *t, const void *key, size_t klen, uint64_t *leaf,
		   void **pg)
{
	struct kv_btree_meta m;
	uint64_t mpgno, pgno;
	int rc = meta_read(t, &mpgno, &m);

	*leaf = 0;
	if (rc != 0 || mpgno == 0)
		return rc;
	pgno = m.root;
	for (unsigned level = m.height; level > 1; level--) {
		uint64_t child;

		rc = node_get(t, pgno, false, 0, pg);
		if (rc != 0)
			return rc;
		child = kv_internal_child(*pg, kv_internal_child_index(*pg, key, klen));
		page_put(t, pgno);
		pgno = child;
	}
	rc = node_get(t, pgno, false, 1, pg);
	if (rc != 0)
		return rc;
	*leaf = pgno;
	return 0;
}

/*
 * Copies the value of the leaf cell c, whose leaf pgno is pinned, and
 * unpins it.  chain non-NULL: a value over KV_BTREE_VALUE_MAX is not
 * copied, *chain gets its chain's head (else 0).
 */
static int cell_value(struct kv_btree *t, uint64_t pgno, const uint8_t *c, void *buf,
		      size_t buf_len, size_t *vlen, uint64_t *expire_at, uint64_t *chain)
{
	struct kv_leaf_cell lc;
	size_t want;

	kv_leaf_cell_decode(c, &lc);
	*vlen = lc.vlen;
	if (expire_at)
		*expire_at = lc.expire_at;
	if (chain) {
		*chain = 0;
		if (lc.overflow && lc.vlen > KV_BTREE_VALUE_MAX) {
			*chain = lc.ovf;
			page_put(t, pgno);
			return 0;
		}
	}
	want = buf_len < lc.vlen ? buf_len : lc.vlen;
	if (want > 0 && lc.vlen > KV_BTREE_VALUE_MAX) {
		/* A large value is read over several transactions (kv_btree_chain_read). */
		page_put(t, pgno);
		return URT_E_TOOBIG;
	}
	if (!lc.overflow) {
		if (want > 0)
			memcpy(buf, lc.val, want);
		page_put(t, pgno);
		return 0;
	}
	page_put(t, pgno);
	return ovf_read(t, pgno, lc.ovf, lc.vlen, buf, want);
}

/*
 * The leaf hint of a hinted lookup: when hint is a leaf the pager holds
 * and key is in it, returns 0 with the leaf pinned in *pg; else pins
 * nothing and returns -ENOENT (look the key up from the root), or an
 * error of the page get.  A key lives in one leaf of the committed tree,
 * so finding it in the hinted leaf is the answer a descent would give;
 * not finding it says nothing (the key may be absent, or the hint stale),
 * and only a descent can tell.
 */
static int hint_leaf(struct kv_btree *t, uint64_t hint, const void *key, size_t klen,
		     void **pg, unsigned *idx)
{
	const void *peek = t->ops->peek ? t->ops->peek(t->pager, hint) : NULL;
	bool found;
	int rc;

	if (!peek || kv_node_hdr_const(peek)->type != KV_PAGE_LEAF)
		return -ENOENT;
	rc = node_get(t, hint, false, 1, pg);
	if (rc != 0)
		return rc;
	*idx = kv_node_lower_bound(*pg, key, klen, &found);
	if (found)
		return 0;
	page_put(t, hint);
	return -ENOENT;
}

/*
 * The lookup of get_x and get_or_ref; hint (0: none) is the leaf
 * kv_btree_prefetch_leaf named for key, tried first (hint_leaf).
 */
static int get_value(struct kv_btree *t, uint64_t hint, const void *key, size_t klen, void *buf,
		     size_t buf_len, size_t *vlen, uint64_t *expire_at, uint64_t *chain)
{
	uint64_t pgno;
	unsigned idx;
	bool found;
	void *pg;
	int rc = key_valid(key, klen);

	if (rc != 0)
		return rc;
	URT_ASSERT(buf != NULL || buf_len == 0);
	if (hint != 0) {
		rc = hint_leaf(t, hint, key, klen, &pg, &idx);
		if (rc == 0) {
			t->cnt.hinted_gets++;
			return cell_value(t, hint, kv_node_cell(pg, idx), buf, buf_len, vlen, expire_at,
					  chain);
		}
		if (rc != -ENOENT)
			return rc;
	}
	rc = descend(t, key, klen, &pgno, &pg);
	if (rc != 0)
		return rc;
	if (pgno == 0)
		return -ENOENT;
	idx = kv_node_lower_bound(pg, key, klen, &found);
	if (!found) {
		page_put(t, pgno);
		return -ENOENT;
	}
	return cell_value(t, pgno, kv_node_cell(pg, idx), buf, buf_len, vlen, expire_at, chain);
}

int kv_btree_get(struct kv_btree *t, const void *key, size_t klen, void *buf,
		 size_t buf_len, size_t *vlen)
{
	return get_value(t, 0, key, klen, buf, buf_len, vlen, NULL, NULL);
}

int kv_btree_get_x(struct kv_btree *t, const void *key, size_t klen, void *buf,
		   size_t buf_len, size_t *vlen, uint64_t *expire_at)
{
	return get_value(t, 0, key, klen, buf, buf_len, vlen, expire_at, NULL);
}

int kv_btree_get_or_ref(struct kv_btree *t, const void *key, size_t klen, void *buf,
			size_t buf_len, size_t *vlen, uint64_t *expire_at, uint64_t *chain)
{
	return get_value(t, 0, key, klen, buf, buf_len, vlen, expire_at, chain);
}

int kv_btree_get_hinted(struct kv_btree *t, uint64_t hint, const void *key, size_t klen,
			void *buf, size_t buf_len, size_t *vlen, uint64_t *expire_at,
			uint64_t *chain)
{
	return get_value(t, hint, key, klen, buf, buf_len, vlen, expire_at, chain);
}

int kv_btree_exists(struct kv_btree *t, const void *key, size_t klen)
{
	uint64_t pgno;
	bool found;
	void *pg;
	int rc = key_valid(key, klen);

	if (rc != 0)
		return rc;
	rc = descend(t, key, klen, &pgno, &pg);
	if (rc != 0 || pgno == 0)
		return rc;
	kv_node_lower_bound(pg, key, klen, &found);
	page_put(t, pgno);
	return found;
}

/*
 * Sums the cell counts of the leaves, following the chain from the first.
 * Each leaf's first key must follow the previous leaf's first and last
 * keys, and only a lone root leaf may be empty, so the first keys of the
 * leaves strictly increase and a damaged chain that loops is reported
 * instead of followed forever (even through leaves whose keys are out of
 * order).
 */
static int count_leaves(struct kv_btree *t, uint64_t *count)
{
	uint8_t last[KV_BTREE_KEY_MAX], first[KV_BTREE_KEY_MAX];
	uint16_t last_len = 0, first_len = 0;
	uint64_t pgno, n = 0;
	void *pg;
	int rc = descend(t, empty_key, 0, &pgno, &pg);

	if (rc != 0 || pgno == 0) {
		*count = 0;
		return rc;
	}
	for (;;) {
		unsigned cells = kv_node_count(pg);
		uint64_t next = kv_node_hdr(pg)->link;
		uint16_t klen;
		const uint8_t *key;

		if (cells == 0 && (n > 0 || next != 0)) {
			page_put(t, pgno);
			return corrupt(t, pgno, "an empty leaf that is not the root");
		}
		if (cells > 0) {
			key = kv_node_key(pg, 0, &klen);
			if (klen == 0 || klen > KV_BTREE_KEY_MAX) {
				page_put(t, pgno);
				return corrupt(t, pgno, "a key of impossible length");
			}
			if (last_len != 0 && (kv_key_cmp(last, last_len, key, klen) >= 0 ||
					      kv_key_cmp(first, first_len, key, klen) >= 0)) {
				page_put(t, pgno);
				return corrupt(t, pgno, "a leaf's keys do not follow the previous leaf's");
			}
			memcpy(first, key, klen);
			first_len = klen;
			key = kv_node_key(pg, cells - 1, &klen);
			if (klen == 0 || klen > KV_BTREE_KEY_MAX) {
				page_put(t, pgno);
				return corrupt(t, pgno, "a key of impossible length");
			}
			memcpy(last, key, klen);
			last_len = klen;
		}
		n += cells;
		page_put(t, pgno);
		if (next == 0)
			break;
		pgno = next;
		rc = node_get(t, pgno, false, 1, &pg);
		if (rc != 0)
			return rc;
	}
	*count = n;
	return 0;
}

int kv_btree_count(struct kv_btree *t, uint64_t *count)
{
	struct kv_btree_meta m;
	uint64_t mpgno;
	int rc = meta_read(t, &mpgno, &m);

	if (rc != 0)
		return rc;
	if (mpgno != 0 && !(m.flags & KV_BTREE_META_COUNTED))
		return count_leaves(t, count);
	*count = mpgno == 0 ? 0 : m.count;
	return 0;
}

int kv_btree_write_bound(struct kv_btree *t, size_t vlen, uint64_t *pages)
{
	struct kv_btree_meta m;
	uint64_t mpgno, height = 1;
	int rc = meta_read(t, &mpgno, &m);

	if (rc != 0)
		return rc;
	/* An empty pager counts as one level: the put creates the meta page and a leaf. */
	if (mpgno != 0)
		height = m.height;
	*pages = 2 * height + 2;
	if (vlen > sizeof(uint64_t))
		*pages += (vlen + t->ovf_chunk - 1) / t->ovf_chunk;
	return 0;
}

void kv_btree_invalidate_cursors(struct kv_btree *t)
{
	t->gen++;
	t->meta_epoch = 0;
}

void kv_btree_set_pager(struct kv_btree *t, struct kv_pager *pager)
{
	t->pager = pager;
	t->gen++;
	t->meta_epoch = 0;
}

void kv_btree_get_counters(const struct kv_btree *t, struct kv_btree_counters *out)
{
	*out = t->cnt;
}

/* Cursors. */

void kv_btree_cursor_init(struct kv_btree_cursor *c, struct kv_btree *t)
{
	memset(c, 0, offsetof(struct kv_btree_cursor, key));
	c->tree = t;
}

/*
 * Positions c on cell idx of the pinned leaf pgno, or on the first cell of
 * the leaves after it if idx is past the end; unpins what it pinned.  The
 * key found must sort after floor[0, flen) (strict) or not before it: so
 * a cursor's keys strictly increase, and a leaf chain that a damaged link
 * turns into a loop is reported, not walked for ever.
 */
static int cursor_load(struct kv_btree_cursor *c, uint64_t pgno, void *pg, unsigned idx,
		       const uint8_t *floor, size_t flen, bool strict)
{
	struct kv_btree *t = c->tree;
	struct kv_leaf_cell lc;
	int rc;

	while (idx >= kv_node_count(pg)) {
		uint64_t next = kv_node_hdr(pg)->link;

		page_put(t, pgno);
		if (next == 0) {
			c->valid = false;
			return 0;
		}
		pgno = next;
		rc = node_get(t, pgno, false, 1, &pg);
		if (rc != 0)
			return rc;
		/* Only the root leaf may be empty, and it has no successor. */
		if (kv_node_count(pg) == 0) {
			page_put(t, pgno);
			return corrupt(t, pgno, "an empty leaf that is not the root");
		}
		idx = 0;
	}
	kv_leaf_cell_decode(kv_node_cell(pg, idx), &lc);
	if (lc.klen == 0 || lc.klen > KV_BTREE_KEY_MAX) {
		page_put(t, pgno);
		return corrupt(t, pgno, "a key of impossible length");
	}
	if (kv_key_cmp(lc.key, lc.klen, floor, flen) < (strict ? 1 : 0)) {
		page_put(t, pgno);
		return corrupt(t, pgno, "a key out of order in the leaf chain");
	}
	memcpy(c->key, lc.key, lc.klen);
	c->klen = lc.klen;
	c->vlen = lc.vlen;
	c->expire_at = lc.expire_at;
	c->leaf = pgno;
	c->idx = idx;
	c->gen = t->gen;
	c->valid = true;
	page_put(t, pgno);
	return 0;
}

int kv_btree_cursor_seek(struct kv_btree_cursor *c, const void *key, size_t klen)
{
	uint64_t pgno;
	bool found;
	void *pg;
	int rc;

	c->valid = false;
	if (klen > KV_BTREE_KEY_MAX)
		return URT_E_TOOBIG;
	if (klen == 0)
		key = empty_key;
	rc = descend(c->tree, key, klen, &pgno, &pg);
	if (rc != 0 || pgno == 0)
		return rc;
	return cursor_load(c, pgno, pg, kv_node_lower_bound(pg, key, klen, &found), key, klen,
			   false);
}

int kv_btree_cursor_next(struct kv_btree_cursor *c)
{
	void *pg;
	int rc;

	if (!c->valid)
		return 0;
	if (c->gen != c->tree->gen) {
		/* The tree changed: find the first key after the current one. */
		uint8_t key[KV_BTREE_KEY_MAX];
		size_t klen = c->klen;

		memcpy(key, c->key, klen);
		rc = kv_btree_cursor_seek(c, key, klen);
		if (rc != 0 || !c->valid || kv_key_cmp(c->key, c->klen, key, klen) != 0)
			return rc;
	}
	rc = node_get(c->tree, c->leaf, false, 1, &pg);
	if (rc != 0) {
		c->valid = false;
		return rc;
	}
	if (c->idx >= kv_node_count(pg)) {
		page_put(c->tree, c->leaf);
		c->valid = false;
		return corrupt(c->tree, c->leaf, "a leaf lost cells under a cursor");
	}
	/* c->key is read before cursor_load overwrites it. */
	rc = cursor_load(c, c->leaf, pg, c->idx + 1, c->key, c->klen, true);
	if (rc != 0)
		c->valid = false;
	return rc;
}

bool kv_btree_cursor_valid(const struct kv_btree_cursor *c)
{
	return c->valid;
}

const void *kv_btree_cursor_key(const struct kv_btree_cursor *c, size_t *klen)
{
	URT_ASSERT(c->valid);
	*klen = c->klen;
	return c->key;
}

size_t kv_btree_cursor_value_len(const struct kv_btree_cursor *c)
{
	URT_ASSERT(c->valid);
	return c->vlen;
}

uint64_t kv_btree_cursor_expire_at(const struct kv_btree_cursor *c)
{
	URT_ASSERT(c->valid);
	return c->expire_at;
}

int kv_btree_cursor_value(struct kv_btree_cursor *c, void *buf, size_t buf_len,
			  size_t *vlen)
{
	struct kv_btree *t = c->tree;
	const uint8_t *cell;
	uint16_t klen;
	void *pg;
	int rc;

	if (!c->valid)
		return -EINVAL;
	URT_ASSERT(buf != NULL || buf_len == 0);
	if (c->gen != t->gen)
		return kv_btree_get_x(t, c->key, c->klen, buf, buf_len, vlen, NULL);
	rc = node_get(t, c->leaf, false, 1, &pg);
	if (rc != 0)
		return rc;
	if (c->idx >= kv_node_count(pg)) {
		page_put(t, c->leaf);
		return corrupt(t, c->leaf, "a leaf lost cells under a cursor");
	}
	cell = kv_node_cell(pg, c->idx);
	klen = kv_ld16(cell);
	if (kv_key_cmp(cell + KV_LEAF_CELL_HDR, klen, c->key, c->klen) != 0) {
		page_put(t, c->leaf);
		return corrupt(t, c->leaf, "a leaf's key changed under a cursor");
	}
	return cell_value(t, c->leaf, cell, buf, buf_len, vlen, NULL, NULL);
}

/* Lifecycle. */

void kv_btree_opts_default(struct kv_btree_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->count_keys = true;
}

int kv_btree_open(const struct kv_pager_ops *ops, struct kv_pager *pager,
		  const struct kv_btree_opts *o, struct kv_btree **out)
{
	struct kv_btree_opts dflt;
	struct kv_btree *t;
	struct kv_btree_meta m;
	uint64_t mpgno;
	size_t ent_max;
	int rc;

	if (ops->page_usable < KV_BTREE_PAGE_USABLE_MIN || ops->page_usable > UINT16_MAX)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	if (o == NULL) {
		kv_btree_opts_default(&dflt);
		o = &dflt;
	}
	t->ops = ops;
	t->pager = pager;
	t->count_keys = o->count_keys;
	t->u = ops->page_usable;
	t->cap = t->u - KV_NODE_HDR_SIZE;
	t->underfull = t->cap / 4;
	t->ovf_chunk = t->u - KV_OVF_HDR_SIZE;
	/* The smallest cell takes 17 bytes with its slot: a 1-byte key, no value. */
	ent_max = 2 * (t->cap / (KV_SLOT_SIZE + KV_LEAF_CELL_HDR + 1) + 1) + 1;
	t->ent = calloc(ent_max, sizeof(*t->ent));
	t->copy[0] = malloc(t->u);
	t->copy[1] = malloc(t->u);
	t->compact = malloc(t->u);
	t->cellbuf = malloc(t->u);
	t->mid = malloc(KV_INTERNAL_CELL_MAX);
	t->sep = malloc(KV_INTERNAL_CELL_MAX);
	if (!t->ent || !t->copy[0] || !t->copy[1] || !t->compact || !t->cellbuf ||
	    !t->mid || !t->sep) {
		rc = -ENOMEM;
		goto err_free;
	}
	rc = meta_read(t, &mpgno, &m);
	if (rc != 0)
		goto err_free;
	*out = t;
	return 0;

err_free:
	kv_btree_close(t);
	return rc;
}

void kv_btree_close(struct kv_btree *t)
{
	if (t == NULL)
		return;
	free(t->ent);
	free(t->copy[0]);
	free(t->copy[1]);
	free(t->compact);
	free(t->cellbuf);
	free(t->mid);
	free(t->sep);
	free(t);
}

/* Invariant checker. */

struct check_ctx {
	struct kv_btree *t;		  /* Tree under check. */
	struct kv_btree_stats *st;	  /* Where findings go. */
	uint64_t *seen;			  /* Every page visited, for the twice check. */
	size_t seen_n, seen_cap;	  /* Entries used and allocated in seen. */
	uint64_t prev_leaf;		  /* Last leaf visited, 0 before the first. */
	uint64_t prev_link;		  /* Its link. */
	uint16_t last_klen;		  /* Length of last_key; 0 before the first. */
	uint8_t last_key[KV_BTREE_KEY_MAX]; /* Last key of the last leaf visited. */
};

static int check_fail(struct check_ctx *x, uint64_t pgno, const char *what)
{
	if (x->st->why[0] == '\0')
		snprintf(x->st->why, sizeof(x->st->why), "page %llu: %s",
			 (unsigned long long)pgno, what);
	return URT_E_CORRUPT;
}

static int check_seen(struct check_ctx *x, uint64_t pgno)
{
	if (x->seen_n == x->seen_cap) {
		size_t cap = x->seen_cap ? 2 * x->seen_cap : 256;
		uint64_t *p = realloc(x->seen, cap * sizeof(*p));

		if (p == NULL)
			return -ENOMEM;
		x->seen = p;
		x->seen_cap = cap;
	}
	x->seen[x->seen_n++] = pgno;
	return 0;
}

static int check_chain(struct check_ctx *x, uint64_t leaf, uint64_t head, size_t vlen)
{
	struct kv_btree *t = x->t;
	uint64_t pgno = head;
	size_t done = 0;

	while (pgno != 0) {
		const struct kv_ovf_hdr *h;
		uint64_t next;
		bool ok;
		void *pg;
		int rc = check_seen(x, pgno);

		if (rc != 0)
			return rc;
		rc = page_get(t, pgno, false, &pg);
		if (rc != 0)
			return rc;
		h = pg;
		/* Every page but the last is full; the last one ends the value. */
		ok = h->type == KV_PAGE_OVERFLOW && h->len > 0 && done + h->len <= vlen &&
		     (h->next == 0 ? done + h->len == vlen : h->len == t->ovf_chunk);
		next = h->next;
		page_put(t, pgno);
		if (!ok)
			return check_fail(x, leaf, "overflow chain does not match its value length");
		x->st->overflow_pages++;
		done += h->len;
		pgno = next;
	}
	if (done != vlen)
		return check_fail(x, leaf, "overflow chain shorter than its value");
	return 0;
}

/*
 * Checks the subtree of pgno at level (1 = leaf), whose keys must lie in
 * [lo, hi); a NULL bound is open.
 */
static int check_node(struct check_ctx *x, uint64_t pgno, unsigned level, bool root,
		      const uint8_t *lo, size_t lolen, const uint8_t *hi, size_t hilen)
{
	struct kv_btree *t = x->t;
	const char *why;
	uint8_t *pg;
	unsigned n;
	void *live;
	int rc = check_seen(x, pgno);

	if (rc != 0)
		return rc;
	/* Work on a copy, so that no pin is held while visiting children. */
	pg = malloc(t->u);
	if (pg == NULL)
		return -ENOMEM;
	rc = page_get(t, pgno, false, &live);
	if (rc != 0)
		goto out_free;
	memcpy(pg, live, t->u);
	page_put(t, pgno);

	why = kv_node_check_layout(pg, t->u, t->compact);
	if (why) {
		rc = check_fail(x, pgno, why);
		goto out_free;
	}
	if (kv_node_is_leaf(pg) != (level == 1)) {
		rc = check_fail(x, pgno, "node type does not match its depth");
		goto out_free;
	}
	n = kv_node_count(pg);
	if (n == 0 && !(root && level == 1)) {
		rc = check_fail(x, pgno, "empty node");
		goto out_free;
	}
	if (kv_node_used(pg, t->u) > t->cap) {
		rc = check_fail(x, pgno, "node overfull");
		goto out_free;
	}
	x->st->node_bytes_used += kv_node_used(pg, t->u);
	for (unsigned i = 0; i < n; i++) {
		uint16_t klen, plen;
		const uint8_t *key = kv_node_key(pg, i, &klen);

		if (klen == 0 || klen > KV_BTREE_KEY_MAX) {
			rc = check_fail(x, pgno, "key length out of range");
			goto out_free;
		}
		if (i > 0) {
			const uint8_t *prev = kv_node_key(pg, i - 1, &plen);

			if (kv_key_cmp(prev, plen, key, klen) >= 0) {
				rc = check_fail(x, pgno, "keys not strictly increasing");
				goto out_free;
			}
		}
		if ((lo && kv_key_cmp(key, klen, lo, lolen) < 0) ||
		    (hi && kv_key_cmp(key, klen, hi, hilen) >= 0)) {
			rc = check_fail(x, pgno, "key outside the separators of its parent");
			goto out_free;
		}
	}

	if (level == 1) {
		x->st->leaf_pages++;
		if (x->prev_leaf != 0 && x->prev_link != pgno) {
			rc = check_fail(x, x->prev_leaf, "leaf chain skips a leaf");
			goto out_free;
		}
		for (unsigned i = 0; i < n; i++) {
			struct kv_leaf_cell lc;

			kv_leaf_cell_decode(kv_node_cell(pg, i), &lc);
			if (i == 0 && x->last_klen != 0 &&
			    kv_key_cmp(x->last_key, x->last_klen, lc.key, lc.klen) >= 0) {
				rc = check_fail(x, pgno, "leaf keys out of order across leaves");
				goto out_free;
			}
			if (lc.vlen > KV_BTREE_BIG_MAX ||
			    lc.overflow != value_overflows(t, lc.klen, lc.vlen) ||
			    ((kv_node_cell(pg, i)[2] & KV_CELL_EXPIRES) && lc.expire_at == 0)) {
				rc = check_fail(x, pgno, "value length or placement wrong");
				goto out_free;
			}
			if (lc.overflow) {
				rc = check_chain(x, pgno, lc.ovf, lc.vlen);
				if (rc != 0)
					goto out_free;
			}
			x->st->keys++;
			if (i == n - 1) {
				memcpy(x->last_key, lc.key, lc.klen);
				x->last_klen = lc.klen;
			}
		}
		x->prev_leaf = pgno;
		x->prev_link = kv_node_hdr(pg)->link;
		rc = 0;
		goto out_free;
	}

	x->st->internal_pages++;
	for (unsigned ci = 0; ci <= n; ci++) {
		const uint8_t *clo = lo, *chi = hi;
		uint16_t cll = (uint16_t)lolen, chl = (uint16_t)hilen;

		if (ci > 0)
			clo = kv_node_key(pg, ci - 1, &cll);
		if (ci < n)
			chi = kv_node_key(pg, ci, &chl);
		rc = check_node(x, kv_internal_child(pg, ci), level - 1, false, clo, cll,
				chi, chl);
		if (rc != 0)
			goto out_free;
	}
out_free:
	free(pg);
	return rc;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

int kv_btree_check(struct kv_btree *t, struct kv_btree_stats *st)
{
	struct kv_btree_stats local;
	struct check_ctx *x;
	struct kv_btree_meta m;
	uint64_t mpgno;
	int rc;

	if (st == NULL)
		st = &local;
	memset(st, 0, sizeof(*st));
	rc = meta_read(t, &mpgno, &m);
	if (rc == URT_E_CORRUPT)
		snprintf(st->why, sizeof(st->why), "meta page %llu is invalid",
			 (unsigned long long)mpgno);
	if (rc != 0 || mpgno == 0)
		return rc;
	x = calloc(1, sizeof(*x));
	if (x == NULL)
		return -ENOMEM;
	x->t = t;
	x->st = st;
	st->meta_pages = 1;
	st->height = m.height;
	rc = check_seen(x, mpgno);
	if (rc == 0)
		rc = check_node(x, m.root, m.height, true, NULL, 0, NULL, 0);
	if (rc == 0 && x->prev_link != 0)
		rc = check_fail(x, x->prev_leaf, "last leaf links to another page");
	if (rc == 0 && (m.flags & KV_BTREE_META_COUNTED) && st->keys != m.count)
		rc = check_fail(x, mpgno, "meta key count differs from the leaves");
	if (rc == 0) {
		qsort(x->seen, x->seen_n, sizeof(*x->seen), u64_cmp);
		for (size_t i = 1; i < x->seen_n; i++)
			if (x->seen[i] == x->seen[i - 1]) {
				rc = check_fail(x, x->seen[i], "page reached twice");
				break;
			}
	}
	free(x->seen);
	free(x);
	return rc;
}
