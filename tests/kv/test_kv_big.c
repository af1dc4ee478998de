/*
 * Large values (over URT_KV_UPDATE_VALUE_MAX, up to URT_KV_VALUE_MAX):
 * written as overflow chains over several transactions, read over several
 * read transactions, freed in bounded transactions (shard.c).
 *
 *  - round_trip: a 64 MiB value put, read back, read back after a reopen,
 *    replaced by a large and by a small value, deleted; page accounting
 *    (pages in use = high-water mark - free pages) returns exactly to its
 *    value before, so no chain page leaks; an NX put over a large value is
 *    refused without a leak; a value over URT_KV_VALUE_MAX is refused.
 *  - crash: power cuts after n device commands of an 8 MiB put that
 *    replaces a 3 MiB value (chain built in several transactions, then
 *    linked, then the old chain freed); after recovery the key holds the
 *    old or the new value, whole, and the pages in use are exactly those
 *    of a store holding that value (the pending chain of a put whose leaf
 *    never committed, or the detached old chain, was freed at open).
 *  - update: read-modify-write updates whose old or new value is large
 *    (shard.c, big_update): an append to a 3 MiB value, an append that
 *    takes a value from just under 1 MiB to over it, an update that reads
 *    a large value and writes a small one (GETSET's shape), an expiry set
 *    on a large value, a delete of one; each compared byte for byte, the
 *    pages in use back to their count before, and a callback's error
 *    (nothing written) leaves the value as it was.
 */
#include <inttypes.h>

#include "kv_fixture.h"

#define MIB (1024u * 1024u)

struct big {
	struct urt_kv *kv;
	struct kvx_fail f;
	uint8_t *val, *got;
	size_t len;
	uint64_t used;		/* Out of pages_in_use(). */
	int ret;
};

#define CHECK(b, cond, ...)                              \
	do {                                             \
		if (!(cond))                             \
			kvx_failf(&(b)->f, __VA_ARGS__); \
	} while (0)

/* Pages in use in shard 0: allocated and not on the free list. */
static uint64_t pages_in_use(struct big *b)
{
	struct urt_kv_shard_stats st;
	int ret = urt_kv_shard_stats(b->kv, 0, &st);

	CHECK(b, ret == 0, "shard stats: %d", ret);
	return st.pages_used - st.pages_free;
}

static void check_value(struct big *b, const char *what, const uint8_t *want, size_t len)
{
	size_t vlen = 0;
	int ret;

	memset(b->got, 0, len);
	ret = urt_kv_get(b->kv, "big", 3, b->got, len, &vlen);
	CHECK(b, ret == 0 && vlen == len && memcmp(b->got, want, len) == 0,
	      "%s: get %d, %zu bytes (want %zu), %s", what, ret, vlen, len,
	      ret == 0 && vlen == len ? "contents differ" : "");
}

static void put_fiber(void *p)
{
	struct big *b = p;

	b->ret = urt_kv_put(b->kv, "big", 3, b->val, b->len, 0);
}

static void used_fiber(void *p)
{
	struct big *b = p;

	b->used = pages_in_use(b);
}

static void get_fiber(void *p)
{
	struct big *b = p;

	check_value(b, "get", b->val, b->len);
}

static void round_trip_a(void *p)
{
	struct big *b = p;
	struct urt_kv *kv = b->kv;
	uint64_t base, with_big;
	size_t vlen = 0;
	uint8_t small[4] = "abc";
	int ret;

	CHECK(b, urt_kv_put(kv, "big", 3, small, 3, 0) == 0, "small put");
	base = pages_in_use(b);
	ret = urt_kv_put(kv, "big", 3, b->val, b->len, 0);
	CHECK(b, ret == 0, "64 MiB put: %d (%s)", ret, urt_strerror(ret));
	check_value(b, "64 MiB", b->val, b->len);
	with_big = pages_in_use(b);
	CHECK(b, with_big >= base + b->len / 4096 && with_big <= base + b->len / 4000 + 2,
	      "pages in use %" PRIu64 " -> %" PRIu64 " for 64 MiB", base, with_big);
	/* A short buffer gets a prefix, and the full length. */
	ret = urt_kv_get(kv, "big", 3, b->got, 100, &vlen);
	CHECK(b, ret == 0 && vlen == b->len && memcmp(b->got, b->val, 100) == 0,
	      "prefix get: %d, %zu", ret, vlen);
	/* NX over it: refused, and the built chain is freed again. */
	ret = urt_kv_put(kv, "big", 3, b->val + 1, 2 * MIB, URT_KV_NX);
	CHECK(b, ret == -EEXIST, "NX over a large value: %d", ret);
	CHECK(b, pages_in_use(b) == with_big, "NX refusal leaked pages");
	/* A value over the limit: refused before anything is read. */
	ret = urt_kv_put(kv, "big", 3, b->val, (size_t)URT_KV_VALUE_MAX + 1, 0);
	CHECK(b, ret == URT_E_TOOBIG, "over URT_KV_VALUE_MAX: %d", ret);
	b->used = base;
}

static void round_trip_b(void *p)
{
	struct big *b = p;
	struct urt_kv *kv = b->kv;
	uint64_t base = b->used;
	uint8_t small[4] = "abc";
	int ret;

	/* After a reopen. */
	check_value(b, "64 MiB after reopen", b->val, b->len);
	/* Replaced by another large value, then by a small one, then deleted. */
	ret = urt_kv_put(kv, "big", 3, b->val + 7, 5 * MIB + 3, 0);
	CHECK(b, ret == 0, "5 MiB put: %d", ret);
	check_value(b, "5 MiB", b->val + 7, 5 * MIB + 3);
	CHECK(b, pages_in_use(b) <= base + (5 * MIB + 3) / 4000 + 2, "replaced chain not freed");
	ret = urt_kv_put(kv, "big", 3, small, 3, 0);
	CHECK(b, ret == 0, "small put: %d", ret);
	CHECK(b, pages_in_use(b) == base, "pages in use %" PRIu64 ", %" PRIu64 " before the large values",
	      pages_in_use(b), base);
	ret = urt_kv_put(kv, "big", 3, b->val, 2 * MIB, 0);
	CHECK(b, ret == 0, "2 MiB put: %d", ret);
	ret = urt_kv_del(kv, "big", 3, 0);
	CHECK(b, ret == 0, "del: %d", ret);
	ret = urt_kv_put(kv, "big", 3, small, 3, 0);
	CHECK(b, ret == 0 && pages_in_use(b) == base, "after delete: pages in use %" PRIu64
	      ", %" PRIu64 " before", pages_in_use(b), base);
}

/*
 * One shard on a new sim device of dev_bytes (seed: its fill), a value
 * buffer of len + slack bytes (kvx_fill with fa, fb), and a read-back
 * buffer of len bytes.
 */
static struct urt_rt *big_open(struct big *b, struct urt_kv_opts *o, struct urt_dev **dev, uint64_t dev_bytes,
			       unsigned dev_seed, size_t len, size_t slack, uint64_t fa, uint64_t fb)
{
	struct urt_rt *rt;

	*dev = kvx_sim(dev_bytes, dev_seed);
	kvx_opts(o, *dev);
	o->shards = 1;
	rt = kvx_start(1, o);
	cr_assert_eq(urt_kv_open(rt, o, &b->kv), 0, "%s", urt_last_error());
	b->len = len;
	b->val = malloc(len + slack);
	b->got = malloc(len);
	cr_assert(b->val && b->got);
	kvx_fill(b->val, len + slack, fa, fb);
	return rt;
}

/* Closes what big_open opened. */
static void big_close(struct big *b, struct urt_rt *rt, struct urt_dev *dev)
{
	cr_assert_eq(urt_kv_close(b->kv), 0);
	urt_rt_stop(rt);
	urt_dev_close(dev);
	free(b->val);
	free(b->got);
}

Test(kv_big, round_trip, .timeout = 120)
{
	struct big b = { 0 };
	struct urt_kv_opts o;
	struct urt_dev *dev;
	struct urt_rt *rt = big_open(&b, &o, &dev, 192ull << 20, 1, 64 * MIB, 8, 64, 1);

	kvx_run(rt, 0, round_trip_a, &b);
	kvx_assert_ok(&b.f);
	cr_assert_eq(urt_kv_close(b.kv), 0);
	cr_assert_eq(urt_kv_open(rt, &o, &b.kv), 0, "%s", urt_last_error());
	kvx_run(rt, 0, round_trip_b, &b);
	kvx_assert_ok(&b.f);
	big_close(&b, rt, dev);
}


/* An update callback that appends, replaces, expires, deletes or fails. */
struct big_upd {
	struct urt_kv_req req;
	enum { BU_APPEND, BU_REPLACE, BU_EXPIRE, BU_DEL, BU_FAIL } what;
	const uint8_t *arg;
	size_t arg_len;
	size_t old_len;		/* Out: the old value's length. */
	uint8_t old_head[16];	/* Out: its first bytes. */
	bool existed;		/* Out. */
};

static int big_upd_fn(struct urt_kv_req *req, struct urt_kv_update *u)
{
	struct big_upd *x = (struct big_upd *)req;

	x->existed = u->exists;
	x->old_len = u->exists ? u->vlen : 0;
	if (u->exists && u->vlen > 0)
		memcpy(x->old_head, u->val, u->vlen < 16 ? u->vlen : 16);
	if (!u->exists)
		u->vlen = 0;
	switch (x->what) {
	case BU_APPEND:
		if (x->arg_len > u->cap - u->vlen)
			return URT_E_TOOBIG;
		memcpy(u->val + u->vlen, x->arg, x->arg_len);
		u->vlen += x->arg_len;
		u->action = URT_KV_UPDATE_PUT;
		break;
	case BU_REPLACE:
		u->val = (uint8_t *)(uintptr_t)x->arg;
		u->vlen = x->arg_len;
		u->expire_at = 0;
		u->action = URT_KV_UPDATE_PUT;
		break;
	case BU_EXPIRE:
		u->expire_at = u->now + 3600 * 1000;
		u->action = URT_KV_UPDATE_EXPIRE;
		break;
	case BU_DEL:
		u->action = URT_KV_UPDATE_DEL;
		break;
	case BU_FAIL:
		memset(u->val, 'x', u->vlen);	/* Edits the scratch copy only. */
		u->action = URT_KV_UPDATE_PUT;
		return -EINVAL;
	}
	return 1;
}

static int big_upd_run(struct big *b, struct big_upd *x, int what, const uint8_t *arg, size_t len)
{
	memset(x, 0, sizeof(*x));
	x->what = what;
	x->arg = arg;
	x->arg_len = len;
	x->req.key = "big";
	x->req.klen = 3;
	x->req.flags = URT_KV_READVAL;
	x->req.vlen = URT_KV_UPDATE_VALUE_MAX;
	x->req.update = big_upd_fn;
	return urt_kv_update(b->kv, &x->req);
}

static void update_fiber(void *p)
{
	struct big *b = p;
	struct urt_kv *kv = b->kv;
	struct big_upd x;
	uint8_t small[4] = "abc";
	uint64_t base, exp = 0;
	size_t vlen = 0, n;
	int ret;

	CHECK(b, urt_kv_put(kv, "big", 3, small, 3, 0) == 0, "small put");
	base = pages_in_use(b);

	/* Append 1 MiB + 7 to a 3 MiB value: old large, new large. */
	ret = urt_kv_put(kv, "big", 3, b->val, 3 * MIB, 0);
	CHECK(b, ret == 0, "3 MiB put: %d", ret);
	ret = big_upd_run(b, &x, BU_APPEND, b->val + 3 * MIB, MIB + 7);
	CHECK(b, ret == 1 && x.existed && x.old_len == 3 * MIB &&
	      memcmp(x.old_head, b->val, 16) == 0, "append to 3 MiB: %d, old %zu", ret, x.old_len);
	check_value(b, "3 MiB + append", b->val, 4 * MIB + 7);

	/* A callback error writes nothing. */
	ret = big_upd_run(b, &x, BU_FAIL, NULL, 0);
	CHECK(b, ret == -EINVAL && x.old_len == 4 * MIB + 7, "failing update: %d", ret);
	check_value(b, "after a failed update", b->val, 4 * MIB + 7);

	/* An expiry on a large value keeps its bytes. */
	ret = big_upd_run(b, &x, BU_EXPIRE, NULL, 0);
	CHECK(b, ret == 1, "expire on large: %d", ret);
	ret = urt_kv_get_expire(kv, "big", 3, NULL, 0, &vlen, &exp);
	CHECK(b, ret == 0 && vlen == 4 * MIB + 7 && exp != 0, "after expire: %d, %zu, exp %" PRIu64,
	      ret, vlen, exp);
	check_value(b, "after expire", b->val, 4 * MIB + 7);

	/* Read large, write small (GETSET's shape): the chain is freed. */
	ret = big_upd_run(b, &x, BU_REPLACE, small, 3);
	CHECK(b, ret == 1 && x.old_len == 4 * MIB + 7, "replace large by small: %d", ret);
	check_value(b, "small after large", small, 3);
	CHECK(b, pages_in_use(b) == base, "pages in use %" PRIu64 " after replacing, %" PRIu64 " before",
	      pages_in_use(b), base);

	/* Small to large: 1 MiB - 10 plus 100 bytes crosses URT_KV_UPDATE_VALUE_MAX. */
	n = URT_KV_UPDATE_VALUE_MAX - 10;
	ret = urt_kv_put(kv, "big", 3, b->val, n, 0);
	CHECK(b, ret == 0, "1 MiB - 10 put: %d", ret);
	ret = big_upd_run(b, &x, BU_APPEND, b->val + n, 100);
	CHECK(b, ret == 1 && x.old_len == n, "append across 1 MiB: %d, old %zu", ret, x.old_len);
	check_value(b, "across 1 MiB", b->val, n + 100);

	/* Delete through an update: every page back. */
	ret = big_upd_run(b, &x, BU_DEL, NULL, 0);
	CHECK(b, ret == 1 && x.old_len == n + 100, "delete large: %d", ret);
	ret = urt_kv_get(kv, "big", 3, NULL, 0, &vlen);
	CHECK(b, ret == URT_E_NOTFOUND, "after delete: %d", ret);
	ret = urt_kv_put(kv, "big", 3, small, 3, 0);
	CHECK(b, ret == 0 && pages_in_use(b) == base, "after update delete: pages in use %" PRIu64
	      ", %" PRIu64 " before", pages_in_use(b), base);

	/* A missing key appended to past 1 MiB. */
	ret = urt_kv_del(kv, "big", 3, 0);
	CHECK(b, ret == 0, "del: %d", ret);
	ret = big_upd_run(b, &x, BU_APPEND, b->val, 2 * MIB);
	CHECK(b, ret == 1 && !x.existed, "append 2 MiB to a missing key: %d", ret);
	check_value(b, "2 MiB appended", b->val, 2 * MIB);
}

Test(kv_big, update, .timeout = 120)
{
	struct big b = { 0 };
	struct urt_kv_opts o;
	struct urt_dev *dev;
	struct urt_rt *rt = big_open(&b, &o, &dev, 96ull << 20, 3, 8 * MIB, 0, 65, 2);

	kvx_run(rt, 0, update_fiber, &b);
	kvx_assert_ok(&b.f);
	big_close(&b, rt, dev);
}

#define OLD_LEN (3 * MIB + 11)
#define NEW_LEN (8 * MIB + 5)
#define CRASH_DEV (64ull << 20)
#define CUTS 8

/* Opens a store on a new sim device holding "big" = old; *used: its pages in use. */
static void crash_setup(struct urt_rt *rt, struct urt_kv_opts *o, struct urt_dev **dev,
			struct big *b, uint8_t *old, uint64_t seed)
{
	struct urt_sim_opts so;

	urt_sim_opts_default(&so);
	so.size_bytes = CRASH_DEV;
	so.seed = seed;
	so.fua = true;	/* As the reference run: the same commands per put. */
	cr_assert_eq(urt_sim_open(&so, dev), 0);
	o->dev = *dev;
	cr_assert_eq(urt_kv_open(rt, o, &b->kv), 0, "%s", urt_last_error());
	b->val = old;
	b->len = OLD_LEN;
	kvx_run(rt, 0, put_fiber, b);
	cr_assert_eq(b->ret, 0, "old put: %d", b->ret);
	kvx_run(rt, 0, used_fiber, b);
}

Test(kv_big, crash, .timeout = 120)
{
	struct urt_sim_stats st0, st1;
	uint64_t put_cmds;
	uint8_t *old = malloc(OLD_LEN), *nv = malloc(NEW_LEN);
	struct big b = { 0 };
	struct urt_kv_opts o;
	struct urt_dev *dev, *dev2;
	struct urt_rt *rt;
	uint64_t used_old, used_new;
	unsigned saw_old = 0, saw_new = 0;

	cr_assert(old && nv);
	b.got = malloc(NEW_LEN);
	kvx_fill(old, OLD_LEN, 3, 3);
	kvx_fill(nv, NEW_LEN, 8, 8);
	kvx_opts(&o, NULL);
	o.shards = 1;
	o.cache_bytes = 6u << 20;	/* Smaller than either value: pages are evicted. */
	rt = kvx_start(1, &o);

	/* The reference: pages in use with the old value, then with the new one. */
	crash_setup(rt, &o, &dev, &b, old, 100);
	used_old = b.used;
	b.val = nv;
	b.len = NEW_LEN;
	urt_sim_stats(dev, &st0);
	kvx_run(rt, 0, put_fiber, &b);
	urt_sim_stats(dev, &st1);
	put_cmds = st1.commands - st0.commands;
	cr_assert_eq(b.ret, 0, "new put: %d", b.ret);
	kvx_run(rt, 0, used_fiber, &b);
	used_new = b.used;
	kvx_run(rt, 0, get_fiber, &b);
	kvx_assert_ok(&b.f);
	cr_assert_eq(urt_kv_close(b.kv), 0);
	urt_dev_close(dev);

	/* Cuts spread over the put's device commands: building, linking, freeing the old chain. */
	for (unsigned i = 0; i < CUTS; i++) {
		/* Building, then densely at the end: the link and the freeing of the old chain. */
		static const unsigned back[CUTS - 2] = { 10, 4, 3, 2, 1 };
		unsigned cut = i < 2 ? 1 + (unsigned)(put_cmds * i / 2) :
			       i < CUTS - 1 ? (unsigned)put_cmds - back[i - 2] : (unsigned)put_cmds + 1;

		crash_setup(rt, &o, &dev, &b, old, 200 + i);
		cr_assert_eq(b.used, used_old);
		urt_sim_crash_after(dev, cut);
		b.val = nv;
		b.len = NEW_LEN;
		kvx_run(rt, 0, put_fiber, &b);
		urt_sim_crash(dev, 300 + i);	/* If the put ended before the cut. */
		urt_kv_close(b.kv);		/* Fails: the device is gone. */
		cr_assert_eq(urt_sim_reopen(dev, &dev2), 0);
		o.dev = dev2;
		cr_assert_eq(urt_kv_open(rt, &o, &b.kv), 0, "cut %u: recovery: %s", cut,
			     urt_last_error());
		kvx_run(rt, 0, used_fiber, &b);
		if (b.used == used_old) {
			b.val = old;
			b.len = OLD_LEN;
			saw_old++;
			cr_log_info("cut %u: put %d, old value", cut, b.ret);
		} else {
			cr_assert_eq(b.used, used_new, "cut %u: %" PRIu64 " pages in use, %" PRIu64
				     " with the old value, %" PRIu64 " with the new", cut, b.used,
				     used_old, used_new);
			saw_new++;
			cr_log_info("cut %u: put %d, new value", cut, b.ret);
		}
		cr_assert(b.ret != 0 || b.val == nv, "cut %u: an acknowledged put was lost", cut);
		kvx_run(rt, 0, get_fiber, &b);
		kvx_assert_ok(&b.f);
		cr_assert_eq(urt_kv_close(b.kv), 0);
		urt_dev_close(dev2);
		urt_dev_close(dev);
	}
	/* The cuts land both before and after the link. */
	cr_expect_gt(saw_old, 0);
	cr_expect_gt(saw_new, 0);
	cr_log_info("large-value put: %" PRIu64 " device commands; ", put_cmds);
	cr_log_info("large-value crashes: %u kept the old value, %u the new", saw_old, saw_new);
	urt_rt_stop(rt);
	free(old);
	free(nv);
	free(b.got);
}
