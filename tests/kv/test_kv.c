/*
 * The key-value store's public API (urt/kv.h) on two cores and two shards:
 * every call and error, forwarding between cores, NOSYNC, the async
 * request API, ordered scans with cursors, clear, persistence across a
 * close and reopen, and concurrent fibers on both cores against a model.
 */
#include <stdint.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kv/kv_impl.h"
#include "kv_fixture.h"

#define DEV_BYTES (256ull << 20)

struct env {
	struct urt_rt *rt;
	struct urt_dev *dev;
	struct urt_kv *kv;
	struct urt_kv_opts o;
};


/* env_open with read_prefetch_min_bytes set (UINT64_MAX: keep the default). */
static void env_open_prefetch(struct env *e, unsigned ncores, uint64_t seed, uint64_t min_bytes)
{
	int ret;

	e->dev = kvx_sim(DEV_BYTES, seed);
	kvx_opts(&e->o, e->dev);
	if (min_bytes != UINT64_MAX)
		e->o.read_prefetch_min_bytes = min_bytes;
	e->rt = kvx_start(ncores, &e->o);
	ret = urt_kv_open(e->rt, &e->o, &e->kv);
	cr_assert_eq(ret, 0, "urt_kv_open: %d (%s) %s", ret, urt_strerror(ret), urt_last_error());
}

static void env_open(struct env *e, unsigned ncores, uint64_t seed)
{
	env_open_prefetch(e, ncores, seed, UINT64_MAX);
}

static __attribute__((unused)) void env_reopen(struct env *e)
{
	int ret = urt_kv_close(e->kv);

	cr_assert_eq(ret, 0, "urt_kv_close: %d (%s)", ret, urt_strerror(ret));
	ret = urt_kv_open(e->rt, &e->o, &e->kv);
	cr_assert_eq(ret, 0, "urt_kv_open again: %d (%s) %s", ret, urt_strerror(ret), urt_last_error());
}

/* Runs body(state) in a fiber on core and asserts that it recorded no failure in *f. */
static void env_run_ok(struct env *e, unsigned core, void (*body)(void *), void *state,
		       const struct kvx_fail *f)
{
	kvx_run(e->rt, core, body, state);
	kvx_assert_ok(f);
}

static void env_close(struct env *e)
{
	cr_assert_eq(urt_kv_close(e->kv), 0);
	urt_rt_stop(e->rt);
	urt_dev_close(e->dev);
}

/* Basic calls, from one core, on keys of both shards. */

struct basic {
	struct urt_kv *kv;
	struct kvx_fail f;
	unsigned shards_seen;
};

#define CHECK(b, cond, ...)                          \
	do {                                         \
		if (!(cond))                         \
			kvx_failf(&(b)->f, __VA_ARGS__); \
	} while (0)

static void basic_body(void *p)
{
	struct basic *b = p;
	struct urt_kv *kv = b->kv;
	char key[32], buf[64];
	uint8_t big_key[URT_KV_KEY_MAX + 1];
	size_t vlen;
	int64_t num = 0;
	int ret;

	for (int i = 0; i < 64; i++) {
		int n = snprintf(key, sizeof(key), "key:%d", i);

		b->shards_seen |= 1u << urt_kv_shard_of(kv, key, (size_t)n);
		ret = urt_kv_put(kv, key, (size_t)n, key, (size_t)n, 0);
		CHECK(b, ret == 0, "put %s: %d", key, ret);
	}
	for (int i = 0; i < 64; i++) {
		int n = snprintf(key, sizeof(key), "key:%d", i);

		ret = urt_kv_get(kv, key, (size_t)n, buf, sizeof(buf), &vlen);
		CHECK(b, ret == 0 && vlen == (size_t)n && memcmp(buf, key, vlen) == 0,
		      "get %s: %d vlen %zu", key, ret, vlen);
		CHECK(b, urt_kv_exists(kv, key, (size_t)n) == 1, "exists %s", key);
	}
	/* Truncated get: vlen is the full length. */
	ret = urt_kv_get(kv, "key:10", 6, buf, 2, &vlen);
	CHECK(b, ret == 0 && vlen == 6 && memcmp(buf, "ke", 2) == 0, "short get: %d %zu", ret, vlen);
	ret = urt_kv_get(kv, "key:10", 6, NULL, 0, &vlen);
	CHECK(b, ret == 0 && vlen == 6, "length-only get: %d %zu", ret, vlen);
	/* Missing keys. */
	ret = urt_kv_get(kv, "nope", 4, buf, sizeof(buf), &vlen);
	CHECK(b, ret == URT_E_NOTFOUND, "get missing: %d", ret);
	CHECK(b, urt_kv_exists(kv, "nope", 4) == 0, "exists missing");
	CHECK(b, urt_kv_del(kv, "nope", 4, 0) == URT_E_NOTFOUND, "del missing");
	/* NX and XX. */
	CHECK(b, urt_kv_put(kv, "key:1", 5, "x", 1, URT_KV_NX) == -EEXIST, "NX on existing");
	CHECK(b, urt_kv_put(kv, "new", 3, "x", 1, URT_KV_XX) == URT_E_NOTFOUND, "XX on missing");
	CHECK(b, urt_kv_exists(kv, "new", 3) == 0, "XX must not create");
	CHECK(b, urt_kv_put(kv, "new", 3, "n", 1, URT_KV_NX) == 0, "NX on missing");
	CHECK(b, urt_kv_put(kv, "new", 3, "xx", 2, URT_KV_XX) == 0, "XX on existing");
	ret = urt_kv_get(kv, "new", 3, buf, sizeof(buf), &vlen);
	CHECK(b, ret == 0 && vlen == 2 && memcmp(buf, "xx", 2) == 0, "XX value");
	CHECK(b, urt_kv_put(kv, "new", 3, "x", 1, URT_KV_NX | URT_KV_XX) == -EINVAL, "NX|XX");
	/* Delete. */
	CHECK(b, urt_kv_del(kv, "new", 3, 0) == 0, "del");
	CHECK(b, urt_kv_exists(kv, "new", 3) == 0, "deleted");
	/* Empty values exist. */
	CHECK(b, urt_kv_put(kv, "empty", 5, NULL, 0, 0) == 0, "empty value");
	ret = urt_kv_get(kv, "empty", 5, buf, sizeof(buf), &vlen);
	CHECK(b, ret == 0 && vlen == 0, "get empty: %d %zu", ret, vlen);
	/* Incr and decr. */
	CHECK(b, urt_kv_incr(kv, "ctr", 3, 5, 0, &num) == 0 && num == 5, "incr new: %lld",
	      (long long)num);
	CHECK(b, urt_kv_incr(kv, "ctr", 3, -7, 0, &num) == 0 && num == -2, "decr: %lld",
	      (long long)num);
	ret = urt_kv_get(kv, "ctr", 3, buf, sizeof(buf), &vlen);
	CHECK(b, ret == 0 && vlen == 2 && memcmp(buf, "-2", 2) == 0, "incr stores text");
	CHECK(b, urt_kv_incr(kv, "key:1", 5, 1, 0, &num) == -EINVAL, "incr of text");
	CHECK(b, urt_kv_put(kv, "max", 3, "9223372036854775807", 19, 0) == 0, "put max");
	CHECK(b, urt_kv_incr(kv, "max", 3, 1, 0, &num) == -ERANGE, "incr overflow");
	CHECK(b, urt_kv_put(kv, "lead0", 5, "01", 2, 0) == 0, "put 01");
	CHECK(b, urt_kv_incr(kv, "lead0", 5, 1, 0, &num) == -EINVAL, "incr of 01");
	/* Limits and bad arguments. */
	memset(big_key, 'k', sizeof(big_key));
	CHECK(b, urt_kv_put(kv, big_key, URT_KV_KEY_MAX + 1, "v", 1, 0) == URT_E_TOOBIG, "long key");
	CHECK(b, urt_kv_put(kv, big_key, URT_KV_KEY_MAX, "v", 1, 0) == 0, "1 KiB key");
	ret = urt_kv_get(kv, big_key, URT_KV_KEY_MAX, buf, sizeof(buf), &vlen);
	CHECK(b, ret == 0 && vlen == 1 && buf[0] == 'v', "get 1 KiB key: %d", ret);
	CHECK(b, urt_kv_put(kv, "", 0, "v", 1, 0) == -EINVAL, "empty key");
	CHECK(b, urt_kv_get(kv, "", 0, buf, sizeof(buf), &vlen) == -EINVAL, "get empty key");
	CHECK(b, urt_kv_put(kv, "k", 1, "v", (size_t)URT_KV_VALUE_MAX + 1, 0) == URT_E_TOOBIG, "2 big");
	CHECK(b, urt_kv_put(kv, "k", 1, "v", 1, 1u << 9) == -EINVAL, "unknown flag");
	CHECK(b, urt_kv_del(kv, "k", 1, URT_KV_NX) == -EINVAL, "NX on del");
	/* The next run (on the other core) starts from the same state. */
	CHECK(b, urt_kv_del(kv, "ctr", 3, 0) == 0, "del ctr");
	CHECK(b, urt_kv_del(kv, "max", 3, 0) == 0, "del max");
	CHECK(b, urt_kv_del(kv, "lead0", 5, URT_KV_NOSYNC) == 0, "del lead0");
}

struct count_arg {
	struct urt_kv *kv;
	uint64_t count;
	int ret;
};

static void count_body(void *p)
{
	struct count_arg *a = p;

	a->ret = urt_kv_count(a->kv, &a->count);
}

Test(kv, basic_calls_on_both_cores)
{
	struct env e;
	uint64_t count = 0;

	env_open(&e, 2, 1);
	cr_assert_eq(urt_kv_shards(e.kv), 2);
	cr_expect_eq(urt_kv_shard_core(e.kv, 0), 0);
	cr_expect_eq(urt_kv_shard_core(e.kv, 1), 1);
	for (unsigned core = 0; core < 2; core++) {
		struct basic b = { .kv = e.kv };

		env_run_ok(&e, core, basic_body, &b, &b.f);
		cr_expect_eq(b.shards_seen, 3u, "keys land on both shards");
	}
	{
		struct count_arg a = { .kv = e.kv };

		kvx_run(e.rt, 1, count_body, &a);
		cr_expect_eq(a.ret, 0);
		count = a.count;
	}
	/* 64 keys, "empty" and the 1 KiB key. */
	cr_expect_eq(count, 66, "count %llu", (unsigned long long)count);
	env_close(&e);
}


/* Values up to 1 MiB, overflow chains replaced and freed, pages reused. */

struct big {
	struct urt_kv *kv;
	struct kvx_fail f;
	struct urt_kv_shard_stats st[2];
	uint64_t hwm_after_first, hwm_after_cycles, live;
};

static void big_body(void *p)
{
	struct big *b = p;
	size_t sizes[] = { 9, 1000, 1017, 4000, 4097, 65536, 300000, URT_KV_UPDATE_VALUE_MAX };
	uint8_t *val = malloc(URT_KV_UPDATE_VALUE_MAX), *got = malloc(URT_KV_UPDATE_VALUE_MAX);
	size_t vlen;
	int ret;

	for (int cycle = 0; cycle < 8; cycle++) {
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			char key[16];
			int n = snprintf(key, sizeof(key), "big%zu", i);
			/* Each cycle replaces every value by one of another size. */
			size_t len = sizes[(i + (size_t)cycle) % (sizeof(sizes) / sizeof(sizes[0]))];

			kvx_fill(val, len, i, (uint64_t)cycle);
			ret = urt_kv_put(b->kv, key, (size_t)n, val, len, 0);
			CHECK(b, ret == 0, "put %s %zu: %d (%s)", key, len, ret, urt_strerror(ret));
			memset(got, 0, len);
			ret = urt_kv_get(b->kv, key, (size_t)n, got, URT_KV_UPDATE_VALUE_MAX, &vlen);
			CHECK(b, ret == 0 && vlen == len && memcmp(got, val, len) == 0,
			      "get %s: %d, %zu of %zu bytes", key, ret, vlen, len);
		}
		if (getenv("KV_DEBUG"))
			for (unsigned s = 0; s < 2; s++) {
				urt_kv_shard_stats(b->kv, s, &b->st[s]);
				fprintf(stderr, "cycle %d shard %u used %llu free %llu keys %llu\n", cycle, s,
					(unsigned long long)b->st[s].pages_used,
					(unsigned long long)b->st[s].pages_free,
					(unsigned long long)b->st[s].keys);
			}
		if (cycle == 0)
			for (unsigned s = 0; s < 2; s++) {
				urt_kv_shard_stats(b->kv, s, &b->st[s]);
				b->hwm_after_first += b->st[s].pages_used;
			}
	}
	for (unsigned s = 0; s < 2; s++) {
		urt_kv_shard_stats(b->kv, s, &b->st[s]);
		b->hwm_after_cycles += b->st[s].pages_used;
		/* Page 0 is the shard's meta page, not the tree's. */
		b->live += b->st[s].pages_used - 1 - b->st[s].pages_free;
	}
	free(val);
	free(got);
}

Test(kv, large_values_and_page_reuse)
{
	struct env e;
	struct big b = { 0 };

	env_open(&e, 2, 2);
	b.kv = e.kv;
	env_run_ok(&e, 0, big_body, &b, &b.f);
	/*
	 * The values need ~355 overflow pages whatever the cycle.  Replaced
	 * chains go to the free list, so the pages in use stay at that plus a
	 * few tree pages, and the high-water mark stays below what two copies
	 * of everything on one shard would need (a new chain is written
	 * before the old one is freed), though eight cycles wrote 11 MiB.
	 */
	uint64_t ovf = 0;
	size_t sizes[] = { 4000, 4097, 65536, 300000, URT_KV_UPDATE_VALUE_MAX };

	for (size_t i = 0; i < 5; i++)
		ovf += (sizes[i] + 4047) / 4048;
	cr_expect(b.live >= ovf && b.live <= ovf + 16, "live pages %llu, overflow pages %llu",
		  (unsigned long long)b.live, (unsigned long long)ovf);
	cr_expect_lt(b.hwm_after_cycles, 4 * ovf + 64, "high-water mark %llu pages",
		     (unsigned long long)b.hwm_after_cycles);
	cr_expect_gt(b.st[0].pages_free + b.st[1].pages_free, 0, "freed pages are on the free list");
	env_close(&e);
}

/*
 * Page images in the log leave out a node's zeroed free gap (the store's
 * page_hole, kv_pps_page_hole): 1000-byte values fill a leaf two or three
 * at a time, so the images after a checkpoint carry holes of hundreds of
 * bytes, and the values read back after a close and reopen (replay of
 * such images after a crash: test_kv_crash, whose stores log them too).
 */
struct holes {
	struct urt_kv *kv;
	struct urt_kv_shard_stats st[2][2];	/* [before, after][shard] */
	struct kvx_fail f;
};

static void holes_body(void *p)
{
	struct holes *h = p;
	uint8_t val[1000];
	int ret;

	for (int round = 0; round < 2; round++) {
		for (unsigned s = 0; s < 2; s++)
			urt_kv_shard_stats(h->kv, s, &h->st[round][s]);
		for (unsigned i = 0; i < 200; i++) {
			char key[16];
			int n = snprintf(key, sizeof(key), "hole%03u", i);

			kvx_fill(val, sizeof(val), i, (uint64_t)round);
			ret = urt_kv_put(h->kv, key, (size_t)n, val, sizeof(val), 0);
			CHECK(h, ret == 0, "put %s: %d (%s)", key, ret, urt_strerror(ret));
		}
		/* The next round's first change of every leaf is an image. */
		ret = urt_kv_checkpoint(h->kv);
		CHECK(h, ret == 0, "checkpoint: %d (%s)", ret, urt_strerror(ret));
	}
	for (unsigned s = 0; s < 2; s++)
		urt_kv_shard_stats(h->kv, s, &h->st[1][s]);
}

static void holes_check(void *p)
{
	struct holes *h = p;
	uint8_t val[1000], got[1000];
	size_t vlen;

	for (unsigned i = 0; i < 200; i++) {
		char key[16];
		int n = snprintf(key, sizeof(key), "hole%03u", i);
		int ret = urt_kv_get(h->kv, key, (size_t)n, got, sizeof(got), &vlen);

		kvx_fill(val, sizeof(val), i, 1);
		CHECK(h, ret == 0 && vlen == sizeof(val) && memcmp(got, val, sizeof(val)) == 0,
		      "get %s after reopen: %d, %zu bytes", key, ret, vlen);
	}
}

Test(kv, log_images_leave_out_the_free_gap)
{
	struct env e;
	struct holes h = { 0 };
	uint64_t holes = 0, bytes = 0, images = 0;

	env_open(&e, 2, 5);
	h.kv = e.kv;
	env_run_ok(&e, 0, holes_body, &h, &h.f);
	for (unsigned s = 0; s < 2; s++) {
		holes += h.st[1][s].ps.log_image_holes - h.st[0][s].ps.log_image_holes;
		bytes += h.st[1][s].ps.log_image_hole_bytes - h.st[0][s].ps.log_image_hole_bytes;
		images += h.st[1][s].ps.log_images - h.st[0][s].ps.log_images;
	}
	cr_expect_gt(holes, 0, "no image left a hole out (%llu images)", (unsigned long long)images);
	cr_expect_geq(bytes, 500 * holes, "holes of %llu bytes in %llu images: too small for 1000-byte "
		      "values", (unsigned long long)bytes, (unsigned long long)holes);
	env_reopen(&e);
	h.kv = e.kv;
	env_run_ok(&e, 1, holes_check, &h, &h.f);
	env_close(&e);
}

/* Concurrent fibers on both cores, each on its own keys, against a model. */

#define RAND_FIBERS 3
#define RAND_OPS 1500
#define RAND_KEYS 300

struct rand_fiber {
	struct urt_kv *kv;
	unsigned id;
	uint64_t rng;
	struct kvx_model m;
	struct kvx_fail f;
	struct urt_waitq *wq;
	unsigned *live;
};

static size_t rand_key(struct rand_fiber *r, uint64_t k, char *key)
{
	/* Some keys are long, so leaves split often and internal levels grow. */
	int n = snprintf(key, 64, "f%u:%06llu:", r->id, (unsigned long long)k);

	if (k % 7 == 0) {
		memset(key + n, 'x', 200);
		n += 200;
	}
	return (size_t)n;
}

static void rand_body(void *p)
{
	struct rand_fiber *r = p;
	char key[300];
	uint8_t *val = malloc(70000), *got = malloc(70000);

	for (int i = 0; i < RAND_OPS && !r->f.failed; i++) {
		uint64_t k = kvx_rnd(&r->rng) % RAND_KEYS, op = kvx_rnd(&r->rng) % 100;
		size_t klen = rand_key(r, k, key), vlen;
		const struct kvx_ent *me = kvx_model_get(&r->m, key, klen);
		unsigned flags = (kvx_rnd(&r->rng) % 4 == 0) ? URT_KV_NOSYNC : 0;
		int ret;

		if (op < 50) {
			size_t len = kvx_rnd(&r->rng) % 10 == 0 ? kvx_rnd(&r->rng) % 70000
								 : kvx_rnd(&r->rng) % 200;

			kvx_fill(val, len, k, (uint64_t)i);
			ret = urt_kv_put(r->kv, key, klen, val, len, flags);
			if (ret == 0)
				kvx_model_put(&r->m, key, klen, val, len);
			else
				kvx_failf(&r->f, "put: %d", ret);
		} else if (op < 65) {
			ret = urt_kv_del(r->kv, key, klen, flags);
			if (ret != (me ? 0 : URT_E_NOTFOUND))
				kvx_failf(&r->f, "del: %d, model %d", ret, me != NULL);
			kvx_model_del(&r->m, key, klen);
		} else if (op < 70) {
			ret = urt_kv_put(r->kv, key, klen, "nx", 2, URT_KV_NX | flags);
			if (ret != (me ? -EEXIST : 0))
				kvx_failf(&r->f, "put NX: %d, model %d", ret, me != NULL);
			if (!me)
				kvx_model_put(&r->m, key, klen, "nx", 2);
		} else if (op < 75) {
			ret = urt_kv_exists(r->kv, key, klen);
			if (ret != (me != NULL))
				kvx_failf(&r->f, "exists: %d, model %d", ret, me != NULL);
		} else {
			ret = urt_kv_get(r->kv, key, klen, got, 70000, &vlen);
			if (me ? (ret != 0 || vlen != me->vlen || memcmp(got, me->val, vlen))
			       : ret != URT_E_NOTFOUND)
				kvx_failf(&r->f, "get op %d: %d vlen %zu, model %zu", i, ret, vlen,
					  me ? me->vlen : 0);
		}
	}
	free(val);
	free(got);
	if (--*r->live == 0)
		urt_waitq_wake_one(r->wq);
}

struct rand_run {
	struct urt_kv *kv;
	struct rand_fiber fib[RAND_FIBERS];
	unsigned core;
	struct urt_waitq wq;
	unsigned live;
};

static void rand_driver(void *p)
{
	struct rand_run *run = p;

	run->live = RAND_FIBERS;
	for (unsigned i = 0; i < RAND_FIBERS; i++) {
		struct rand_fiber *r = &run->fib[i];

		r->kv = run->kv;
		r->id = run->core * 10 + i;
		r->rng = 0x1234567ull + r->id * 7919;
		r->wq = &run->wq;
		r->live = &run->live;
		cr_assert_eq(urt_fiber_spawn(rand_body, r), 0);
	}
	while (run->live)
		urt_waitq_wait(&run->wq);
}

struct scan_check {
	struct urt_kv *kv;
	struct kvx_model *m;
	size_t chunk;
	struct kvx_fail f;
};

static void scan_check_body(void *p)
{
	struct scan_check *sc = p;

	kvx_check_scan(sc->kv, sc->m, sc->chunk, &sc->f);
}

static void *run_core(void *p)
{
	struct { struct urt_rt *rt; struct rand_run *run; } *a = p;

	kvx_run(a->rt, a->run->core, rand_driver, a->run);
	return NULL;
}

Test(kv, concurrent_fibers_on_both_cores_match_the_model, .timeout = 240)
{
	struct env e;
	struct rand_run *runs = calloc(2, sizeof(*runs));
	struct kvx_model all = { 0 };
	struct { struct urt_rt *rt; struct rand_run *run; } args[2];
	pthread_t th[2];

	env_open(&e, 2, 3);
	for (unsigned c = 0; c < 2; c++) {
		runs[c].kv = e.kv;
		runs[c].core = c;
		args[c].rt = e.rt;
		args[c].run = &runs[c];
		pthread_create(&th[c], NULL, run_core, &args[c]);
	}
	for (unsigned c = 0; c < 2; c++)
		pthread_join(th[c], NULL);
	for (unsigned c = 0; c < 2; c++)
		for (unsigned i = 0; i < RAND_FIBERS; i++) {
			struct rand_fiber *r = &runs[c].fib[i];

			kvx_assert_ok(&r->f);
			for (size_t j = 0; j < r->m.n; j++)
				kvx_model_put(&all, r->m.e[j].key, r->m.e[j].klen, r->m.e[j].val,
					      r->m.e[j].vlen);
		}
	{
		struct scan_check sc = { .kv = e.kv, .m = &all, .chunk = 37 };

		env_run_ok(&e, 1, scan_check_body, &sc, &sc.f);
	}
	/* The same after a close and reopen (recovery of both shards). */
	env_reopen(&e);
	{
		struct scan_check sc = { .kv = e.kv, .m = &all, .chunk = 1000 };
		struct count_arg ca = { .kv = e.kv };

		env_run_ok(&e, 0, scan_check_body, &sc, &sc.f);
		kvx_run(e.rt, 0, count_body, &ca);
		cr_expect_eq(ca.count, all.n, "count %llu, model %zu", (unsigned long long)ca.count,
			     all.n);
	}
	for (unsigned c = 0; c < 2; c++)
		for (unsigned i = 0; i < RAND_FIBERS; i++)
			kvx_model_free(&runs[c].fib[i].m);
	kvx_model_free(&all);
	free(runs);
	env_close(&e);
}

/* Scans: order across shards, cursors, bounds, small buffers, keys only. */

struct scan_t {
	struct urt_kv *kv;
	struct kvx_fail f;
	struct kvx_model m;
};

static void scan_body(void *p)
{
	struct scan_t *t = p;
	struct urt_kv_entry ents[16];
	struct urt_kv_cursor c;
	uint8_t buf[4096], *big = malloc(5000 * 2 + 256);
	char key[32];
	size_t at;
	int n;

	for (int i = 0; i < 500; i++) {
		int kl = snprintf(key, sizeof(key), "s%03d", (i * 7) % 500);
		char v[16];
		int vl = snprintf(v, sizeof(v), "v%d", (i * 7) % 500);

		if (urt_kv_put(t->kv, key, (size_t)kl, v, (size_t)vl, URT_KV_NOSYNC) != 0)
			kvx_failf(&t->f, "put %s", key);
		kvx_model_put(&t->m, key, (size_t)kl, v, (size_t)vl);
	}
	/* Chunks of 16 through the whole store, in order, both shards merged. */
	kvx_check_scan(t->kv, &t->m, 16, &t->f);
	kvx_check_scan(t->kv, &t->m, 1, &t->f);
	/* From a start key between keys: the first is the next one. */
	urt_kv_cursor_init(&c, "s2505", 5);
	n = urt_kv_scan(t->kv, &c, ents, 3, buf, sizeof(buf), 0);
	if (n != 3 || ents[0].klen != 4 || memcmp(ents[0].key, "s251", 4) ||
	    memcmp(ents[2].key, "s253", 4) || ents[2].vlen != 4 || memcmp(ents[2].val, "v253", 4))
		kvx_failf(&t->f, "scan from s2505: %d", n);
	/* The cursor goes on after the last key returned. */
	n = urt_kv_scan(t->kv, &c, ents, 1, buf, sizeof(buf), 0);
	if (n != 1 || memcmp(ents[0].key, "s254", 4))
		kvx_failf(&t->f, "scan continues: %d", n);
	/* Keys only: no values copied, lengths still given. */
	urt_kv_cursor_init(&c, "s498", 4);
	n = urt_kv_scan(t->kv, &c, ents, 16, buf, sizeof(buf), URT_KV_KEYS_ONLY);
	if (n != 2 || ents[0].val != NULL || ents[0].vlen != 4 || !c.done)
		kvx_failf(&t->f, "keys-only tail: %d done %d", n, c.done);
	n = urt_kv_scan(t->kv, &c, ents, 16, buf, sizeof(buf), 0);
	if (n != 0)
		kvx_failf(&t->f, "scan past the end: %d", n);
	/* A buffer too small for one entry: -ENOSPC and the size that works. */
	kvx_fill(big, 5000, 1, 2);
	if (urt_kv_put(t->kv, "s000", 4, big, 5000, 0) != 0)
		kvx_failf(&t->f, "put big");
	urt_kv_cursor_init(&c, NULL, 0);
	n = urt_kv_scan(t->kv, &c, ents, 4, buf, sizeof(buf), 0);
	if (n != -ENOSPC || c.need_bytes < 5000 || c.need_bytes > 2 * (5000 + 64))
		kvx_failf(&t->f, "small buffer: %d need %zu", n, c.need_bytes);
	{
		uint8_t *b2 = malloc(c.need_bytes);

		n = urt_kv_scan(t->kv, &c, ents, 4, b2, c.need_bytes, 0);
		if (n < 1 || ents[0].vlen != 5000 || memcmp(ents[0].val, big, 5000))
			kvx_failf(&t->f, "with need_bytes: %d", n);
		free(b2);
	}
	/* Every key once, in order, however small the chunks: count them. */
	urt_kv_cursor_init(&c, NULL, 0);
	at = 0;
	while (!c.done && at < 10000) {
		n = urt_kv_scan(t->kv, &c, ents, 7, big, 5000 * 2 + 256, URT_KV_KEYS_ONLY);
		if (n < 0) {
			kvx_failf(&t->f, "keys scan: %d", n);
			break;
		}
		at += (size_t)n;
	}
	if (at != 500)
		kvx_failf(&t->f, "keys scan saw %zu keys", at);
	if (urt_kv_cursor_init(&c, key, URT_KV_KEY_MAX + 1) != URT_E_TOOBIG)
		kvx_failf(&t->f, "cursor with a long key");
	free(big);
}

Test(kv, scan_in_order_with_cursors)
{
	struct env e;
	struct scan_t t = { 0 };

	env_open(&e, 2, 4);
	t.kv = e.kv;
	env_run_ok(&e, 0, scan_body, &t, &t.f);
	kvx_model_free(&t.m);
	env_close(&e);
}

/* NOSYNC writes are visible at once; the async API; clear. */

struct async_t {
	struct urt_kv *kv;
	struct kvx_fail f;
	unsigned pending;
	struct urt_waitq wq;
	unsigned done_order[64];
	unsigned ndone;
};

static void async_done(struct urt_kv_req *req)
{
	struct async_t *t = req->arg;

	if (urt_core_id() != 1)
		kvx_failf(&t->f, "done ran on core %u, not the submitter's", urt_core_id());
	if (--t->pending == 0)
		urt_waitq_wake_one(&t->wq);
}

static void async_body(void *p)
{
	struct async_t *t = p;
	struct urt_kv_req reqs[64];
	char keys[64][16], vals[64][16], buf[16];
	size_t vlen;
	uint64_t count = 1;

	/* 64 writes in flight at once, half of them to the same key: the last one wins. */
	memset(reqs, 0, sizeof(reqs));
	for (unsigned i = 0; i < 64; i++) {
		int kl = i % 2 ? snprintf(keys[i], 16, "same") : snprintf(keys[i], 16, "a%u", i);
		int vl = snprintf(vals[i], 16, "%u", i);

		reqs[i] = (struct urt_kv_req){ .op = URT_KV_OP_PUT, .key = keys[i], .klen = (size_t)kl,
					       .val = vals[i], .vlen = (size_t)vl,
					       .flags = i % 3 ? URT_KV_NOSYNC : 0,
					       .done = async_done, .arg = t };
		t->pending++;
		if (urt_kv_submit(t->kv, &reqs[i]) != 0) {
			t->pending--;
			kvx_failf(&t->f, "submit %u", i);
		}
	}
	while (t->pending)
		urt_waitq_wait(&t->wq);
	for (unsigned i = 0; i < 64; i++)
		if (reqs[i].res != 0)
			kvx_failf(&t->f, "req %u: %d", i, reqs[i].res);
	if (urt_kv_get(t->kv, "same", 4, buf, sizeof(buf), &vlen) != 0 || vlen != 2 ||
	    memcmp(buf, "63", 2))
		kvx_failf(&t->f, "same key: the last write must win");
	/* A NOSYNC put is visible to the next read. */
	for (int i = 0; i < 50; i++) {
		char v[8];
		int vl = snprintf(v, sizeof(v), "n%d", i);

		if (urt_kv_put(t->kv, "ns", 2, v, (size_t)vl, URT_KV_NOSYNC) != 0 ||
		    urt_kv_get(t->kv, "ns", 2, buf, sizeof(buf), &vlen) != 0 || vlen != (size_t)vl ||
		    memcmp(buf, v, vlen))
			kvx_failf(&t->f, "NOSYNC put %d not visible", i);
	}
	/* Bad requests are refused at submit and never call back. */
	{
		struct urt_kv_req bad = { .op = 99, .key = "k", .klen = 1, .done = async_done,
					  .arg = t };

		if (urt_kv_submit(t->kv, &bad) != -EINVAL)
			kvx_failf(&t->f, "bad op accepted");
		bad.op = URT_KV_OP_GET;
		bad.klen = 0;
		if (urt_kv_submit(t->kv, &bad) != -EINVAL)
			kvx_failf(&t->f, "empty key accepted");
	}
	/* Clear drops everything on both shards. */
	if (urt_kv_clear(t->kv, 0) != 0 || urt_kv_count(t->kv, &count) != 0 || count != 0)
		kvx_failf(&t->f, "clear: %llu keys left", (unsigned long long)count);
	if (urt_kv_exists(t->kv, "same", 4) != 0)
		kvx_failf(&t->f, "a key survived clear");
	if (urt_kv_put(t->kv, "after", 5, "x", 1, 0) != 0 ||
	    urt_kv_count(t->kv, &count) != 0 || count != 1)
		kvx_failf(&t->f, "put after clear");
	if (urt_kv_checkpoint(t->kv) != 0)
		kvx_failf(&t->f, "checkpoint");
}

Test(kv, nosync_async_and_clear)
{
	struct env e;
	struct async_t t = { 0 };
	struct count_arg ca;

	env_open(&e, 2, 5);
	t.kv = e.kv;
	env_run_ok(&e, 1, async_body, &t, &t.f);
	env_reopen(&e);
	ca = (struct count_arg){ .kv = e.kv };
	kvx_run(e.rt, 0, count_body, &ca);
	cr_expect_eq(ca.count, 1, "after reopen: %llu keys", (unsigned long long)ca.count);
	env_close(&e);
}

/*
 * urt_kv_submit_batch: a pipeline of reads (hits, misses, EXISTS, values on
 * overflow pages and a value too large for one transaction), a bad request
 * and a write in the middle give what single submits give, every done runs
 * once, and a shard's reads share read transactions.
 */
#define BATCH_KEYS 120u
#define BATCH_BIG (1536u << 10)

struct batch_t {
	struct urt_kv *kv;
	unsigned shards;	/* Shards of kv (one per core). */
	bool one_core;		/* Every shard is local: all reads may share. */
	bool prefetch;		/* read_prefetch_min_bytes 0: one-core batches must prefetch. */
	struct kvx_fail f;
	unsigned pending, calls;
	struct urt_waitq wq;
};

static void batch_done(struct urt_kv_req *req)
{
	struct batch_t *t = req->arg;

	t->calls++;
	if (--t->pending == 0)
		urt_waitq_wake_one(&t->wq);
}

static size_t batch_vlen(unsigned i)
{
	return i == 7 ? BATCH_BIG : i % 10 == 3 ? 20000 : 8 + i % 13;
}

static void batch_fill(uint8_t *v, size_t n, unsigned i)
{
	for (size_t j = 0; j < n; j++)
		v[j] = (uint8_t)(i * 31 + j);
}

static void batch_body(void *p)
{
	struct batch_t *t = p;
	static struct urt_kv_req reqs[2 * BATCH_KEYS + 2];
	static struct urt_kv_req *ptrs[2 * BATCH_KEYS + 2];
	static char keys[2 * BATCH_KEYS][16];
	static uint8_t bufs[2 * BATCH_KEYS][64], val[BATCH_BIG], want[BATCH_BIG];
	struct urt_kv_shard_stats st0[2] = { 0 }, st1[2] = { 0 };
	unsigned n = 0, reads = 0;
	size_t failed, vlen;

	/* Keys 0..BATCH_KEYS-1 exist (every fourth is then deleted), the rest never did. */
	for (unsigned i = 0; i < BATCH_KEYS; i++) {
		snprintf(keys[i], 16, "b%u", i);
		batch_fill(val, batch_vlen(i), i);
		if (urt_kv_put(t->kv, keys[i], strlen(keys[i]), val, batch_vlen(i), 0) != 0)
			kvx_failf(&t->f, "put %u", i);
		if (i % 4 == 1 && urt_kv_del(t->kv, keys[i], strlen(keys[i]), 0) != 0)
			kvx_failf(&t->f, "del %u", i);
	}
	for (unsigned i = BATCH_KEYS; i < 2 * BATCH_KEYS; i++)
		snprintf(keys[i], 16, "b%u", i);
	for (unsigned s = 0; s < t->shards; s++)
		if (urt_kv_shard_stats(t->kv, s, &st0[s]) != 0)
			kvx_failf(&t->f, "stats");
	memset(reqs, 0, sizeof(reqs));
	for (unsigned i = 0; i < 2 * BATCH_KEYS; i++) {
		struct urt_kv_req *r = &reqs[n];

		r->op = i % 5 == 4 ? URT_KV_OP_EXISTS : URT_KV_OP_GET;
		r->key = keys[i];
		r->klen = strlen(keys[i]);
		r->buf = bufs[i];
		r->buf_len = r->op == URT_KV_OP_GET ? sizeof(bufs[i]) : 0;
		r->done = batch_done;
		r->arg = t;
		ptrs[n++] = r;
		reads++;
		if (i == 50) {
			/* A bad request: refused, res set, no done. */
			reqs[n] = (struct urt_kv_req){ .op = URT_KV_OP_GET, .key = "x", .klen = 0,
						       .done = batch_done, .arg = t };
			ptrs[n] = &reqs[n];
			n++;
		}
		if (i == 90) {
			/* A write between reads (of a key no read asks for). */
			reqs[n] = (struct urt_kv_req){ .op = URT_KV_OP_PUT, .key = "bw", .klen = 2,
						       .val = "w", .vlen = 1, .done = batch_done,
						       .arg = t };
			ptrs[n] = &reqs[n];
			n++;
		}
	}
	t->pending = n - 1;	/* All but the bad one call back. */
	failed = urt_kv_submit_batch(t->kv, ptrs, n);
	if (failed != 1 || reqs[51].res != -EINVAL)
		kvx_failf(&t->f, "failed %zu, bad request's res %d", failed, reqs[51].res);
	while (t->pending)
		urt_waitq_wait(&t->wq);
	if (t->calls != n - 1)
		kvx_failf(&t->f, "%u done calls for %u requests", t->calls, n - 1);
	for (unsigned k = 0; k < n; k++) {
		struct urt_kv_req *r = &reqs[k];
		unsigned i;
		int res;

		if (r->klen == 0 || r->op == URT_KV_OP_PUT) {
			if (r->op == URT_KV_OP_PUT && r->res != 0)
				kvx_failf(&t->f, "put in the batch: %d", r->res);
			continue;
		}
		i = (unsigned)atoi((const char *)r->key + 1);
		if (r->op == URT_KV_OP_EXISTS) {
			res = urt_kv_exists(t->kv, r->key, r->klen);
			if (r->res != res)
				kvx_failf(&t->f, "EXISTS %s: %d, single %d", keys[i], r->res, res);
			continue;
		}
		res = urt_kv_get(t->kv, r->key, r->klen, val, sizeof(val), &vlen);
		if (r->res != res || (res == 0 && r->vlen_out != vlen))
			kvx_failf(&t->f, "GET %s: %d (%zu bytes), single %d (%zu)", keys[i], r->res,
				  r->vlen_out, res, vlen);
		if (res == 0) {
			batch_fill(want, vlen, i);
			if (memcmp(r->buf, want, vlen < 64 ? vlen : 64) != 0)
				kvx_failf(&t->f, "GET %s: wrong bytes", keys[i]);
		}
		if ((i < BATCH_KEYS && i % 4 != 1) != (res == 0))
			kvx_failf(&t->f, "GET %s: %d", keys[i], res);
	}
	for (unsigned s = 0; s < t->shards; s++)
		if (urt_kv_shard_stats(t->kv, s, &st1[s]) != 0)
			kvx_failf(&t->f, "stats");
	{
		/*
		 * The single reads above took one transaction each.  On one
		 * core the batch's reads, all local, share them: a transaction
		 * per KV_READ_GROUP reads of a segment, a few in all.  On two,
		 * reads of the other core's shard each take their own.
		 */
		uint64_t txs = 0, served = 0, hits = 0, prefetched = 0;

		for (unsigned s = 0; s < t->shards; s++) {
			txs += st1[s].ps.commits_readonly - st0[s].ps.commits_readonly;
			served += st1[s].reads - st0[s].reads;
			hits += st1[s].pager_memo_hits - st0[s].pager_memo_hits;
			prefetched += st1[s].read_prefetches - st0[s].read_prefetches;
		}
		/*
		 * Every read counted once (urt_kv_shard_stats.reads): the batch's,
		 * a large value redone alone included, and the singles'; not the
		 * stats calls' own reads.
		 */
		if (served != 2ull * reads)
			kvx_failf(&t->f, "%llu reads served for %u in the batch and %u single",
				  (unsigned long long)served, reads, reads);
		if (served < 2ull * reads ||
		    (t->one_core ? txs > served - reads + 10 : txs >= served))
			kvx_failf(&t->f, "%llu read transactions for %llu reads: the batch shared "
				  "too few", (unsigned long long)txs, (unsigned long long)served);
		/*
		 * A read after the first of its transaction finds at least the
		 * tree's meta page in the pager's memo (pager_ps.c).
		 */
		if (t->one_core && hits < served - txs)
			kvx_failf(&t->f, "the pagers' memo answered %llu page reads for %llu reads in "
				  "%llu transactions", (unsigned long long)hits,
				  (unsigned long long)served, (unsigned long long)txs);
		/*
		 * Reads that share a transaction have their leaves prefetched
		 * first (kv_shard_read_many): at most one per read served; but
		 * none while the tree is smaller than read_prefetch_min_bytes
		 * (the default 16 MiB, far above this test's tree).
		 */
		if (t->one_core && t->prefetch && (prefetched == 0 || prefetched > served))
			kvx_failf(&t->f, "%llu leaves prefetched for %llu reads served",
				  (unsigned long long)prefetched, (unsigned long long)served);
		if (!t->prefetch && prefetched != 0)
			kvx_failf(&t->f, "%llu leaves prefetched in a tree below read_prefetch_min_bytes",
				  (unsigned long long)prefetched);
		if (getenv("KV_DEBUG"))
			fprintf(stderr, "batch: %llu reads, %llu transactions, %llu memo hits\n",
				(unsigned long long)served, (unsigned long long)txs,
				(unsigned long long)hits);
	}
}

Test(kv, submit_batch_matches_single_submits, .timeout = 120)
{
	struct env e;
	struct batch_t t = { 0 };

	env_open(&e, 2, 5);
	t.kv = e.kv;
	t.shards = 2;
	env_run_ok(&e, 1, batch_body, &t, &t.f);
	env_close(&e);

	/* One core, with the default threshold (no prefetch), then with prefetching always on. */
	for (int pf = 0; pf < 2; pf++) {
		t = (struct batch_t){ 0 };
		env_open_prefetch(&e, 1, 6, pf ? 0 : UINT64_MAX);
		t.kv = e.kv;
		t.shards = 1;
		t.one_core = true;
		t.prefetch = pf;
		env_run_ok(&e, 0, batch_body, &t, &t.f);
		env_close(&e);
	}
}

/*
 * A queue of writes is committed in several transactions (shard.c design
 * notes): with committers idle, a builder stops at KV_GROUP_MAX requests
 * and another builds the rest, so 1,000 writes queued at once take at least
 * 1000 / KV_GROUP_MAX transactions (with one transaction for the whole
 * queue, the core and the log took turns).  The queue's order still holds
 * across them: a key written twice keeps its later value.
 */
#define GROUP_WRITES 1000u

static void group_body(void *p)
{
	struct batch_t *t = p;
	static struct urt_kv_req reqs[GROUP_WRITES];
	static struct urt_kv_req *ptrs[GROUP_WRITES];
	static char keys[GROUP_WRITES][16];
	struct urt_kv_shard_stats st0, st1;
	char buf[16];
	size_t vlen;
	uint64_t txs;

	if (urt_kv_shard_stats(t->kv, 0, &st0) != 0)
		kvx_failf(&t->f, "stats");
	memset(reqs, 0, sizeof(reqs));
	for (unsigned i = 0; i < GROUP_WRITES; i++) {
		struct urt_kv_req *r = &reqs[i];

		/* Requests 5 and 900 both write key "g5": the later one must win. */
		snprintf(keys[i], sizeof(keys[i]), "g%u", i == 900 ? 5u : i);
		r->op = URT_KV_OP_PUT;
		r->key = keys[i];
		r->klen = strlen(keys[i]);
		r->val = i == 900 ? "later" : keys[i];
		r->vlen = strlen(r->val);
		r->done = batch_done;
		r->arg = t;
		ptrs[i] = r;
	}
	t->pending = GROUP_WRITES;
	if (urt_kv_submit_batch(t->kv, ptrs, GROUP_WRITES) != 0)
		kvx_failf(&t->f, "submit_batch refused a put");
	while (t->pending)
		urt_waitq_wait(&t->wq);
	for (unsigned i = 0; i < GROUP_WRITES; i++)
		if (reqs[i].res != 0)
			kvx_failf(&t->f, "put %u: %d", i, reqs[i].res);
	if (urt_kv_shard_stats(t->kv, 0, &st1) != 0)
		kvx_failf(&t->f, "stats");
	txs = st1.write_txs - st0.write_txs;
	if (st1.writes - st0.writes != GROUP_WRITES)
		kvx_failf(&t->f, "%llu writes applied for %u", (unsigned long long)(st1.writes - st0.writes),
			  GROUP_WRITES);
	if (txs < (GROUP_WRITES + KV_GROUP_MAX - 1) / KV_GROUP_MAX || txs > GROUP_WRITES)
		kvx_failf(&t->f, "%u queued writes took %llu transactions: want at least %u "
			  "(KV_GROUP_MAX %u while a committer is idle)", GROUP_WRITES,
			  (unsigned long long)txs, (GROUP_WRITES + KV_GROUP_MAX - 1) / KV_GROUP_MAX,
			  KV_GROUP_MAX);
	if (urt_kv_get(t->kv, "g5", 2, buf, sizeof(buf), &vlen) != 0 || vlen != 5 ||
	    memcmp(buf, "later", 5) != 0)
		kvx_failf(&t->f, "g5 does not hold the later of its two writes");
	if (urt_kv_get(t->kv, "g999", 4, buf, sizeof(buf), &vlen) != 0 || vlen != 4 ||
	    memcmp(buf, "g999", 4) != 0)
		kvx_failf(&t->f, "g999 missing or wrong");
}

Test(kv, queued_writes_commit_in_groups_in_order)
{
	struct env e;
	struct batch_t t = { 0 };

	env_open(&e, 1, 7);
	t.kv = e.kv;
	t.shards = 1;
	env_run_ok(&e, 0, group_body, &t, &t.f);
	env_close(&e);
}

/* A data file: created on first open, reopened, shard count fixed at creation. */

struct file_t {
	struct urt_kv *kv;
	int put, get;
	char buf[8];
	size_t vlen;
};

static void file_put(void *p)
{
	struct file_t *t = p;

	t->put = urt_kv_put(t->kv, "persist", 7, "yes", 3, 0);
}

static void file_get(void *p)
{
	struct file_t *t = p;

	t->get = urt_kv_get(t->kv, "persist", 7, t->buf, sizeof(t->buf), &t->vlen);
}

/* A small store in the data file path. */
static void file_opts(struct urt_kv_opts *o, const char *path)
{
	urt_kv_opts_default(o);
	o->path = path;
	o->size_bytes = 64ull << 20;
	o->cache_bytes = 4u << 20;
	o->batch_bytes_max = 512u << 10;
	o->readers_max = 4;
}

Test(kv, data_file_create_and_reopen)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char path[256];
	struct urt_kv_opts o;
	struct urt_rt *rt;
	struct urt_kv *kv;
	struct file_t t = { 0 };
	int ret;

	snprintf(path, sizeof(path), "%s/urkv-test-%d", tmp, getpid());
	unlink(path);
	file_opts(&o, path);
	rt = kvx_start(2, &o);
	ret = urt_kv_open(rt, &o, &kv);
	cr_assert_eq(ret, 0, "open: %d %s", ret, urt_last_error());
	cr_expect_eq(urt_kv_shards(kv), 2);
	t.kv = kv;
	kvx_run(rt, 0, file_put, &t);
	cr_expect_eq(t.put, 0);
	cr_assert_eq(urt_kv_close(kv), 0);

	/* Asking for 3 shards on reopen: the store keeps its 2. */
	o.shards = 3;
	ret = urt_kv_open(rt, &o, &kv);
	cr_assert_eq(ret, 0, "reopen: %d %s", ret, urt_last_error());
	cr_expect_eq(urt_kv_shards(kv), 2);
	t.kv = kv;
	kvx_run(rt, 1, file_get, &t);
	cr_expect(t.get == 0 && t.vlen == 3 && memcmp(t.buf, "yes", 3) == 0, "get: %d", t.get);
	cr_assert_eq(urt_kv_close(kv), 0);

	/* No store and create unset; a file that is not a store. */
	o.create = false;
	unlink(path);
	ret = urt_kv_open(rt, &o, &kv);
	cr_expect_eq(ret, -ENOENT, "missing file without create: %d", ret);
	{
		FILE *f = fopen(path, "w");

		for (int i = 0; i < 8 << 20; i += 4)
			fwrite("junk", 1, 4, f);
		fclose(f);
	}
	o.create = true;
	ret = urt_kv_open(rt, &o, &kv);
	cr_expect_eq(ret, URT_E_BADFORMAT, "junk file: %d", ret);
	o.path = NULL;
	ret = urt_kv_open(rt, &o, &kv);
	cr_expect_eq(ret, -EINVAL, "neither path nor dev: %d", ret);
	unlink(path);
	urt_rt_stop(rt);
}

/*
 * A file moved over the store's path between its lock and its device's
 * open (kv_layout_open_hook stands in for the other process): the open is
 * refused with -EAGAIN naming the replacement, neither file is written,
 * and the lock is released (a second open then succeeds).
 */
static char moved_from[256];

static void move_over(const char *path)
{
	cr_assert_eq(rename(moved_from, path), 0, "rename: %s", strerror(errno));
}

Test(kv, open_refuses_a_file_moved_over_its_path_while_opening)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char path[256], junk[4096];
	struct urt_kv_opts o;
	struct urt_rt *rt;
	struct urt_kv *kv;
	struct stat st;
	FILE *f;
	int ret;

	snprintf(path, sizeof(path), "%s/urkv-moved-%d", tmp, getpid());
	snprintf(moved_from, sizeof(moved_from), "%s/urkv-moved-%d.other", tmp, getpid());
	unlink(path);
	memset(junk, 0x5a, sizeof(junk));
	f = fopen(moved_from, "w");
	cr_assert_not_null(f);
	for (int i = 0; i < 256; i++)
		fwrite(junk, 1, sizeof(junk), f);
	fclose(f);
	file_opts(&o, path);
	rt = kvx_start(1, &o);
	kv_layout_open_hook = move_over;
	ret = urt_kv_open(rt, &o, &kv);
	kv_layout_open_hook = NULL;
	cr_expect_eq(ret, -EAGAIN, "open with the file replaced: %d %s", ret, urt_last_error());
	cr_expect(strstr(urt_last_error(), "was replaced while the store was being opened") != NULL, "message: %s",
		  urt_last_error());
	/* The file moved in is untouched: 1 MiB of 0x5a. */
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_size, 1 << 20, "the replacement was resized to %lld", (long long)st.st_size);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	cr_expect_eq(fread(junk, 1, sizeof(junk), f), sizeof(junk));
	cr_expect(junk[0] == 0x5a && junk[4095] == 0x5a, "the replacement was written");
	fclose(f);
	/* Nothing is held: with the path free again a store is created there. */
	unlink(path);
	ret = urt_kv_open(rt, &o, &kv);
	cr_expect_eq(ret, 0, "open after: %d %s", ret, urt_last_error());
	if (ret == 0)
		cr_expect_eq(urt_kv_close(kv), 0);
	unlink(path);
	urt_rt_stop(rt);
}
