/*
 * bench_lookup: the cost of one B+tree point lookup, without a page store.
 *
 *   bench_lookup [--keys N] [--value BYTES] [--gets N] [--visit-check]
 *
 * Builds a tree of N keys named as redis-benchmark names them
 * ("key:%012d", 16 bytes) over a trivial in-memory pager whose get() is an
 * array index, then does `gets` random kv_btree_get() calls and prints
 * ns per get.  The pager costs next to nothing, so under
 * `valgrind --tool=callgrind --toggle-collect=kv_btree_get` the
 * instruction count divided by `gets` is what the tree itself spends on a
 * lookup: meta page, descent, search per level, value copy.  Used for the
 * before/after figures of the lookup path in docs/engine.md (the runtime's
 * io_uring reactor does not run under valgrind here, so the whole urkv GET
 * is profiled with perf sampling instead).
 *
 * The pager sets nodes_checked, as urkv's does (its store checks node
 * headers once per device read; every page here is the tree's own write),
 * so a visit checks the type byte only.  --visit-check clears it: the
 * tree checks each node's whole header on every visit, as before.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kv/btree.h"

#define PAGE_USABLE 4064u	/* A 4 KiB page store page minus its 32-byte header. */

/* The pager: pages in one array, page n at n * PAGE_USABLE; never frees. */
struct arr_pager {
	uint8_t *pages;		/* pages_max pages. */
	uint64_t pages_max;	/* Capacity. */
	uint64_t next;		/* Next page to allocate (page 0 unused). */
	uint64_t root;		/* Root pointer. */
	uint64_t epoch;		/* Bumped by every write intent and root change (pager.h). */
};

static struct arr_pager *ap(struct kv_pager *p)
{
	return (struct arr_pager *)p;
}

static int arr_get(struct kv_pager *p, uint64_t pgno, bool write, void **data)
{
	if (pgno == 0 || pgno >= ap(p)->next)
		return -EINVAL;
	ap(p)->epoch += write;
	*data = ap(p)->pages + pgno * PAGE_USABLE;
	return 0;
}

static int arr_make_writable(struct kv_pager *p, uint64_t pgno, void **data)
{
	return arr_get(p, pgno, true, data);
}

static void arr_put(struct kv_pager *p, uint64_t pgno)
{
	(void)p;
	(void)pgno;
}

static int arr_alloc(struct kv_pager *p, uint64_t *pgno, void **data)
{
	struct arr_pager *a = ap(p);

	if (a->next == a->pages_max)
		return -ENOSPC;
	*pgno = a->next++;
	a->epoch++;
	*data = a->pages + *pgno * PAGE_USABLE;
	memset(*data, 0, PAGE_USABLE);
	return 0;
}

static int arr_free(struct kv_pager *p, uint64_t pgno)
{
	(void)p;
	(void)pgno;
	return 0;
}

static int arr_get_root(struct kv_pager *p, uint64_t *pgno)
{
	*pgno = ap(p)->root;
	return 0;
}

static int arr_set_root(struct kv_pager *p, uint64_t pgno)
{
	ap(p)->root = pgno;
	ap(p)->epoch++;
	return 0;
}

static uint64_t arr_epoch(struct kv_pager *p)
{
	return ap(p)->epoch;
}

static struct kv_pager_ops arr_ops = {
	.epoch = arr_epoch,
	.get = arr_get, .make_writable = arr_make_writable, .put = arr_put,
	.alloc = arr_alloc, .free = arr_free, .get_root = arr_get_root,
	.set_root = arr_set_root, .page_usable = PAGE_USABLE, .nodes_checked = true,
};

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "keys", required_argument, NULL, 'k' },
		{ "value", required_argument, NULL, 'v' },
		{ "gets", required_argument, NULL, 'g' },
		{ "visit-check", no_argument, NULL, 'c' },
		{ 0 },
	};
	uint64_t keys = 100000, gets = 1000000, rng = 0x9e3779b97f4a7c15ull, t0, sum = 0;
	size_t value = 16, vlen;
	struct arr_pager a = { 0 };
	struct kv_btree_stats st;
	struct kv_btree *t;
	char key[32], *val, *buf;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (ch) {
		case 'k': keys = strtoull(optarg, NULL, 10); break;
		case 'v': value = strtoull(optarg, NULL, 10); break;
		case 'g': gets = strtoull(optarg, NULL, 10); break;
		case 'c': arr_ops.nodes_checked = false; break;
		default:
			fprintf(stderr, "usage: bench_lookup [--keys N] [--value BYTES] [--gets N] "
				"[--visit-check]\n");
			return 2;
		}
	}
	if (keys == 0 || value > KV_BTREE_VALUE_MAX) {
		fprintf(stderr, "bench_lookup: bad option\n");
		return 2;
	}
	/* Pages at least half full, plus overflow chains, plus slack. */
	a.pages_max = keys * (value + 64) / (PAGE_USABLE / 2) * (value > 1000 ? 2 : 1) + 64;
	a.next = 1;
	a.epoch = 1;
	a.pages = malloc(a.pages_max * PAGE_USABLE);
	val = malloc(value + 1);
	buf = malloc(value + 1);
	if (!a.pages || !val || !buf)
		return 1;
	memset(val, 'v', value);
	rc = kv_btree_open(&arr_ops, (struct kv_pager *)&a, NULL, &t);
	if (rc) {
		fprintf(stderr, "kv_btree_open: %d\n", rc);
		return 1;
	}
	/*
	 * Scattered insertion order, as redis-benchmark -r fills a key space:
	 * i * 1000003 mod keys is a permutation, 1000003 being a prime (keys
	 * that are a multiple of it are loaded in order instead).
	 */
	for (uint64_t i = 0; i < keys; i++) {
		uint64_t k = keys % 1000003 ? i * 1000003 % keys : i;
		int n = snprintf(key, sizeof(key), "key:%012" PRIu64, k);

		rc = kv_btree_put(t, key, (size_t)n, val, value, 0);
		if (rc < 0) {
			fprintf(stderr, "kv_btree_put: %d\n", rc);
			return 1;
		}
	}
	rc = kv_btree_check(t, &st);
	if (rc) {
		fprintf(stderr, "kv_btree_check: %d (%s)\n", rc, st.why);
		return 1;
	}
	t0 = now_ns();
	for (uint64_t i = 0; i < gets; i++) {
		int n = snprintf(key, sizeof(key), "key:%012" PRIu64, rnd(&rng) % keys);

		rc = kv_btree_get(t, key, (size_t)n, buf, value + 1, &vlen);
		if (rc || vlen != value) {
			fprintf(stderr, "kv_btree_get: %d\n", rc);
			return 1;
		}
		sum += (uint8_t)buf[0];
	}
	printf("bench_lookup: %" PRIu64 " keys of %zu bytes, height %u, %" PRIu64 " leaves, %"
	       PRIu64 " internal nodes; %" PRIu64 " gets, %.1f ns per get (check %" PRIu64 ")\n",
	       keys, value, st.height, st.leaf_pages, st.internal_pages, gets,
	       (double)(now_ns() - t0) / (double)gets, sum);
	kv_btree_close(t);
	free(a.pages);
	free(val);
	free(buf);
	return 0;
}
