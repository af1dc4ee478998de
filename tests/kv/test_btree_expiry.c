/* SPDX-License-Identifier: MIT */
/*
 * Key expiry in the B+tree alone (KV_CELL_EXPIRES cells, put_x/del_x/get_x,
 * the cursor's expire_at): random operations against a model on the
 * in-memory pager, on every page size, with values inline and in overflow
 * chains, checking every invariant and that no page leaks.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "btree.h"
#include "btree_node.h"
#include "mem_pager.h"

#define NKEYS 300
#define PAGE_HDR 64	/* Bytes of a page the pager keeps (as test_btree.c). */

struct mkey {
	bool present;		/* A cell exists (expired or not). */
	uint64_t expire_at;	/* Its expiry (0: never). */
	size_t vlen;		/* Value length. */
	uint8_t tag;		/* Value fill byte. */
};

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static size_t key_of(unsigned i, uint8_t *key)
{
	/* Some long keys, so that cells with an expiry get near their maximum. */
	size_t klen = i % 17 == 0 ? 1000 : 12;

	memset(key, 'x', klen);
	snprintf((char *)key, 12, "k%05u", i);
	key[6] = 'x';
	return klen;
}

static size_t pick_vlen(void)
{
	static const size_t sizes[] = { 0, 1, 8, 9, 100, 1000, 1300, 1400, 3000, 70000 };

	return sizes[rnd() % (sizeof(sizes) / sizeof(sizes[0]))];
}

static bool live(const struct mkey *m, uint64_t now)
{
	return m->present && (m->expire_at == 0 || m->expire_at > now);
}

static void check_all(struct kv_btree *t, const struct mkey *model, uint8_t *buf, uint64_t now)
{
	struct kv_btree_stats st;
	struct kv_btree_cursor c;
	uint8_t key[KV_BTREE_KEY_MAX];
	unsigned n = 0;
	int rc = kv_btree_check(t, &st);

	cr_assert_eq(rc, 0, "check: %d (%s)", rc, st.why);
	for (unsigned i = 0; i < NKEYS; i++) {
		size_t klen = key_of(i, key), vlen = 0;
		uint64_t exp = 7;

		rc = kv_btree_get_x(t, key, klen, buf, KV_BTREE_VALUE_MAX, &vlen, &exp);
		if (!model[i].present) {
			cr_assert_eq(rc, -ENOENT, "key %u", i);
			continue;
		}
		n++;
		cr_assert_eq(rc, 0, "key %u: %d", i, rc);
		cr_assert_eq(exp, model[i].expire_at, "key %u expiry", i);
		cr_assert_eq(vlen, model[i].vlen, "key %u length", i);
		for (size_t j = 0; j < vlen; j++)
			cr_assert_eq(buf[j], model[i].tag, "key %u byte %zu", i, j);
	}
	cr_assert_eq(st.keys, n);
	kv_btree_cursor_init(&c, t);
	cr_assert_eq(kv_btree_cursor_seek(&c, NULL, 0), 0);
	while (kv_btree_cursor_valid(&c)) {
		size_t klen;
		const uint8_t *k = kv_btree_cursor_key(&c, &klen);
		unsigned i = (unsigned)atoi((const char *)k + 1);

		cr_assert(i < NKEYS && model[i].present);
		cr_assert_eq(kv_btree_cursor_expire_at(&c), model[i].expire_at, "cursor key %u", i);
		cr_assert_eq(kv_btree_cursor_next(&c), 0);
	}
	(void)now;
}

static void run(size_t page_size, uint64_t seed)
{
	struct mem_pager_opts mo = { .page_usable = page_size - PAGE_HDR };
	struct mem_pager *mp;
	struct kv_btree *t;
	struct mkey model[NKEYS] = { 0 };
	uint8_t key[KV_BTREE_KEY_MAX];
	uint8_t *val = malloc(KV_BTREE_VALUE_MAX), *buf = malloc(KV_BTREE_VALUE_MAX);
	uint64_t now = 1000000;

	rng_state = seed;
	cr_assert(val && buf);
	cr_assert_eq(mem_pager_create(&mo, &mp), 0);
	cr_assert_eq(kv_btree_open(mem_pager_ops(mp), mem_pager_pager(mp), NULL, &t), 0);
	for (unsigned step = 0; step < 4000; step++) {
		unsigned i = (unsigned)(rnd() % NKEYS), op = (unsigned)(rnd() % 8);
		size_t klen = key_of(i, key);
		struct mkey *m = &model[i];
		struct kv_btree_xput x = { 0 };
		int rc;

		if (step % 200 == 199)
			now += 50;	/* Time passes: some keys expire. */
		x.now = now;
		switch (op) {
		case 0: case 1: case 2: {	/* put, maybe with an expiry, maybe NX/XX/KEEPTTL */
			unsigned f = (unsigned)(rnd() % 4);
			unsigned flags = f == 1 ? KV_BTREE_NX : f == 2 ? KV_BTREE_XX :
					 f == 3 ? KV_BTREE_KEEPTTL : 0;
			size_t vlen = pick_vlen();
			uint8_t tag = (uint8_t)rnd();
			bool was_live = live(m, now);

			/* Some expiries already past: stored, and absent from then on. */
			x.expire_at = rnd() % 2 ? now + rnd() % 400 + 1 - 100 : 0;
			if (flags == KV_BTREE_KEEPTTL)
				x.expire_at = 0;
			memset(val, tag, vlen);
			rc = kv_btree_put_x(t, key, klen, val, vlen, flags, &x);
			if ((flags == KV_BTREE_NX && was_live) || (flags == KV_BTREE_XX && !was_live)) {
				cr_assert_eq(rc, flags == KV_BTREE_NX ? -EEXIST : -ENOENT);
				break;
			}
			cr_assert_eq(rc, m->present ? 0 : 1, "put key %u: %d", i, rc);
			cr_assert_eq(x.found, m->present);
			cr_assert_eq(x.old_expire_at, m->present ? m->expire_at : 0);
			if (!(flags == KV_BTREE_KEEPTTL && was_live))
				m->expire_at = x.expire_at;
			cr_assert_eq(x.new_expire_at, m->expire_at);
			m->present = true;
			m->vlen = vlen;
			m->tag = tag;
			break;
		}
		case 3: case 4: {	/* a new expiry, value kept */
			x.expire_at = rnd() % 3 ? now + rnd() % 300 + 1 : 0;
			rc = kv_btree_put_x(t, key, klen, NULL, 0, KV_BTREE_KEEPVAL, &x);
			if (!live(m, now)) {
				cr_assert_eq(rc, -ENOENT, "keepval key %u: %d", i, rc);
				break;
			}
			cr_assert_eq(rc, 0, "keepval key %u: %d", i, rc);
			m->expire_at = x.expire_at;
			break;
		}
		case 5: {	/* delete only if expired */
			rc = kv_btree_del_x(t, key, klen, KV_BTREE_IF_EXPIRED, &x);
			if (m->present && !live(m, now)) {
				cr_assert_eq(rc, 0);
				m->present = false;
			} else {
				cr_assert_eq(rc, -ENOENT);
			}
			break;
		}
		case 6: {	/* delete */
			rc = kv_btree_del_x(t, key, klen, 0, &x);
			cr_assert_eq(rc, m->present ? 0 : -ENOENT);
			cr_assert_eq(x.old_expire_at, m->present ? m->expire_at : 0);
			m->present = false;
			break;
		}
		default:
			break;
		}
		if (step % 500 == 0)
			check_all(t, model, buf, now);
	}
	check_all(t, model, buf, now);
	for (unsigned i = 0; i < NKEYS; i++) {
		struct kv_btree_xput x = { 0 };
		size_t klen = key_of(i, key);

		if (model[i].present)
			cr_assert_eq(kv_btree_del_x(t, key, klen, 0, &x), 0);
	}
	cr_assert_eq(mem_pager_live_pages(mp), 2, "pages leaked");
	kv_btree_close(t);
	mem_pager_destroy(mp);
	free(val);
	free(buf);
}

Test(btree_expiry, random_4k)
{
	run(4096, 0x9e3779b97f4a7c15ull);
}

Test(btree_expiry, random_8k)
{
	run(8192, 0x1234567887654321ull);
}

Test(btree_expiry, random_16k)
{
	run(16384, 0x0badc0ffee123457ull);
}

/* The largest cell (1 KiB key, overflow pointer, expiry) fits three to a node. */
Test(btree_expiry, largest_cell)
{
	cr_assert_leq(KV_SLOT_SIZE + kv_leaf_cell_size_x(KV_BTREE_KEY_MAX, 100, true, true),
		      (KV_BTREE_PAGE_USABLE_MIN - KV_NODE_HDR_SIZE) / 3);
}

/* A cell's expiry round-trips through encode and decode, and its flag sizes it. */
Test(btree_expiry, cell_format)
{
	uint8_t cell[64];
	struct kv_leaf_cell lc;
	size_t n = kv_leaf_cell_encode_x(cell, "key", 3, "value", 5, false, 0, 0x0102030405060708ull);

	cr_assert_eq(n, 8 + 3 + 5 + 8);
	cr_assert_eq(cell[2], KV_CELL_EXPIRES);
	cr_assert_eq(kv_cell_size(cell, true), n);
	kv_leaf_cell_decode(cell, &lc);
	cr_assert_eq(lc.expire_at, 0x0102030405060708ull);
	cr_assert_eq(memcmp(lc.val, "value", 5), 0);
	n = kv_leaf_cell_encode_x(cell, "key", 3, NULL, 5000, true, 77, 99);
	cr_assert_eq(n, 8 + 3 + 8 + 8);
	cr_assert_eq(cell[2], KV_CELL_EXPIRES | KV_CELL_OVERFLOW);
	kv_leaf_cell_decode(cell, &lc);
	cr_assert_eq(lc.ovf, 77);
	cr_assert_eq(lc.expire_at, 99);
	n = kv_leaf_cell_encode(cell, "key", 3, "v", 1, false, 0);
	cr_assert_eq(n, 8 + 3 + 1);
	kv_leaf_cell_decode(cell, &lc);
	cr_assert_eq(lc.expire_at, 0);
}
