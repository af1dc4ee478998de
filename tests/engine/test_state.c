/*
 * The store's lifecycle state (enum ps_state, src/engine/ps.c), read through
 * the internal header:
 *   - a formatted or reopened store is OPEN once urt_ps_open returns;
 *   - a checkpoint runs in CHECKPOINTING (seen by the device at each of its
 *     commands, and by another fiber while it waits for I/O), transactions
 *     still commit meanwhile, and the store is OPEN again afterwards;
 *   - a failed log write moves the store to ERROR, where it stays: every
 *     later call returns the sticky error, and close returns the original;
 *   - a failed checkpoint ends in ERROR, not back in OPEN;
 *   - after a power cut, recovery on reopen replays the log and the store
 *     reaches OPEN.
 */
#include "engine/ps_impl.h"
#include "ps_fixture.h"

#define DEV_BYTES (8u << 20)
#define LOG_BYTES (256u << 10)
#define PAGE_START (URT_SB_REGION_SIZE + LOG_BYTES)	/* Page aligned for 4 KiB pages. */

/* What the sim hook saw while `watch` was set. */
struct st_seen {
	unsigned sb_writes;	/* Writes to a superblock slot. */
	unsigned page_writes;	/* Writes to the page region. */
	unsigned flushes;	/* Flush commands. */
	unsigned other_state;	/* Of those, commands issued while the state was not `want`. */
};

struct st_state {
	struct urt_dev *dev;
	struct urt_dev *crashed;
	struct urt_ps *ps;
	struct urt_ps_opts o;
	int ret[16];
	uint64_t v[16];
	enum ps_state state[16];	/* Store states sampled by the body. */
	int sticky[4];			/* ps->sticky sampled by the body. */
	bool busy[4];			/* ps->ckpt_busy sampled by the body. */
	struct urt_ps_stats st0, st1;
	bool watch;			/* The hook records commands. */
	enum ps_state want;		/* The state the hook expects. */
	struct st_seen seen;
	unsigned live;			/* Helper fibers still running. */
	struct urt_waitq wq;		/* The body waits here for them. */
	struct psx_fail fail;
};

static void st_opts(struct st_state *s)
{
	urt_ps_opts_default(&s->o);
	s->o.create = true;
	s->o.log_bytes = LOG_BYTES;
	s->o.pool_pages = 16;
}

static void st_run(struct st_state *s, uint64_t seed, void (*body)(void *arg))
{
	s->dev = psx_sim(DEV_BYTES, seed);
	psx_run_and_close(body, s, &s->dev, &s->crashed, &s->fail);
}

/*
 * Runs on the reactor thread that submits each device command, the thread
 * the store's fibers run on, so it may read the store's state.
 */
static bool st_hook(void *arg, const struct urt_sim_cmd *cmd)
{
	struct st_state *s = arg;
	bool counted = true;

	if (!s->watch || !s->ps)
		return false;
	if (cmd->op == URT_OP_FLUSH || cmd->op == URT_OP_FSYNC)
		s->seen.flushes++;
	else if (cmd->off < URT_SB_REGION_SIZE)
		s->seen.sb_writes++;
	else if (cmd->off >= PAGE_START)
		s->seen.page_writes++;
	else
		counted = false;	/* A log write: the writer fiber's, not the checkpoint's. */
	if (counted && s->ps->state != s->want)
		s->seen.other_state++;
	return false;
}

/* Commits the pattern of txid base + pgno to pages 0..n-1; the first error, or 0. */
static int st_write_pages(struct urt_ps *ps, uint64_t n, uint64_t base)
{
	int ret = 0;

	for (uint64_t pg = 0; pg < n && ret == 0; pg++)
		ret = psx_write_page(ps, pg, base + pg);
	return ret;
}

/* How many of pages 0..n-1 do not read back as written by st_write_pages(ps, n, base). */
static uint64_t st_pages_lost(struct urt_ps *ps, uint64_t n, uint64_t base)
{
	uint64_t lost = 0;
	int err;

	for (uint64_t pg = 0; pg < n; pg++)
		if (psx_read_page(ps, pg, &err) != base + pg || err)
			lost++;
	return lost;
}

/* ---- Open -------------------------------------------------------------- */

static void body_open(void *arg)
{
	struct st_state *s = arg;
	struct urt_ps *ps = psx_open(s->dev, &s->o, &s->fail);

	if (!ps)
		return;
	s->state[0] = ps->state;
	s->sticky[0] = ps->sticky;
	s->busy[0] = ps->ckpt_busy;
	urt_ps_stats(ps, &s->st0);
	s->ret[0] = psx_write_page(ps, 1, 11);
	s->state[1] = ps->state;
	s->ret[1] = urt_ps_close(ps);
	/* An existing store: superblock picked, log replayed, open checkpoint. */
	s->o.create = false;
	ps = psx_open(s->dev, &s->o, &s->fail);
	if (!ps)
		return;
	s->state[2] = ps->state;
	s->v[0] = psx_read_page(ps, 1, &s->ret[2]);
	s->ret[3] = urt_ps_close(ps);
}

Test(state, open_is_open)
{
	struct st_state s = { 0 };

	st_opts(&s);
	st_run(&s, 1, body_open);
	cr_expect_eq(s.state[0], PS_OPEN, "after a format: state %d", s.state[0]);
	cr_expect_eq(s.sticky[0], 0);
	cr_expect_not(s.busy[0], "the open checkpoint has ended");
	cr_expect_eq(s.st0.checkpoints, 1, "urt_ps_open ran its checkpoint: %llu",
		     (unsigned long long)s.st0.checkpoints);
	cr_expect_eq(s.ret[0], 0);
	cr_expect_eq(s.state[1], PS_OPEN, "after a commit: state %d", s.state[1]);
	cr_expect_eq(s.ret[1], 0);
	cr_expect_eq(s.state[2], PS_OPEN, "after a reopen: state %d", s.state[2]);
	cr_expect_eq(s.ret[2], 0);
	cr_expect_eq(s.v[0], 11);
	cr_expect_eq(s.ret[3], 0);
}

/* ---- Checkpoint -------------------------------------------------------- */

static void ckpt_fiber(void *arg)
{
	struct st_state *s = arg;

	s->ret[8] = urt_ps_checkpoint(s->ps);
	if (--s->live == 0)
		urt_waitq_wake_all(&s->wq);
}

static void body_checkpoint(void *arg)
{
	struct st_state *s = arg;
	struct urt_ps *ps = psx_open(s->dev, &s->o, &s->fail);
	unsigned yields = 0;

	if (!ps)
		return;
	s->ps = ps;
	s->ret[0] = st_write_pages(ps, 6, 100);
	urt_ps_stats(ps, &s->st0);

	/* The device sees every command of the checkpoint issued in CHECKPOINTING. */
	s->want = PS_CHECKPOINTING;
	s->watch = true;
	urt_sim_set_hook(s->dev, st_hook, s);
	s->ret[1] = urt_ps_checkpoint(ps);
	s->watch = false;
	s->state[0] = ps->state;
	s->busy[0] = ps->ckpt_busy;
	urt_ps_stats(ps, &s->st1);

	/* Another fiber checkpoints; this one looks while that one waits for I/O. */
	s->ret[2] = st_write_pages(ps, 3, 200);
	s->live = 1;
	if (urt_fiber_spawn(ckpt_fiber, s)) {
		psx_failf(&s->fail, "urt_fiber_spawn failed");
		s->live = 0;
	}
	while (s->live && !ps->ckpt_busy && yields++ < 1000)
		urt_fiber_yield();
	s->state[1] = ps->state;
	s->busy[1] = ps->ckpt_busy;
	/* A transaction commits while the checkpoint runs. */
	s->ret[3] = psx_write_page(ps, 5, 300);
	s->state[2] = ps->state;
	while (s->live)
		urt_waitq_wait(&s->wq);
	s->state[3] = ps->state;
	s->busy[2] = ps->ckpt_busy;
	s->v[0] = psx_read_page(ps, 5, &s->ret[4]);
	urt_sim_set_hook(s->dev, NULL, NULL);
	s->ret[5] = urt_ps_close(ps);
	s->ps = NULL;
}

Test(state, checkpoint_is_checkpointing_then_open)
{
	struct st_state s = { 0 };

	st_opts(&s);
	st_run(&s, 2, body_checkpoint);
	cr_expect_eq(s.ret[0], 0);
	cr_expect_eq(s.ret[1], 0, "urt_ps_checkpoint: %d", s.ret[1]);
	cr_expect_geq(s.seen.page_writes, 6, "the six dirty pages went home: %u",
		      s.seen.page_writes);
	cr_expect_eq(s.seen.sb_writes, 1, "one superblock write: %u", s.seen.sb_writes);
	cr_expect_geq(s.seen.flushes, 2, "a flush for the pages and one for the superblock: %u",
		      s.seen.flushes);
	cr_expect_eq(s.seen.other_state, 0,
		     "%u checkpoint commands were issued outside CHECKPOINTING", s.seen.other_state);
	cr_expect_eq(s.state[0], PS_OPEN, "after the checkpoint: state %d", s.state[0]);
	cr_expect_not(s.busy[0]);
	cr_expect_eq(s.st1.checkpoints, s.st0.checkpoints + 1);

	cr_expect_eq(s.ret[2], 0);
	cr_expect(s.busy[1], "the other fiber's checkpoint was seen running");
	cr_expect_eq(s.state[1], PS_CHECKPOINTING, "during a checkpoint: state %d", s.state[1]);
	cr_expect_eq(s.ret[3], 0, "a commit during the checkpoint: %d", s.ret[3]);
	cr_expect(s.state[2] == PS_CHECKPOINTING || s.state[2] == PS_OPEN,
		  "after that commit: state %d", s.state[2]);
	cr_expect_eq(s.ret[8], 0, "the other fiber's checkpoint: %d", s.ret[8]);
	cr_expect_eq(s.state[3], PS_OPEN, "after it: state %d", s.state[3]);
	cr_expect_not(s.busy[2]);
	cr_expect_eq(s.ret[4], 0);
	cr_expect_eq(s.v[0], 300);
	cr_expect_eq(s.ret[5], 0);
}

/* ---- A failed log write: ERROR, sticky -------------------------------- */

static void body_log_eio(void *arg)
{
	struct st_state *s = arg;
	struct urt_ps *ps = psx_open(s->dev, &s->o, &s->fail);
	struct urt_tx *early, *tx = NULL;
	void *p;

	if (!ps)
		return;
	s->ret[0] = psx_write_page(ps, 1, 10);
	/* A transaction begun before the failure and still open after it. */
	s->ret[1] = urt_tx_begin(ps, &early);
	if (s->ret[1])
		return;
	/* Forever: the runtime retries a failed write before reporting it. */
	urt_sim_inject(s->dev, URT_SIM_FAULT_WRITE_EIO, URT_SB_REGION_SIZE, LOG_BYTES,
		       URT_SIM_FOREVER);
	s->ret[2] = psx_write_page(ps, 2, 20);		/* The failing batch. */
	s->state[0] = ps->state;
	s->sticky[0] = ps->sticky;
	/* Every later call, and the state after each. */
	s->ret[3] = urt_page_get(early, 1, URT_PAGE_READ, &p);
	s->ret[4] = urt_tx_commit(early);
	s->state[1] = ps->state;
	s->ret[5] = urt_tx_begin(ps, &tx);
	s->state[2] = ps->state;
	s->ret[6] = psx_write_page(ps, 3, 30);
	s->ret[7] = urt_ps_checkpoint(ps);
	s->state[3] = ps->state;
	s->busy[0] = ps->ckpt_busy;
	s->ret[8] = urt_ps_error(ps);
	urt_ps_stats(ps, &s->st0);
	s->sticky[1] = ps->sticky;
	s->state[4] = ps->state;
	s->ret[9] = urt_ps_close(ps);
	/* Recovery from what really reached the device. */
	urt_sim_inject(s->dev, URT_SIM_FAULT_WRITE_EIO, 0, 0, 0);
	ps = psx_power_cycle(&s->dev, &s->crashed, &s->o, 7, &s->fail);
	if (!ps)
		return;
	s->state[5] = ps->state;
	s->sticky[2] = ps->sticky;
	s->v[0] = psx_read_page(ps, 1, &s->ret[10]);
	s->v[1] = psx_read_page(ps, 2, &s->ret[11]);
	s->ret[12] = psx_write_page(ps, 4, 40);
	s->ret[13] = urt_ps_close(ps);
}

Test(state, log_write_failure_is_sticky_error)
{
	struct st_state s = { 0 };

	st_opts(&s);
	s.o.sync = URT_PS_SYNC_FUA;
	st_run(&s, 3, body_log_eio);
	cr_expect_eq(s.ret[0], 0);
	cr_expect_eq(s.ret[1], 0);
	cr_expect_eq(s.ret[2], -EIO, "the failed batch's commit: %d", s.ret[2]);
	cr_expect_eq(s.state[0], PS_ERROR, "after the failure: state %d", s.state[0]);
	cr_expect_eq(s.sticky[0], -EIO);
	cr_expect_eq(s.ret[3], URT_E_STICKY, "urt_page_get: %d", s.ret[3]);
	cr_expect_eq(s.ret[4], URT_E_STICKY, "urt_tx_commit: %d", s.ret[4]);
	cr_expect_eq(s.ret[5], URT_E_STICKY, "urt_tx_begin: %d", s.ret[5]);
	cr_expect_eq(s.ret[6], URT_E_STICKY, "a later commit: %d", s.ret[6]);
	cr_expect_eq(s.ret[7], URT_E_STICKY, "urt_ps_checkpoint: %d", s.ret[7]);
	cr_expect_eq(s.ret[8], -EIO, "urt_ps_error: %d", s.ret[8]);
	for (int i = 1; i <= 4; i++)
		cr_expect_eq(s.state[i], PS_ERROR, "the store stays in ERROR (%d: %d)", i,
			     s.state[i]);
	cr_expect_not(s.busy[0], "no checkpoint ran");
	cr_expect_eq(s.st0.sticky_error, -EIO);
	cr_expect_eq(s.sticky[1], -EIO, "the first error is kept");
	cr_expect_eq(s.ret[9], -EIO, "urt_ps_close: %d", s.ret[9]);
	cr_expect_eq(s.state[5], PS_OPEN, "recovery reaches OPEN: state %d", s.state[5]);
	cr_expect_eq(s.sticky[2], 0);
	cr_expect_eq(s.ret[10], 0);
	cr_expect_eq(s.v[0], 10, "acknowledged data survives");
	cr_expect_eq(s.ret[11], 0);
	cr_expect_eq(s.v[1], 0, "a failed FUA write lands nowhere (shows %llu)",
		     (unsigned long long)s.v[1]);
	cr_expect_eq(s.ret[12], 0);
	cr_expect_eq(s.ret[13], 0);
}

/* ---- A failed checkpoint: CHECKPOINTING -> ERROR, not back to OPEN ---- */

static void body_ckpt_eio(void *arg)
{
	struct st_state *s = arg;
	struct urt_ps *ps = psx_open(s->dev, &s->o, &s->fail);

	if (!ps)
		return;
	s->ps = ps;
	s->ret[0] = st_write_pages(ps, 6, 100);
	urt_sim_inject(s->dev, URT_SIM_FAULT_WRITE_EIO, PAGE_START, DEV_BYTES - PAGE_START,
		       URT_SIM_FOREVER);
	/* The failing page writes are issued in CHECKPOINTING. */
	s->want = PS_CHECKPOINTING;
	s->watch = true;
	urt_sim_set_hook(s->dev, st_hook, s);
	s->ret[1] = urt_ps_checkpoint(ps);
	s->watch = false;
	urt_sim_set_hook(s->dev, NULL, NULL);
	s->state[0] = ps->state;
	s->busy[0] = ps->ckpt_busy;
	s->sticky[0] = ps->sticky;
	s->ret[2] = psx_write_page(ps, 7, 70);
	s->ret[3] = urt_ps_checkpoint(ps);
	s->state[1] = ps->state;
	s->ret[4] = urt_ps_close(ps);
	s->ps = NULL;
	urt_sim_inject(s->dev, URT_SIM_FAULT_WRITE_EIO, 0, 0, 0);
	ps = psx_power_cycle(&s->dev, &s->crashed, &s->o, 9, &s->fail);
	if (!ps)
		return;
	s->state[2] = ps->state;
	s->v[0] = st_pages_lost(ps, 6, 100);
	s->ret[6] = urt_ps_close(ps);
}

Test(state, checkpoint_failure_stays_error)
{
	struct st_state s = { 0 };

	st_opts(&s);
	st_run(&s, 4, body_ckpt_eio);
	cr_expect_eq(s.ret[0], 0);
	cr_expect_eq(s.ret[1], -EIO, "the failed checkpoint: %d", s.ret[1]);
	cr_expect_geq(s.seen.page_writes, 1);
	cr_expect_eq(s.seen.other_state, 0,
		     "%u checkpoint commands were issued outside CHECKPOINTING", s.seen.other_state);
	cr_expect_eq(s.state[0], PS_ERROR, "after a failed checkpoint: state %d", s.state[0]);
	cr_expect_not(s.busy[0], "the checkpoint lock is released");
	cr_expect_eq(s.sticky[0], -EIO);
	cr_expect_eq(s.ret[2], URT_E_STICKY, "a later commit: %d", s.ret[2]);
	cr_expect_eq(s.ret[3], URT_E_STICKY, "a later checkpoint: %d", s.ret[3]);
	cr_expect_eq(s.state[1], PS_ERROR);
	cr_expect_eq(s.ret[4], -EIO, "urt_ps_close: %d", s.ret[4]);
	cr_expect_eq(s.state[2], PS_OPEN, "recovery reaches OPEN: state %d", s.state[2]);
	cr_expect_eq(s.v[0], 0, "%llu acknowledged pages lost", (unsigned long long)s.v[0]);
	cr_expect_eq(s.ret[6], 0);
}

/* ---- Recovery after a power cut --------------------------------------- */

static void body_recover(void *arg)
{
	struct st_state *s = arg;
	struct urt_ps *ps = psx_open(s->dev, &s->o, &s->fail);

	if (!ps)
		return;
	s->ret[0] = st_write_pages(ps, 8, 500);
	s->state[0] = ps->state;
	/* Power cut with the commits only in the log; close then fails on the dead device. */
	urt_sim_crash(s->dev, 13);
	s->ret[1] = urt_ps_close(ps);
	if (psx_reopen_crashed(&s->dev, &s->crashed)) {
		psx_failf(&s->fail, "sim reopen failed");
		return;
	}
	s->o.create = false;
	ps = psx_open(s->dev, &s->o, &s->fail);
	if (!ps)
		return;
	s->state[1] = ps->state;
	s->sticky[0] = ps->sticky;
	s->busy[0] = ps->ckpt_busy;
	urt_ps_stats(ps, &s->st0);
	s->v[0] = st_pages_lost(ps, 8, 500);
	s->ret[3] = urt_ps_close(ps);
}

Test(state, recovery_after_crash_reaches_open)
{
	struct st_state s = { 0 };

	st_opts(&s);
	st_run(&s, 5, body_recover);
	cr_expect_eq(s.ret[0], 0);
	cr_expect_eq(s.state[0], PS_OPEN);
	cr_expect_neq(s.ret[1], 0, "close after the power cut cannot checkpoint");
	cr_expect_eq(s.state[1], PS_OPEN, "after recovery: state %d", s.state[1]);
	cr_expect_eq(s.sticky[0], 0);
	cr_expect_not(s.busy[0]);
	cr_expect_geq(s.st0.recovered_batches, 8, "the log was replayed: %llu batches",
		      (unsigned long long)s.st0.recovered_batches);
	cr_expect_eq(s.v[0], 0, "%llu acknowledged pages lost", (unsigned long long)s.v[0]);
	cr_expect_eq(s.ret[3], 0);
}

/* ---- A region too small for the superblocks ---------------------------- */

static char tiny_msg[2][256];

static void body_tiny(void *arg)
{
	struct st_state *s = arg;
	struct urt_ps *ps = NULL;

	/* Whether or not it may format, a 4 KiB device holds no store: refused, and named. */
	s->o.create = false;
	s->ret[0] = urt_ps_open(s->dev, &s->o, &ps);
	snprintf(tiny_msg[0], sizeof(tiny_msg[0]), "%s", urt_last_error());
	s->o.create = true;
	s->ret[1] = urt_ps_open(s->dev, &s->o, &ps);
	snprintf(tiny_msg[1], sizeof(tiny_msg[1]), "%s", urt_last_error());
}

Test(state, region_smaller_than_the_superblocks_is_named)
{
	struct st_state s = { 0 };

	st_opts(&s);
	s.dev = psx_sim(4096, 3);
	psx_run_and_close(body_tiny, &s, &s.dev, &s.crashed, &s.fail);
	for (int i = 0; i < 2; i++) {
		cr_expect_eq(s.ret[i], URT_E_BADFORMAT, "open %d: %d (%s)", i, s.ret[i], tiny_msg[i]);
		cr_expect(strstr(tiny_msg[i], "fewer than the 8192 of its two superblocks") != NULL,
			  "open %d: %s", i, tiny_msg[i]);
	}
}
