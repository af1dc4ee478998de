/*
 * The B+tree through the page-store pager (src/kv/pager_ps.c) against an
 * ordered model: random puts, deletes and NX/XX puts with keys up to 1 KiB
 * (so internal nodes hold few keys and the tree grows tall quickly) and
 * values up to 1 MiB (overflow chains), each change in a page-store
 * transaction of which some are aborted (the model must not see them).
 * It checks every invariant of the tree regularly, that splits and merges
 * happened at every level, that the free list loses no page, and that the
 * tree survives closing and reopening the page store.  The store runs
 * kv_pps_page_check on every page it reads, as urkv's does, so the tree
 * checks node headers per device read (nodes_checked); the check itself
 * is tested on damaged headers below.
 */
#include <stdint.h>

#include "kv/btree.h"
#include "kv/btree_node.h"
#include "kv/pager_ps.h"
#include "kv_fixture.h"
#include "urt/buf.h"
#include "urt/ps.h"

#define DEV_BYTES (256ull << 20)
#define BATCH_BYTES (4u << 20)		/* Holds a 1 MiB value and a check of the whole tree. */

struct tree_t {
	struct urt_dev *dev;
	struct urt_ps *ps;
	struct kv_pps pager;
	struct kv_btree *tree;
	struct kvx_model m;
	uint64_t rng;
	struct kvx_fail f;
	unsigned height_max;
	uint64_t aborted, committed, checks;
	struct kv_btree_counters cnt;
	struct kv_btree_stats st;
	uint64_t live_pages, tree_pages;
};

static uint32_t tx_pages(void)
{
	return (BATCH_BYTES - 8192u) / (4096u + 64u);
}

static int ps_open(struct tree_t *t, bool create)
{
	struct urt_ps_opts o;

	urt_ps_opts_default(&o);
	o.create = create;
	o.batch_bytes_max = BATCH_BYTES;
	o.log_bytes = 32u << 20;
	o.tx_pages_max = tx_pages();
	o.pool_pages = 8192;
	o.page_check = kv_pps_page_check;	/* As urkv opens it: node headers checked per read. */
	return urt_ps_open(t->dev, &o, &t->ps);
}

/* Begins a write transaction with the pager bound. */
static struct urt_tx *begin(struct tree_t *t)
{
	struct urt_tx *tx = NULL;
	int ret = urt_tx_begin(t->ps, &tx);

	if (ret == 0)
		ret = kv_pps_bind(&t->pager, tx);
	if (ret)
		kvx_failf(&t->f, "begin: %d (%s)", ret, urt_strerror(ret));
	return ret ? NULL : tx;
}

static void end(struct tree_t *t, struct urt_tx *tx, bool commit)
{
	t->pager.meta->tx_seq++;
	kv_pps_unbind(&t->pager);
	if (commit) {
		int ret = urt_tx_commit(tx);

		if (ret)
			kvx_failf(&t->f, "commit: %d (%s)", ret, urt_strerror(ret));
		t->committed++;
	} else {
		urt_tx_abort(tx);
		kv_btree_invalidate_cursors(t->tree);
		t->aborted++;
	}
}

/* Full check: invariants, then every key and value against the model by a cursor. */
/* Closes what a test body opened: the tree, its pager and the store (each if open). */
static void tree_close(struct tree_t *t)
{
	if (t->tree)
		kv_btree_close(t->tree);
	kv_pps_exit(&t->pager);
	if (t->ps)
		urt_ps_close(t->ps);
}

static void check(struct tree_t *t)
{
	struct urt_tx *tx = begin(t);
	struct kv_btree_cursor c;
	uint8_t *buf = malloc(URT_KV_UPDATE_VALUE_MAX);
	size_t at = 0;
	int ret;

	if (!tx)
		goto out;
	t->checks++;
	ret = kv_btree_check(t->tree, &t->st);
	if (ret)
		kvx_failf(&t->f, "check: %d: %s", ret, t->st.why);
	if (getenv("KV_DEBUG"))
		fprintf(stderr, "check: model %zu keys height %u leaves %llu internal %llu ovf %llu committed %llu\n", t->m.n, t->st.height, (unsigned long long)t->st.leaf_pages, (unsigned long long)t->st.internal_pages, (unsigned long long)t->st.overflow_pages, (unsigned long long)t->committed);
	if (t->st.height > t->height_max)
		t->height_max = t->st.height;
	kv_btree_cursor_init(&c, t->tree);
	ret = kv_btree_cursor_seek(&c, NULL, 0);
	while (ret == 0 && kv_btree_cursor_valid(&c)) {
		size_t klen, vlen = 0;
		const void *k = kv_btree_cursor_key(&c, &klen);

		if (at >= t->m.n || kvx_cmp(k, klen, t->m.e[at].key, t->m.e[at].klen)) {
			kvx_failf(&t->f, "cursor key %zu differs from the model", at);
			break;
		}
		ret = kv_btree_cursor_value(&c, buf, URT_KV_UPDATE_VALUE_MAX, &vlen);
		if (ret || vlen != t->m.e[at].vlen || memcmp(buf, t->m.e[at].val, vlen)) {
			kvx_failf(&t->f, "value %zu differs: %d, %zu vs %zu bytes", at, ret, vlen,
				  t->m.e[at].vlen);
			break;
		}
		at++;
		ret = kv_btree_cursor_next(&c);
	}
	if (ret)
		kvx_failf(&t->f, "cursor: %d", ret);
	if (at != t->m.n)
		kvx_failf(&t->f, "cursor saw %zu keys, model %zu", at, t->m.n);
	/* Every page is the tree's, on the free list, or page 0: none lost. */
	t->live_pages = t->pager.meta->hwm - 1 - t->pager.meta->free_pages;
	t->tree_pages = t->st.meta_pages + t->st.internal_pages + t->st.leaf_pages +
			t->st.overflow_pages;
	if (t->live_pages != t->tree_pages)
		kvx_failf(&t->f, "%llu pages in use but the tree has %llu",
			  (unsigned long long)t->live_pages, (unsigned long long)t->tree_pages);
	end(t, tx, false);
out:
	free(buf);
}

static size_t make_key(struct tree_t *t, uint64_t k, uint8_t *key)
{
	/*
	 * Four keys in five share a 900-byte prefix before their digits, so
	 * separators are long and internal nodes hold a handful of children:
	 * the tree grows tall with a few thousand keys.  The others are short
	 * or up to 1 KiB.  A key always has one spelling.
	 */
	size_t len;

	(void)t;
	if (k % 5) {
		memset(key, 'p', 900);
		snprintf((char *)key + 900, 16, "%08u", (unsigned)(k % 100000000));
		return 908;
	}
	len = (k * 2654435761u) % 17 == 0 ? URT_KV_KEY_MAX : 9 + (k * 40503u) % 300;
	snprintf((char *)key, 16, "q%08u", (unsigned)(k % 100000000));
	memset(key + 9, 'a' + (int)(k % 26), len - 9);
	return len;
}

static size_t value_len(struct tree_t *t)
{
	uint64_t r = kvx_rnd(&t->rng) % 1000;

	if (r == 0 && kvx_rnd(&t->rng) % 2)
		return URT_KV_UPDATE_VALUE_MAX;
	if (r < 10)
		return kvx_rnd(&t->rng) % 100000;
	if (r < 200)
		return kvx_rnd(&t->rng) % 3000;
	return kvx_rnd(&t->rng) % 100;
}

/* One random change in its own transaction, aborted one time in eight. */
static void step(struct tree_t *t, uint64_t keys, int insert_pct, uint8_t *key, uint8_t *val,
		 uint64_t i)
{
	uint64_t k = kvx_rnd(&t->rng) % keys;
	size_t klen = make_key(t, k, key);
	const struct kvx_ent *me = kvx_model_get(&t->m, key, klen);
	bool commit = kvx_rnd(&t->rng) % 8 != 0;
	uint64_t op = kvx_rnd(&t->rng) % 100;
	struct urt_tx *tx = begin(t);
	int ret;

	if (!tx)
		return;
	if (op < (uint64_t)insert_pct) {
		size_t vlen = value_len(t);
		unsigned flags = op % 10 == 0 ? KV_BTREE_NX : op % 10 == 1 ? KV_BTREE_XX : 0;
		int want = flags == KV_BTREE_NX && me ? -EEXIST
			 : flags == KV_BTREE_XX && !me ? -ENOENT
			 : me ? 0 : 1;

		kvx_fill(val, vlen, k, i);
		ret = kv_btree_put(t->tree, key, klen, val, vlen, flags);
		if (ret != want)
			kvx_failf(&t->f, "put %llu: %d, want %d", (unsigned long long)k, ret, want);
		if (ret >= 0 && commit)
			kvx_model_put(&t->m, key, klen, val, vlen);
	} else {
		ret = kv_btree_del(t->tree, key, klen);
		if (ret != (me ? 0 : -ENOENT))
			kvx_failf(&t->f, "del %llu: %d, model %d", (unsigned long long)k, ret,
				  me != NULL);
		if (ret == 0 && commit)
			kvx_model_del(&t->m, key, klen);
	}
	end(t, tx, commit);
}

/* Formats a store on t->dev and opens an empty tree in it through a writer pager; 0 or failed. */
static int tree_create(struct tree_t *t)
{
	struct urt_tx *tx = NULL;
	int ret;

	ret = ps_open(t, true);
	if (ret) {
		kvx_failf(&t->f, "ps open: %d %s", ret, urt_last_error());
		return ret;
	}
	ret = urt_tx_begin(t->ps, &tx);
	if (ret == 0)
		ret = kv_pps_format(tx, urt_ps_page_data_bytes(t->ps), 0, 1, 42);
	if (ret == 0)
		ret = urt_tx_commit(tx);
	if (ret == 0)
		ret = kv_pps_init(&t->pager, t->ps, true, tx_pages(), 3 * tx_pages());
	tx = ret ? NULL : begin(t);
	if (tx) {
		ret = kv_btree_open(&t->pager.ops, (struct kv_pager *)&t->pager, NULL, &t->tree);
		end(t, tx, false);
	}
	if (ret || !t->tree) {
		kvx_failf(&t->f, "setup: %d", ret);
		return ret ? ret : -EIO;
	}
	return 0;
}

static void tree_body(void *p)
{
	struct tree_t *t = p;
	uint8_t *key = malloc(URT_KV_KEY_MAX), *val = malloc(URT_KV_UPDATE_VALUE_MAX);
	struct urt_tx *tx = NULL;
	int ret;

	if (tree_create(t))
		goto out;
	if (!t->pager.ops.nodes_checked) {
		kvx_failf(&t->f, "the pager does not see the store's node check");
		goto out;
	}
	/* Grow: mostly inserts over 4000 keys, long keys make the tree tall. */
	for (uint64_t i = 0; i < 10000 && !t->f.failed; i++) {
		step(t, 4000, 85, key, val, i);
		if (i % 1000 == 999)
			check(t);
	}
	check(t);
	/* Shrink: mostly deletes, merges and root drops at every level. */
	for (uint64_t i = 0; i < 20000 && !t->f.failed && t->m.n > 0; i++) {
		step(t, 4000, 10, key, val, 10000 + i);
		if (i % 1000 == 999)
			check(t);
	}
	/* Delete what is left, then only the meta page and an empty root leaf remain. */
	while (t->m.n && !t->f.failed) {
		tx = begin(t);
		if (!tx)
			break;
		ret = kv_btree_del(t->tree, t->m.e[0].key, t->m.e[0].klen);
		if (ret)
			kvx_failf(&t->f, "final del: %d", ret);
		kvx_model_del(&t->m, t->m.e[0].key, t->m.e[0].klen);
		end(t, tx, true);
	}
	check(t);
	kv_btree_get_counters(t->tree, &t->cnt);

	/* Reopen the page store: the (now small) tree and the free list come back. */
	{
		uint64_t live = t->live_pages;

		for (int i = 0; i < 50; i++) {
			tx = begin(t);
			if (!tx)
				break;
			make_key(t, (uint64_t)i, key);
			kvx_fill(val, 5000, (uint64_t)i, 1);
			ret = kv_btree_put(t->tree, key, 20, val, 5000, 0);
			if (ret < 0)
				kvx_failf(&t->f, "put before reopen: %d", ret);
			kvx_model_put(&t->m, key, 20, val, 5000);
			end(t, tx, true);
		}
		kv_btree_close(t->tree);
		t->tree = NULL;
		ret = urt_ps_close(t->ps);
		if (ret == 0)
			ret = ps_open(t, false);
		if (ret) {
			kvx_failf(&t->f, "reopen: %d", ret);
			goto out;
		}
		kv_pps_exit(&t->pager);
		kv_pps_init(&t->pager, t->ps, true, tx_pages(), 3 * tx_pages());
		tx = begin(t);
		if (!tx)
			goto out;
		ret = kv_btree_open(&t->pager.ops, (struct kv_pager *)&t->pager, NULL, &t->tree);
		end(t, tx, false);
		if (ret) {
			kvx_failf(&t->f, "tree reopen: %d", ret);
			goto out;
		}
		check(t);
		if (live > 2)
			kvx_failf(&t->f, "an empty tree used %llu pages", (unsigned long long)live);
	}
out:
	tree_close(t);
	free(key);
	free(val);
}

/*
 * Runs body(arg) in a fiber of a one-core runtime whose kv options size
 * the store as the tests here expect, on t's device (a sim device of
 * dev_bytes, seed): t->dev is opened before and closed after, and the
 * body's failures (t->f) are asserted.
 */
static void tree_run(struct tree_t *t, uint64_t dev_bytes, uint64_t seed, void (*body)(void *),
		     void *arg)
{
	struct urt_kv_opts ko;
	struct urt_rt *rt;

	urt_kv_opts_default(&ko);
	ko.shards = 1;
	ko.cache_bytes = 8192ull * 4096;
	ko.batch_bytes_max = BATCH_BYTES;
	rt = kvx_start(1, &ko);
	t->dev = kvx_sim(dev_bytes, seed);
	kvx_run(rt, 0, body, arg);
	urt_rt_stop(rt);
	urt_dev_close(t->dev);
	kvx_assert_ok(&t->f);
}

Test(kv_tree, random_ops_against_the_model, .timeout = 600)
{
	struct tree_t *t = calloc(1, sizeof(*t));

	t->rng = 0x9e3779b97f4a7c15ull;
	tree_run(t, DEV_BYTES, 7, tree_body, t);
	cr_expect_geq(t->height_max, 4, "the tree reached height %u", t->height_max);
	for (unsigned l = 0; l + 1 < t->height_max && l < KV_BTREE_LEVELS; l++) {
		cr_expect_gt(t->cnt.splits[l], 0, "no split at level %u", l + 1);
		cr_expect_gt(t->cnt.merges[l] + t->cnt.redistributions[l], 0,
			     "no merge or redistribution at level %u", l + 1);
	}
	cr_expect_gt(t->cnt.merges[0], 0, "leaves merged");
	cr_expect_gt(t->cnt.merges[1], 0, "internal nodes merged");
	cr_expect_gt(t->cnt.root_grows, 2);
	cr_expect_gt(t->cnt.root_shrinks, 2);
	cr_expect_gt(t->cnt.overflow_pages_freed, 0);
	cr_expect_gt(t->aborted, 100, "aborted transactions: %llu", (unsigned long long)t->aborted);
	cr_expect_gt(t->checks, 10);
	kvx_model_free(&t->m);
	free(t);
}

/* The page store's read check accepts good nodes and other page types, refuses damaged node headers. */
Test(kv_tree, page_check_refuses_damaged_node_headers)
{
	static uint64_t page[4064 / 8];
	const size_t u = sizeof(page);
	struct kv_node_hdr *h = kv_node_hdr(page);

	kv_node_init(page, u, KV_PAGE_LEAF, 0);
	cr_expect_null(kv_pps_page_check(page, u, NULL));
	kv_node_init(page, u, KV_PAGE_INTERNAL, 9);
	cr_expect_null(kv_pps_page_check(page, u, NULL));
	h->cell_start = (uint16_t)(u + 1);
	cr_expect_str_eq(kv_pps_page_check(page, u, NULL), "slot array overlaps the cell area");
	kv_node_init(page, u, KV_PAGE_LEAF, 0);
	h->count = 600;	/* 600 slots of 8 bytes pass the cell area. */
	cr_expect_str_eq(kv_pps_page_check(page, u, NULL), "slot array overlaps the cell area");
	kv_node_init(page, u, KV_PAGE_LEAF, 0);
	h->cell_start = 4000;
	h->frag = 100;
	cr_expect_str_eq(kv_pps_page_check(page, u, NULL), "fragment count exceeds the cell area");
	/* Overflow, meta and free pages are checked where they are used, not here. */
	h->type = KV_PAGE_OVERFLOW;
	cr_expect_null(kv_pps_page_check(page, u, NULL));
	memset(page, 0, u);
	cr_expect_null(kv_pps_page_check(page, u, NULL));
}

/*
 * The read check refuses damage inside a node with a sound header, which
 * it let through before (fuzz_btree_node): the tree then decoded the cell
 * and read past the page.  Each damage of a good leaf gets its reason.
 */
Test(kv_tree, page_check_refuses_damaged_cells)
{
	static uint64_t page[4064 / 8], tmp[4064 / 8];
	static const char *const why[] = {
		"slot points outside the cell area",
		"cell runs past the end of the page",
		"unknown leaf cell flags",
		"value length out of range",
		"slot key length differs from its cell",
		"key length out of range",
		"key shorter than the node prefix",
		"key outside the node prefix",
		"slot head differs from its key",
		"cell bytes and fragments do not add up to the cell area",
	};
	const size_t u = sizeof(page);
	uint8_t cell[64];

	for (unsigned kind = 0; kind < sizeof(why) / sizeof(why[0]); kind++) {
		struct kv_node_hdr *h = kv_node_hdr(page);
		struct kv_slot *slot = kv_node_slots(page);
		uint8_t *c;
		uint32_t v;

		/* Three keys "user:1".."user:3" (prefix "user:"), the second expiring. */
		kv_node_init(page, u, KV_PAGE_LEAF, 0);
		for (unsigned i = 0; i < 3; i++) {
			char key[8];
			size_t n;

			snprintf(key, sizeof(key), "user:%u", i + 1);
			n = kv_leaf_cell_encode_x(cell, key, 6, "value", 5, false, 0,
						  i == 1 ? 1700000000000ull : 0);
			cr_assert(kv_node_insert(page, u, i, cell, n, tmp));
		}
		cr_assert_null(kv_pps_page_check(page, u, NULL));
		cr_assert_eq(h->prefix, 5);
		c = (uint8_t *)kv_node_cell(page, 1);
		switch (kind) {
		case 0: slot[1].off = (uint16_t)(u - 4); break;
		case 1: v = 60000; memcpy(c + 4, &v, sizeof(v)); break;	/* expire_at far past the page */
		case 2: c[2] |= 0x80; break;
		case 3: c[2] |= KV_CELL_OVERFLOW; v = KV_BTREE_BIG_MAX + 1; memcpy(c + 4, &v, 4); break;
		case 4: slot[1].klen = 7; break;
		case 5: slot[1].klen = 0; kv_st16(c, 0); break;
		case 6: slot[1].klen = 4; kv_st16(c, 4); break;
		case 7: c[KV_LEAF_CELL_HDR] = 'U'; break;
		case 8: slot[1].head ^= 1; break;
		case 9: h->frag = 3; break;
		}
		cr_expect_str_eq(kv_pps_page_check(page, u, NULL), why[kind], "damage %u", kind);
		cr_expect_str_eq(kv_node_check_layout(page, u, tmp), why[kind], "damage %u", kind);
	}
}

/*
 * The writer pager's memo (pager_ps.c): a transaction that reads the same
 * pages again (every put of a batch walks the tree meta page, the root and
 * the inner nodes) takes them from the memo, not from the page store.
 * The results are the same either way, so only the counters show a memo
 * that stopped answering: memo_hits (answered) and memo_misses (sent to
 * the store).  It must not answer across transactions (their pins are
 * gone), nor give the read pointer of a leaf that write_at has since moved
 * to its private copy.
 */
#define MEMO_KEYS 300		/* 6-byte keys, 100-byte values: a tree of two levels. */
#define MEMO_PUTS 64		/* Puts into the first leaves, in one transaction. */
#define MEMO_VLEN 100

struct memo_t {
	struct tree_t t;	/* Store, pager and tree. */
	unsigned height;	/* Levels of the tree after the load. */
	uint64_t same_hits, same_misses, same_overwrites;/* MEMO_PUTS same-size puts (write_at). */
	uint64_t grow_hits, grow_misses;	/* MEMO_PUTS puts that grow their cell (make_writable). */
	uint64_t first_hits, first_misses;	/* One get, first operation of a transaction. */
	uint64_t again_hits, again_misses;	/* The same get again in that transaction. */
	uint64_t after_hits, after_misses;	/* The get after a write_at of its leaf. */
	bool after_ok;		/* That get returned the value just written. */
	uint64_t hits, misses;	/* The pager's counters at the end. */
};

static size_t memo_key(unsigned i, char *key)
{
	return (size_t)snprintf(key, 16, "m%05u", i);
}

/* The pager's counters since *h, *m; updates them. */
static void memo_delta(struct tree_t *t, uint64_t *h, uint64_t *m, uint64_t *dh, uint64_t *dm)
{
	*dh = t->pager.memo_hits - *h;
	*dm = t->pager.memo_misses - *m;
	*h = t->pager.memo_hits;
	*m = t->pager.memo_misses;
}

/*
 * Loads MEMO_KEYS keys, memo_key(stride * i) with MEMO_VLEN-byte values,
 * in one transaction, then checks the tree in another; returns its height
 * (t->st), 0 when a transaction could not begin (recorded in t->f).
 */
static unsigned memo_load(struct tree_t *t, unsigned stride)
{
	uint8_t val[MEMO_VLEN];
	struct urt_tx *tx;
	char key[16];
	size_t klen;
	int ret;

	if (!(tx = begin(t)))
		return 0;
	for (unsigned i = 0; i < MEMO_KEYS; i++) {
		klen = memo_key(stride * i, key);
		kvx_fill(val, MEMO_VLEN, i, 0);
		if ((ret = kv_btree_put(t->tree, key, klen, val, MEMO_VLEN, 0)) != 1)
			kvx_failf(&t->f, "load put %u: %d", i, ret);
	}
	end(t, tx, true);
	if (!(tx = begin(t)))
		return 0;
	if ((ret = kv_btree_check(t->tree, &t->st)) != 0)
		kvx_failf(&t->f, "check: %d: %s", ret, t->st.why);
	end(t, tx, false);
	return t->st.height;
}

static void memo_body(void *p)
{
	struct memo_t *mt = p;
	struct tree_t *t = &mt->t;
	uint8_t val[2 * MEMO_VLEN], got[2 * MEMO_VLEN];
	struct kv_btree_counters c0, c1;
	uint64_t h = 0, m = 0, dh, dm;
	struct urt_tx *tx;
	char key[16];
	size_t klen, vlen = 0;
	int ret;

	if (tree_create(t))
		goto out;
	/* Load, in one transaction, and note the height. */
	if (!(mt->height = memo_load(t, 1)))
		goto out;

	/* Same-size puts: each rewrites its cell by write_at, which empties the leaf's memo entry. */
	if (!(tx = begin(t)))
		goto out;
	kv_btree_get_counters(t->tree, &c0);
	memo_delta(t, &h, &m, &dh, &dm);
	for (unsigned i = 0; i < MEMO_PUTS; i++) {
		klen = memo_key(i, key);
		kvx_fill(val, MEMO_VLEN, i, 1);
		if ((ret = kv_btree_put(t->tree, key, klen, val, MEMO_VLEN, 0)) != 0)
			kvx_failf(&t->f, "same-size put %u: %d", i, ret);
	}
	memo_delta(t, &h, &m, &mt->same_hits, &mt->same_misses);
	kv_btree_get_counters(t->tree, &c1);
	mt->same_overwrites = c1.overwrites - c0.overwrites;
	end(t, tx, true);

	/* Growing puts: the leaf is made writable, and the memo keeps its copy. */
	if (!(tx = begin(t)))
		goto out;
	memo_delta(t, &h, &m, &dh, &dm);
	for (unsigned i = 0; i < MEMO_PUTS; i++) {
		klen = memo_key(i, key);
		kvx_fill(val, MEMO_VLEN + 8, i, 2);
		if ((ret = kv_btree_put(t->tree, key, klen, val, MEMO_VLEN + 8, 0)) != 0)
			kvx_failf(&t->f, "growing put %u: %d", i, ret);
	}
	memo_delta(t, &h, &m, &mt->grow_hits, &mt->grow_misses);
	end(t, tx, true);

	/* A fresh transaction: nothing of the last one may answer. */
	if (!(tx = begin(t)))
		goto out;
	klen = memo_key(200, key);
	memo_delta(t, &h, &m, &dh, &dm);
	ret = kv_btree_get(t->tree, key, klen, got, sizeof(got), &vlen);
	memo_delta(t, &h, &m, &mt->first_hits, &mt->first_misses);
	kvx_fill(val, MEMO_VLEN, 200, 0);
	if (ret != 0 || vlen != MEMO_VLEN || memcmp(got, val, vlen) != 0)
		kvx_failf(&t->f, "first get: %d, %zu bytes", ret, vlen);
	ret = kv_btree_get(t->tree, key, klen, got, sizeof(got), &vlen);
	memo_delta(t, &h, &m, &mt->again_hits, &mt->again_misses);
	if (ret != 0 || vlen != MEMO_VLEN || memcmp(got, val, vlen) != 0)
		kvx_failf(&t->f, "second get: %d, %zu bytes", ret, vlen);
	/*
	 * The leaf is memoised as read (the committed frame).  A same-size
	 * put moves it to the transaction's copy (write_at); the get after it
	 * must read the copy, not the frame the memo held.
	 */
	kvx_fill(val, MEMO_VLEN, 200, 3);
	if ((ret = kv_btree_put(t->tree, key, klen, val, MEMO_VLEN, 0)) != 0)
		kvx_failf(&t->f, "put between gets: %d", ret);
	memo_delta(t, &h, &m, &dh, &dm);
	ret = kv_btree_get(t->tree, key, klen, got, sizeof(got), &vlen);
	memo_delta(t, &h, &m, &mt->after_hits, &mt->after_misses);
	mt->after_ok = ret == 0 && vlen == MEMO_VLEN && memcmp(got, val, vlen) == 0;
	end(t, tx, false);
	mt->hits = t->pager.memo_hits;
	mt->misses = t->pager.memo_misses;
out:
	tree_close(t);
}

Test(kv_tree, pager_memo_answers_repeated_reads_of_one_transaction_only, .timeout = 60)
{
	struct memo_t *mt = calloc(1, sizeof(*mt));
	uint64_t walk;

	tree_run(&mt->t, 64ull << 20, 11, memo_body, mt);
	cr_log_info("height %u; same-size puts: %llu hits %llu misses; growing: %llu hits %llu misses; "
		    "get: first %llu/%llu, again %llu/%llu, after write_at %llu/%llu; in all %llu/%llu",
		    mt->height,
		    (unsigned long long)mt->same_hits, (unsigned long long)mt->same_misses,
		    (unsigned long long)mt->grow_hits, (unsigned long long)mt->grow_misses,
		    (unsigned long long)mt->first_hits, (unsigned long long)mt->first_misses,
		    (unsigned long long)mt->again_hits, (unsigned long long)mt->again_misses,
		    (unsigned long long)mt->after_hits, (unsigned long long)mt->after_misses,
		    (unsigned long long)mt->hits, (unsigned long long)mt->misses);
	cr_assert_geq(mt->height, 2, "the load made a tree of %u levels", mt->height);
	/* A new transaction's first walk: every page from the store, none from the last one's memo. */
	cr_expect_eq(mt->first_hits, 0, "%llu pages of the last transaction answered a new one",
		     (unsigned long long)mt->first_hits);
	walk = mt->first_misses;
	cr_assert_geq(walk, mt->height, "a walk read %llu pages of a %u-level tree", (unsigned long long)walk,
		      mt->height);
	/* The same walk again: every page from the memo. */
	cr_expect_eq(mt->again_hits, walk);
	cr_expect_eq(mt->again_misses, 0);
	/* After write_at the leaf comes from the store (its copy), the pages above it from the memo. */
	cr_expect(mt->after_ok, "a get after write_at in the same transaction read the old value");
	cr_expect_eq(mt->after_misses, 1, "%llu memo misses for the get after write_at",
		     (unsigned long long)mt->after_misses);
	cr_expect_eq(mt->after_hits, walk - 1);
	/* Same size: write_at each time, so each leaf read goes to the store, the rest to the memo. */
	cr_expect_eq(mt->same_overwrites, MEMO_PUTS, "%llu of %d puts rewrote in place",
		     (unsigned long long)mt->same_overwrites, MEMO_PUTS);
	cr_expect_geq(mt->same_hits, (MEMO_PUTS - 1) * (walk - 1),
		      "%llu memo hits for %d puts walking %llu pages above their leaf",
		      (unsigned long long)mt->same_hits, MEMO_PUTS, (unsigned long long)walk - 1);
	cr_expect_leq(mt->same_misses, MEMO_PUTS + walk + 4, "%llu memo misses for %d puts",
		      (unsigned long long)mt->same_misses, MEMO_PUTS);
	/* Growing: the memo holds the leaf's writable copy too; a few leaves split. */
	cr_expect_geq(mt->grow_hits, (MEMO_PUTS - 1) * walk - 8,
		      "%llu memo hits for %d puts walking %llu pages each", (unsigned long long)mt->grow_hits,
		      MEMO_PUTS, (unsigned long long)walk);
	cr_expect_leq(mt->grow_misses, walk + 8, "%llu memo misses for %d growing puts",
		      (unsigned long long)mt->grow_misses, MEMO_PUTS);
	free(mt);
}

/*
 * The read prefetch hint (kv_btree_prefetch_leaf, used by a batch's reads
 * in kv_shard_read_many): a wrong leaf would only cost time, so nothing
 * else would notice one.  After a load, every stored key's hint must be
 * the leaf that holds the key, and a key between stored ones must get the
 * leaf its insert would go to (not found there, but inside its range);
 * a page outside the store has nothing to peek.
 */
struct prefetch_t {
	struct tree_t t;
	unsigned height;
	uint64_t hint[2 * MEMO_KEYS];	/* kv_btree_prefetch_leaf's answer per key. */
	unsigned hinted, right, leaves_seen;
	uint64_t hinted_gets;	/* Lookups kv_btree_get_hinted answered from the hint. */
	bool outside_null;
};

static void prefetch_body(void *p)
{
	struct prefetch_t *pt = p;
	struct tree_t *t = &pt->t;
	uint8_t val[MEMO_VLEN], got[MEMO_VLEN];
	struct kv_btree_counters c0, c1;
	uint64_t inner = 0;
	struct urt_tx *tx;
	char key[16];
	size_t klen, vlen;
	int ret;

	if (tree_create(t))
		goto out;
	/* Even keys stored, odd ones between them. */
	if (!(pt->height = memo_load(t, 2)) || !(tx = begin(t)))
		goto out;
	/* A lookup first, as a batch's first read does: the tree knows its root. */
	klen = memo_key(0, key);
	if ((ret = kv_btree_get(t->tree, key, klen, got, sizeof(got), &vlen)) != 0)
		kvx_failf(&t->f, "get: %d", ret);
	for (unsigned i = 0; i < 2 * MEMO_KEYS; i++) {
		klen = memo_key(i, key);
		pt->hint[i] = kv_btree_prefetch_leaf(t->tree, key, klen);
		if (pt->hint[i] == 0)
			continue;
		pt->hinted++;
		pt->leaves_seen += i == 0 || pt->hint[i] != pt->hint[i - 1];
		kv_btree_prefetch_node(t->tree, pt->hint[i], 0);
		kv_btree_prefetch_node(t->tree, pt->hint[i], 1);
		kv_btree_prefetch_cell(t->tree, pt->hint[i], key, klen);
	}
	for (unsigned i = 0; i < 2 * MEMO_KEYS; i += 2) {
		/* A stored key: found in the hinted leaf. */
		const void *pg = pt->hint[i] ? urt_page_peek(t->ps, pt->hint[i]) : NULL;
		bool found = false;

		klen = memo_key(i, key);
		if (!pg || kv_node_hdr_const(pg)->type != KV_PAGE_LEAF) {
			kvx_failf(&t->f, "key %u: the hint %llu is not a leaf in memory", i,
				  (unsigned long long)pt->hint[i]);
			continue;
		}
		(void)kv_node_lower_bound(pg, key, klen, &found);
		if (!found)
			kvx_failf(&t->f, "key %u: not in the hinted leaf %llu", i,
				  (unsigned long long)pt->hint[i]);
		else
			pt->right++;
	}
	for (unsigned i = 1; i < 2 * MEMO_KEYS; i += 2) {
		/* A key between two stored ones: the leaf of one of them. */
		if (pt->hint[i] != 0 && (pt->hint[i] == pt->hint[i - 1] ||
					 (i + 1 < 2 * MEMO_KEYS && pt->hint[i] == pt->hint[i + 1])))
			pt->right++;
		else
			kvx_failf(&t->f, "key %u: hint %llu, its neighbours' %llu and %llu", i,
				  (unsigned long long)pt->hint[i], (unsigned long long)pt->hint[i - 1],
				  (unsigned long long)(i + 1 < 2 * MEMO_KEYS ? pt->hint[i + 1] : 0));
	}
	/*
	 * Hinted lookups (kv_btree_get_hinted) give what plain ones give, with
	 * the right hint, with the first key's leaf as a wrong hint for every
	 * key, and with a page that is not a leaf; only the right hints of
	 * stored keys skip the descent (hinted_gets).
	 */
	for (uint64_t pgno = 1; pgno < 1024 && inner == 0; pgno++) {
		const void *pg = urt_page_peek(t->ps, pgno);

		if (pg && kv_node_hdr_const(pg)->type == KV_PAGE_INTERNAL)
			inner = pgno;
	}
	if (inner == 0)
		kvx_failf(&t->f, "no internal node among the first 1024 pages");
	kv_btree_get_counters(t->tree, &c0);
	for (unsigned i = 0; i < 2 * MEMO_KEYS; i++) {
		uint64_t hints[3] = { pt->hint[i], pt->hint[0], inner };
		size_t vlen0 = 0;
		int ret0;

		klen = memo_key(i, key);
		ret0 = kv_btree_get(t->tree, key, klen, val, sizeof(val), &vlen0);
		for (unsigned h = 0; h < 3; h++) {
			uint64_t chain = 1;

			vlen = 0;
			memset(got, 0, sizeof(got));
			ret = kv_btree_get_hinted(t->tree, hints[h], key, klen, got, sizeof(got), &vlen,
						  NULL, &chain);
			if (ret != ret0 || vlen != vlen0 || (ret == 0 && memcmp(got, val, vlen) != 0) ||
			    (ret == 0 && chain != 0))
				kvx_failf(&t->f, "key %u, hint %u (%llu): %d, %zu bytes; plain get %d, %zu",
					  i, h, (unsigned long long)hints[h], ret, vlen, ret0, vlen0);
		}
	}
	kv_btree_get_counters(t->tree, &c1);
	pt->hinted_gets = c1.hinted_gets - c0.hinted_gets;
	pt->outside_null = urt_page_peek(t->ps, urt_ps_page_count(t->ps)) == NULL;
	end(t, tx, false);
out:
	tree_close(t);
}

Test(kv_tree, read_prefetch_hint_names_the_leaf_of_each_key, .timeout = 60)
{
	struct prefetch_t *pt = calloc(1, sizeof(*pt));

	tree_run(&pt->t, 64ull << 20, 12, prefetch_body, pt);
	cr_log_info("height %u: %u of %u keys hinted, %u leaves", pt->height, pt->hinted,
		    2 * MEMO_KEYS, pt->leaves_seen);
	cr_assert_geq(pt->height, 2, "the load made a tree of %u levels", pt->height);
	cr_expect_eq(pt->hinted, 2 * MEMO_KEYS, "only %u of %u keys got a hint", pt->hinted, 2 * MEMO_KEYS);
	cr_expect_eq(pt->right, pt->hinted);
	cr_expect_geq(pt->leaves_seen, 2, "every hint named the same leaf");
	cr_expect(pt->outside_null, "urt_page_peek answered a page outside the store");
	/* Right hints of the stored keys, plus the wrong hint pt->hint[0] where it is right. */
	cr_expect_geq(pt->hinted_gets, MEMO_KEYS, "%llu hinted lookups skipped the descent",
		      (unsigned long long)pt->hinted_gets);
	cr_expect_lt(pt->hinted_gets, 2 * MEMO_KEYS, "%llu hinted lookups: wrong hints answered too",
		     (unsigned long long)pt->hinted_gets);
	free(pt);
}
