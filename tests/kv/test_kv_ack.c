/*
 * NOSYNC acknowledgements when the store turns sticky after their commit.
 *
 * A NOSYNC write is answered by the shard's ack fiber once its transaction
 * is installed.  Until 828d08d the ack fiber only learnt that by reading
 * page 0 (installed_seq), which fails once the page store is sticky: a
 * NOSYNC write whose commit had returned 0, but whose ack the fiber had not
 * sent yet when a later log write failed, was never answered, and its
 * caller (and urt_kv_close) waited for ever.  test_kv_crash hit that now
 * and then; this test builds the interleaving on purpose.
 *
 * One shard on one core over a sim device with no latency, so every step
 * below follows from the order of the fibers on the run queue alone (no
 * timer decides anything).  Sizes are chosen against the log batch
 * (1 MiB, so at most 250 pages per transaction): a 600 KiB value takes
 * about 155 overflow pages and 640 KiB of log, so two of them never share
 * a transaction nor a batch, while small puts join the transaction of one.
 *
 *   setup   puts then deletes four 600 KiB values: about 600 free pages
 *           that stay in the pool, so the builds below never wait for a
 *           page read (a wait would let the writer run in between);
 *   tx X    A (durable, 600 KiB), committed into batch B1;
 *   tx N    R2 (durable, 600 KiB) and NP small NOSYNC puts, built by the
 *           other committer right after X, while B1 is still open: N does
 *           not fit there, so its commit waits for the writer to seal B1
 *           *before* installing.  The ack fiber, woken by the build, reads
 *           page 0 meanwhile, sees X, and goes back to sleep;
 *   tx Y    R3 (durable, 600 KiB), submitted by A's completion when B1 is
 *           durable; it does not fit in B2 either, so it lands in B3;
 *   crash   when B2 is durable, N's commit returns 0, wakes the ack fiber
 *           and completes R2, whose completion cuts the power
 *           (urt_sim_crash).  The writer, queued ahead of the ack fiber,
 *           then writes B3: the dead device refuses it at submission
 *           (-EIO), so the store is sticky before the ack fiber runs.
 *
 * The power cut is what makes this deterministic: an error injected with
 * urt_sim_inject comes back through the completion ring, after the ack
 * fiber has run and answered from page 0, and the window is missed.
 *
 * The fixed shard answers the NOSYNC puts from committed_seq; the old one
 * hangs.  The test bounds every wait (DEADLINE_S), checks that the
 * interleaving really happened (no NOSYNC ack before the crash, each ack
 * delivered while the store was already sticky, R3 failed with the log
 * write's -EIO), that later writes get URT_E_STICKY, and that after
 * recovery of the post-crash image every acknowledged write is there and
 * R3 is not.
 */
#include <stdint.h>
#include <time.h>

#include "kv/kv_impl.h"
#include "kv_fixture.h"

#define DEV_BYTES (64ull << 20)
#define BATCH_BYTES (1u << 20)		/* Log batch: 250 pages per transaction. */
#define BIG_BYTES (600u << 10)		/* ~155 overflow pages: two never share a tx or batch. */
#define SMALL_BYTES 100u		/* A NOSYNC put: a few bytes in a leaf. */
#define SETUP_KEYS 4			/* ~600 pages freed before the race, all in the pool. */
#define NP 4				/* NOSYNC puts in transaction N. */
#define DEADLINE_S 5			/* Longest wait for every completion. */
#define SEED 0x4b56acull		/* Device seed: what the crash does to cached writes. */

/* Tags of the value patterns (kvx_fill), one per write. */
enum { TAG_A = 1, TAG_R2, TAG_R3, TAG_P };

struct race {
	struct urt_kv *kv;
	struct urt_dev *dev;
	struct kvx_fail f;
	uint8_t *big[3];		/* Values of A, R2, R3. */
	uint8_t small[NP][SMALL_BYTES];	/* Values of the NOSYNC puts. */
	char pkey[NP][8];		/* Their keys. */
	struct urt_kv_req a, r2, r3, p[NP];
	/* Written by the completions, on core 0. */
	bool a_done, r2_done, r3_done, p_done[NP];
	int r3_submit;			/* urt_kv_submit of R3 (from A's completion). */
	bool crashed;			/* R2's completion cut the power. */
	unsigned p_acked_at_crash;	/* NOSYNC puts answered before the crash. */
	int p_sticky[NP];		/* The page store's sticky error when each was answered. */
	bool p_after_crash[NP];		/* Answered after the crash. */
};

/* A snapshot of the completions, taken on core 0 (where they run). */
struct probe {
	struct race *r;
	bool a_done, r2_done, r3_done, p_done[NP];
};

static void big_fill(struct race *r)
{
	for (unsigned i = 0; i < 3; i++) {
		r->big[i] = malloc(BIG_BYTES);
		cr_assert(r->big[i]);
		kvx_fill(r->big[i], BIG_BYTES, TAG_A + i, 0);
	}
	for (unsigned i = 0; i < NP; i++) {
		kvx_fill(r->small[i], SMALL_BYTES, TAG_P, i);
		snprintf(r->pkey[i], sizeof(r->pkey[i]), "p%u", i);
	}
}

/* Puts then deletes SETUP_KEYS big values, leaving their pages free and cached. */
static void setup_body(void *arg)
{
	struct race *r = arg;
	char key[16];
	int ret;

	for (unsigned i = 0; i < SETUP_KEYS; i++) {
		int kl = snprintf(key, sizeof(key), "tmp%u", i);

		ret = urt_kv_put(r->kv, key, (size_t)kl, r->big[0], BIG_BYTES, 0);
		if (ret)
			kvx_failf(&r->f, "setup put %s: %d (%s)", key, ret, urt_strerror(ret));
	}
	for (unsigned i = 0; i < SETUP_KEYS; i++) {
		int kl = snprintf(key, sizeof(key), "tmp%u", i);

		ret = urt_kv_del(r->kv, key, (size_t)kl, 0);
		if (ret)
			kvx_failf(&r->f, "setup del %s: %d (%s)", key, ret, urt_strerror(ret));
	}
}

/*
 * A NOSYNC put answered.  The shard's page store (kv_impl.h) tells whether
 * it was already sticky: then page 0 could not be read, and the answer
 * came from committed_seq.
 */
static void p_done(struct urt_kv_req *req)
{
	struct race *r = req->arg;
	unsigned i = (unsigned)(req - r->p);

	r->p_done[i] = true;
	r->p_after_crash[i] = r->crashed;
	r->p_sticky[i] = urt_ps_error(r->kv->shards[0]->ps);
}

/* R3 answered: its batch was refused, so with the log write's error. */
static void r3_done(struct urt_kv_req *req)
{
	struct race *r = req->arg;

	r->r3_done = true;
}

/* B1 is durable: R3 goes in now, so that its transaction follows N's into the next batch. */
static void a_done(struct urt_kv_req *req)
{
	struct race *r = req->arg;

	r->a_done = true;
	r->r3 = (struct urt_kv_req){ .op = URT_KV_OP_PUT, .key = "y", .klen = 1, .val = r->big[2],
				     .vlen = BIG_BYTES, .done = r3_done, .arg = r };
	r->r3_submit = urt_kv_submit(r->kv, &r->r3);
}

/* N's commit has returned 0 and woken the ack fiber, which has not run yet: cut the power. */
static void r2_done(struct urt_kv_req *req)
{
	struct race *r = req->arg;

	r->r2_done = true;
	for (unsigned i = 0; i < NP; i++)
		r->p_acked_at_crash += r->p_done[i];
	if (req->res == 0 && urt_sim_crash(r->dev, SEED) == 0)
		r->crashed = true;
}

/* Submits A, then R2 and the NOSYNC puts, all before any committer runs. */
static void race_body(void *arg)
{
	struct race *r = arg;
	int ret;

	r->a = (struct urt_kv_req){ .op = URT_KV_OP_PUT, .key = "a", .klen = 1, .val = r->big[0],
				    .vlen = BIG_BYTES, .done = a_done, .arg = r };
	r->r2 = (struct urt_kv_req){ .op = URT_KV_OP_PUT, .key = "r2", .klen = 2, .val = r->big[1],
				     .vlen = BIG_BYTES, .done = r2_done, .arg = r };
	ret = urt_kv_submit(r->kv, &r->a);
	if (ret == 0)
		ret = urt_kv_submit(r->kv, &r->r2);
	for (unsigned i = 0; i < NP && ret == 0; i++) {
		r->p[i] = (struct urt_kv_req){ .op = URT_KV_OP_PUT, .flags = URT_KV_NOSYNC,
					       .key = r->pkey[i], .klen = strlen(r->pkey[i]),
					       .val = r->small[i], .vlen = SMALL_BYTES,
					       .done = p_done, .arg = r };
		ret = urt_kv_submit(r->kv, &r->p[i]);
	}
	if (ret)
		kvx_failf(&r->f, "submit: %d (%s)", ret, urt_strerror(ret));
}

/* Copies the completion flags, on core 0, for the main thread. */
static void probe_body(void *arg)
{
	struct probe *pr = arg;
	struct race *r = pr->r;

	pr->a_done = r->a_done;
	pr->r2_done = r->r2_done;
	pr->r3_done = r->r3_done;
	memcpy(pr->p_done, r->p_done, sizeof(pr->p_done));
}

static bool probe_all_done(const struct probe *pr)
{
	if (!pr->a_done || !pr->r2_done || !pr->r3_done)
		return false;
	for (unsigned i = 0; i < NP; i++)
		if (!pr->p_done[i])
			return false;
	return true;
}

/*
 * Polls the completions from the main thread until all have run or
 * DEADLINE_S passed; a hung ack must fail the test, not hang the suite.
 */
static void wait_completions(struct urt_rt *rt, struct race *r, struct probe *pr)
{
	uint64_t deadline = urt_clock_ns() + DEADLINE_S * 1000000000ull;
	const struct timespec tick = { .tv_nsec = 5 * 1000 * 1000 };

	pr->r = r;
	for (;;) {
		kvx_run(rt, 0, probe_body, pr);
		if (probe_all_done(pr) || urt_clock_ns() > deadline)
			return;
		nanosleep(&tick, NULL);
	}
}

/* Writes after the failure: refused with the store's sticky error. */
static void later_body(void *arg)
{
	struct race *r = arg;
	int ret = urt_kv_put(r->kv, "late", 4, "x", 1, 0);

	if (ret != URT_E_STICKY)
		kvx_failf(&r->f, "durable put after the failure: %d (%s), want URT_E_STICKY", ret,
			  urt_strerror(ret));
	ret = urt_kv_put(r->kv, "late", 4, "x", 1, URT_KV_NOSYNC);
	if (ret != URT_E_STICKY)
		kvx_failf(&r->f, "NOSYNC put after the failure: %d (%s), want URT_E_STICKY", ret,
			  urt_strerror(ret));
}

static void expect_value(struct race *r, const char *key, const void *want, size_t len,
			 uint8_t *buf)
{
	size_t vlen = 0;
	int ret = urt_kv_get(r->kv, key, strlen(key), buf, BIG_BYTES, &vlen);

	if (ret != 0)
		kvx_failf(&r->f, "after recovery, get %s: %d (%s)", key, ret, urt_strerror(ret));
	else if (vlen != len || memcmp(buf, want, len) != 0)
		kvx_failf(&r->f, "after recovery, %s holds %zu bytes, not its acknowledged %zu", key,
			  vlen, len);
}

/* After recovery: every acknowledged write is there, R3 (never acknowledged) is not. */
static void verify_body(void *arg)
{
	struct race *r = arg;
	uint8_t *buf = malloc(BIG_BYTES);
	uint64_t count = 0;
	size_t vlen = 0;
	int ret;

	expect_value(r, "a", r->big[0], BIG_BYTES, buf);
	expect_value(r, "r2", r->big[1], BIG_BYTES, buf);
	for (unsigned i = 0; i < NP; i++)
		expect_value(r, r->pkey[i], r->small[i], SMALL_BYTES, buf);
	ret = urt_kv_get(r->kv, "y", 1, buf, BIG_BYTES, &vlen);
	if (ret != URT_E_NOTFOUND)
		kvx_failf(&r->f, "after recovery, y (whose batch the device refused): %d, want "
			  "URT_E_NOTFOUND", ret);
	ret = urt_kv_count(r->kv, &count);
	if (ret != 0 || count != 2 + NP)
		kvx_failf(&r->f, "after recovery, count: %d, %llu keys, want %u", ret,
			  (unsigned long long)count, 2 + NP);
	free(buf);
}

Test(kv_ack, nosync_acks_survive_the_store_turning_sticky, .timeout = 120)
{
	struct race *r = calloc(1, sizeof(*r));
	struct probe pr = { 0 };
	struct urt_kv_opts o;
	struct urt_dev *dev2 = NULL;
	struct urt_rt *rt;
	int ret;

	cr_assert(r);
	big_fill(r);
	r->dev = kvx_sim(DEV_BYTES, SEED);
	kvx_opts(&o, r->dev);
	o.shards = 1;
	o.batch_bytes_max = BATCH_BYTES;
	o.log_bytes = 16u << 20;	/* Under half of it is used: no checkpoint starts. */
	rt = kvx_start(1, &o);
	ret = urt_kv_open(rt, &o, &r->kv);
	cr_assert_eq(ret, 0, "urt_kv_open: %d (%s) %s", ret, urt_strerror(ret), urt_last_error());

	kvx_run(rt, 0, setup_body, r);
	kvx_assert_ok(&r->f);
	kvx_run(rt, 0, race_body, r);
	kvx_assert_ok(&r->f);
	wait_completions(rt, r, &pr);

	cr_assert(pr.a_done && pr.r2_done, "A or R2 never completed within %d s", DEADLINE_S);
	cr_assert_eq(r->a.res, 0, "A: %d (%s)", r->a.res, urt_strerror(r->a.res));
	cr_assert_eq(r->r2.res, 0, "R2: %d (%s)", r->r2.res, urt_strerror(r->r2.res));
	cr_assert(r->crashed, "R2's completion did not cut the power");
	cr_assert(r->r2.seq == r->a.seq + 1 && r->r3.seq == r->r2.seq + 1,
		  "transactions: A %llu, R2 %llu, R3 %llu; want three in a row: the interleaving "
		  "under test was not reached", (unsigned long long)r->a.seq,
		  (unsigned long long)r->r2.seq, (unsigned long long)r->r3.seq);
	for (unsigned i = 0; i < NP; i++)
		cr_assert_eq(r->p[i].seq, r->r2.seq, "NOSYNC put %s in transaction %llu, not R2's %llu",
			     r->pkey[i], (unsigned long long)r->p[i].seq,
			     (unsigned long long)r->r2.seq);
	cr_assert_eq(r->p_acked_at_crash, 0,
		     "%u of %u NOSYNC puts were answered before their commit returned: the "
		     "interleaving under test was not reached", r->p_acked_at_crash, NP);
	for (unsigned i = 0; i < NP; i++) {
		cr_assert(pr.p_done[i],
			  "NOSYNC put %s, whose commit returned 0 before the store turned sticky, "
			  "was not answered within %d s: the ack fiber is stuck on page 0",
			  r->pkey[i], DEADLINE_S);
		cr_assert_eq(r->p[i].res, 0, "NOSYNC put %s: %d (%s)", r->pkey[i], r->p[i].res,
			     urt_strerror(r->p[i].res));
		cr_assert(r->p_after_crash[i], "NOSYNC put %s answered before the crash", r->pkey[i]);
		cr_assert_eq(r->p_sticky[i], -EIO,
			     "NOSYNC put %s answered while the store was not sticky (%d): the "
			     "interleaving under test was not reached", r->pkey[i], r->p_sticky[i]);
	}
	cr_assert_eq(r->r3_submit, 0, "submit R3: %d", r->r3_submit);
	cr_assert(pr.r3_done, "R3 never completed within %d s", DEADLINE_S);
	cr_assert_eq(r->r3.res, -EIO, "R3, whose batch the dead device refused: %d (%s), want -EIO",
		     r->r3.res, urt_strerror(r->r3.res));

	kvx_run(rt, 0, later_body, r);
	kvx_assert_ok(&r->f);
	ret = urt_kv_close(r->kv);
	cr_assert_eq(ret, -EIO, "urt_kv_close of the sticky store: %d (%s), want -EIO", ret,
		     urt_strerror(ret));

	/* Recovery of the post-crash image. */
	ret = urt_sim_reopen(r->dev, &dev2);
	cr_assert_eq(ret, 0, "urt_sim_reopen: %d", ret);
	o.dev = dev2;
	o.create = false;
	ret = urt_kv_open(rt, &o, &r->kv);
	cr_assert_eq(ret, 0, "urt_kv_open after the crash: %d (%s) %s", ret, urt_strerror(ret),
		     urt_last_error());
	kvx_run(rt, 0, verify_body, r);
	kvx_assert_ok(&r->f);
	cr_assert_eq(urt_kv_close(r->kv), 0);
	urt_rt_stop(rt);
	urt_dev_close(dev2);
	urt_dev_close(r->dev);
	for (unsigned i = 0; i < 3; i++)
		free(r->big[i]);
	free(r);
}
