/*
 * Thread per core: one shard per core over disjoint regions of one device.
 * Each core opens its own shard; a fiber on core 0 commits to both shards,
 * reaching core 1's shard through urt_core_run; the data lands in the
 * right shard (and only there), survives a power cut, and each shard
 * recovers on its own core.
 */
#include <sched.h>

#include "ps_fixture.h"

#define NSHARDS 2
#define NTX 200

struct sh_state {
	struct urt_rt *rt;
	struct urt_dev *dev;
	struct urt_ps *ps[NSHARDS];
	int open_ret[NSHARDS];
	int close_ret[NSHARDS];
	bool create;
	uint64_t bad;
	int errors;
	unsigned remote_core_seen;
	struct urt_ps_stats st[NSHARDS];
	sem_t sem;
};

struct sh_op {
	struct sh_state *s;
	unsigned shard;
	uint64_t pgno;
	uint64_t txid;
	bool write;
	int ret;
	uint64_t seen;
	unsigned core;
};

static void open_shard(void *p)
{
	struct sh_op *op = p;
	struct sh_state *s = op->s;
	struct urt_ps_opts o;

	urt_ps_opts_default(&o);
	o.create = s->create;
	o.shard_id = op->shard;
	o.shard_count = NSHARDS;
	o.pool_pages = 64;
	urt_ps_shard_region(urt_dev_info(s->dev)->size_bytes, NSHARDS, op->shard, &o.region_offset,
			    &o.region_bytes);
	s->open_ret[op->shard] = urt_ps_open(s->dev, &o, &s->ps[op->shard]);
	sem_post(&s->sem);
}

static void close_shard(void *p)
{
	struct sh_op *op = p;
	struct sh_state *s = op->s;

	urt_ps_stats(s->ps[op->shard], &s->st[op->shard]);
	s->close_ret[op->shard] = urt_ps_close(s->ps[op->shard]);
	sem_post(&s->sem);
}

/* Runs on the shard's core (through urt_core_run); returns op->ret. */
static int shard_op(void *p)
{
	struct sh_op *op = p;
	struct urt_ps *ps = op->s->ps[op->shard];
	struct urt_tx *tx;
	void *data;

	op->core = urt_core_id();
	op->ret = urt_tx_begin(ps, &tx);
	if (op->ret)
		return op->ret;
	op->ret = urt_page_get(tx, op->pgno, op->write ? URT_PAGE_WRITE : URT_PAGE_READ, &data);
	if (op->ret) {
		urt_tx_abort(tx);
		return op->ret;
	}
	if (op->write) {
		psx_fill(data, urt_ps_page_data_bytes(ps), op->txid, op->pgno);
		op->ret = urt_tx_commit(tx);
	} else {
		op->seen = psx_check(data, urt_ps_page_data_bytes(ps), op->pgno);
		urt_tx_abort(tx);
	}
	return op->ret;
}

static void driver_write(void *p)
{
	struct sh_state *s = p;

	for (uint64_t k = 0; k < NTX; k++) {
		struct sh_op op = { .s = s, .shard = (unsigned)(k % NSHARDS), .pgno = k / NSHARDS,
				    .txid = k + 1, .write = true };

		if (urt_core_run(s->rt, op.shard, shard_op, &op) || op.ret)
			s->errors++;
		if (op.shard == 1)
			s->remote_core_seen = op.core;
	}
}

static void driver_check(void *p)
{
	struct sh_state *s = p;

	for (uint64_t k = 0; k < NTX; k++) {
		unsigned shard = (unsigned)(k % NSHARDS);
		struct sh_op op = { .s = s, .shard = shard, .pgno = k / NSHARDS };
		struct sh_op other = { .s = s, .shard = 1 - shard, .pgno = NTX + k };

		if (urt_core_run(s->rt, shard, shard_op, &op) || op.ret || op.seen != k + 1)
			s->bad++;
		/* Pages past what was written are untouched on both shards. */
		if (urt_core_run(s->rt, other.shard, shard_op, &other) || other.ret || other.seen)
			s->bad++;
	}
}

static void on_core(struct sh_state *s, unsigned core, void (*fn)(void *), void *arg)
{
	cr_assert_eq(urt_fiber_spawn_on(s->rt, core, fn, arg), 0);
	sem_wait(&s->sem);
}

static void open_all(struct sh_state *s, bool create)
{
	struct sh_op ops[NSHARDS];

	s->create = create;
	for (unsigned i = 0; i < NSHARDS; i++) {
		ops[i] = (struct sh_op){ .s = s, .shard = i };
		on_core(s, i, open_shard, &ops[i]);
		cr_assert_eq(s->open_ret[i], 0, "shard %u: %s (%s)", i, urt_strerror(s->open_ret[i]),
			     urt_last_error());
	}
}

static void close_all(struct sh_state *s)
{
	struct sh_op ops[NSHARDS];

	for (unsigned i = 0; i < NSHARDS; i++) {
		ops[i] = (struct sh_op){ .s = s, .shard = i };
		on_core(s, i, close_shard, &ops[i]);
	}
}

struct sh_call {
	struct sh_state *s;
	void (*fn)(void *);
};

static void call_trampoline(void *p)
{
	struct sh_call *c = p;

	c->fn(c->s);
	sem_post(&c->s->sem);
}

Test(shards, one_shard_per_core)
{
	static const int cpus[NSHARDS] = { 0, 1 };
	struct urt_rt_opts o;
	struct sh_state *s = calloc(1, sizeof(*s));
	struct urt_dev *crashed;
	struct sh_call call = { .s = s };
	cpu_set_t allowed;
	int ret;

	/* Only a host without CPUs 0 and 1 is a skip: any other failure to start is a failure. */
	cr_assert_eq(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
	if (!CPU_ISSET(0, &allowed) || !CPU_ISSET(1, &allowed))
		cr_skip_test("needs CPUs 0 and 1 (this process may run on %d CPUs)", CPU_COUNT(&allowed));
	urt_rt_opts_default(&o);
	o.cpus = cpus;
	o.ncpus = NSHARDS;
	o.buf_region_bytes = 16u << 20;
	o.fiber_stack_bytes = 64u << 10;
	ret = urt_rt_start(&o, &s->rt);
	cr_assert_eq(ret, 0, "urt_rt_start on CPUs 0 and 1: %d (%s)", ret, urt_last_error());
	sem_init(&s->sem, 0, 0);
	s->dev = psx_sim(32u << 20, 41);
	open_all(s, true);
	call.fn = driver_write;
	on_core(s, 0, call_trampoline, &call);
	cr_expect_eq(s->errors, 0);
	cr_expect_eq(s->remote_core_seen, 1, "shard 1's work ran on core %u", s->remote_core_seen);
	/* Power cut with both shards open: each recovers on its own. */
	crashed = s->dev;
	urt_sim_crash(crashed, 42);
	close_all(s);
	cr_assert_eq(urt_sim_reopen(crashed, &s->dev), 0);
	open_all(s, false);
	call.fn = driver_check;
	on_core(s, 0, call_trampoline, &call);
	close_all(s);
	cr_expect_eq(s->bad, 0, "%llu pages wrong", (unsigned long long)s->bad);
	for (unsigned i = 0; i < NSHARDS; i++) {
		cr_expect_eq(s->close_ret[i], 0);
		cr_expect_eq(s->st[i].recovered_pages, NTX / NSHARDS, "shard %u replayed %llu images", i,
			     (unsigned long long)s->st[i].recovered_pages);
	}
	urt_rt_stop(s->rt);
	urt_dev_close(s->dev);
	urt_dev_close(crashed);
	free(s);
}
