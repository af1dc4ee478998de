/*
 * Batching: everything submitted in one loop iteration reaches the kernel
 * in one io_uring_enter, and the stats count it.
 */
#include "fixture.h"

#define BATCH 32
#define ROUNDS 50

struct batch_run {
	struct urt_rt *rt;
	struct urt_stats before, after;
	int bad;
	int left;
	struct urt_waitq wq;
};

static void nop_cb(struct urt_io *io, int res, void *arg)
{
	struct batch_run *r = arg;

	(void)io;
	r->bad += res != 0;
	if (--r->left == 0)
		urt_waitq_wake_all(&r->wq);
}

static void batch_body(void *p)
{
	struct batch_run *r = p;
	struct urt_io io[BATCH];

	urt_rt_stats(r->rt, urt_core_id(), &r->before);
	for (int k = 0; k < ROUNDS; k++) {
		r->left = BATCH;
		for (int i = 0; i < BATCH; i++) {
			urt_io_prep_nop(&io[i]);
			if (urt_io_submit(&io[i], nop_cb, r))
				r->bad++;
		}
		urt_waitq_wait(&r->wq);
	}
	urt_rt_stats(r->rt, urt_core_id(), &r->after);
}

Test(batch, one_enter_per_iteration)
{
	struct urt_rt_opts o;
	struct batch_run r = { 0 };
	uint64_t sqes, enters;

	urt_rt_opts_default(&o);
	r.rt = fx_start(&o);
	fx_run(r.rt, 0, batch_body, &r);
	urt_rt_stop(r.rt);
	cr_expect_eq(r.bad, 0);
	sqes = r.after.sqes_submitted - r.before.sqes_submitted;
	enters = r.after.enters - r.before.enters;
	cr_expect_geq(sqes, BATCH * ROUNDS);
	/* One enter submits the 32 NOPs and waits; allow one more per round for wakeups. */
	cr_expect_leq(enters, 2 * ROUNDS, "%llu enters for %llu SQEs", (unsigned long long)enters,
		      (unsigned long long)sqes);
	cr_expect_eq(r.after.completed - r.before.completed, BATCH * ROUNDS);
}
