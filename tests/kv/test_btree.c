/* SPDX-License-Identifier: MIT */
/*
 * Tests of the urkv B+tree (examples/kv/btree.c) on the in-memory pager.
 *
 * The random tests run seeded operation sequences against a model (a sorted
 * array) and, after every batch, run kv_btree_check(), compare a full cursor
 * scan and the key count with the model, and compare the pages the pager
 * holds with the pages the checker reached (so a leaked page fails).  Every
 * failure message carries the seed; URKV_BTREE_SEED=<n> replays one.  The
 * mem_pager aborts on any breach of the pager contract (a page modified
 * without write intent, a pin leaked into free(), a stale page pointer under
 * ASan), so every test also checks that.
 *
 * The fault tests fail each pager call of an operation in turn, check that
 * the error comes back with no page pinned, roll the pager back as a
 * transaction abort would, and check that the tree equals the model again.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "btree.h"
#include "btree_node.h"
#include "mem_pager.h"

/* The page store reserves this much of each page for its own header. */
#define PAGE_HDR 64
static const size_t page_sizes[] = { 4096, 8192, 16384 };
#define NPAGE_SIZES (sizeof(page_sizes) / sizeof(page_sizes[0]))

/* Deterministic random numbers (splitmix64). */
struct rng {
	uint64_t s; /* State. */
};

static uint64_t rng_next(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rng_below(struct rng *r, uint64_t n)
{
	return rng_next(r) % n;
}

static size_t rng_range(struct rng *r, size_t lo, size_t hi)
{
	return lo + (size_t)rng_below(r, hi - lo + 1);
}

static uint64_t hash64(uint64_t x)
{
	struct rng r = { x };

	return rng_next(&r);
}

/* The seed of a test: URKV_BTREE_SEED if set, else the test's default. */
static uint64_t test_seed(uint64_t dflt)
{
	const char *s = getenv("URKV_BTREE_SEED");

	return s ? strtoull(s, NULL, 0) : dflt;
}

/* The model: a sorted array of key/value pairs. */
struct ment {
	uint8_t *key; /* Key bytes. */
	size_t klen;  /* Key length. */
	uint8_t *val; /* Value bytes. */
	size_t vlen;  /* Value length. */
};

struct model {
	struct ment *e;	   /* Entries sorted by key. */
	size_t n, cap;	   /* Entries used and allocated. */
};

static int key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
	int r = memcmp(a, b, alen < blen ? alen : blen);

	return r != 0 ? r : (alen > blen) - (alen < blen);
}

static size_t model_find(const struct model *m, const void *key, size_t klen, bool *found)
{
	size_t lo = 0, hi = m->n;

	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = key_cmp(m->e[mid].key, m->e[mid].klen, key, klen);

		if (r < 0) {
			lo = mid + 1;
		} else {
			*found |= r == 0;
			hi = mid;
		}
	}
	return lo;
}

static uint8_t *dup_bytes(const void *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);

	cr_assert_not_null(d);
	if (n)
		memcpy(d, p, n);
	return d;
}

static void model_put(struct model *m, const void *key, size_t klen, const void *val,
		      size_t vlen)
{
	bool found;
	size_t i = model_find(m, key, klen, &found);

	if (found) {
		free(m->e[i].val);
		m->e[i].val = dup_bytes(val, vlen);
		m->e[i].vlen = vlen;
		return;
	}
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 64;
		m->e = realloc(m->e, m->cap * sizeof(*m->e));
		cr_assert_not_null(m->e);
	}
	memmove(&m->e[i + 1], &m->e[i], (m->n - i) * sizeof(*m->e));
	m->e[i] = (struct ment){ dup_bytes(key, klen), klen, dup_bytes(val, vlen), vlen };
	m->n++;
}

static void model_del_at(struct model *m, size_t i)
{
	free(m->e[i].key);
	free(m->e[i].val);
	memmove(&m->e[i], &m->e[i + 1], (m->n - i - 1) * sizeof(*m->e));
	m->n--;
}

static void model_free(struct model *m)
{
	while (m->n > 0)
		model_del_at(m, m->n - 1);
	free(m->e);
	memset(m, 0, sizeof(*m));
}

/* A tree on a fresh mem_pager, plus a buffer for values. */
struct fx {
	struct mem_pager *mp; /* The pager. */
	struct kv_btree *t;   /* The tree. */
	size_t u;	      /* page_usable. */
	uint8_t *vbuf;	      /* KV_BTREE_VALUE_MAX bytes for reading values. */
	char ctx[160];	      /* Seed, page size and step, for failure messages. */
};

/* Opens a tree on a fresh pager; count_keys as in struct kv_btree_opts. */
static void fx_open_opts(struct fx *f, size_t page_size, bool count_keys)
{
	struct mem_pager_opts o = {
		.page_usable = page_size - PAGE_HDR,
		.relocate = true,
	};
	struct kv_btree_opts to;

	kv_btree_opts_default(&to);
	to.count_keys = count_keys;
	memset(f, 0, sizeof(*f));
	f->u = o.page_usable;
	cr_assert_eq(mem_pager_create(&o, &f->mp), 0);
	cr_assert_eq(kv_btree_open(mem_pager_ops(f->mp), mem_pager_pager(f->mp), &to, &f->t), 0);
	f->vbuf = malloc(KV_BTREE_VALUE_MAX);
	cr_assert_not_null(f->vbuf);
}

static void fx_open(struct fx *f, size_t page_size)
{
	fx_open_opts(f, page_size, true);
}

static void fx_close(struct fx *f)
{
	kv_btree_close(f->t);
	mem_pager_destroy(f->mp);
	free(f->vbuf);
}

/*
 * Checks every invariant, the key count, the page accounting and a full
 * scan against the model; returns the checker's statistics.
 */
static struct kv_btree_stats verify(struct fx *f, const struct model *m)
{
	struct kv_btree_cursor c;
	struct kv_btree_stats st;
	uint64_t count = UINT64_MAX;
	int rc = kv_btree_check(f->t, &st);

	cr_assert_eq(rc, 0, "%s: check: %d (%s)", f->ctx, rc, st.why);
	cr_assert_eq(kv_btree_count(f->t, &count), 0, "%s", f->ctx);
	cr_assert_eq(count, m->n, "%s: count %llu, model %zu", f->ctx,
		     (unsigned long long)count, m->n);
	cr_assert_eq(st.keys, m->n, "%s", f->ctx);
	cr_assert_eq(st.meta_pages + st.internal_pages + st.leaf_pages + st.overflow_pages,
		     mem_pager_live_pages(f->mp),
		     "%s: the tree reaches %llu pages, the pager holds %llu", f->ctx,
		     (unsigned long long)(st.meta_pages + st.internal_pages +
					  st.leaf_pages + st.overflow_pages),
		     (unsigned long long)mem_pager_live_pages(f->mp));

	kv_btree_cursor_init(&c, f->t);
	cr_assert_eq(kv_btree_cursor_seek(&c, NULL, 0), 0, "%s", f->ctx);
	for (size_t i = 0; i < m->n; i++) {
		const struct ment *e = &m->e[i];
		size_t klen, vlen = SIZE_MAX;
		const void *key;

		cr_assert(kv_btree_cursor_valid(&c), "%s: scan ended at %zu of %zu", f->ctx, i,
			  m->n);
		key = kv_btree_cursor_key(&c, &klen);
		cr_assert(key_cmp(key, klen, e->key, e->klen) == 0,
			  "%s: scan key %zu differs", f->ctx, i);
		cr_assert_eq(kv_btree_cursor_value_len(&c), e->vlen, "%s", f->ctx);
		cr_assert_eq(kv_btree_cursor_value(&c, f->vbuf, KV_BTREE_VALUE_MAX, &vlen), 0,
			     "%s", f->ctx);
		cr_assert_eq(vlen, e->vlen, "%s", f->ctx);
		cr_assert(memcmp(f->vbuf, e->val, vlen) == 0, "%s: value %zu differs",
			  f->ctx, i);
		cr_assert_eq(kv_btree_cursor_next(&c), 0, "%s", f->ctx);
	}
	cr_assert(!kv_btree_cursor_valid(&c), "%s: scan found more keys than the model",
		  f->ctx);
	cr_assert_eq(mem_pager_pinned(f->mp), 0, "%s: pages left pinned", f->ctx);
	return st;
}

/* Shapes of the random workloads. */
struct profile {
	size_t prefix;		 /* Bytes of a prefix shared by every key. */
	bool vary_prefix;	 /* Prefix length per key drawn from [0, prefix]. */
	size_t key_min, key_max; /* Key length range. */
	size_t val_min, val_max; /* Length range of ordinary values. */
	unsigned big_pct;	 /* Percent of values drawn from the big range. */
	size_t big_min, big_max; /* Length range of big values. */
	unsigned keyspace;	 /* Distinct keys, for a 4 KiB page. */
	unsigned ops;		 /* Operations, for a 4 KiB page. */
	unsigned batch;		 /* Operations between full verifications, for 4 KiB. */
	unsigned scale_pow;	 /* The three above grow as (page size / 4 KiB)^this. */
	bool uncounted;		 /* Open with count_keys false. */
};

/*
 * Key number id: the shared prefix, the id in decimal, '.', and filler up to
 * a length fixed by the id.  The '.' keeps ids apart, so keys are distinct.
 */
static size_t make_key(const struct profile *p, uint64_t id, uint8_t *buf)
{
	uint64_t h = hash64(id);
	size_t len = p->key_min + h % (p->key_max - p->key_min + 1);
	size_t prefix = p->vary_prefix ? hash64(h) % (p->prefix + 1) : p->prefix;
	size_t n;

	memset(buf, 'p', prefix);
	n = prefix + (size_t)sprintf((char *)buf + prefix, "%llu.", (unsigned long long)id);
	if (p->vary_prefix)
		len = n + h % 16 < KV_BTREE_KEY_MAX ? n + h % 16 : KV_BTREE_KEY_MAX;
	for (; n < len; n++) {
		h = hash64(h);
		buf[n] = (uint8_t)('a' + h % 26);
	}
	return n;
}

static size_t make_val(struct rng *r, const struct profile *p, uint8_t *buf)
{
	size_t len = rng_below(r, 100) < p->big_pct ? rng_range(r, p->big_min, p->big_max)
						    : rng_range(r, p->val_min, p->val_max);
	uint64_t x = rng_next(r);

	for (size_t i = 0; i < len; i += 8) {
		x = hash64(x);
		memcpy(buf + i, &x, len - i < 8 ? len - i : 8);
	}
	return len;
}

/*
 * Runs one seeded workload on one page size; returns the greatest height seen
 * and, if counters is not NULL, the tree's structural change counters.
 */
static unsigned run_random(const struct profile *p, size_t page_size, uint64_t seed,
			   struct kv_btree_counters *counters)
{
	struct kv_btree_counters cnt;
	uint64_t bound, most_dirty = 0;
	unsigned scale = 1;

	for (unsigned i = 0; i < p->scale_pow; i++)
		scale *= (unsigned)(page_size / 4096);
	unsigned keyspace = p->keyspace * scale, ops = p->ops * scale, batch = p->batch * scale;
	uint8_t key[KV_BTREE_KEY_MAX], *val = malloc(KV_BTREE_VALUE_MAX);
	struct rng r = { seed };
	struct model m = { 0 };
	struct kv_btree_stats st;
	unsigned height = 0;
	struct fx f;

	cr_assert_not_null(val);
	fx_open_opts(&f, page_size, !p->uncounted);
	for (unsigned i = 0; i < ops; i++) {
		unsigned put_pct = i < ops / 2 ? 60 : 30, pick = (unsigned)rng_below(&r, 100);
		size_t klen = make_key(p, rng_below(&r, keyspace), key), vlen, idx;
		bool found;
		int rc;

		snprintf(f.ctx, sizeof(f.ctx), "seed %llu page %zu op %u",
			 (unsigned long long)seed, page_size, i);
		idx = model_find(&m, key, klen, &found);
		if (pick < put_pct) {
			unsigned flags = 0, fl = (unsigned)rng_below(&r, 10);
			int want = found ? 0 : 1;

			if (fl == 0)
				flags = KV_BTREE_NX;
			else if (fl == 1)
				flags = KV_BTREE_XX;
			if (found && flags == KV_BTREE_NX)
				want = -EEXIST;
			if (!found && flags == KV_BTREE_XX)
				want = -ENOENT;
			vlen = make_val(&r, p, val);
			cr_assert_eq(kv_btree_write_bound(f.t, vlen, &bound), 0);
			mem_pager_dirty_reset(f.mp);
			rc = kv_btree_put(f.t, key, klen, val, vlen, flags);
			cr_assert_eq(rc, want, "%s: put returned %d, want %d", f.ctx, rc, want);
			cr_assert_leq(mem_pager_dirty_pages(f.mp), bound,
				      "%s: put wrote %llu pages, bound %llu", f.ctx,
				      (unsigned long long)mem_pager_dirty_pages(f.mp),
				      (unsigned long long)bound);
			if (mem_pager_dirty_pages(f.mp) > most_dirty)
				most_dirty = mem_pager_dirty_pages(f.mp);
			if (want >= 0)
				model_put(&m, key, klen, val, vlen);
		} else if (pick < put_pct + 30) {
			cr_assert_eq(kv_btree_write_bound(f.t, 0, &bound), 0);
			mem_pager_dirty_reset(f.mp);
			rc = kv_btree_del(f.t, key, klen);
			cr_assert_eq(rc, found ? 0 : -ENOENT, "%s: del returned %d", f.ctx, rc);
			cr_assert_leq(mem_pager_dirty_pages(f.mp), bound,
				      "%s: del wrote %llu pages, bound %llu", f.ctx,
				      (unsigned long long)mem_pager_dirty_pages(f.mp),
				      (unsigned long long)bound);
			if (found)
				model_del_at(&m, idx);
		} else if (pick < put_pct + 35) {
			rc = kv_btree_get(f.t, key, klen, f.vbuf, KV_BTREE_VALUE_MAX, &vlen);
			cr_assert_eq(rc, found ? 0 : -ENOENT, "%s: get returned %d", f.ctx, rc);
			if (found) {
				cr_assert_eq(vlen, m.e[idx].vlen, "%s", f.ctx);
				cr_assert(memcmp(f.vbuf, m.e[idx].val, vlen) == 0, "%s", f.ctx);
			}
		} else if (pick < put_pct + 38) {
			cr_assert_eq(kv_btree_exists(f.t, key, klen), found, "%s", f.ctx);
		} else {
			/* Seek to a key or just past it, then walk a few keys. */
			struct kv_btree_cursor c;

			if (rng_below(&r, 2) && klen < KV_BTREE_KEY_MAX)
				key[klen++] = 0;
			idx = model_find(&m, key, klen, &found);
			kv_btree_cursor_init(&c, f.t);
			cr_assert_eq(kv_btree_cursor_seek(&c, key, klen), 0, "%s", f.ctx);
			for (unsigned s = 0; s < 4; s++, idx++) {
				const void *ck;
				size_t cklen;

				cr_assert_eq(kv_btree_cursor_valid(&c), idx < m.n, "%s", f.ctx);
				if (idx >= m.n)
					break;
				ck = kv_btree_cursor_key(&c, &cklen);
				cr_assert(key_cmp(ck, cklen, m.e[idx].key, m.e[idx].klen) == 0,
					  "%s: seek landed on the wrong key", f.ctx);
				cr_assert_eq(kv_btree_cursor_next(&c), 0, "%s", f.ctx);
			}
		}
		cr_assert_eq(mem_pager_pinned(f.mp), 0, "%s: pages left pinned", f.ctx);
		if ((i + 1) % batch == 0 || i + 1 == ops) {
			st = verify(&f, &m);
			if (st.height > height)
				height = st.height;
		}
	}

	/* Delete everything in random order; merges must give every page back. */
	for (unsigned i = 0; m.n > 0; i++) {
		size_t idx = rng_below(&r, m.n);

		snprintf(f.ctx, sizeof(f.ctx), "seed %llu page %zu drain %u",
			 (unsigned long long)seed, page_size, i);
		cr_assert_eq(kv_btree_write_bound(f.t, 0, &bound), 0);
		mem_pager_dirty_reset(f.mp);
		cr_assert_eq(kv_btree_del(f.t, m.e[idx].key, m.e[idx].klen), 0, "%s", f.ctx);
		cr_assert_leq(mem_pager_dirty_pages(f.mp), bound, "%s: del wrote %llu pages",
			      f.ctx, (unsigned long long)mem_pager_dirty_pages(f.mp));
		if (mem_pager_dirty_pages(f.mp) > most_dirty)
			most_dirty = mem_pager_dirty_pages(f.mp);
		model_del_at(&m, idx);
		if ((i + 1) % batch == 0 || m.n == 0)
			verify(&f, &m);
	}
	st = verify(&f, &m);
	cr_assert_eq(st.height, 1, "%s: height %u after deleting everything", f.ctx, st.height);
	/*
	 * Growing to height h takes splits at every level below h, and shrinking
	 * back to one leaf takes merges at every level below h.
	 */
	kv_btree_get_counters(f.t, &cnt);
	for (unsigned l = 0; l + 1 < height && l < KV_BTREE_LEVELS; l++) {
		cr_assert_gt(cnt.splits[l], 0, "%s: no split at level %u", f.ctx, l + 1);
		cr_assert_gt(cnt.merges[l], 0, "%s: no merge at level %u", f.ctx, l + 1);
	}
	cr_assert_geq(cnt.root_grows, height - 1, "%s", f.ctx);
	cr_assert_geq(cnt.root_shrinks, height - 1, "%s", f.ctx);
	cr_assert_eq(cnt.overflow_pages_written, cnt.overflow_pages_freed,
		     "%s: overflow pages written and freed differ", f.ctx);
	cr_assert_eq(mem_pager_live_pages(f.mp), 2,
		     "%s: %llu pages live after deleting everything, want meta + root", f.ctx,
		     (unsigned long long)mem_pager_live_pages(f.mp));
	/* Design notes of btree.c: at most three pages are pinned at once. */
	cr_assert_leq(mem_pager_pinned_max(f.mp), 3, "%s: %u pages pinned at once", f.ctx,
		      mem_pager_pinned_max(f.mp));
	cr_log_info("seed %llu page %zu: most pages written by one op %llu",
		    (unsigned long long)seed, page_size, (unsigned long long)most_dirty);
	cr_log_info("seed %llu page %zu: max height %u, max pins %u; splits %llu/%llu/%llu "
		    "merges %llu/%llu/%llu redistributions %llu/%llu/%llu (levels 1/2/3), "
		    "rebalance splits %llu",
		    (unsigned long long)seed, page_size, height, mem_pager_pinned_max(f.mp),
		    (unsigned long long)cnt.splits[0], (unsigned long long)cnt.splits[1],
		    (unsigned long long)cnt.splits[2], (unsigned long long)cnt.merges[0],
		    (unsigned long long)cnt.merges[1], (unsigned long long)cnt.merges[2],
		    (unsigned long long)cnt.redistributions[0],
		    (unsigned long long)cnt.redistributions[1],
		    (unsigned long long)cnt.redistributions[2],
		    (unsigned long long)cnt.rebalance_splits);
	if (counters)
		*counters = cnt;
	model_free(&m);
	fx_close(&f);
	free(val);
	return height;
}

/* Short keys, mostly small values, some overflowing: wide nodes, many keys. */
static const struct profile small_keys = {
	.prefix = 0, .key_min = 1, .key_max = 16,
	.val_min = 0, .val_max = 64, .big_pct = 5, .big_min = 900, .big_max = 3000,
	.keyspace = 60000, .ops = 80000, .batch = 8000, .scale_pow = 0,
};

/*
 * Keys of 910..1024 bytes sharing a 900-byte prefix, so that separators stay
 * long: a 4 KiB node holds three or four of them and the tree grows tall.
 * Nodes of larger pages hold proportionally more keys, so the key space
 * grows with the square of the page size to keep the trees tall.
 */
static const struct profile large_keys = {
	.prefix = 900, .key_min = 910, .key_max = 1024,
	.val_min = 0, .val_max = 200, .big_pct = 20, .big_min = 201, .big_max = 9000,
	.keyspace = 400, .ops = 3000, .batch = 100, .scale_pow = 2,
};

/* Values up to the 1 MiB limit, and their overflow chains. */
static const struct profile big_values = {
	.prefix = 0, .key_min = 1, .key_max = 64,
	.val_min = 0, .val_max = 4000, .big_pct = 15,
	.big_min = 100000, .big_max = KV_BTREE_VALUE_MAX,
	.keyspace = 60, .ops = 400, .batch = 25, .scale_pow = 0,
};

Test(btree, random_small_keys, .timeout = 300)
{
	/* About 25000 live keys: three levels in 4 KiB pages, two in larger. */
	static const unsigned min_height[NPAGE_SIZES] = { 3, 2, 2 };

	for (size_t i = 0; i < NPAGE_SIZES; i++) {
		unsigned h = run_random(&small_keys, page_sizes[i], test_seed(101 + i), NULL);

		cr_assert_geq(h, min_height[i], "page %zu: height only reached %u",
			      page_sizes[i], h);
	}
}

Test(btree, random_large_keys, .timeout = 300)
{
	for (size_t i = 0; i < NPAGE_SIZES; i++) {
		unsigned h = run_random(&large_keys, page_sizes[i], test_seed(201 + i), NULL);

		/* Splits and merges must have run at three levels or more. */
		cr_assert_geq(h, 4, "page %zu: height only reached %u", page_sizes[i], h);
	}
}

/* The same without a key count in the meta page: kv_btree_count() walks the leaves. */
Test(btree, random_large_keys_uncounted, .timeout = 300)
{
	struct profile p = large_keys;

	p.uncounted = true;
	for (size_t i = 0; i < 2; i++)
		run_random(&p, page_sizes[i], test_seed(251 + i), NULL);
}

Test(btree, random_large_keys_more_seeds, .timeout = 300)
{
	for (uint64_t s = 0; s < 6; s++)
		run_random(&large_keys, 4096, test_seed(300 + s), NULL);
}

/*
 * Prefixes of 0..1000 bytes make neighbouring separators differ in length by
 * hundreds of bytes, so a rebalance can replace a short separator by a long
 * one in a full parent, which must then split during a delete.
 */
static const struct profile varied_separators = {
	.prefix = 1000, .vary_prefix = true, .key_min = 1, .key_max = 1024,
	.val_min = 0, .val_max = 40, .big_pct = 10, .big_min = 41, .big_max = 3000,
	.keyspace = 400, .ops = 3000, .batch = 100, .scale_pow = 1,
};

Test(btree, random_varied_separators, .timeout = 300)
{
	uint64_t redistributions = 0;

	for (size_t i = 0; i < NPAGE_SIZES; i++) {
		for (uint64_t s = 0; s < 2; s++) {
			struct kv_btree_counters cnt;

			run_random(&varied_separators, page_sizes[i], test_seed(600 + 10 * i + s),
				   &cnt);
			for (unsigned l = 1; l < KV_BTREE_LEVELS; l++)
				redistributions += cnt.redistributions[l];
		}
	}
	cr_assert_gt(redistributions, 0, "no internal nodes were ever redistributed");
}

Test(btree, random_big_values, .timeout = 300)
{
	for (size_t i = 0; i < NPAGE_SIZES; i++)
		run_random(&big_values, page_sizes[i], test_seed(401 + i), NULL);
}

/* Whether a value of vlen goes to overflow pages next to a klen-byte key. */
static bool overflows(size_t u, size_t klen, size_t vlen)
{
	/* Slot, cell header, key, value and room for an 8-byte expiry. */
	return vlen > 8 && KV_SLOT_SIZE + KV_LEAF_CELL_HDR + klen + vlen + 8 > (u - 16) / 3;
}

static uint64_t chain_pages(size_t u, size_t klen, size_t vlen)
{
	return overflows(u, klen, vlen) ? (vlen + u - 17) / (u - 16) : 0;
}

static void fill_pattern(uint8_t *buf, size_t len, uint64_t tag)
{
	uint64_t x = tag;

	for (size_t i = 0; i < len; i += 8) {
		x = hash64(x);
		memcpy(buf + i, &x, len - i < 8 ? len - i : 8);
	}
}

/* Puts into both the tree and the model. */
static void put_both(struct fx *f, struct model *m, const void *key, size_t klen,
		     const void *val, size_t vlen)
{
	bool found;
	int rc = kv_btree_put(f->t, key, klen, val, vlen, 0);

	model_find(m, key, klen, &found);
	cr_assert_eq(rc, !found, "%s: put of %zu-byte value returned %d", f->ctx, vlen, rc);
	model_put(m, key, klen, val, vlen);
}

Test(btree, overwrite_inline_overflow_transitions, .timeout = 120)
{
	uint8_t *val = malloc(KV_BTREE_VALUE_MAX);

	cr_assert_not_null(val);
	for (size_t pi = 0; pi < NPAGE_SIZES; pi++) {
		static const size_t klens[] = { 16, 1000 };

		for (size_t ki = 0; ki < 2; ki++) {
			struct fx f;
			struct model m = { 0 };
			size_t u = page_sizes[pi] - PAGE_HDR, klen = klens[ki];
			/* The largest inline value next to this key (8 always fits). */
			size_t hdr = KV_SLOT_SIZE + KV_LEAF_CELL_HDR + 8;
			size_t t = (u - 16) / 3 > hdr + klen + 8 ? (u - 16) / 3 - hdr - klen : 8;
			const size_t sizes[] = {
				0, 8, 9, t - 1, t, t + 1, 5000, KV_BTREE_VALUE_MAX, 1,
				KV_BTREE_VALUE_MAX - 1, 100000, t, u, 3 * (u - 16), 0,
			};
			uint8_t key[KV_BTREE_KEY_MAX];

			fx_open(&f, page_sizes[pi]);
			/* Neighbours with small values, so the key shares its leaf. */
			for (unsigned n = 0; n < 40; n++) {
				memset(key, 'k', klen);
				snprintf((char *)key, 16, "n%03u", n * 2);
				fill_pattern(val, 4, n);
				put_both(&f, &m, key, klen, val, 4);
			}
			memset(key, 'k', klen);
			snprintf((char *)key, 16, "n%03u", 41);
			for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
				struct kv_btree_stats st;
				size_t vlen = SIZE_MAX;

				snprintf(f.ctx, sizeof(f.ctx), "page %zu klen %zu step %zu (vlen %zu)",
					 page_sizes[pi], klen, i, sizes[i]);
				fill_pattern(val, sizes[i], i);
				put_both(&f, &m, key, klen, val, sizes[i]);
				cr_assert_eq(kv_btree_get(f.t, key, klen, f.vbuf, KV_BTREE_VALUE_MAX,
							  &vlen), 0, "%s", f.ctx);
				cr_assert_eq(vlen, sizes[i], "%s", f.ctx);
				cr_assert(memcmp(f.vbuf, val, vlen) == 0, "%s", f.ctx);
				st = verify(&f, &m);
				/* Only this key's value may use overflow pages, and exactly its chain. */
				cr_assert_eq(st.overflow_pages, chain_pages(u, klen, sizes[i]),
					     "%s: %llu overflow pages", f.ctx,
					     (unsigned long long)st.overflow_pages);
			}
			cr_assert_eq(kv_btree_del(f.t, key, klen), 0);
			for (unsigned n = 0; n < 40; n++) {
				memset(key, 'k', klen);
				snprintf((char *)key, 16, "n%03u", n * 2);
				cr_assert_eq(kv_btree_del(f.t, key, klen), 0);
			}
			cr_assert_eq(mem_pager_live_pages(f.mp), 2, "page %zu klen %zu: leak",
				     page_sizes[pi], klen);
			model_free(&m);
			fx_close(&f);
		}
	}
	free(val);
}

Test(btree, limits)
{
	uint8_t key[KV_BTREE_KEY_MAX + 1], *val = malloc(KV_BTREE_VALUE_MAX + 1);
	struct kv_btree_cursor c;
	size_t vlen;
	uint64_t n;
	struct fx f;

	cr_assert_not_null(val);
	memset(key, 'x', sizeof(key));
	fill_pattern(val, KV_BTREE_VALUE_MAX + 1, 7);
	for (size_t pi = 0; pi < NPAGE_SIZES; pi++) {
		fx_open(&f, page_sizes[pi]);
		/* Rejected calls change nothing, not even by creating the tree. */
		cr_assert_eq(kv_btree_put(f.t, key, 0, val, 1, 0), -EINVAL);
		cr_assert_eq(kv_btree_put(f.t, key, KV_BTREE_KEY_MAX + 1, val, 1, 0),
			     URT_E_TOOBIG);
		cr_assert_eq(kv_btree_put(f.t, key, 10, val, KV_BTREE_VALUE_MAX + 1, 0),
			     URT_E_TOOBIG);
		cr_assert_eq(kv_btree_get(f.t, key, 0, NULL, 0, &vlen), -EINVAL);
		cr_assert_eq(kv_btree_get(f.t, key, KV_BTREE_KEY_MAX + 1, NULL, 0, &vlen),
			     URT_E_TOOBIG);
		cr_assert_eq(kv_btree_del(f.t, key, KV_BTREE_KEY_MAX + 1), URT_E_TOOBIG);
		cr_assert_eq(kv_btree_exists(f.t, key, 0), -EINVAL);
		kv_btree_cursor_init(&c, f.t);
		cr_assert_eq(kv_btree_cursor_seek(&c, key, KV_BTREE_KEY_MAX + 1),
			     URT_E_TOOBIG);
		cr_assert_eq(mem_pager_live_pages(f.mp), 0);

		/* The largest key with the largest value, and the smallest key. */
		cr_assert_eq(kv_btree_put(f.t, key, KV_BTREE_KEY_MAX, val, KV_BTREE_VALUE_MAX, 0), 1);
		cr_assert_eq(kv_btree_put(f.t, "\x00", 1, val + 1, 3, 0), 1);
		cr_assert_eq(kv_btree_get(f.t, key, KV_BTREE_KEY_MAX, f.vbuf, KV_BTREE_VALUE_MAX,
					  &vlen), 0);
		cr_assert_eq(vlen, KV_BTREE_VALUE_MAX);
		cr_assert(memcmp(f.vbuf, val, vlen) == 0);
		cr_assert_eq(kv_btree_get(f.t, "\x00", 1, f.vbuf, 16, &vlen), 0);
		cr_assert_eq(vlen, 3);
		cr_assert(memcmp(f.vbuf, val + 1, 3) == 0);
		cr_assert_eq(kv_btree_count(f.t, &n), 0);
		cr_assert_eq(n, 2);
		cr_assert_eq(kv_btree_check(f.t, NULL), 0);
		fx_close(&f);
	}
	free(val);
}

Test(btree, single_byte_keys_sort_as_unsigned)
{
	struct model m = { 0 };
	struct fx f;

	fx_open(&f, 4096);
	snprintf(f.ctx, sizeof(f.ctx), "byte keys");
	/* Every one-byte key, then two-byte extensions, inserted out of order. */
	for (unsigned i = 0; i < 256; i++) {
		uint8_t k[2] = { (uint8_t)(i * 167), (uint8_t)i };

		put_both(&f, &m, k, 1, k, 2);
		if (i % 5 == 0)
			put_both(&f, &m, k, 2, k, 1);
	}
	verify(&f, &m);
	cr_assert_eq(m.e[0].key[0], 0x00);
	cr_assert_eq(m.e[m.n - 1].key[0], 0xff);
	model_free(&m);
	fx_close(&f);
}

Test(btree, nx_and_xx)
{
	struct fx f;
	uint8_t buf[8];
	size_t vlen;
	uint64_t n;

	fx_open(&f, 4096);
	/* XX on an empty pager neither inserts nor creates the tree. */
	cr_assert_eq(kv_btree_put(f.t, "a", 1, "1", 1, KV_BTREE_XX), -ENOENT);
	cr_assert_eq(mem_pager_live_pages(f.mp), 0);
	cr_assert_eq(kv_btree_put(f.t, "a", 1, "1", 1, KV_BTREE_NX), 1);
	cr_assert_eq(kv_btree_put(f.t, "a", 1, "2", 1, KV_BTREE_NX), -EEXIST);
	cr_assert_eq(kv_btree_get(f.t, "a", 1, buf, sizeof(buf), &vlen), 0);
	cr_assert(vlen == 1 && buf[0] == '1', "NX overwrote the value");
	cr_assert_eq(kv_btree_put(f.t, "b", 1, "3", 1, KV_BTREE_XX), -ENOENT);
	cr_assert_eq(kv_btree_exists(f.t, "b", 1), 0);
	cr_assert_eq(kv_btree_put(f.t, "a", 1, "45", 2, KV_BTREE_XX), 0);
	cr_assert_eq(kv_btree_get(f.t, "a", 1, buf, sizeof(buf), &vlen), 0);
	cr_assert(vlen == 2 && memcmp(buf, "45", 2) == 0, "XX did not overwrite");
	cr_assert_eq(kv_btree_count(f.t, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(kv_btree_del(f.t, "b", 1), -ENOENT);
	cr_assert_eq(kv_btree_del(f.t, "a", 1), 0);
	cr_assert_eq(kv_btree_del(f.t, "a", 1), -ENOENT);
	cr_assert_eq(kv_btree_count(f.t, &n), 0);
	cr_assert_eq(n, 0);
	fx_close(&f);
}

Test(btree, partial_value_reads)
{
	uint8_t val[20000], buf[20000];
	struct kv_btree_cursor c;
	struct fx f;

	fill_pattern(val, sizeof(val), 3);
	fx_open(&f, 4096);
	cr_assert_eq(kv_btree_put(f.t, "big", 3, val, sizeof(val), 0), 1);
	cr_assert_eq(kv_btree_put(f.t, "small", 5, val, 100, 0), 1);
	/* Lengths that end inside the first, a middle and the last overflow page. */
	const size_t cuts[] = { 0, 1, 100, 4016, 4017, 9000, 19999, 20000, 20001 };

	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		size_t want = cuts[i] < sizeof(buf) ? cuts[i] : sizeof(buf), vlen = 0;

		memset(buf, 0xee, sizeof(buf));
		cr_assert_eq(kv_btree_get(f.t, "big", 3, want ? buf : NULL, want, &vlen), 0);
		cr_assert_eq(vlen, sizeof(val), "cut %zu: full length not reported", want);
		cr_assert(memcmp(buf, val, want) == 0, "cut %zu: prefix differs", want);
		if (want < sizeof(buf))
			cr_assert_eq(buf[want], 0xee, "cut %zu: wrote past the buffer", want);
		memset(buf, 0xee, sizeof(buf));
		cr_assert_eq(kv_btree_get(f.t, "small", 5, buf, want < 60 ? want : 60, &vlen), 0);
		cr_assert_eq(vlen, 100);
		cr_assert(memcmp(buf, val, want < 60 ? want : 60) == 0);
		cr_assert_eq(buf[want < 60 ? want : 60], 0xee);
	}
	kv_btree_cursor_init(&c, f.t);
	cr_assert_eq(kv_btree_cursor_seek(&c, "b", 1), 0);
	cr_assert(kv_btree_cursor_valid(&c));
	cr_assert_eq(kv_btree_cursor_value_len(&c), sizeof(val));
	{
		size_t vlen = 0;

		memset(buf, 0xee, sizeof(buf));
		cr_assert_eq(kv_btree_cursor_value(&c, buf, 5000, &vlen), 0);
		cr_assert_eq(vlen, sizeof(val));
		cr_assert(memcmp(buf, val, 5000) == 0);
		cr_assert_eq(buf[5000], 0xee);
	}
	fx_close(&f);
}

Test(btree, empty_tree)
{
	struct kv_btree_stats st;
	struct kv_btree_cursor c;
	size_t vlen;
	uint64_t n = 1;
	struct fx f;

	fx_open(&f, 8192);
	cr_assert_eq(kv_btree_get(f.t, "k", 1, NULL, 0, &vlen), -ENOENT);
	cr_assert_eq(kv_btree_exists(f.t, "k", 1), 0);
	cr_assert_eq(kv_btree_del(f.t, "k", 1), -ENOENT);
	cr_assert_eq(kv_btree_count(f.t, &n), 0);
	cr_assert_eq(n, 0);
	kv_btree_cursor_init(&c, f.t);
	cr_assert_eq(kv_btree_cursor_seek(&c, NULL, 0), 0);
	cr_assert(!kv_btree_cursor_valid(&c));
	cr_assert_eq(kv_btree_check(f.t, &st), 0);
	cr_assert_eq(st.height, 0);
	cr_assert_eq(mem_pager_live_pages(f.mp), 0, "reads created pages");
	/* After one key comes and goes: the meta page and an empty root leaf. */
	cr_assert_eq(kv_btree_put(f.t, "k", 1, "v", 1, 0), 1);
	cr_assert_eq(kv_btree_del(f.t, "k", 1), 0);
	cr_assert_eq(kv_btree_check(f.t, &st), 0, "%s", st.why);
	cr_assert_eq(st.height, 1);
	cr_assert_eq(st.leaf_pages, 1);
	cr_assert_eq(mem_pager_live_pages(f.mp), 2);
	cr_assert_eq(kv_btree_cursor_seek(&c, NULL, 0), 0);
	cr_assert(!kv_btree_cursor_valid(&c));
	fx_close(&f);
}

Test(btree, cursor_seek_positions)
{
	struct kv_btree_cursor c;
	struct fx f;
	size_t klen;
	const char *k;

	fx_open(&f, 4096);
	cr_assert_eq(kv_btree_put(f.t, "b", 1, "", 0, 0), 1);
	cr_assert_eq(kv_btree_put(f.t, "d", 1, "", 0, 0), 1);
	cr_assert_eq(kv_btree_put(f.t, "dd", 2, "", 0, 0), 1);
	kv_btree_cursor_init(&c, f.t);
	const struct {
		const char *seek; /* Key to seek. */
		const char *want; /* Key expected, NULL for the end. */
	} cases[] = {
		{ "", "b" }, { "a", "b" }, { "b", "b" }, { "b\x00", "d" }, { "c", "d" },
		{ "d", "d" }, { "d\x00", "dd" }, { "dd", "dd" }, { "dda", NULL }, { "e", NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t slen = strlen(cases[i].seek) + (i == 3 || i == 6);

		cr_assert_eq(kv_btree_cursor_seek(&c, cases[i].seek, slen), 0);
		cr_assert_eq(kv_btree_cursor_valid(&c), cases[i].want != NULL, "case %zu", i);
		if (cases[i].want == NULL)
			continue;
		k = kv_btree_cursor_key(&c, &klen);
		cr_assert(klen == strlen(cases[i].want) && memcmp(k, cases[i].want, klen) == 0,
			  "case %zu: seek landed on %.*s", i, (int)klen, k);
	}
	/* next() past the end stays at the end. */
	cr_assert_eq(kv_btree_cursor_seek(&c, "dd", 2), 0);
	cr_assert_eq(kv_btree_cursor_next(&c), 0);
	cr_assert(!kv_btree_cursor_valid(&c));
	cr_assert_eq(kv_btree_cursor_next(&c), 0);
	cr_assert(!kv_btree_cursor_valid(&c));
	fx_close(&f);
}

/*
 * A cursor walks while the tree changes under it: it must always land on the
 * first key after the one it was on, in the tree as it is now.
 */
Test(btree, cursor_survives_modifications)
{
	uint8_t key[KV_BTREE_KEY_MAX], prev[KV_BTREE_KEY_MAX], val[64];
	const struct profile p = { .prefix = 100, .key_min = 120, .key_max = 400 };
	struct model m = { 0 };
	struct rng r = { test_seed(77) };
	struct kv_btree_cursor c;
	size_t prev_len = 0;
	unsigned steps = 0;
	struct fx f;

	fx_open(&f, 4096);
	for (unsigned i = 0; i < 600; i++) {
		size_t klen = make_key(&p, i, key);

		fill_pattern(val, sizeof(val), i);
		put_both(&f, &m, key, klen, val, 1 + i % 64);
	}
	kv_btree_cursor_init(&c, f.t);
	cr_assert_eq(kv_btree_cursor_seek(&c, NULL, 0), 0);
	while (kv_btree_cursor_valid(&c)) {
		size_t klen, idx, vlen;
		bool found;
		const uint8_t *ck = kv_btree_cursor_key(&c, &klen);
		unsigned act = (unsigned)rng_below(&r, 5);

		snprintf(f.ctx, sizeof(f.ctx), "seed %llu step %u", (unsigned long long)r.s, steps);
		/* The expected key: the first one after prev in the model. */
		idx = steps == 0 ? 0 : model_find(&m, prev, prev_len, &found);
		if (steps > 0 && found)
			idx++;
		cr_assert_lt(idx, m.n, "%s", f.ctx);
		cr_assert(key_cmp(ck, klen, m.e[idx].key, m.e[idx].klen) == 0,
			  "%s: cursor on the wrong key", f.ctx);
		memcpy(prev, ck, klen);
		prev_len = klen;
		if (act == 0) {
			/* Delete the current key: its value is gone. */
			cr_assert_eq(kv_btree_del(f.t, prev, prev_len), 0);
			model_del_at(&m, idx);
			cr_assert_eq(kv_btree_cursor_value(&c, val, sizeof(val), &vlen), -ENOENT,
				     "%s", f.ctx);
		} else if (act == 1 && prev_len < KV_BTREE_KEY_MAX) {
			/* Insert the key right after the current one: it comes next. */
			memcpy(key, prev, prev_len);
			key[prev_len] = 1;
			put_both(&f, &m, key, prev_len + 1, "new", 3);
		} else if (act == 2 && idx + 1 < m.n) {
			/* Delete the key that would have come next. */
			cr_assert_eq(kv_btree_del(f.t, m.e[idx + 1].key, m.e[idx + 1].klen), 0);
			model_del_at(&m, idx + 1);
		}
		cr_assert_eq(kv_btree_cursor_next(&c), 0, "%s", f.ctx);
		steps++;
	}
	/* The walk ended exactly at the model's end. */
	{
		bool found;
		size_t idx = model_find(&m, prev, prev_len, &found);

		cr_assert_eq(idx + found, m.n, "cursor ended early");
	}
	cr_assert_gt(steps, 500);
	verify(&f, &m);
	model_free(&m);
	fx_close(&f);
}

Test(btree, open_rejects_bad_pagers)
{
	struct kv_pager_ops ops;
	struct kv_btree *t2;
	struct fx f;
	void *pg;
	uint64_t meta;

	fx_open(&f, 4096);
	ops = *mem_pager_ops(f.mp);
	ops.page_usable = KV_BTREE_PAGE_USABLE_MIN - 1;
	cr_assert_eq(kv_btree_open(&ops, mem_pager_pager(f.mp), NULL, &t2), -EINVAL);
	ops.page_usable = 70000;
	cr_assert_eq(kv_btree_open(&ops, mem_pager_pager(f.mp), NULL, &t2), -EINVAL);

	/* A tree built for one page size cannot be opened with another. */
	cr_assert_eq(kv_btree_put(f.t, "k", 1, "v", 1, 0), 1);
	ops.page_usable = f.u - 32;
	cr_assert_eq(kv_btree_open(&ops, mem_pager_pager(f.mp), NULL, &t2), -EINVAL);

	/* A tree of the previous node format is refused, naming both versions. */
	cr_assert_eq(ops.get_root(mem_pager_pager(f.mp), &meta), 0);
	cr_assert_eq(ops.get(mem_pager_pager(f.mp), meta, true, &pg), 0);
	((struct kv_btree_meta *)pg)->version = KV_BTREE_META_VERSION - 1;
	ops.put(mem_pager_pager(f.mp), meta);
	ops.page_usable = f.u;
	cr_assert_eq(kv_btree_open(&ops, mem_pager_pager(f.mp), NULL, &t2), URT_E_VERSION);
	{
		char want[64];

		snprintf(want, sizeof(want), "format version %u, this build reads version %u",
			 KV_BTREE_META_VERSION - 1, KV_BTREE_META_VERSION);
		cr_assert(strstr(urt_last_error(), want), "message: %s", urt_last_error());
	}
	cr_assert_eq(kv_btree_exists(f.t, "k", 1), URT_E_VERSION);
	cr_assert_eq(ops.get(mem_pager_pager(f.mp), meta, true, &pg), 0);
	((struct kv_btree_meta *)pg)->version = KV_BTREE_META_VERSION;
	ops.put(mem_pager_pager(f.mp), meta);
	cr_assert_eq(kv_btree_exists(f.t, "k", 1), 1);

	/* A damaged meta page is reported as corruption, by open and by reads. */
	cr_assert_eq(ops.get(mem_pager_pager(f.mp), meta, true, &pg), 0);
	((struct kv_btree_meta *)pg)->magic ^= 1;
	ops.put(mem_pager_pager(f.mp), meta);
	ops.page_usable = f.u;
	cr_assert_eq(kv_btree_open(&ops, mem_pager_pager(f.mp), NULL, &t2), URT_E_CORRUPT);
	cr_assert_eq(kv_btree_exists(f.t, "k", 1), URT_E_CORRUPT);
	cr_assert_eq(mem_pager_pinned(f.mp), 0);
	fx_close(&f);
}

/* Pins the first leaf reached by following child 0 from the root. */
static uint64_t first_leaf(struct fx *f, uint64_t *parent)
{
	const struct kv_pager_ops *ops = mem_pager_ops(f->mp);
	struct kv_pager *p = mem_pager_pager(f->mp);
	uint64_t meta, pgno;
	void *pg;

	cr_assert_eq(ops->get_root(p, &meta), 0);
	cr_assert_eq(ops->get(p, meta, false, &pg), 0);
	pgno = ((struct kv_btree_meta *)pg)->root;
	ops->put(p, meta);
	*parent = 0;
	for (;;) {
		uint64_t child;

		cr_assert_eq(ops->get(p, pgno, false, &pg), 0);
		if (kv_node_is_leaf(pg)) {
			ops->put(p, pgno);
			return pgno;
		}
		child = kv_node_hdr(pg)->link;
		ops->put(p, pgno);
		*parent = pgno;
		pgno = child;
	}
}

/*
 * Opens a tree of 4 KiB pages with nkeys keys to damage: key 0 holds a
 * 20000-byte value (an overflow chain), the others 30 bytes.  The tree is
 * verified against the model and snapshotted, so that mem_pager_rollback
 * undoes the damage.  Returns its first leaf, and that leaf's parent in
 * *parent (0 when the leaf is the root).
 */
static uint64_t fx_open_damage_target_opts(struct fx *f, struct model *m, unsigned nkeys,
					   uint64_t *parent, bool count_keys)
{
	const struct profile p = { .prefix = 300, .key_min = 310, .key_max = 600 };
	uint8_t key[KV_BTREE_KEY_MAX], *val = malloc(20000);

	cr_assert_not_null(val);
	fx_open_opts(f, 4096, count_keys);
	for (unsigned i = 0; i < nkeys; i++) {
		size_t klen = make_key(&p, i, key);

		fill_pattern(val, 20000, i);
		put_both(f, m, key, klen, val, i == 0 ? 20000 : 30);
	}
	free(val);
	verify(f, m);
	cr_assert_eq(mem_pager_snapshot(f->mp), 0);
	return first_leaf(f, parent);
}

static uint64_t fx_open_damage_target(struct fx *f, struct model *m, unsigned nkeys,
				      uint64_t *parent)
{
	return fx_open_damage_target_opts(f, m, nkeys, parent, true);
}

/* Swaps the first two slots of leaf, so that its keys are out of order. */
static void swap_first_slots(struct fx *f, uint64_t leaf)
{
	const struct kv_pager_ops *ops = mem_pager_ops(f->mp);
	struct kv_pager *pp = mem_pager_pager(f->mp);
	struct kv_slot *s, t;
	void *pg;

	cr_assert_eq(ops->get(pp, leaf, true, &pg), 0);
	s = kv_node_slots(pg);
	t = s[0];
	s[0] = s[1];
	s[1] = t;
	ops->put(pp, leaf);
}

/* Each kind of damage must make kv_btree_check() fail and say why. */
Test(btree, check_detects_corruption)
{
	struct kv_btree_stats st;
	struct model m = { 0 };
	struct kv_pager *pp;
	const struct kv_pager_ops *ops;
	uint64_t meta, leaf, parent, ovf = 0;
	struct fx f;
	void *pg;

	leaf = fx_open_damage_target(&f, &m, 200, &parent);
	pp = mem_pager_pager(f.mp);
	ops = mem_pager_ops(f.mp);
	cr_assert_eq(ops->get_root(pp, &meta), 0);
	cr_assert_neq(parent, 0, "the tree has a single level");

	for (unsigned kind = 0; kind < 12; kind++) {
		switch (kind) {
		case 0: /* Two slots of a leaf swapped: keys out of order. */
			swap_first_slots(&f, leaf);
			break;
		case 1: /* Meta key count off by one. */
			cr_assert_eq(ops->get(pp, meta, true, &pg), 0);
			((struct kv_btree_meta *)pg)->count++;
			ops->put(pp, meta);
			break;
		case 2: /* The first leaf's link skips its successor. */
			cr_assert_eq(ops->get(pp, leaf, true, &pg), 0);
			kv_node_hdr(pg)->link = 0;
			ops->put(pp, leaf);
			break;
		case 3: /* An overflow page claims fewer bytes. */
			cr_assert_eq(ops->get(pp, leaf, false, &pg), 0);
			{
				struct kv_leaf_cell lc;

				kv_leaf_cell_decode(kv_node_cell(pg, 0), &lc);
				cr_assert(lc.overflow, "key 0 should have an overflow value");
				ovf = lc.ovf;
			}
			ops->put(pp, leaf);
			cr_assert_eq(ops->get(pp, ovf, true, &pg), 0);
			((struct kv_ovf_hdr *)pg)->len -= 1;
			ops->put(pp, ovf);
			break;
		case 4: /* A separator above the keys of the child to its right. */
			cr_assert_eq(ops->get(pp, parent, true, &pg), 0);
			{
				uint8_t *c = (uint8_t *)kv_node_cell(pg, 0);

				c[KV_INTERNAL_CELL_HDR + kv_ld16(c) - 1] = 0xff;
			}
			ops->put(pp, parent);
			break;
		case 5: /* Two children of a node are the same page. */
			cr_assert_eq(ops->get(pp, parent, true, &pg), 0);
			kv_internal_set_child(pg, 1, kv_internal_child(pg, 0));
			ops->put(pp, parent);
			break;
		case 6: /* A cell runs off the end of the page. */
			cr_assert_eq(ops->get(pp, leaf, true, &pg), 0);
			kv_node_slots(pg)[0].off = (uint16_t)(f.u - 4);
			ops->put(pp, leaf);
			break;
		case 7: /* A leaf turned into an internal node. */
			cr_assert_eq(ops->get(pp, leaf, true, &pg), 0);
			kv_node_hdr(pg)->type = KV_PAGE_INTERNAL;
			ops->put(pp, leaf);
			break;
		case 8: /* The last leaf links back to the first. */
			{
				uint64_t last = leaf, next;

				for (;;) {
					cr_assert_eq(ops->get(pp, last, false, &pg), 0);
					next = kv_node_hdr(pg)->link;
					ops->put(pp, last);
					if (next == 0)
						break;
					last = next;
				}
				cr_assert_eq(ops->get(pp, last, true, &pg), 0);
				kv_node_hdr(pg)->link = leaf;
				ops->put(pp, last);
			}
			break;
		case 9: /* The meta page's height is one too many. */
			cr_assert_eq(ops->get(pp, meta, true, &pg), 0);
			((struct kv_btree_meta *)pg)->height++;
			ops->put(pp, meta);
			break;
		case 10: /* A slot's head no longer matches its key. */
			cr_assert_eq(ops->get(pp, leaf, true, &pg), 0);
			kv_node_slots(pg)[1].head ^= 1;
			ops->put(pp, leaf);
			break;
		case 11: /* A key that does not start with its node's prefix. */
			cr_assert_eq(ops->get(pp, leaf, true, &pg), 0);
			cr_assert_gt(kv_node_hdr(pg)->prefix, 0, "the leaf has no prefix");
			((uint8_t *)kv_node_cell(pg, 1))[KV_LEAF_CELL_HDR] ^= 1;
			ops->put(pp, leaf);
			break;
		}
		cr_assert_eq(kv_btree_check(f.t, &st), URT_E_CORRUPT,
			     "damage %u was not detected", kind);
		cr_assert_neq(st.why[0], '\0', "damage %u: no reason given", kind);
		cr_log_info("damage %u: %s", kind, st.why);
		cr_assert_eq(mem_pager_pinned(f.mp), 0);
		mem_pager_rollback(f.mp);
		cr_assert_eq(kv_btree_check(f.t, &st), 0, "rollback failed: %s", st.why);
	}
	model_free(&m);
	fx_close(&f);
}

/* One modification of the fault tests. */
struct fop {
	bool del;			 /* Delete rather than put. */
	unsigned flags;			 /* Put flags. */
	size_t klen;			 /* Key length. */
	size_t vlen;			 /* Value length. */
	uint8_t key[KV_BTREE_KEY_MAX];	 /* Key. */
};

static int fop_run(struct fx *f, const struct fop *o, const uint8_t *val)
{
	if (o->del)
		return kv_btree_del(f->t, o->key, o->klen);
	return kv_btree_put(f->t, o->key, o->klen, val, o->vlen, o->flags);
}

/*
 * Runs o with each of its pager calls failing in turn: the error must come
 * back with nothing pinned, and after a rollback the tree must equal the
 * model.  Then runs it for real.  Returns the number of calls it makes.
 */
static uint64_t fault_every_call(struct fx *f, struct model *m, const struct fop *o,
				 const uint8_t *val, int want)
{
	uint64_t c0, calls;
	int rc;

	cr_assert_eq(mem_pager_snapshot(f->mp), 0);
	c0 = mem_pager_calls(f->mp);
	rc = fop_run(f, o, val);
	calls = mem_pager_calls(f->mp) - c0;
	cr_assert_eq(rc, want, "%s: dry run returned %d, want %d", f->ctx, rc, want);
	mem_pager_rollback(f->mp);
	kv_btree_invalidate_cursors(f->t);
	for (uint64_t k = 1; k <= calls; k++) {
		char base[sizeof(f->ctx)];

		memcpy(base, f->ctx, sizeof(base));
		mem_pager_fail_call(f->mp, k, -EIO);
		rc = fop_run(f, o, val);
		snprintf(f->ctx, sizeof(f->ctx), "%.100s call %llu of %llu", base,
			 (unsigned long long)k, (unsigned long long)calls);
		cr_assert_eq(rc, -EIO, "%s: returned %d", f->ctx, rc);
		cr_assert_eq(mem_pager_pinned(f->mp), 0, "%s: pages left pinned", f->ctx);
		mem_pager_rollback(f->mp);
		kv_btree_invalidate_cursors(f->t);
		verify(f, m);
		memcpy(f->ctx, base, sizeof(base));
	}
	rc = fop_run(f, o, val);
	cr_assert_eq(rc, want, "%s: real run returned %d", f->ctx, rc);
	if (rc >= 0 && o->del) {
		bool found;

		model_del_at(m, model_find(m, o->key, o->klen, &found));
	} else if (rc >= 0) {
		model_put(m, o->key, o->klen, val, o->vlen);
	}
	verify(f, m);
	return calls;
}

static void fault_modify_run(size_t page_size, uint64_t seed, unsigned nkeys)
{
	const struct profile p = { .prefix = 900, .key_min = 910, .key_max = 1024 };
	uint8_t *val = malloc(40000);
	struct model m = { 0 };
	struct rng r = { seed };
	uint64_t total = 0;
	unsigned height = 0;
	struct fop o;
	struct fx f;

	cr_assert_not_null(val);
	fx_open(&f, page_size);
	/* Grow from nothing, overwrite across the overflow threshold, then drain. */
	for (unsigned i = 0; i < 3 * nkeys || m.n > 0; i++) {
		unsigned phase = i < nkeys ? 0 : i < 2 * nkeys ? 1 : 2;
		bool found;
		int want = 0;

		memset(&o, 0, sizeof(o));
		if (phase == 2) {
			size_t idx = rng_below(&r, m.n);

			o.del = true;
			o.klen = m.e[idx].klen;
			memcpy(o.key, m.e[idx].key, o.klen);
		} else {
			o.klen = make_key(&p, rng_below(&r, phase == 0 ? 4 * nkeys : nkeys), o.key);
			o.vlen = rng_below(&r, 4) == 0 ? rng_range(&r, 1000, 40000)
						       : rng_range(&r, 0, 30);
			o.del = phase == 1 && rng_below(&r, 4) == 0;
			o.flags = rng_below(&r, 8) == 0 ? KV_BTREE_NX : 0;
		}
		model_find(&m, o.key, o.klen, &found);
		if (!o.del && !found)
			want = 1;
		if (o.del && !found)
			want = -ENOENT;
		if (!o.del && found && o.flags == KV_BTREE_NX)
			want = -EEXIST;
		fill_pattern(val, o.vlen, i);
		snprintf(f.ctx, sizeof(f.ctx), "seed %llu page %zu op %u (%s %zu-byte value)",
			 (unsigned long long)seed, page_size, i, o.del ? "del" : "put", o.vlen);
		total += fault_every_call(&f, &m, &o, val, want);
		{
			struct kv_btree_stats st;

			cr_assert_eq(kv_btree_check(f.t, &st), 0);
			if (st.height > height)
				height = st.height;
		}
	}
	cr_assert_geq(height, 3, "page %zu: the tree only reached height %u", page_size, height);
	cr_assert_eq(mem_pager_live_pages(f.mp), 2);
	cr_log_info("page %zu: %llu injected failures, height up to %u", page_size,
		    (unsigned long long)total, height);
	model_free(&m);
	fx_close(&f);
	free(val);
}

Test(btree, fault_every_call_of_modifications, .timeout = 600)
{
	fault_modify_run(4096, test_seed(501), 60);
	fault_modify_run(8192, test_seed(502), 60);
}

/*
 * Reads fail cleanly at every call and leave the tree as it was.  The tree
 * keeps no key count, so that kv_btree_count() walks every leaf.
 */
Test(btree, fault_every_call_of_reads, .timeout = 300)
{
	const struct profile p = { .prefix = 500, .key_min = 510, .key_max = 900 };
	uint8_t key[KV_BTREE_KEY_MAX], *val = malloc(30000);
	struct model m = { 0 };
	struct fx f;

	cr_assert_not_null(val);
	fx_open_opts(&f, 4096, false);
	snprintf(f.ctx, sizeof(f.ctx), "reads");
	for (unsigned i = 0; i < 150; i++) {
		size_t klen = make_key(&p, i, key);

		fill_pattern(val, 30000, i);
		put_both(&f, &m, key, klen, val, i % 10 == 0 ? 30000 : 40);
	}
	verify(&f, &m);
	for (unsigned what = 0; what < 5; what++) {
		uint64_t c0 = mem_pager_calls(f.mp), calls = 0;
		int rc = 0;

		for (int pass = 0; pass < 2; pass++) {
			uint64_t k = 1;

			do {
				struct kv_btree_stats st;
				struct kv_btree_cursor c;
				uint64_t n;
				size_t vlen;

				if (pass == 1)
					mem_pager_fail_call(f.mp, k, -EIO);
				switch (what) {
				case 0: /* A value in a chain of eight overflow pages. */
					rc = kv_btree_get(f.t, m.e[0].key, m.e[0].klen, f.vbuf,
							  KV_BTREE_VALUE_MAX, &vlen);
					break;
				case 1:
					rc = kv_btree_exists(f.t, m.e[5].key, m.e[5].klen);
					rc = rc == 1 ? 0 : rc;
					break;
				case 2:
					rc = kv_btree_count(f.t, &n);
					break;
				case 3: /* A full scan reading every value. */
					kv_btree_cursor_init(&c, f.t);
					rc = kv_btree_cursor_seek(&c, NULL, 0);
					while (rc == 0 && kv_btree_cursor_valid(&c)) {
						rc = kv_btree_cursor_value(&c, f.vbuf,
									   KV_BTREE_VALUE_MAX, &vlen);
						if (rc == 0)
							rc = kv_btree_cursor_next(&c);
					}
					break;
				case 4:
					rc = kv_btree_check(f.t, &st);
					break;
				}
				if (pass == 0) {
					cr_assert_eq(rc, 0, "read %u failed: %d", what, rc);
					break;
				}
				cr_assert_eq(rc, -EIO, "read %u, call %llu: returned %d", what,
					     (unsigned long long)k, rc);
				cr_assert_eq(mem_pager_pinned(f.mp), 0, "read %u, call %llu: pins left",
					     what, (unsigned long long)k);
			} while (++k <= calls);
			if (pass == 0)
				calls = mem_pager_calls(f.mp) - c0;
		}
		cr_assert_gt(calls, 0);
	}
	/* Reads never change pages (the pager would have aborted), and the tree is intact. */
	verify(&f, &m);
	model_free(&m);
	fx_close(&f);
	free(val);
}

/* Running out of pages anywhere in a put is an error like any other. */
Test(btree, out_of_space, .timeout = 120)
{
	const struct profile p = { .prefix = 900, .key_min = 910, .key_max = 1024 };
	uint8_t key[KV_BTREE_KEY_MAX], *val = malloc(200000);
	struct model m = { 0 };
	unsigned nospc = 0;
	struct fx f;

	cr_assert_not_null(val);
	fx_open(&f, 4096);
	for (unsigned i = 0; i < 300; i++) {
		size_t klen = make_key(&p, i, key), vlen = i % 7 == 0 ? 200000 : 10;
		int rc;

		snprintf(f.ctx, sizeof(f.ctx), "put %u", i);
		fill_pattern(val, vlen, i);
		cr_assert_eq(mem_pager_snapshot(f.mp), 0);
		/* No page to spare: any put that needs a page must fail. */
		mem_pager_set_pages_max(f.mp, mem_pager_live_pages(f.mp) + i % 3);
		rc = kv_btree_put(f.t, key, klen, val, vlen, 0);
		mem_pager_set_pages_max(f.mp, 0);
		cr_assert(rc == 1 || rc == -ENOSPC, "%s: returned %d", f.ctx, rc);
		cr_assert_eq(mem_pager_pinned(f.mp), 0, "%s", f.ctx);
		if (rc == -ENOSPC) {
			nospc++;
			mem_pager_rollback(f.mp);
			kv_btree_invalidate_cursors(f.t);
			verify(&f, &m);
			put_both(&f, &m, key, klen, val, vlen);
		} else {
			model_put(&m, key, klen, val, vlen);
		}
		if (i % 10 == 0)
			verify(&f, &m);
	}
	verify(&f, &m);
	cr_assert_gt(nospc, 50, "only %u puts ran out of space", nospc);
	model_free(&m);
	fx_close(&f);
	free(val);
}

/* The mem_pager's own guard: a write without write intent aborts the test. */
Test(mem_pager, catches_write_without_intent, .signal = SIGABRT)
{
	struct mem_pager_opts o = { .page_usable = 4032 };
	const struct kv_pager_ops *ops;
	struct mem_pager *mp;
	struct kv_pager *p;
	uint64_t pgno;
	void *pg;

	cr_assert_eq(mem_pager_create(&o, &mp), 0);
	ops = mem_pager_ops(mp);
	p = mem_pager_pager(mp);
	cr_assert_eq(ops->alloc(p, &pgno, &pg), 0);
	ops->put(p, pgno);
	cr_assert_eq(ops->get(p, pgno, false, &pg), 0);
	((uint8_t *)pg)[100] = 1;
	ops->put(p, pgno);
}

/* Builds a leaf or internal node page from cells; returns its page number. */
static uint64_t build_node(struct fx *f, uint8_t type, uint64_t link, uint8_t cells[][1100],
			   const size_t *sizes, unsigned n)
{
	const struct kv_pager_ops *ops = mem_pager_ops(f->mp);
	uint8_t *tmp = malloc(f->u);
	uint64_t pgno;
	void *pg;

	cr_assert_not_null(tmp);
	cr_assert_eq(ops->alloc(mem_pager_pager(f->mp), &pgno, &pg), 0);
	kv_node_init(pg, f->u, type, link);
	for (unsigned i = 0; i < n; i++)
		cr_assert(kv_node_insert(pg, f->u, i, cells[i], sizes[i], tmp), "cell %u", i);
	ops->put(mem_pager_pager(f->mp), pgno);
	free(tmp);
	return pgno;
}

/*
 * A rebalance that lengthens a separator in a full parent must split the
 * parent.  Random workloads almost never reach this, so the tree is built by
 * hand (4 KiB pages, 4016 bytes for cells):
 *
 *   root: C0 | "b" | C1 | "c"+y*999 | C2 | "d"+y*999 | C3 | "e"+y*999 | C4
 *
 * The root has 943 bytes free (8-byte slots).  C0 holds two short keys and
 * C1 four keys of 976 bytes ("b" + x*974 + digit) with 10-byte values, 4008
 * bytes in all.  Deleting one key of C0 leaves it underfull; C0 and C1 do
 * not fit in one node, so their cells are cut anew between C1's second and
 * third keys, and the 976-byte separator that replaces "b" needs 994 bytes
 * (cell and slot), more than the 962 the root then has: the root splits.
 */
Test(btree, rebalance_splits_a_full_parent)
{
	static uint8_t cells[5][1100];
	const struct kv_pager_ops *ops;
	struct kv_btree_counters cnt;
	struct kv_btree_stats st;
	struct model m = { 0 };
	uint8_t key[KV_BTREE_KEY_MAX];
	uint64_t child[5], meta;
	size_t sizes[5];
	struct kv_btree_meta mt;
	struct fop o;
	struct fx f;
	void *pg;

	fx_open(&f, 4096);
	ops = mem_pager_ops(f.mp);
	snprintf(f.ctx, sizeof(f.ctx), "hand-built tree");
	/* Leaves, right to left so that each can link to its successor. */
	child[4] = 0;
	for (int c = 4; c >= 2; c--) {
		key[0] = (uint8_t)('a' + c);
		memset(key + 1, 'y', 999);
		sizes[0] = kv_leaf_cell_encode(cells[0], key, 1000, "v", 1, false, 0);
		model_put(&m, key, 1000, "v", 1);
		child[c] = build_node(&f, KV_PAGE_LEAF, c == 4 ? 0 : child[c + 1], cells, sizes, 1);
	}
	for (unsigned i = 0; i < 4; i++) {
		key[0] = 'b';
		memset(key + 1, 'x', 974);
		key[975] = (uint8_t)('1' + i);
		sizes[i] = kv_leaf_cell_encode(cells[i], key, 976, "0123456789", 10, false, 0);
		model_put(&m, key, 976, "0123456789", 10);
	}
	child[1] = build_node(&f, KV_PAGE_LEAF, child[2], cells, sizes, 4);
	sizes[0] = kv_leaf_cell_encode(cells[0], "a1", 2, "v", 1, false, 0);
	sizes[1] = kv_leaf_cell_encode(cells[1], "a2", 2, "v", 1, false, 0);
	model_put(&m, "a1", 2, "v", 1);
	model_put(&m, "a2", 2, "v", 1);
	child[0] = build_node(&f, KV_PAGE_LEAF, child[1], cells, sizes, 2);
	/* The root. */
	sizes[0] = kv_internal_cell_encode(cells[0], "b", 1, child[1]);
	for (unsigned c = 2; c <= 4; c++) {
		key[0] = (uint8_t)('a' + c);
		memset(key + 1, 'y', 999);
		sizes[c - 1] = kv_internal_cell_encode(cells[c - 1], key, 1000, child[c]);
	}
	mt = (struct kv_btree_meta){
		.type = KV_PAGE_META, .version = KV_BTREE_META_VERSION, .flags = KV_BTREE_META_COUNTED,
		.magic = KV_BTREE_META_MAGIC,
		.page_usable = (uint32_t)f.u, .height = 2, .count = m.n,
		.root = build_node(&f, KV_PAGE_INTERNAL, child[0], cells, sizes, 4),
	};
	cr_assert_eq(ops->alloc(mem_pager_pager(f.mp), &meta, &pg), 0);
	memcpy(pg, &mt, sizeof(mt));
	ops->put(mem_pager_pager(f.mp), meta);
	cr_assert_eq(ops->set_root(mem_pager_pager(f.mp), meta), 0);
	st = verify(&f, &m);
	cr_assert_eq(st.height, 2);

	/* The delete, with each of its pager calls failing in turn, then for real. */
	memset(&o, 0, sizeof(o));
	o.del = true;
	o.klen = 2;
	memcpy(o.key, "a2", 2);
	fault_every_call(&f, &m, &o, NULL, 0);
	kv_btree_get_counters(f.t, &cnt);
	cr_assert_gt(cnt.rebalance_splits, 0, "the root did not split");
	cr_assert_gt(cnt.redistributions[0], 0);
	st = verify(&f, &m);
	cr_assert_eq(st.height, 3, "the split root did not grow the tree");
	model_free(&m);
	fx_close(&f);
}

/* Reads and writes that meet a damaged page fail with URT_E_CORRUPT, pinning nothing. */
Test(btree, operations_report_corruption)
{
	const struct kv_pager_ops *ops;
	struct kv_btree_cursor c;
	struct model m = { 0 };
	struct kv_leaf_cell lc;
	struct kv_pager *pp;
	uint64_t leaf, parent;
	size_t vlen;
	struct fx f;
	void *pg;

	leaf = fx_open_damage_target(&f, &m, 100, &parent);
	pp = mem_pager_pager(f.mp);
	ops = mem_pager_ops(f.mp);

	/* A node page of the wrong type, met by every kind of operation. */
	cr_assert_eq(ops->get(pp, leaf, true, &pg), 0);
	kv_node_hdr(pg)->type = KV_PAGE_OVERFLOW;
	ops->put(pp, leaf);
	cr_assert_eq(kv_btree_get(f.t, m.e[0].key, m.e[0].klen, NULL, 0, &vlen),
		     URT_E_CORRUPT);
	cr_assert_eq(kv_btree_put(f.t, m.e[0].key, m.e[0].klen, "x", 1, 0), URT_E_CORRUPT);
	cr_assert_eq(kv_btree_del(f.t, m.e[1].key, m.e[1].klen), URT_E_CORRUPT);
	kv_btree_cursor_init(&c, f.t);
	cr_assert_eq(kv_btree_cursor_seek(&c, NULL, 0), URT_E_CORRUPT);
	cr_assert(!kv_btree_cursor_valid(&c));
	cr_assert_eq(mem_pager_pinned(f.mp), 0);
	mem_pager_rollback(f.mp);

	/* An overflow page of the wrong type: reading and freeing the value notice. */
	cr_assert_eq(ops->get(pp, leaf, false, &pg), 0);
	kv_leaf_cell_decode(kv_node_cell(pg, 0), &lc);
	ops->put(pp, leaf);
	cr_assert(lc.overflow);
	cr_assert_eq(ops->get(pp, lc.ovf, true, &pg), 0);
	((struct kv_ovf_hdr *)pg)->type = KV_PAGE_LEAF;
	ops->put(pp, lc.ovf);
	cr_assert_eq(kv_btree_get(f.t, m.e[0].key, m.e[0].klen, f.vbuf, 20000, &vlen),
		     URT_E_CORRUPT);
	cr_assert_eq(kv_btree_del(f.t, m.e[0].key, m.e[0].klen), URT_E_CORRUPT);
	cr_assert_eq(mem_pager_pinned(f.mp), 0);
	mem_pager_rollback(f.mp);

	/* Pages changed under a positioned cursor without invalidating it. */
	cr_assert_eq(kv_btree_cursor_seek(&c, m.e[0].key, m.e[0].klen), 0);
	swap_first_slots(&f, leaf);
	cr_assert_eq(kv_btree_cursor_value(&c, f.vbuf, 100, &vlen), URT_E_CORRUPT);
	cr_assert_eq(ops->get(pp, leaf, true, &pg), 0);
	kv_node_hdr(pg)->count = 0;
	ops->put(pp, leaf);
	cr_assert_eq(kv_btree_cursor_value(&c, f.vbuf, 100, &vlen), URT_E_CORRUPT);
	cr_assert_eq(kv_btree_cursor_next(&c), URT_E_CORRUPT);
	cr_assert(!kv_btree_cursor_valid(&c));
	cr_assert_eq(kv_btree_cursor_value(&c, f.vbuf, 100, &vlen), -EINVAL);
	cr_assert_eq(mem_pager_pinned(f.mp), 0);
	mem_pager_rollback(f.mp);
	kv_btree_invalidate_cursors(f.t);
	verify(&f, &m);
	model_free(&m);
	fx_close(&f);
}

/*
 * Damage inside a node whose header is sound (found by fuzz_btree_node):
 * before the tree checked cells, a GET of the damaged key read out of the
 * page (ASan: SEGV in kv_leaf_cell_decode, reading expire_at 60000 bytes
 * past a cell; heap-buffer-overflow in kv_node_lower_bound's key compare
 * of a cell whose slot points 4 bytes before the page end).  Now each is
 * URT_E_CORRUPT from every kind of read and write, pinning nothing.
 */
Test(btree, damaged_cells_are_corrupt)
{
	const struct kv_pager_ops *ops;
	struct kv_btree_cursor c;
	struct kv_btree_stats st;
	struct model m = { 0 };
	struct kv_pager *pp;
	uint64_t leaf, parent;
	char want[128];
	size_t vlen;
	struct fx f;
	void *pg;

	leaf = fx_open_damage_target(&f, &m, 100, &parent);
	pp = mem_pager_pager(f.mp);
	ops = mem_pager_ops(f.mp);
	for (unsigned kind = 0; kind < 2; kind++) {
		uint8_t *cell;

		cr_assert_eq(ops->get(pp, leaf, true, &pg), 0);
		if (kind == 0) {
			/* Cell 0: an inline value of 60000 bytes with an expiry after it. */
			uint32_t big = 60000;

			cell = (uint8_t *)kv_node_cell(pg, 0);
			cell[2] = KV_CELL_EXPIRES;
			memcpy(cell + 4, &big, sizeof(big));
		} else {
			/* Slot 0 points at the page's last 4 bytes: the cell's header runs past it. */
			kv_node_slots(pg)[0].off = (uint16_t)(f.u - 4);
		}
		ops->put(pp, leaf);
		cr_assert_eq(kv_btree_get(f.t, m.e[0].key, m.e[0].klen, f.vbuf, 100, &vlen),
			     URT_E_CORRUPT, "damage %u: get", kind);
		cr_assert_eq(kv_btree_exists(f.t, m.e[0].key, m.e[0].klen), URT_E_CORRUPT,
			     "damage %u: exists", kind);
		kv_btree_cursor_init(&c, f.t);
		cr_assert_eq(kv_btree_cursor_seek(&c, NULL, 0), URT_E_CORRUPT, "damage %u: seek", kind);
		cr_assert(!kv_btree_cursor_valid(&c));
		cr_assert_eq(kv_btree_put(f.t, m.e[1].key, m.e[1].klen, "x", 1, 0), URT_E_CORRUPT,
			     "damage %u: put", kind);
		cr_assert_eq(kv_btree_check(f.t, &st), URT_E_CORRUPT, "damage %u: check", kind);
		snprintf(want, sizeof(want), "page %llu: %s", (unsigned long long)leaf,
			 kind == 0 ? "cell runs past the end of the page"
				   : "slot points outside the cell area");
		cr_assert_str_eq(st.why, want, "damage %u", kind);
		cr_assert_eq(mem_pager_pinned(f.mp), 0);
		mem_pager_rollback(f.mp);
		kv_btree_invalidate_cursors(f.t);
	}
	verify(&f, &m);
	model_free(&m);
	fx_close(&f);
}

/*
 * A leaf chain that damage turned into a loop (found with fuzz_btree_node's
 * harness, whose scan is bounded): before, a cursor walked the last leaf's
 * link back to the first leaf and returned the same keys for ever (so
 * would urkv's SCAN, and DBSIZE's walk of expiring keys on its core), and
 * kv_btree_count of an uncounted tree spun on an empty leaf linking to
 * itself.  Now a cursor's keys must strictly increase, count_leaves
 * refuses an empty leaf that is not the root and first keys that do not
 * increase, and each ends in URT_E_CORRUPT.
 */
/* Scans every key with its value; returns the first error and counts the keys passed. */
static int scan_all(struct fx *f, unsigned *steps)
{
	struct kv_btree_cursor c;
	size_t vlen;
	int rc;

	*steps = 0;
	kv_btree_cursor_init(&c, f->t);
	rc = kv_btree_cursor_seek(&c, NULL, 0);
	while (rc == 0 && kv_btree_cursor_valid(&c)) {
		cr_assert_eq(kv_btree_cursor_value(&c, f->vbuf, 100, &vlen), 0);
		rc = kv_btree_cursor_next(&c);
		++*steps;
	}
	return rc;
}

Test(btree, looping_leaf_chain_is_corrupt, .timeout = 60)
{
	const struct kv_pager_ops *ops;
	struct kv_btree_cursor c;
	struct model m = { 0 };
	struct kv_pager *pp;
	uint64_t first, parent, last, next, count;
	unsigned steps;
	struct fx f;
	void *pg;
	int rc;

	first = fx_open_damage_target_opts(&f, &m, 200, &parent, false);
	pp = mem_pager_pager(f.mp);
	ops = mem_pager_ops(f.mp);
	for (last = first;; last = next) {
		cr_assert_eq(ops->get(pp, last, false, &pg), 0);
		next = kv_node_hdr(pg)->link;
		ops->put(pp, last);
		if (next == 0)
			break;
	}
	cr_assert_neq(last, first, "the tree has a single leaf");

	/* The last leaf links back to the first: the scan stops at the first repeated key. */
	cr_assert_eq(ops->get(pp, last, true, &pg), 0);
	kv_node_hdr(pg)->link = first;
	ops->put(pp, last);
	rc = scan_all(&f, &steps);
	cr_assert_eq(rc, URT_E_CORRUPT, "scan: %d after %u keys", rc, steps);
	cr_assert_eq(steps, m.n, "the scan stopped after %u keys of %zu", steps, m.n);
	cr_assert_eq(kv_btree_count(f.t, &count), URT_E_CORRUPT);
	cr_assert_eq(mem_pager_pinned(f.mp), 0);
	mem_pager_rollback(f.mp);
	kv_btree_invalidate_cursors(f.t);

	/* The first leaf emptied, linking to itself. */
	cr_assert_eq(ops->get(pp, first, true, &pg), 0);
	kv_node_init(pg, f.u, KV_PAGE_LEAF, first);
	ops->put(pp, first);
	cr_assert_eq(kv_btree_count(f.t, &count), URT_E_CORRUPT);
	kv_btree_cursor_init(&c, f.t);
	cr_assert_eq(kv_btree_cursor_seek(&c, NULL, 0), URT_E_CORRUPT);
	cr_assert_eq(mem_pager_pinned(f.mp), 0);
	mem_pager_rollback(f.mp);
	kv_btree_invalidate_cursors(f.t);

	/* The first leaf's keys out of order, and the last leaf linking to it. */
	swap_first_slots(&f, first);
	cr_assert_eq(ops->get(pp, last, true, &pg), 0);
	kv_node_hdr(pg)->link = first;
	ops->put(pp, last);
	cr_assert_eq(kv_btree_count(f.t, &count), URT_E_CORRUPT);
	cr_assert_eq(scan_all(&f, &steps), URT_E_CORRUPT);
	cr_assert_eq(steps, 1, "the scan went on after the second key, below the first");
	cr_assert_eq(mem_pager_pinned(f.mp), 0);
	mem_pager_rollback(f.mp);
	kv_btree_invalidate_cursors(f.t);
	verify(&f, &m);
	model_free(&m);
	fx_close(&f);
}

/* The last page a tree reported through ops->corrupt, and why. */
static uint64_t named_pgno;
static const char *named_why;

static void record_corrupt(struct kv_pager *p, uint64_t pgno, const char *why)
{
	(void)p;
	named_pgno = pgno;
	named_why = why;
}

/*
 * A leaf cell whose overflow value has no chain (first page 0), found by
 * fuzz_btree_node: GET answered URT_E_CORRUPT naming no page (urkv logs
 * "no bad page recorded"), though the leaf holding the pointer is known.
 * Now the leaf is named.
 */
Test(btree, overflow_value_without_chain_names_its_leaf)
{
	struct kv_pager_ops ops;
	struct model m = { 0 };
	struct kv_btree *t;
	struct kv_pager *pp;
	uint64_t leaf, parent;
	size_t vlen;
	struct fx f;
	void *pg;

	leaf = fx_open_damage_target(&f, &m, 100, &parent);
	pp = mem_pager_pager(f.mp);
	ops = *mem_pager_ops(f.mp);
	ops.corrupt = record_corrupt;
	cr_assert_eq(kv_btree_open(&ops, pp, NULL, &t), 0);
	cr_assert_eq(ops.get(pp, leaf, true, &pg), 0);
	{
		uint8_t *cell = (uint8_t *)kv_node_cell(pg, 0);
		struct kv_leaf_cell lc;

		kv_leaf_cell_decode(cell, &lc);
		cr_assert(lc.overflow, "key 0 should have an overflow value");
		kv_st64(cell + KV_LEAF_CELL_HDR + lc.klen, 0);
	}
	ops.put(pp, leaf);
	named_pgno = 0;
	named_why = NULL;
	cr_assert_eq(kv_btree_get(t, m.e[0].key, m.e[0].klen, f.vbuf, 100, &vlen), URT_E_CORRUPT);
	cr_assert_eq(named_pgno, leaf, "named page %llu, not the leaf %llu",
		     (unsigned long long)named_pgno, (unsigned long long)leaf);
	cr_assert_str_eq(named_why, "an overflow value with no chain");
	cr_assert_eq(mem_pager_pinned(f.mp), 0);
	kv_btree_close(t);
	mem_pager_rollback(f.mp);
	kv_btree_invalidate_cursors(f.t);
	verify(&f, &m);
	model_free(&m);
	fx_close(&f);
}

/*
 * A split of a leaf whose keys are out of order (fuzz_btree_node, mode
 * 0x8f: a generated leaf in the tree, then puts): kv_node_refresh_prefix
 * took the prefix its first and last keys share, which a shorter key
 * between them lacks, and set_prefix's assertion aborted the process.
 * Now the prefix is what every key shares.
 */
Test(btree, refresh_prefix_of_keys_out_of_order)
{
	static uint64_t page[4064 / 8], tmp[4064 / 8];
	static const char *const keys[] = { "ab", "abcdef1", "abcdef2" };
	const size_t u = sizeof(page);
	struct kv_slot *slot = kv_node_slots(page), s;
	uint8_t cell[64];

	kv_node_init(page, u, KV_PAGE_LEAF, 0);
	for (unsigned i = 0; i < 3; i++) {
		size_t n = kv_leaf_cell_encode(cell, keys[i], strlen(keys[i]), "v", 1, false, 0);

		cr_assert(kv_node_insert(page, u, i, cell, n, tmp));
	}
	cr_assert_eq(kv_node_hdr(page)->prefix, 2);
	/* "abcdef1", "ab", "abcdef2": every cell sound, the order wrong. */
	s = slot[0];
	slot[0] = slot[1];
	slot[1] = s;
	cr_assert_null(kv_node_check_cells(page, u));
	kv_node_refresh_prefix(page);
	cr_assert_eq(kv_node_hdr(page)->prefix, 2);
	cr_assert_null(kv_node_check_cells(page, u));
}

/*
 * What a put writes: an insert that fits its leaf writes the leaf and, when
 * the tree counts keys, the meta page; an overwrite writes only the leaf.
 */
Test(btree, pages_written_per_put)
{
	for (int counted = 0; counted < 2; counted++) {
		uint64_t w0, n = 0;
		struct fx f;

		fx_open_opts(&f, 4096, counted);
		cr_assert_eq(kv_btree_put(f.t, "a", 1, "1", 1, 0), 1);
		w0 = mem_pager_write_intents(f.mp);
		cr_assert_eq(kv_btree_put(f.t, "b", 1, "2", 1, 0), 1);
		cr_assert_eq(mem_pager_write_intents(f.mp) - w0, counted ? 2 : 1,
			     "counted %d: insert wrote %llu pages", counted,
			     (unsigned long long)(mem_pager_write_intents(f.mp) - w0));
		w0 = mem_pager_write_intents(f.mp);
		cr_assert_eq(kv_btree_put(f.t, "b", 1, "3", 1, 0), 0);
		cr_assert_eq(mem_pager_write_intents(f.mp) - w0, 1, "counted %d: overwrite",
			     counted);
		w0 = mem_pager_write_intents(f.mp);
		cr_assert_eq(kv_btree_del(f.t, "a", 1), 0);
		cr_assert_eq(mem_pager_write_intents(f.mp) - w0, counted ? 2 : 1,
			     "counted %d: delete", counted);
		w0 = mem_pager_write_intents(f.mp);
		cr_assert_eq(kv_btree_get(f.t, "b", 1, NULL, 0, &(size_t){ 0 }), 0);
		cr_assert_eq(kv_btree_count(f.t, &n), 0);
		cr_assert_eq(n, 1);
		cr_assert_eq(mem_pager_write_intents(f.mp), w0, "reads wrote pages");
		fx_close(&f);
	}
}

/* Handles cache nothing: two handles share a tree, and one can move between pagers. */
Test(btree, handles_share_a_tree_and_switch_pagers)
{
	struct mem_pager_opts o = { .page_usable = 4096 - PAGE_HDR, .relocate = true };
	struct kv_btree_cursor c;
	struct mem_pager *other;
	struct kv_btree *b;
	uint8_t buf[8];
	size_t vlen, klen;
	uint64_t n;
	struct fx f;

	fx_open(&f, 4096);
	cr_assert_eq(kv_btree_open(mem_pager_ops(f.mp), mem_pager_pager(f.mp), NULL, &b), 0);
	cr_assert_eq(kv_btree_put(f.t, "k1", 2, "v1", 2, 0), 1);
	cr_assert_eq(kv_btree_get(b, "k1", 2, buf, sizeof(buf), &vlen), 0);
	cr_assert(vlen == 2 && memcmp(buf, "v1", 2) == 0);
	cr_assert_eq(kv_btree_put(b, "k2", 2, "v2", 2, 0), 1);
	cr_assert_eq(kv_btree_count(f.t, &n), 0);
	cr_assert_eq(n, 2);

	/* Re-pointed at another pager, b sees that pager's (empty) tree, then the first again. */
	cr_assert_eq(mem_pager_create(&o, &other), 0);
	kv_btree_cursor_init(&c, b);
	cr_assert_eq(kv_btree_cursor_seek(&c, NULL, 0), 0);
	cr_assert(kv_btree_cursor_valid(&c));
	kv_btree_set_pager(b, mem_pager_pager(other));
	cr_assert_eq(kv_btree_exists(b, "k1", 2), 0);
	cr_assert_eq(kv_btree_put(b, "z", 1, "", 0, 0), 1);
	/* The cursor re-seeks in the tree it now sees: after "k1" comes "z". */
	cr_assert_eq(kv_btree_cursor_next(&c), 0);
	cr_assert(kv_btree_cursor_valid(&c));
	cr_assert(memcmp(kv_btree_cursor_key(&c, &klen), "z", 1) == 0 && klen == 1);
	cr_assert_eq(mem_pager_live_pages(other), 2);
	kv_btree_set_pager(b, mem_pager_pager(f.mp));
	cr_assert_eq(kv_btree_exists(b, "k2", 2), 1);
	cr_assert_eq(kv_btree_exists(b, "z", 1), 0);
	cr_assert_eq(kv_btree_check(b, NULL), 0);
	kv_btree_close(b);
	mem_pager_destroy(other);
	fx_close(&f);
}

/*
 * A put of an existing key whose new cell has the old cell's size rewrites
 * the cell where it is (leaf_modify): counted as an overwrite, the value
 * reads back, the node uses the same bytes (no dead cell left behind), and
 * every tree invariant holds.  A put that changes the cell's size (another
 * value length, an expiry added) still goes through remove and insert.
 */
Test(btree, overwrite_same_size_in_place)
{
	struct kv_btree_counters c0, c1;
	struct kv_btree_stats s0, s1;
	struct model m = { 0 };
	struct kv_btree_xput x = { 0 };
	uint8_t val[64];
	char key[16];
	struct fx f;

	fx_open(&f, 4096);
	for (unsigned n = 0; n < 60; n++) {
		snprintf(key, sizeof(key), "key%04u", n);
		fill_pattern(val, 16, n);
		put_both(&f, &m, key, strlen(key), val, 16);
	}
	s0 = verify(&f, &m);
	kv_btree_get_counters(f.t, &c0);
	for (unsigned n = 0; n < 60; n += 3) {
		snprintf(key, sizeof(key), "key%04u", n);
		fill_pattern(val, 16, 1000 + n);
		put_both(&f, &m, key, strlen(key), val, 16);
	}
	kv_btree_get_counters(f.t, &c1);
	cr_assert_eq(c1.overwrites - c0.overwrites, 20, "%llu overwrites in place",
		     (unsigned long long)(c1.overwrites - c0.overwrites));
	cr_assert_geq(mem_pager_ranged_writes(f.mp), 20, "the rewrites did not use write_at");
	s1 = verify(&f, &m);
	cr_assert_eq(s1.node_bytes_used, s0.node_bytes_used, "in-place overwrites moved bytes");
	/* Another size: remove and insert, not counted. */
	snprintf(key, sizeof(key), "key%04u", 7);
	fill_pattern(val, 17, 7);
	put_both(&f, &m, key, strlen(key), val, 17);
	kv_btree_get_counters(f.t, &c0);
	cr_assert_eq(c0.overwrites, c1.overwrites);
	/* An expiry makes the cell 8 bytes longer: not in place either. */
	snprintf(key, sizeof(key), "key%04u", 10);
	fill_pattern(val, 16, 10);
	x.expire_at = 4102444800000ull;
	cr_assert_eq(kv_btree_put_x(f.t, key, strlen(key), val, 16, 0, &x), 0);
	kv_btree_get_counters(f.t, &c1);
	cr_assert_eq(c1.overwrites, c0.overwrites);
	cr_assert_eq(x.new_expire_at, 4102444800000ull);
	cr_assert_eq(kv_btree_check(f.t, &s1), 0);
	model_free(&m);
	fx_close(&f);
}
