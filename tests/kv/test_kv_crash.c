/*
 * Crash consistency of the key-value store on the simulated SSD.
 *
 * Each iteration opens a store of two shards on two cores over one sim
 * device with a tiny log (so checkpoints run all the time) and a small
 * cache (so pages are evicted), runs fibers on both cores doing random
 * puts (some with 8-20 KiB values: overflow chains), deletes and
 * increments, durable and NOSYNC, some puts with an expiry (far in the
 * future: it must come back exactly; or already past: the key must be
 * absent, never an older value), and cuts the power after a random
 * number of device commands: mid-commit, mid-checkpoint, mid-eviction.
 * Every operation is recorded with its outcome.  The post-crash image is
 * reopened (recovery of both shards) and checked against the records:
 *   - the store opens, a full scan succeeds and agrees with the count;
 *   - every key holds the value of its last acknowledged durable write or
 *     of a write issued after it (never an older value, never garbage),
 *     and a key whose last acknowledged durable write was a delete is
 *     absent or holds a later write;
 *   - a NOSYNC write followed by an acknowledged durable write to the same
 *     shard is durable too (batches become durable in order).
 * A second round writes on the recovered store and crashes again.  The
 * seed of a failing iteration is printed; URT_SEED=<n> reruns one and
 * URT_SOAK=<n> runs n iterations.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>

#include "kv_fixture.h"

#define DEV_BYTES (48ull << 20)
#define FIBERS 3		/* Per core. */
#define KEYS_PER_FIBER 40	/* Each fiber owns its keys, so per-key order is its order. */
#define OPS_PER_FIBER 400
#define HIST_MAX 1024		/* Writes recorded per key per round. */
#define ROUNDS 2
#define CLOCK_MS 1700000000000ull	/* The store's clock, fixed for the test. */

static uint64_t fixed_clock(void *arg)
{
	(void)arg;
	return CLOCK_MS;
}

enum wkind { W_PUT, W_DEL };

/* One write to a key, in issue order. */
struct wrec {
	uint8_t kind;		/* enum wkind. */
	bool acked;		/* The call returned 0 (or a clean not-found for a delete). */
	bool nosync;		/* Issued with URT_KV_NOSYNC. */
	uint32_t len;		/* Value length (put). */
	uint64_t tag;		/* Value pattern tag (put). */
	uint64_t exp;		/* Expiry of a put (0: none; <= CLOCK_MS: expired at once). */
	uint32_t fseq;		/* Issue order among all the fiber's writes. */
};

struct key_hist {
	unsigned n;			/* Writes recorded this round. */
	struct wrec w[HIST_MAX];	/* In issue order. */
	bool base_present;		/* Value at the start of the round. */
	uint32_t base_len;
	uint64_t base_tag;
	uint64_t base_exp;
};

struct fiber_state {
	struct crash *cr;		/* Iteration. */
	unsigned id;			/* Fiber index (keys are its own). */
	uint64_t rng;			/* Generator. */
	struct key_hist *keys;		/* KEYS_PER_FIBER entries. */
	bool stopped;			/* An operation failed: the power went. */
	uint32_t fseq;			/* Writes issued this round. */
	uint32_t durable_fseq[2];	/* Per shard: fseq + 1 of its last acknowledged durable write. */
};

struct crash {
	uint64_t seed;
	struct urt_rt *rt;
	struct urt_dev *devs[ROUNDS + 1];
	struct urt_dev *dev;
	struct urt_kv *kv;
	struct urt_kv_opts o;
	struct fiber_state fs[2 * FIBERS];
	struct key_hist *keys;		/* 2 * FIBERS * KEYS_PER_FIBER. */
	unsigned live[2];		/* Fibers still running per core. */
	struct urt_waitq wq[2];		/* The driver of each core waits here. */
	uint64_t acked_total, crash_after;
	struct kvx_fail f;
};

static size_t key_name(unsigned fiber, unsigned k, char *buf)
{
	return (size_t)snprintf(buf, 32, "c%02u:key%03u", fiber, k);
}

static void fill_value(uint8_t *buf, uint32_t len, uint64_t tag)
{
	/* The tag leads the value, so a value names the write that made it. */
	memcpy(buf, &tag, len < 8 ? len : 8);
	if (len > 8)
		kvx_fill(buf + 8, len - 8, tag, len);
}

static uint32_t value_len(uint64_t *rng)
{
	uint64_t r = kvx_rnd(rng) % 100;

	return r < 8 ? 8000 + (uint32_t)(kvx_rnd(rng) % 12000) : 8 + (uint32_t)(kvx_rnd(rng) % 120);
}

static void writer(void *p)
{
	struct fiber_state *st = p;
	struct crash *cr = st->cr;
	unsigned core = urt_core_id();
	uint8_t *val = malloc(20016);

	for (int i = 0; i < OPS_PER_FIBER && !st->stopped; i++) {
		unsigned k = (unsigned)(kvx_rnd(&st->rng) % KEYS_PER_FIBER);
		struct key_hist *h = &st->keys[k];
		struct wrec *w;
		uint64_t op = kvx_rnd(&st->rng) % 100;
		char key[32];
		size_t klen = key_name(st->id, k, key);
		int ret;

		if (h->n == HIST_MAX)
			break;
		w = &h->w[h->n++];
		memset(w, 0, sizeof(*w));
		w->fseq = st->fseq++;
		w->nosync = kvx_rnd(&st->rng) % 4 == 0;
		if (op < 75) {
			w->kind = W_PUT;
			w->len = value_len(&st->rng);
			w->tag = (cr->seed << 20) ^ ((uint64_t)st->id << 40) ^ ((uint64_t)k << 28) ^
				 (uint64_t)h->n ^ 0x5a5a000000000000ull;
			fill_value(val, w->len, w->tag);
			if (op < 15)	/* Far in the future, distinct per write. */
				w->exp = CLOCK_MS + 1000000 + (w->tag & 0xffff);
			else if (op < 20)	/* Already expired: the key is gone. */
				w->exp = CLOCK_MS - (w->tag & 0xff);
			ret = urt_kv_put_expire(cr->kv, key, klen, val, w->len, w->exp,
						w->nosync ? URT_KV_NOSYNC : 0);
			w->acked = ret == 0;
		} else {
			w->kind = W_DEL;
			ret = urt_kv_del(cr->kv, key, klen, w->nosync ? URT_KV_NOSYNC : 0);
			w->acked = ret == 0 || ret == URT_E_NOTFOUND;
			if (ret == URT_E_NOTFOUND)
				ret = 0;
		}
		if (ret) {
			/* The device is gone: this write's fate is unknown, and so is the fiber's. */
			st->stopped = true;
		} else {
			cr->acked_total++;
			if (!w->nosync)
				st->durable_fseq[urt_kv_shard_of(cr->kv, key, klen)] = w->fseq + 1;
		}
	}
	free(val);
	if (--cr->live[core] == 0)
		urt_waitq_wake_one(&cr->wq[core]);
}

struct driver {
	struct crash *cr;
	unsigned core;
};

static void drive(void *p)
{
	struct driver *d = p;
	struct crash *cr = d->cr;

	cr->live[d->core] = FIBERS;
	for (unsigned i = 0; i < FIBERS; i++)
		urt_fiber_spawn(writer, &cr->fs[d->core * FIBERS + i]);
	while (cr->live[d->core])
		urt_waitq_wait(&cr->wq[d->core]);
}

static void *drive_thread(void *p)
{
	struct driver *d = p;

	kvx_run(d->cr->rt, d->core, drive, d);
	return NULL;
}

/*
 * What may a key hold after the crash?  Writes are in issue order; the
 * floor is the last write whose durability was promised: an acknowledged
 * durable write, or any acknowledged write (NOSYNC included) that the
 * fiber issued before an acknowledged durable write to the same shard
 * (log batches become durable in order).  The key holds the floor's value
 * or that of a later write, never an older one.
 */
static bool value_allowed(const struct key_hist *h, unsigned floor, bool present, uint32_t len,
			  uint64_t tag, uint64_t exp)
{
	/* Candidates: the floor write itself (or the base, if none), and every later one. */
	for (unsigned i = floor; i <= h->n; i++) {
		bool cp;
		uint32_t cl = 0;
		uint64_t ct = 0, ce = 0;

		if (i == 0) {
			cp = h->base_present;
			cl = h->base_len;
			ct = h->base_tag;
			ce = h->base_exp;
		} else {
			const struct wrec *w = &h->w[i - 1];

			/* A put that expired at once leaves the key absent. */
			cp = w->kind == W_PUT && (w->exp == 0 || w->exp > CLOCK_MS);
			cl = w->len;
			ct = w->tag;
			ce = w->exp;
		}
		if (cp == present && (!present || (cl == len && ct == tag && ce == exp)))
			return true;
	}
	return false;
}

struct verify {
	struct crash *cr;
	unsigned fiber;
	uint64_t checked;
};

static void verify_fiber(void *p)
{
	struct verify *v = p;
	struct crash *cr = v->cr;
	struct fiber_state *st = &cr->fs[v->fiber];
	uint8_t *buf = malloc(20016), *want = malloc(20016);

	for (unsigned k = 0; k < KEYS_PER_FIBER; k++) {
		struct key_hist *h = &st->keys[k];
		char key[32];
		size_t klen = key_name(v->fiber, k, key), vlen = 0;
		unsigned floor = 0;
		uint64_t tag = 0, exp = 0;
		bool present;
		int ret;

		unsigned shard = urt_kv_shard_of(cr->kv, key, klen);

		for (unsigned i = 0; i < h->n; i++)
			if (h->w[i].acked &&
			    (!h->w[i].nosync || h->w[i].fseq < st->durable_fseq[shard]))
				floor = i + 1;
		ret = urt_kv_get_expire(cr->kv, key, klen, buf, 20016, &vlen, &exp);
		if (ret != 0 && ret != URT_E_NOTFOUND) {
			kvx_failf(&cr->f, "seed %" PRIu64 ": get %s: %d (%s)", cr->seed, key, ret,
				  urt_strerror(ret));
			break;
		}
		present = ret == 0;
		if (present) {
			memcpy(&tag, buf, vlen < 8 ? vlen : 8);
			fill_value(want, (uint32_t)vlen, tag);
			if (vlen < 8 || memcmp(buf, want, vlen) != 0) {
				kvx_failf(&cr->f, "seed %" PRIu64 ": %s holds %zu garbage bytes", cr->seed,
					  key, vlen);
				break;
			}
		}
		if (!value_allowed(h, floor, present, (uint32_t)vlen, tag, exp)) {
			kvx_failf(&cr->f, "seed %" PRIu64 ": %s %s (%zu bytes, tag %" PRIx64 ", expiry %"
				  PRIu64 ") after %u writes, last acknowledged durable write #%u (crash "
				  "after %" PRIu64 " commands)", cr->seed, key,
				  present ? "holds a stale value" : "is missing", vlen, tag, exp, h->n, floor,
				  cr->crash_after);
			break;
		}
		/* The next round starts from what is there now. */
		h->base_present = present;
		h->base_len = (uint32_t)vlen;
		h->base_tag = tag;
		h->base_exp = exp;
		h->n = 0;
		v->checked++;
	}
	free(buf);
	free(want);
}

struct whole {
	struct crash *cr;
	uint64_t count, scanned;
	int ret;
};

static void whole_fiber(void *p)
{
	struct whole *w = p;
	struct urt_kv_entry ents[64];
	struct urt_kv_cursor c;
	uint8_t *buf = malloc(2 * 21000 * 64);
	int n = 0;

	w->ret = urt_kv_count(w->cr->kv, &w->count);
	urt_kv_cursor_init(&c, NULL, 0);
	while (w->ret == 0 && !c.done) {
		n = urt_kv_scan(w->cr->kv, &c, ents, 64, buf, 2 * 21000 * 64, 0);
		if (n < 0)
			w->ret = n;
		else
			w->scanned += (uint64_t)n;
	}
	free(buf);
}

static uint64_t total_acked;	/* Acknowledged writes over all iterations. */
static unsigned crash_mid_load;	/* Rounds whose crash cut the workload short. */
static uint64_t replayed_holes;	/* Page images with a hole that recoveries replayed. */

/* Adds the hole images the store's recovery replayed to replayed_holes (runs in a fiber). */
static void count_holes_fiber(void *arg)
{
	struct urt_kv *kv = arg;

	for (unsigned s = 0; s < urt_kv_shards(kv); s++) {
		struct urt_kv_shard_stats st;

		if (urt_kv_shard_stats(kv, s, &st) == 0)
			replayed_holes += st.ps.recovered_image_holes;
	}
}

static void one_iteration(uint64_t seed)
{
	struct crash *cr = calloc(1, sizeof(*cr));
	struct urt_sim_opts so;
	int ret;

	cr->seed = seed;
	cr->keys = calloc(2 * FIBERS * KEYS_PER_FIBER, sizeof(*cr->keys));
	urt_sim_opts_default(&so);
	so.size_bytes = DEV_BYTES;
	so.seed = seed;
	so.fua = seed % 2 == 0;	/* Half the runs flush instead of FUA. */
	ret = urt_sim_open(&so, &cr->devs[0]);
	cr_assert_eq(ret, 0);
	cr->dev = cr->devs[0];
	urt_kv_opts_default(&cr->o);
	cr->o.shards = 2;
	cr->o.cache_bytes = 6u << 20;
	cr->o.batch_bytes_max = 256u << 10;
	cr->o.log_bytes = 1u << 20;	/* Tiny: checkpoints and log wraps all the time. */
	cr->o.readers_max = 8;
	cr->o.clock_ms = fixed_clock;
	cr->o.expire_interval_ms = 5;	/* The active pass deletes the expired puts meanwhile. */
	cr->rt = kvx_start(2, &cr->o);
	for (unsigned i = 0; i < 2 * FIBERS; i++) {
		cr->fs[i].cr = cr;
		cr->fs[i].id = i;
		cr->fs[i].rng = seed * 0x9e3779b97f4a7c15ull + i + 1;
		cr->fs[i].keys = &cr->keys[i * KEYS_PER_FIBER];
	}
	for (unsigned round = 0; round < ROUNDS && !cr->f.failed; round++) {
		struct driver d[2] = { { cr, 0 }, { cr, 1 } };
		pthread_t th[2];
		struct whole w = { .cr = cr };
		uint64_t checked = 0;

		cr->o.dev = cr->dev;
		ret = urt_kv_open(cr->rt, &cr->o, &cr->kv);
		if (ret) {
			kvx_failf(&cr->f, "seed %" PRIu64 " round %u: open: %d (%s) %s", seed, round, ret,
				  urt_strerror(ret), urt_last_error());
			break;
		}
		/* A crash point anywhere from the first commands to past the workload's end. */
		cr->crash_after = 1 + kvx_rnd(&(uint64_t){ seed * 31 + round + 7 }) % 3000;
		urt_sim_crash_after(cr->dev, cr->crash_after);
		for (unsigned i = 0; i < 2 * FIBERS; i++) {
			cr->fs[i].stopped = false;
			cr->fs[i].fseq = 0;
			cr->fs[i].durable_fseq[0] = cr->fs[i].durable_fseq[1] = 0;
		}
		for (unsigned c = 0; c < 2; c++)
			pthread_create(&th[c], NULL, drive_thread, &d[c]);
		for (unsigned c = 0; c < 2; c++)
			pthread_join(th[c], NULL);
		/* If the workload ended before the crash point, cut the power now. */
		urt_sim_crash(cr->dev, seed + round);
		urt_kv_close(cr->kv);	/* Fails: the device is gone. */
		ret = urt_sim_reopen(cr->dev, &cr->devs[round + 1]);
		cr_assert_eq(ret, 0, "sim reopen: %d", ret);
		cr->dev = cr->devs[round + 1];
		cr->o.dev = cr->dev;
		ret = urt_kv_open(cr->rt, &cr->o, &cr->kv);
		if (ret) {
			kvx_failf(&cr->f, "seed %" PRIu64 " round %u: recovery: %d (%s) %s", seed, round,
				  ret, urt_strerror(ret), urt_last_error());
			break;
		}
		kvx_run(cr->rt, 0, count_holes_fiber, cr->kv);
		for (unsigned i = 0; i < 2 * FIBERS && !cr->f.failed; i++) {
			struct verify v = { .cr = cr, .fiber = i };

			kvx_run(cr->rt, i % 2, verify_fiber, &v);
			checked += v.checked;
		}
		kvx_run(cr->rt, 0, whole_fiber, &w);
		if (w.ret || w.count != w.scanned)
			kvx_failf(&cr->f, "seed %" PRIu64 " round %u: count %" PRIu64 ", scan %" PRIu64
				  " keys, error %d", seed, round, w.count, w.scanned, w.ret);
		/* Round 2 writes on the recovered store (a fresh device for its crash). */
		ret = urt_kv_close(cr->kv);
		if (ret)
			kvx_failf(&cr->f, "seed %" PRIu64 " round %u: close after recovery: %d", seed,
				  round, ret);
		{
			unsigned stopped = 0;

			for (unsigned i = 0; i < 2 * FIBERS; i++)
				stopped += cr->fs[i].stopped;
			if (stopped)
				crash_mid_load++;
			if (getenv("KV_DEBUG"))
				fprintf(stderr, "seed %" PRIu64 " round %u: crash after %" PRIu64
					" commands, %" PRIu64 " acknowledged, %u fibers cut, %" PRIu64
					" keys checked, %" PRIu64 " present\n", seed, round, cr->crash_after,
					cr->acked_total, stopped, checked, w.count);
			total_acked += cr->acked_total;
			cr->acked_total = 0;
		}
	}
	urt_rt_stop(cr->rt);
	for (unsigned i = 0; i <= ROUNDS; i++)
		if (cr->devs[i])
			urt_dev_close(cr->devs[i]);
	kvx_assert_ok(&cr->f);
	free(cr->keys);
	free(cr);
}

Test(kv_crash, random_crash_points_keep_every_acknowledged_write, .timeout = 900)
{
	const char *one = getenv("URT_SEED"), *soak = getenv("URT_SOAK");
	unsigned n = soak ? (unsigned)strtoul(soak, NULL, 10) : 60;

	if (one) {
		one_iteration(strtoull(one, NULL, 10));
		return;
	}
	for (unsigned i = 0; i < n; i++)
		one_iteration(1000 + i);
	/* The crash points must land inside the workload, not after it. */
	cr_expect_gt(crash_mid_load, n * ROUNDS / 2, "%u of %u crashes cut the workload",
		     crash_mid_load, n * ROUNDS);
	cr_expect_gt(total_acked, 100ull * n, "%" PRIu64 " writes acknowledged", total_acked);
	/* The tree's page images leave out their free gap: recoveries must have replayed such. */
	cr_expect_gt(replayed_holes, 0, "no recovery replayed a page image with a hole");
}
