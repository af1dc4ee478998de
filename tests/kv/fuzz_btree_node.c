/* SPDX-License-Identifier: MIT */
/*
 * fuzz_btree_node.c - libFuzzer target of the urkv B+tree's page decoding.
 *
 * An input is a page image and what to do with it.  The tree validates a
 * node in one of two ways (btree.c, "Trust"): with a pager that promises
 * nodes_checked (the page store, which runs kv_pps_page_check on every
 * page it reads from the device), a visit checks the type byte only; with
 * any other pager, every visit runs node_get's own check.  Either way, a
 * page that gets past the check is then searched and decoded, and a page
 * that does not is a URT_E_CORRUPT naming the page.  The rule under test:
 * no bytes of a page, however damaged, make the tree read or write out of
 * bounds, abort on an assertion, hang, or return an error that names no
 * page.
 *
 * Input layout:
 *   byte 0      mode bits: MODE_TREE, MODE_CHECKED, MODE_GEN, MODE_WRITE,
 *               MODE_UNCOUNTED (below);
 *   byte 1      which page of the tree the image replaces (MODE_TREE),
 *               and (bit 7) whether its link or child 0 is set to the
 *               page of the tree that byte 9 picks: a leaf chain that
 *               loops, a child at the wrong level;
 *   bytes 2..9  the probe keys: indexes into the tree's keys, and a byte
 *               that changes their last byte or length;
 *   the rest    the page image (zero-padded to U bytes), or with MODE_GEN
 *               a program that builds a well-formed node with the tree's
 *               own node functions and then patches bytes of it, so that
 *               damage lands on fields whose neighbours are consistent.
 *
 * Without MODE_TREE the page is driven directly through the node decoders
 * as a visit would after the check (MODE_CHECKED does not matter): the header checks, the search of the
 * probe keys and of the empty key (a seek to the first key), the search
 * by heads (prefetch), the child index and pointer of an internal node,
 * the decode of the found leaf cell and of every cell (a cursor, a count,
 * a value copy), and the tree checker's layout check.  With MODE_TREE the
 * image replaces one page (a leaf, the internal root, an overflow or the
 * meta page) of a small real tree on the in-memory pager, and GET, EXISTS,
 * get-or-ref, a SCAN with values, COUNT, the tree checker and, with
 * MODE_WRITE, puts and deletes run on it.
 *
 * FUZZ_BTREE_NODE_SEEDS=dir makes the target write a seed corpus into dir
 * when it starts: every page of the tree, in each mode, and a few programs.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "btree.h"
#include "btree_node.h"
#include "mem_pager.h"
#include "pager_ps.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Aborts with a message; libFuzzer reports the input that got here. */
#define CHECK(cond)                                                                \
	do {                                                                       \
		if (!(cond)) {                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,     \
				__LINE__, #cond);                                  \
			abort();                                                   \
		}                                                                  \
	} while (0)

/* A 4 KiB page of the page store less its 32-byte header, as urkv runs. */
#define U 4064u

#define MODE_TREE 0x01u	     /* Replace a page of a real tree, not decode the page alone. */
#define MODE_CHECKED 0x02u   /* The pager checks nodes on read (nodes_checked). */
#define MODE_GEN 0x04u	     /* The image is a program for gen_page(). */
#define MODE_WRITE 0x08u     /* Puts and deletes after the reads (MODE_TREE). */
#define MODE_UNCOUNTED 0x10u /* The tree keeps no key count (COUNT walks the leaves). */
#define INPUT_HDR 10u	     /* Mode, page choice and probe bytes. */

#define NKEYS 120u	     /* Keys of the tree. */
#define NPROBES 4u	     /* Probe keys per input. */
#define SCAN_MAX (4u * NKEYS + 16u) /* Steps a scan of at most NKEYS keys may take. */

/* The key of index i: lengths 6 to 29, sharing "user:", so nodes get a prefix. */
static size_t tree_key(unsigned i, uint8_t *buf)
{
	int n = snprintf((char *)buf, 64, "user:%04u%.*s", i * 7, (int)(i % 21),
			 "abcdefghijklmnopqrstu");

	return (size_t)n;
}

/* The value length of key i: mostly inline, every ninth in an overflow chain. */
static size_t tree_vlen(unsigned i)
{
	return i % 9 == 4 ? 1500u + 1000u * (i % 4) : (i * 37u) % 200u;
}

/* One prebuilt tree on a mem_pager, snapshotted, reset before every input. */
struct fz_tree {
	struct mem_pager *mp;	/* Its pages. */
	struct kv_btree *t[2];	/* Handles: [0] per-visit checks, [1] nodes_checked. */
	uint64_t pages[64];	/* Its pages (meta, nodes, overflow), in page order. */
	unsigned npages;	/* Entries of pages. */
};

static struct fz_tree trees[2];	     /* [0] counted, [1] uncounted. */
static struct kv_pager_ops fz_ops[2]; /* The wrapping pager: [1] with nodes_checked. */
static struct mem_pager *cur_mp;      /* The pager the wrapper serves now. */
static uint64_t refused_pgno;	      /* A page whose device read fails its check (0: none). */
static bool named;		      /* The last operation named a damaged page. */
static bool refused;		      /* The pager refused a page number (none to name). */
static uint8_t vbuf[KV_BTREE_VALUE_MAX]; /* Values read. */

/*
 * The wrapper over the mem_pager: a page number that is not allocated is
 * URT_E_CORRUPT, as the page store answers one beyond its end (the
 * mem_pager itself would abort), and refused_pgno fails as a page whose
 * read check failed, which the page store names.
 */
static int fz_page(uint64_t pgno)
{
	if (!mem_pager_has_page(cur_mp, pgno)) {
		refused = true;
		return URT_E_CORRUPT;
	}
	if (pgno == refused_pgno) {
		named = true;
		return URT_E_CORRUPT;
	}
	return 0;
}

static int fz_get(struct kv_pager *p, uint64_t pgno, bool write, void **data)
{
	int rc = fz_page(pgno);

	return rc ? rc : mem_pager_ops(cur_mp)->get(p, pgno, write, data);
}

static int fz_free(struct kv_pager *p, uint64_t pgno)
{
	int rc = fz_page(pgno);

	return rc ? rc : mem_pager_ops(cur_mp)->free(p, pgno);
}

/* The committed bytes, as the page store's peek gives them: no pin, no check. */
static const void *fz_peek(struct kv_pager *p, uint64_t pgno)
{
	const void *data;
	void *pg;

	/* A page whose read check failed never entered the cache. */
	if (!mem_pager_has_page(cur_mp, pgno) || pgno == refused_pgno)
		return NULL;
	if (mem_pager_ops(cur_mp)->get(p, pgno, false, &pg) != 0)
		return NULL;
	data = pg;
	mem_pager_ops(cur_mp)->put(p, pgno);
	return data;
}

static void fz_locate(struct kv_pager *p, uint64_t pgno, unsigned step)
{
	(void)p;
	(void)pgno;
	(void)step;
}

static void fz_prefetch(struct kv_pager *p, uint64_t pgno, size_t off, size_t len)
{
	(void)p;
	(void)pgno;
	CHECK(off <= U && len <= U);
}

static void fz_corrupt(struct kv_pager *p, uint64_t pgno, const char *why)
{
	(void)p;
	(void)pgno;
	CHECK(why != NULL && why[0] != '\0');
	named = true;
}

/* The allowed answers of a tree operation; a corrupt one names its page. */
static void check_rc(struct mem_pager *mp, int rc)
{
	CHECK(rc >= 0 || rc == -ENOENT || rc == -EEXIST || rc == URT_E_CORRUPT ||
	      rc == URT_E_TOOBIG);
	if (rc == URT_E_CORRUPT)
		CHECK(named || refused);
	CHECK(mem_pager_pinned(mp) == 0);
	named = false;
	refused = false;
}

/*
 * Builds a well-formed node from the program in[0, n) with the node
 * functions, then patches it: byte 0 picks the type and cell count, then
 * each cell takes a key (from the tree's keys, changed by a byte), value
 * and flags, and each later group of four bytes writes one or two bytes
 * of the page.
 */
static void gen_page(uint8_t *pg, const uint8_t *in, size_t n)
{
	static uint8_t tmp[U];
	uint8_t cell[KV_BTREE_KEY_MAX + 64], key[64];
	size_t i = 0, cells;
	bool leaf;

	memset(pg, 0, U);
	if (n == 0)
		return;
	leaf = !(in[0] & 0x80);
	cells = in[0] & 0x3f;
	i = 1;
	kv_node_init(pg, U, leaf ? KV_PAGE_LEAF : KV_PAGE_INTERNAL, in[0] & 0x40 ? 3 : 0);
	for (size_t c = 0; c < cells && i + 3 <= n; c++, i += 3) {
		size_t klen = tree_key(in[i] % NKEYS, key), size;
		unsigned idx;
		bool found;

		if (in[i + 1] & 0x80)
			key[klen - 1] ^= in[i + 1] & 0x7f;
		if (leaf) {
			size_t vlen = in[i + 2] & 0x1f;
			bool ovf = in[i + 2] & 0x20;

			size = kv_leaf_cell_encode_x(cell, key, klen, key, vlen > klen ? klen : vlen,
						     ovf, 2 + (in[i + 2] >> 6),
						     in[i + 2] & 0x40 ? 1700000000000ull : 0);
		} else {
			size = kv_internal_cell_encode(cell, key, klen, 2 + (in[i + 2] & 7));
		}
		idx = kv_node_lower_bound(pg, key, klen, &found);
		if (!found && !kv_node_insert(pg, U, idx, cell, size, tmp))
			break;
	}
	for (; i + 4 <= n; i += 4) {
		size_t off = (in[i] | (size_t)in[i + 1] << 8) & 0x7fff;
		bool wide = in[i + 1] & 0x80;

		off %= U - 1;
		pg[off] = in[i + 2];
		if (wide)
			pg[off + 1] = in[i + 3];
	}
}

/* Touches n bytes at p, so that ASan sees a read out of bounds. */
static unsigned touch(const uint8_t *p, size_t n)
{
	unsigned sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += p[i];
	return sum;
}

struct probe {
	uint8_t key[KV_BTREE_KEY_MAX]; /* Key bytes. */
	size_t klen;		       /* Its length, 1..KV_BTREE_KEY_MAX. */
};

/* The probe keys of an input: keys of the tree, some changed or lengthened. */
static void make_probes(const uint8_t *hdr, struct probe *pr)
{
	for (unsigned i = 0; i < NPROBES; i++) {
		uint8_t b = hdr[NPROBES + i];

		pr[i].klen = tree_key(hdr[i] % NKEYS, pr[i].key);
		if (b & 0x80) {
			/* A long key: past the head and the prefix. */
			memset(pr[i].key + pr[i].klen, b, 300);
			pr[i].klen += 300;
		} else if (b & 0x40) {
			pr[i].klen -= b % pr[i].klen;
		} else {
			pr[i].key[pr[i].klen - 1] ^= b;
		}
	}
}

/*
 * What a visit of the page does after the tree's check passed: search,
 * child, cell decode and value copy; every cell as a cursor and a count
 * read them; the checker's layout check.
 */
static void decode_node(const uint8_t *pg, const struct probe *pr)
{
	static const uint8_t empty_key[1];
	bool leaf = kv_node_is_leaf(pg), found;
	unsigned n = kv_node_count(pg), idx;
	static uint8_t tmp[U];
	volatile unsigned sink = 0;

	for (unsigned i = 0; i <= NPROBES; i++) {
		const uint8_t *key = i < NPROBES ? pr[i].key : empty_key;
		size_t klen = i < NPROBES ? pr[i].klen : 0;

		idx = kv_node_lower_bound(pg, key, klen, &found);
		CHECK(idx <= n && (!found || idx < n));
		CHECK(kv_node_guess(pg, key, klen) <= n);
		if (!leaf) {
			unsigned ci = kv_internal_child_index(pg, key, klen);

			CHECK(ci <= n);
			sink += (unsigned)kv_internal_child(pg, ci);
		} else if (idx < n) {
			struct kv_leaf_cell lc;

			kv_leaf_cell_decode(kv_node_cell(pg, idx), &lc);
			if (!lc.overflow && lc.vlen <= KV_BTREE_VALUE_MAX)
				sink += touch(lc.val, lc.vlen);
			sink += (unsigned)lc.expire_at;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		uint16_t klen;
		const uint8_t *key = kv_node_key(pg, i, &klen);

		if (klen == 0 || klen > KV_BTREE_KEY_MAX)
			continue;
		sink += touch(key, klen);
		sink += (unsigned)kv_node_cell_size(pg, i);
		if (leaf) {
			struct kv_leaf_cell lc;

			kv_leaf_cell_decode(kv_node_cell(pg, i), &lc);
			if (!lc.overflow && lc.vlen <= KV_BTREE_VALUE_MAX)
				sink += touch(lc.val, lc.vlen);
			sink += (unsigned)(lc.ovf + lc.expire_at);
		} else {
			sink += (unsigned)kv_internal_child(pg, i + 1);
		}
	}
	sink += (unsigned)kv_node_used(pg, U);
	if (kv_node_check_layout(pg, U, tmp) == NULL)
		CHECK(kv_node_check_header(pg, U) == NULL);
	(void)sink;
}

/*
 * The page alone: the checks, then the decoders if the check the tree runs
 * before a search passed: the page store's read check (nodes_checked) or
 * node_get's own, which are the same kv_node_check_cells().
 */
static void run_node(const uint8_t *page, const struct probe *pr)
{
	/* A heap copy of exactly U bytes, so that ASan sees a read past the page. */
	uint8_t *pg = aligned_alloc(8, U);
	const char *hdr, *cells;

	CHECK(pg != NULL);
	memcpy(pg, page, U);
	hdr = kv_node_check_header(pg, U);
	cells = kv_node_check_cells(pg, U);
	if (pg[0] == KV_PAGE_LEAF || pg[0] == KV_PAGE_INTERNAL) {
		CHECK(kv_pps_page_check(pg, U, NULL) == cells);
		if (cells == NULL) {
			CHECK(hdr == NULL);
			decode_node(pg, pr);
		}
	}
	free(pg);
}

/* Reads of every kind, then (writes) puts and deletes, on the tree with one page replaced. */
static void run_tree(struct fz_tree *ft, bool checked, bool writes, const struct probe *pr,
		     const uint8_t *page, uint64_t target)
{
	struct kv_btree *t = ft->t[checked];
	struct mem_pager *mp = ft->mp;
	const struct kv_pager_ops *ops = mem_pager_ops(mp);
	struct kv_btree_cursor *c = malloc(sizeof(*c));
	uint8_t key[64];
	uint64_t count, expire_at, chain;
	struct kv_btree_stats st;
	size_t vlen;
	void *pg;
	int rc;

	CHECK(c != NULL);
	cur_mp = mp;
	mem_pager_rollback(mp);
	kv_btree_invalidate_cursors(t);
	CHECK(ops->get(mem_pager_pager(mp), target, true, &pg) == 0);
	memcpy(pg, page, U);
	ops->put(mem_pager_pager(mp), target);
	/* The page store refuses a node that fails its read check, and names it. */
	refused_pgno = checked && kv_pps_page_check(page, U, NULL) ? target : 0;
	named = refused = false;

	for (unsigned i = 0; i < NPROBES; i++) {
		/* A pipelined GET: the leaf found through peeked nodes, then the hinted lookup. */
		uint64_t hint = kv_btree_prefetch_leaf(t, pr[i].key, pr[i].klen);

		kv_btree_prefetch_node(t, hint, 0);
		kv_btree_prefetch_node(t, hint, 1);
		kv_btree_prefetch_cell(t, hint, pr[i].key, pr[i].klen);
		rc = kv_btree_get_hinted(t, hint, pr[i].key, pr[i].klen, vbuf, 4096, &vlen,
					 &expire_at, &chain);
		check_rc(mp, rc);
		rc = kv_btree_get_x(t, pr[i].key, pr[i].klen, vbuf, sizeof(vbuf), &vlen, &expire_at);
		check_rc(mp, rc);
		rc = kv_btree_get_or_ref(t, pr[i].key, pr[i].klen, vbuf, 4096, &vlen, &expire_at,
					 &chain);
		check_rc(mp, rc);
		rc = kv_btree_exists(t, pr[i].key, pr[i].klen);
		check_rc(mp, rc);
	}
	/* Every key of the tree, as a pipeline of GETs reads them. */
	for (unsigned i = 0; i < NKEYS; i += 7) {
		size_t klen = tree_key(i, key);

		rc = kv_btree_get(t, key, klen, vbuf, 64, &vlen);
		check_rc(mp, rc);
	}
	/* A SCAN with values: it ends, at most once per key. */
	kv_btree_cursor_init(c, t);
	rc = kv_btree_cursor_seek(c, NULL, 0);
	check_rc(mp, rc);
	for (unsigned steps = 0; rc == 0 && kv_btree_cursor_valid(c); steps++) {
		CHECK(steps < SCAN_MAX);
		rc = kv_btree_cursor_value(c, vbuf, sizeof(vbuf), &vlen);
		check_rc(mp, rc);
		rc = kv_btree_cursor_next(c);
		check_rc(mp, rc);
	}
	rc = kv_btree_cursor_seek(c, pr[0].key, pr[0].klen);
	check_rc(mp, rc);
	rc = kv_btree_count(t, &count);
	check_rc(mp, rc);
	/* The checker names the page in st.why, not through the pager. */
	rc = kv_btree_check(t, &st);
	named |= rc == URT_E_CORRUPT && strncmp(st.why, "page ", 5) == 0;
	check_rc(mp, rc);

	if (writes) {
		struct kv_btree_xput x = { .expire_at = 1700000000000ull, .now = 1600000000000ull };

		rc = kv_btree_put(t, pr[0].key, pr[0].klen, vbuf, pr[1].klen % 2 ? 40 : 2500, 0);
		check_rc(mp, rc);
		rc = kv_btree_del(t, pr[1].key, pr[1].klen);
		check_rc(mp, rc);
		rc = kv_btree_put_x(t, pr[2].key, pr[2].klen, vbuf, 0, KV_BTREE_KEEPVAL, &x);
		check_rc(mp, rc);
		rc = kv_btree_del_x(t, pr[3].key, pr[3].klen, KV_BTREE_IF_EXPIRED, &x);
		check_rc(mp, rc);
		/* Enough inserts to split the damaged leaf, or its neighbours. */
		for (unsigned i = 0; i < 24; i++) {
			size_t klen = tree_key(pr[3].key[0] + i * 5, key);

			key[klen - 1] ^= 0x20;
			rc = kv_btree_put(t, key, klen, vbuf, 150, 0);
			check_rc(mp, rc);
		}
		rc = kv_btree_check(t, &st);
		named |= rc == URT_E_CORRUPT && strncmp(st.why, "page ", 5) == 0;
		check_rc(mp, rc);
	}
	refused_pgno = 0;
	free(c);
}

static void tree_build(struct fz_tree *ft, bool counted)
{
	struct mem_pager_opts o = { .page_usable = U };
	struct kv_btree_opts to;
	uint8_t key[64];

	kv_btree_opts_default(&to);
	to.count_keys = counted;
	CHECK(mem_pager_create(&o, &ft->mp) == 0);
	cur_mp = ft->mp;
	for (int k = 0; k < 2; k++) {
		fz_ops[k] = *mem_pager_ops(ft->mp);
		fz_ops[k].get = fz_get;
		fz_ops[k].free = fz_free;
		fz_ops[k].corrupt = fz_corrupt;
		fz_ops[k].peek = fz_peek;
		fz_ops[k].locate = fz_locate;
		fz_ops[k].prefetch = fz_prefetch;
		fz_ops[k].nodes_checked = k == 1;
		CHECK(kv_btree_open(&fz_ops[k], mem_pager_pager(ft->mp), &to, &ft->t[k]) == 0);
	}
	memset(vbuf, 'v', 4096);
	for (unsigned i = 0; i < NKEYS; i++) {
		size_t klen = tree_key(i, key);
		struct kv_btree_xput x = { .expire_at = i % 5 == 1 ? 1700000000000ull + i : 0 };

		CHECK(kv_btree_put_x(ft->t[0], key, klen, vbuf, tree_vlen(i), 0, &x) == 1);
	}
	CHECK(kv_btree_check(ft->t[0], NULL) == 0);
	for (uint64_t pgno = 1; pgno < 4096 && ft->npages < 64; pgno++)
		if (mem_pager_has_page(ft->mp, pgno))
			ft->pages[ft->npages++] = pgno;
	CHECK(mem_pager_snapshot(ft->mp) == 0);
}

/* Writes one seed file dir/name of hdr[0, INPUT_HDR) then body[0, n). */
static void seed_write(const char *dir, const char *name, const uint8_t *hdr,
		       const uint8_t *body, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	CHECK(f != NULL);
	CHECK(fwrite(hdr, 1, INPUT_HDR, f) == INPUT_HDR);
	CHECK(n == 0 || fwrite(body, 1, n, f) == n);
	CHECK(fclose(f) == 0);
}

/* The seed corpus: every page of the counted tree in each mode, and programs. */
static void seeds_write(const char *dir)
{
	struct fz_tree *ft = &trees[0];
	const struct kv_pager_ops *ops = mem_pager_ops(ft->mp);
	uint8_t hdr[INPUT_HDR] = { 0, 0, 3, 40, 77, 119, 0, 0x41, 0x85, 0x13 };
	static const uint8_t prog[][20] = {
		{ 0x08, 1, 0, 5, 9, 0, 0x25, 30, 0x80, 0x40, 50, 0, 7, 70, 0, 0x61 },
		{ 0x86, 3, 0, 1, 20, 0, 2, 40, 0, 3, 60, 0, 4, 90, 0, 5 },
		{ 0x05, 2, 0, 1, 3, 0, 2, 4, 0, 3, 5, 0, 4, 6, 0x10, 0, 0xff, 0x83, 0x12 },
	};
	uint8_t page[U];
	char name[64];
	void *pg;

	for (unsigned i = 0; i < ft->npages; i++) {
		CHECK(ops->get(mem_pager_pager(ft->mp), ft->pages[i], false, &pg) == 0);
		memcpy(page, pg, U);
		ops->put(mem_pager_pager(ft->mp), ft->pages[i]);
		for (unsigned mode = 0; mode < 4; mode++) {
			hdr[0] = (uint8_t)(mode | (mode == 3 ? MODE_WRITE : 0));
			hdr[1] = (uint8_t)i;
			snprintf(name, sizeof(name), "page%02u-mode%u", i, mode);
			seed_write(dir, name, hdr, page, U);
		}
	}
	for (unsigned i = 0; i < sizeof(prog) / sizeof(prog[0]); i++)
		for (unsigned mode = 0; mode < 4; mode++) {
			hdr[0] = (uint8_t)(MODE_GEN | mode);
			hdr[1] = (uint8_t)(i + 1);
			snprintf(name, sizeof(name), "gen%u-mode%u", i, mode);
			seed_write(dir, name, hdr, prog[i], sizeof(prog[i]));
		}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("FUZZ_BTREE_NODE_SEEDS");

	(void)argc;
	(void)argv;
	tree_build(&trees[0], true);
	tree_build(&trees[1], false);
	if (dir)
		seeds_write(dir);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t page[U];
	struct probe pr[NPROBES];
	uint8_t mode;

	if (size < INPUT_HDR)
		return 0;
	mode = data[0];
	make_probes(data + 2, pr);
	if (mode & MODE_GEN) {
		gen_page(page, data + INPUT_HDR, size - INPUT_HDR);
	} else {
		size_t n = size - INPUT_HDR < U ? size - INPUT_HDR : U;

		memcpy(page, data + INPUT_HDR, n);
		memset(page + n, 0, U - n);
	}
	if (mode & MODE_TREE) {
		struct fz_tree *ft = &trees[!!(mode & MODE_UNCOUNTED)];

		/* A link (or child 0) to a page of the tree: loops and wrong levels. */
		if (data[1] & 0x80)
			kv_st64(page + 8, ft->pages[data[9] % ft->npages]);

		run_tree(ft, mode & MODE_CHECKED, mode & MODE_WRITE, pr, page,
			 ft->pages[data[1] % ft->npages]);
	} else {
		run_node(page, pr);
	}
	return 0;
}
