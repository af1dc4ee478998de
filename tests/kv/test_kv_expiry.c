/*
 * Key expiry through the store's public API (urt/kv.h) on two cores and two
 * shards, on a clock the test moves (struct urt_kv_opts.clock_ms): expired
 * keys are absent for get, exists, count, scan, NX and XX; INCR and
 * KEEPTTL keep a key's expiry; updates set, drop and read expiries
 * atomically; expiries survive a close and reopen; the active pass frees a
 * shard full of expired keys that nobody reads; and one test on the real
 * clock.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "kv_fixture.h"

#define DEV_BYTES (256ull << 20)
#define T0 1700000000000ull	/* The test clock's start, ms since the epoch. */

static _Atomic uint64_t test_now = T0;

static uint64_t test_clock(void *arg)
{
	(void)arg;
	return atomic_load(&test_now);
}

struct env {
	struct urt_rt *rt;
	struct urt_dev *dev;
	struct urt_kv *kv;
	struct urt_kv_opts o;
};

static void env_open(struct env *e, bool fake_clock, uint32_t interval_ms)
{
	int ret;

	atomic_store(&test_now, T0);
	e->dev = kvx_sim(DEV_BYTES, 42);
	kvx_opts(&e->o, e->dev);
	if (fake_clock)
		e->o.clock_ms = test_clock;
	e->o.expire_interval_ms = interval_ms;
	e->rt = kvx_start(2, &e->o);
	ret = urt_kv_open(e->rt, &e->o, &e->kv);
	cr_assert_eq(ret, 0, "urt_kv_open: %d (%s) %s", ret, urt_strerror(ret), urt_last_error());
}

static void env_close(struct env *e)
{
	cr_assert_eq(urt_kv_close(e->kv), 0);
	urt_rt_stop(e->rt);
	urt_dev_close(e->dev);
}

#define CHECK(b, cond, ...)                              \
	do {                                             \
		if (!(cond))                             \
			kvx_failf(&(b)->f, __VA_ARGS__); \
	} while (0)

struct st {
	struct urt_kv *kv;
	struct kvx_fail f;
	int phase;
};

static int count_keys(struct urt_kv *kv, uint64_t *n)
{
	return urt_kv_count(kv, n);
}

/* Keys a full scan returns. */
static unsigned scan_keys(struct urt_kv *kv)
{
	static struct urt_kv_entry ents[64];
	static uint8_t buf[1 << 16];
	struct urt_kv_cursor c;
	unsigned n = 0;

	urt_kv_cursor_init(&c, NULL, 0);
	while (!c.done) {
		int r = urt_kv_scan(kv, &c, ents, 64, buf, sizeof(buf), URT_KV_KEYS_ONLY);

		if (r < 0)
			return UINT32_MAX;
		n += (unsigned)r;
	}
	return n;
}

/* An update that sets the expiry given in req->delta (0: persist) if the key is live. */
static int set_expire_fn(struct urt_kv_req *req, struct urt_kv_update *u)
{
	if (!u->exists)
		return 0;
	u->expire_at = (uint64_t)req->delta;
	u->action = URT_KV_UPDATE_EXPIRE;
	return 1;
}

/* An update that appends req->val to the value, keeping its expiry (APPEND). */
static int append_fn(struct urt_kv_req *req, struct urt_kv_update *u)
{
	if (!u->exists) {
		u->vlen = 0;
		u->expire_at = 0;
	}
	memcpy(u->val + u->vlen, req->val, req->vlen);
	u->vlen += req->vlen;
	u->action = URT_KV_UPDATE_PUT;
	return (int)u->vlen;
}

/* An update that takes the value out (GETDEL). */
static int getdel_fn(struct urt_kv_req *req, struct urt_kv_update *u)
{
	if (!u->exists)
		return URT_E_NOTFOUND;
	memcpy(req->buf, u->val, u->vlen < req->buf_len ? u->vlen : req->buf_len);
	req->vlen_out = u->vlen;
	u->action = URT_KV_UPDATE_DEL;
	return 0;
}

static void basic_body(void *p)
{
	struct st *b = p;
	struct urt_kv *kv = b->kv;
	char key[32], buf[64];
	uint64_t exp = 0, n = 0;
	size_t vlen = 0;
	int64_t num = 0;
	int ret;

	CHECK(b, urt_kv_now_ms(kv) == T0, "clock");
	/* 40 keys over both shards: even ones expire at T0 + 1000 + i, odd ones never. */
	for (int i = 0; i < 40; i++) {
		int kl = snprintf(key, sizeof(key), "k%d", i);

		ret = urt_kv_put_expire(kv, key, (size_t)kl, "val", 3, i % 2 ? 0 : T0 + 1000 + (uint64_t)i,
					0);
		CHECK(b, ret == 0, "put %s: %d", key, ret);
	}
	ret = urt_kv_get_expire(kv, "k4", 2, buf, sizeof(buf), &vlen, &exp);
	CHECK(b, ret == 0 && vlen == 3 && exp == T0 + 1004, "get_expire k4: %d %zu %llu", ret, vlen,
	      (unsigned long long)exp);
	ret = urt_kv_get_expire(kv, "k5", 2, buf, sizeof(buf), &vlen, &exp);
	CHECK(b, ret == 0 && exp == 0, "get_expire k5: %d %llu", ret, (unsigned long long)exp);
	CHECK(b, count_keys(kv, &n) == 0 && n == 40, "count before: %llu", (unsigned long long)n);

	/* Half of the expiring keys pass their time. */
	atomic_store(&test_now, T0 + 1020);
	CHECK(b, urt_kv_get(kv, "k4", 2, buf, sizeof(buf), &vlen) == URT_E_NOTFOUND, "k4 expired");
	CHECK(b, urt_kv_exists(kv, "k20", 3) == 0, "k20 (expires at T0+1020) expired");
	CHECK(b, urt_kv_exists(kv, "k22", 3) == 1, "k22 live");
	CHECK(b, count_keys(kv, &n) == 0 && n == 29, "count after: %llu", (unsigned long long)n);
	CHECK(b, scan_keys(kv) == 29, "scan after: %u", scan_keys(kv));
	CHECK(b, urt_kv_del(kv, "k6", 2, 0) == URT_E_NOTFOUND, "del of an expired key");

	/* NX writes over an expired key, XX does not; the new key has no expiry. */
	CHECK(b, urt_kv_put(kv, "k8", 2, "new", 3, URT_KV_NX) == 0, "NX over expired");
	CHECK(b, urt_kv_get_expire(kv, "k8", 2, buf, sizeof(buf), &vlen, &exp) == 0 && exp == 0,
	      "NX value has no expiry");
	CHECK(b, urt_kv_put(kv, "k10", 3, "new", 3, URT_KV_XX) == URT_E_NOTFOUND, "XX on expired");
	CHECK(b, urt_kv_put(kv, "k22", 3, "x", 1, URT_KV_NX) == -EEXIST, "NX on live");

	/* KEEPTTL and a plain put. */
	CHECK(b, urt_kv_put_expire(kv, "k24", 3, "kept", 4, 0, URT_KV_KEEPTTL) == 0, "keepttl");
	CHECK(b, urt_kv_get_expire(kv, "k24", 3, buf, sizeof(buf), &vlen, &exp) == 0 &&
		 exp == T0 + 1024 && vlen == 4, "keepttl kept %llu", (unsigned long long)exp);
	CHECK(b, urt_kv_put_expire(kv, "k24", 3, "x", 1, 5, URT_KV_KEEPTTL) == -EINVAL,
	      "keepttl with a time");
	CHECK(b, urt_kv_put(kv, "k26", 3, "plain", 5, 0) == 0, "plain put");
	CHECK(b, urt_kv_get_expire(kv, "k26", 3, buf, sizeof(buf), &vlen, &exp) == 0 && exp == 0,
	      "plain put drops the expiry");

	/* INCR keeps the expiry; on an expired key it starts from 0 with none. */
	CHECK(b, urt_kv_put_expire(kv, "n", 1, "41", 2, T0 + 5000, 0) == 0, "put n");
	CHECK(b, urt_kv_incr(kv, "n", 1, 1, 0, &num) == 0 && num == 42, "incr n");
	CHECK(b, urt_kv_get_expire(kv, "n", 1, buf, sizeof(buf), &vlen, &exp) == 0 && exp == T0 + 5000,
	      "incr keeps expiry");
	CHECK(b, urt_kv_put_expire(kv, "m", 1, "41", 2, T0 + 1021, 0) == 0, "put m");
	atomic_store(&test_now, T0 + 1021);
	CHECK(b, urt_kv_incr(kv, "m", 1, 1, 0, &num) == 0 && num == 1, "incr of expired: %lld",
	      (long long)num);
	CHECK(b, urt_kv_get_expire(kv, "m", 1, buf, sizeof(buf), &vlen, &exp) == 0 && exp == 0,
	      "incr of expired: no expiry");

	/* Updates: set and drop an expiry, append keeping it, take a value out. */
	{
		struct urt_kv_req r = { .key = "k1", .klen = 2, .update = set_expire_fn,
					.delta = (int64_t)(T0 + 9000), .vlen = 0 };

		ret = urt_kv_update(kv, &r);
		CHECK(b, ret == 1, "expire k1: %d", ret);
		CHECK(b, urt_kv_get_expire(kv, "k1", 2, buf, sizeof(buf), &vlen, &exp) == 0 &&
			 exp == T0 + 9000 && vlen == 3 && memcmp(buf, "val", 3) == 0, "k1 expiry set");
		r = (struct urt_kv_req){ .key = "k1", .klen = 2, .update = set_expire_fn, .delta = 0 };
		CHECK(b, urt_kv_update(kv, &r) == 1, "persist k1");
		CHECK(b, urt_kv_get_expire(kv, "k1", 2, buf, sizeof(buf), &vlen, &exp) == 0 && exp == 0,
		      "k1 persisted");
		r = (struct urt_kv_req){ .key = "k2", .klen = 2, .update = set_expire_fn, .delta = 1 };
		CHECK(b, urt_kv_update(kv, &r) == 0, "expire of an expired key does nothing");

		r = (struct urt_kv_req){ .key = "k28", .klen = 3, .update = append_fn, .val = "++",
					 .vlen = 2, .flags = URT_KV_READVAL };
		ret = urt_kv_update(kv, &r);
		CHECK(b, ret == 5, "append: %d", ret);
		CHECK(b, urt_kv_get_expire(kv, "k28", 3, buf, sizeof(buf), &vlen, &exp) == 0 &&
			 vlen == 5 && memcmp(buf, "val++", 5) == 0 && exp == T0 + 1028, "append kept ttl");
		r = (struct urt_kv_req){ .key = "k28", .klen = 3, .update = getdel_fn, .buf = buf,
					 .buf_len = sizeof(buf), .flags = URT_KV_READVAL };
		ret = urt_kv_update(kv, &r);
		CHECK(b, ret == 0 && r.vlen_out == 5 && memcmp(buf, "val++", 5) == 0, "getdel: %d", ret);
		CHECK(b, urt_kv_exists(kv, "k28", 3) == 0, "getdel deleted");
		r = (struct urt_kv_req){ .key = "k28", .klen = 3, .update = getdel_fn, .buf = buf,
					 .buf_len = sizeof(buf), .flags = URT_KV_READVAL };
		CHECK(b, urt_kv_update(kv, &r) == URT_E_NOTFOUND, "getdel of a missing key");
		r = (struct urt_kv_req){ .key = "k28", .klen = 3, .flags = URT_KV_READVAL };
		CHECK(b, urt_kv_update(kv, &r) == -EINVAL, "update without a callback");
	}
}

Test(kv_expiry, basic)
{
	struct env e;
	struct st b = { 0 };

	env_open(&e, true, 0);
	b.kv = e.kv;
	kvx_run(e.rt, 0, basic_body, &b);
	kvx_assert_ok(&b.f);
	env_close(&e);
}

/* Expiries are stored with the keys: after a reopen they hold, then pass. */
static void persist_body(void *p)
{
	struct st *b = p;
	char key[32], buf[16];
	uint64_t exp = 0, n = 0;
	size_t vlen;

	for (int i = 0; i < 100; i++) {
		int kl = snprintf(key, sizeof(key), "p%d", i);

		if (b->phase == 0) {
			int ret = urt_kv_put_expire(b->kv, key, (size_t)kl, "v", 1,
						    i < 50 ? T0 + 100 + (uint64_t)i : 0,
						    i % 3 ? URT_KV_NOSYNC : 0);

			CHECK(b, ret == 0, "put %s: %d", key, ret);
			continue;
		}
		if (b->phase == 1) {
			int ret = urt_kv_get_expire(b->kv, key, (size_t)kl, buf, sizeof(buf), &vlen, &exp);

			CHECK(b, ret == 0 && exp == (i < 50 ? T0 + 100 + (uint64_t)i : 0),
			      "after reopen %s: %d %llu", key, ret, (unsigned long long)exp);
		}
	}
	if (b->phase == 1) {
		atomic_store(&test_now, T0 + 125);
		/* p0..p25 expire at or before T0 + 125. */
		CHECK(b, urt_kv_count(b->kv, &n) == 0 && n == 74, "count: %llu",
		      (unsigned long long)n);
	}
}

Test(kv_expiry, survives_reopen)
{
	struct env e;
	struct st b = { 0 };

	env_open(&e, true, 0);
	b.kv = e.kv;
	kvx_run(e.rt, 1, persist_body, &b);
	kvx_assert_ok(&b.f);
	cr_assert_eq(urt_kv_close(e.kv), 0);
	cr_assert_eq(urt_kv_open(e.rt, &e.o, &e.kv), 0);
	b.kv = e.kv;
	b.phase = 1;
	kvx_run(e.rt, 0, persist_body, &b);
	kvx_assert_ok(&b.f);
	env_close(&e);
}

/* The active pass frees every expired key with nobody reading them. */
static void fill_body(void *p)
{
	struct st *b = p;
	char key[32];

	for (int i = 0; i < 3000; i++) {
		int kl = snprintf(key, sizeof(key), "a%05d", i);
		int ret = urt_kv_put_expire(b->kv, key, (size_t)kl, "value", 5,
					    i < 2900 ? T0 + 10 : 0, URT_KV_NOSYNC);

		CHECK(b, ret == 0, "put %s: %d", key, ret);
	}
}

struct stored {
	struct urt_kv *kv;
	uint64_t keys, volatile_keys, expired;
	int ret;
};

static void stored_body(void *p)
{
	struct stored *s = p;
	struct urt_kv_shard_stats st;

	s->keys = s->volatile_keys = s->expired = 0;
	for (unsigned i = 0; i < urt_kv_shards(s->kv); i++) {
		s->ret = urt_kv_shard_stats(s->kv, i, &st);
		if (s->ret)
			return;
		s->keys += st.keys;
		s->volatile_keys += st.volatile_keys;
		s->expired += st.expired;
	}
}

Test(kv_expiry, active_pass_frees_unread_keys)
{
	struct env e;
	struct st b = { 0 };
	struct stored s = { 0 };

	env_open(&e, true, 5);
	b.kv = e.kv;
	s.kv = e.kv;
	kvx_run(e.rt, 0, fill_body, &b);
	kvx_assert_ok(&b.f);
	kvx_run(e.rt, 0, stored_body, &s);
	cr_assert_eq(s.ret, 0);
	cr_assert_eq(s.keys, 3000);
	cr_assert_eq(s.volatile_keys, 2900);
	atomic_store(&test_now, T0 + 10);
	/* 2900 keys at most 64 per pass; passes follow each other while they find keys. */
	for (int i = 0; i < 200; i++) {
		kvx_run(e.rt, 0, stored_body, &s);
		cr_assert_eq(s.ret, 0);
		if (s.keys == 100)
			break;
		usleep(50 * 1000);
	}
	cr_assert_eq(s.keys, 100, "stored keys left: %llu", (unsigned long long)s.keys);
	cr_assert_eq(s.volatile_keys, 0);
	cr_assert_eq(s.expired, 2900);
	env_close(&e);
}

/* The real clock: a key with a 300 ms expiry is there, then is not. */
static void real_body(void *p)
{
	struct st *b = p;
	uint64_t now = urt_kv_now_ms(b->kv);
	struct timespec ts;
	char buf[8];
	size_t vlen;

	clock_gettime(CLOCK_REALTIME, &ts);
	CHECK(b, now + 1000 > (uint64_t)ts.tv_sec * 1000 && now < (uint64_t)ts.tv_sec * 1000 + 1000,
	      "real clock");
	if (b->phase == 0) {
		CHECK(b, urt_kv_put_expire(b->kv, "rt", 2, "v", 1, now + 300, 0) == 0, "put");
		CHECK(b, urt_kv_get(b->kv, "rt", 2, buf, sizeof(buf), &vlen) == 0, "present at once");
	} else {
		CHECK(b, urt_kv_get(b->kv, "rt", 2, buf, sizeof(buf), &vlen) == URT_E_NOTFOUND,
		      "gone after 500 ms");
	}
}

Test(kv_expiry, real_clock)
{
	struct env e;
	struct st b = { 0 };

	env_open(&e, false, 100);
	b.kv = e.kv;
	kvx_run(e.rt, 0, real_body, &b);
	kvx_assert_ok(&b.f);
	usleep(500 * 1000);
	b.phase = 1;
	kvx_run(e.rt, 1, real_body, &b);
	kvx_assert_ok(&b.f);
	env_close(&e);
}
