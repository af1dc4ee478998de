/*
 * The write-ahead log: concurrent commits are grouped into few batches and
 * all survive a power cut; the sync policy picks FUA or write+flush from
 * the device's capabilities, on the sim device and on a file (and `none`
 * issues neither for the log); a log
 * much smaller than the data written wraps and checkpoints itself, and
 * commits wait for space instead of overwriting live log.
 */
#include <unistd.h>

#include "ps_fixture.h"

#define NCOMMITTERS 64
#define COMMITS_EACH 8

struct wl_state {
	struct urt_dev *dev;
	struct urt_dev *crashed;
	struct urt_ps *ps;
	struct urt_ps_opts o;
	unsigned live;
	struct urt_waitq wq;
	int errors;
	int ret[8];
	uint64_t bad;
	struct urt_ps_stats st;
	struct urt_sim_stats ss0, ss1;
	struct psx_fail fail;
	bool serial;		/* late_committer: each starts once the one before it committed. */
	unsigned turn;		/* late_committer with serial: committers done so far. */
	struct urt_waitq turn_wq;	/* Where they wait for their turn. */
};

/* What a committer fiber gets: the test and its number. */
struct wl_arg {
	struct wl_state *s;
	unsigned id;
};

static void committer(void *arg)
{
	struct wl_arg *a = arg;
	struct wl_state *s = a->s;

	for (unsigned i = 0; i < COMMITS_EACH; i++) {
		struct urt_tx *tx;
		void *p;
		uint64_t pg = a->id;	/* Each committer owns one page: no conflicts. */

		if (urt_tx_begin(s->ps, &tx) || urt_page_get(tx, pg, URT_PAGE_WRITE, &p)) {
			s->errors++;
			break;
		}
		psx_fill(p, urt_ps_page_data_bytes(s->ps), 1 + a->id * 1000 + i, pg);
		if (urt_tx_commit(tx))
			s->errors++;
	}
	if (--s->live == 0)
		urt_waitq_wake_all(&s->wq);
}

static void check_pages(struct wl_state *s, unsigned n)
{
	for (unsigned pg = 0; pg < n; pg++) {
		struct urt_tx *tx;
		void *p;

		if (urt_tx_begin(s->ps, &tx) || urt_page_get(tx, pg, URT_PAGE_READ, &p) ||
		    psx_check(p, urt_ps_page_data_bytes(s->ps), pg) != 1 + pg * 1000 + COMMITS_EACH - 1)
			s->bad++;
		urt_tx_abort(tx);
	}
}

/* Runs fiber fn for ids 0..n-1 (n <= NCOMMITTERS) and waits until all have returned. */
static void run_committers(struct wl_state *s, void (*fn)(void *arg), unsigned n)
{
	static struct wl_arg args[NCOMMITTERS];

	s->live = n;
	for (unsigned i = 0; i < n; i++) {
		args[i].s = s;
		args[i].id = i;
		urt_fiber_spawn(fn, &args[i]);
	}
	while (s->live)
		urt_waitq_wait(&s->wq);
}

/*
 * Power cut right after the last acknowledgement (seed draws which cached
 * writes land), then recovery: every committer's last commit must be there.
 */
static void crash_and_check_pages(struct wl_state *s, uint64_t seed)
{
	urt_sim_crash(s->dev, seed);
	urt_ps_close(s->ps);
	s->ret[0] = psx_reopen_crashed(&s->dev, &s->crashed);
	if (s->ret[0])
		return;
	s->o.create = false;
	s->ret[1] = urt_ps_open(s->dev, &s->o, &s->ps);
	if (s->ret[1])
		return;
	check_pages(s, NCOMMITTERS);
	s->ret[2] = urt_ps_close(s->ps);
}

/* Options of a new store that syncs its log by policy sync. */
static void wl_opts(struct wl_state *s, enum urt_ps_sync sync)
{
	urt_ps_opts_default(&s->o);
	s->o.create = true;
	s->o.sync = sync;
}

static void body_group(void *arg)
{
	struct wl_state *s = arg;

	s->ps = psx_open(s->dev, &s->o, &s->fail);
	if (!s->ps)
		return;
	urt_sim_stats(s->dev, &s->ss0);
	run_committers(s, committer, NCOMMITTERS);
	urt_sim_stats(s->dev, &s->ss1);
	urt_ps_stats(s->ps, &s->st);
	crash_and_check_pages(s, 99);
}

static void run_group(bool fua_dev, enum urt_ps_sync sync, struct wl_state *s)
{
	struct urt_sim_opts so;

	urt_sim_opts_default(&so);
	so.size_bytes = 16u << 20;
	so.fua = fua_dev;
	so.flush_latency_ns = 500000;	/* 0.5 ms: commits pile up behind each flush. */
	s->dev = tests_sim_open(&so);
	wl_opts(s, sync);
	s->o.pool_pages = 128;
	psx_run_and_close(body_group, s, &s->dev, &s->crashed, &s->fail);
	cr_expect_eq(s->errors, 0);
	cr_expect_eq(s->st.commits, NCOMMITTERS * COMMITS_EACH);
	cr_expect_eq(s->ret[0], 0);
	cr_expect_eq(s->ret[1], 0, "recovery: %d", s->ret[1]);
	cr_expect_eq(s->bad, 0, "%llu pages lost their last acknowledged commit",
		     (unsigned long long)s->bad);
	cr_expect_eq(s->ret[2], 0);
}

Test(wal, group_commit_flush_device)
{
	struct wl_state s = { 0 };

	/* No native FUA: AUTO must pick write + flush. */
	run_group(false, URT_PS_SYNC_AUTO, &s);
	cr_expect_gt(s.st.commits_per_batch, 4.0, "commits per batch %.2f", s.st.commits_per_batch);
	cr_expect_eq(s.st.fua_writes, 0);
	cr_expect_geq(s.ss1.flushes - s.ss0.flushes, s.st.batches);
	cr_expect_leq(s.ss1.flushes - s.ss0.flushes, s.st.batches + 4 * (s.st.checkpoints + 1),
		      "about one flush per batch: %llu flushes for %llu batches",
		      (unsigned long long)(s.ss1.flushes - s.ss0.flushes),
		      (unsigned long long)s.st.batches);
}

Test(wal, group_commit_fua_device)
{
	struct wl_state s = { 0 };

	/* Native FUA: AUTO must write each batch with FUA, and no flush for the log. */
	run_group(true, URT_PS_SYNC_AUTO, &s);
	cr_expect_gt(s.st.commits_per_batch, 4.0, "commits per batch %.2f", s.st.commits_per_batch);
	cr_expect_eq(s.st.fua_writes, s.st.log_writes);
	cr_expect_geq(s.ss1.fua_writes - s.ss0.fua_writes, s.st.batches);
	cr_expect_leq(s.ss1.flushes - s.ss0.flushes, 4 * s.st.checkpoints,
		      "flushes come from checkpoints only: %llu",
		      (unsigned long long)(s.ss1.flushes - s.ss0.flushes));
}

/*
 * A file through the kernel: AUTO follows the disk under the file system
 * (FUA where it is native or there is no volatile cache, else write +
 * flush); the explicit policies do what they say.
 */
static void body_file(void *arg)
{
	struct wl_state *s = arg;

	s->ps = psx_open(s->dev, &s->o, &s->fail);
	if (!s->ps)
		return;
	run_committers(s, committer, 16);
	urt_ps_stats(s->ps, &s->st);
	s->ret[0] = urt_ps_close(s->ps);
}

/* Runs 16 committers on a new file with policy sync; *native: AUTO's rule says FUA for this disk. */
static void run_file(enum urt_ps_sync sync, struct wl_state *s, bool *native)
{
	char path[] = "/tmp/urt-wal-file-XXXXXX";
	struct urt_dev_opts d;
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
	cr_assert_eq(ftruncate(fd, 16 << 20), 0);
	close(fd);
	urt_dev_opts_default(&d);
	if (urt_dev_open(path, &d, &s->dev) == -EINVAL) {
		d.direct = false;	/* A file system without O_DIRECT (tmpfs): the page cache. */
		cr_assert_eq(urt_dev_open(path, &d, &s->dev), 0, "%s", urt_last_error());
	}
	cr_assert_not_null(s->dev, "%s", urt_last_error());
	*native = urt_dev_info(s->dev)->fua || !urt_dev_info(s->dev)->volatile_cache;
	wl_opts(s, sync);
	s->o.pool_pages = 128;
	psx_run_and_close(body_file, s, &s->dev, NULL, &s->fail);
	unlink(path);
	cr_expect_eq(s->errors, 0);
	cr_expect_eq(s->ret[0], 0);
	cr_expect_eq(s->st.commits, 16 * COMMITS_EACH);
	cr_expect_gt(s->st.log_writes, 0);
}

/* Every log write has FUA, and the flushes come from checkpoints only. */
static void expect_fua(const struct wl_state *s)
{
	cr_expect_eq(s->st.fua_writes, s->st.log_writes, "%llu FUA writes of %llu log writes",
		     (unsigned long long)s->st.fua_writes, (unsigned long long)s->st.log_writes);
	cr_expect_leq(s->st.flushes, 4 * (s->st.checkpoints + 1), "flushes come from checkpoints only: %llu",
		      (unsigned long long)s->st.flushes);
}

/* No log write has FUA, and a flush follows every batch. */
static void expect_flush(const struct wl_state *s)
{
	cr_expect_eq(s->st.fua_writes, 0);
	cr_expect_geq(s->st.flushes, s->st.batches, "%llu flushes for %llu batches",
		      (unsigned long long)s->st.flushes, (unsigned long long)s->st.batches);
}

Test(wal, auto_on_a_file_follows_the_disk)
{
	struct wl_state s = { 0 };
	bool native;

	run_file(URT_PS_SYNC_AUTO, &s, &native);
	if (native)
		expect_fua(&s);
	else
		expect_flush(&s);
}

Test(wal, fua_and_flush_on_a_file)
{
	struct wl_state fua = { 0 }, flush = { 0 };
	bool native;

	run_file(URT_PS_SYNC_FUA, &fua, &native);
	expect_fua(&fua);
	run_file(URT_PS_SYNC_FLUSH, &flush, &native);
	expect_flush(&flush);
}

static void body_none(void *arg)
{
	struct wl_state *s = arg;
	struct urt_tx *tx;
	void *p;

	s->ps = psx_open(s->dev, &s->o, &s->fail);
	if (!s->ps)
		return;
	urt_sim_stats(s->dev, &s->ss0);
	for (int i = 0; i < 10; i++) {
		urt_tx_begin(s->ps, &tx);
		urt_page_get(tx, (uint64_t)i, URT_PAGE_WRITE, &p);
		*(uint8_t *)p = 1;	/* A commit that changes no byte logs nothing. */
		s->ret[0] |= urt_tx_commit(tx);
	}
	urt_sim_stats(s->dev, &s->ss1);
	urt_ps_stats(s->ps, &s->st);
	s->ret[1] = urt_ps_close(s->ps);
}

Test(wal, none_policy_skips_log_durability)
{
	struct wl_state s = { 0 };

	s.dev = psx_sim(8u << 20, 31);
	wl_opts(&s, URT_PS_SYNC_NONE_UNSAFE);
	psx_run_and_close(body_none, &s, &s.dev, NULL, &s.fail);
	cr_expect_eq(s.ret[0], 0);
	cr_expect_eq(s.ret[1], 0);
	cr_expect_eq(s.st.batches, 10);
	cr_expect_eq(s.ss1.flushes - s.ss0.flushes, 0);
	cr_expect_eq(s.ss1.fua_writes - s.ss0.fua_writes, 0);
}

static void body_small_log(void *arg)
{
	struct wl_state *s = arg;

	s->ps = psx_open(s->dev, &s->o, &s->fail);
	if (!s->ps)
		return;
	run_committers(s, committer, NCOMMITTERS);
	urt_ps_stats(s->ps, &s->st);
	crash_and_check_pages(s, 98);
}

Test(wal, small_log_wraps_and_waits_for_checkpoints)
{
	struct wl_state s = { 0 };

	s.dev = psx_sim(8u << 20, 32);
	wl_opts(&s, URT_PS_SYNC_AUTO);
	s.o.log_bytes = 128u << 10;	/* 512 commits of 4 KiB: about 20 laps of the log. */
	s.o.pool_pages = 96;
	psx_run_and_close(body_small_log, &s, &s.dev, &s.crashed, &s.fail);
	cr_expect_eq(s.errors, 0);
	cr_expect_gt(s.st.log_bytes, 8 * (128u << 10), "the log wrapped: %llu bytes",
		     (unsigned long long)s.st.log_bytes);
	cr_expect_gt(s.st.checkpoints, 4);
	cr_expect_eq(s.ret[0] | s.ret[1] | s.ret[2], 0);
	cr_expect_eq(s.bad, 0);
}

/* ---- Bounded delay window ----------------------------------------------- */

static void late_committer(void *arg)
{
	struct wl_arg *a = arg;
	struct wl_state *s = a->s;
	struct urt_tx *tx;
	void *p;

	/*
	 * Arrive 2 ms apart.  serial: each waits for the one before it to
	 * return from its commit, so without a window every commit is a batch
	 * of its own however the machine's load bunches the sleeps.
	 */
	urt_sleep_ns(2000000ull * a->id);
	while (s->serial && s->turn < a->id)
		urt_waitq_wait(&s->turn_wq);
	if (urt_tx_begin(s->ps, &tx) || urt_page_get(tx, a->id, URT_PAGE_WRITE, &p))
		s->errors++;
	else if ((*(uint8_t *)p = 1, urt_tx_commit(tx)))
		s->errors++;
	s->turn++;
	urt_waitq_wake_all(&s->turn_wq);
	if (--s->live == 0)
		urt_waitq_wake_all(&s->wq);
}

static void body_delay(void *arg)
{
	struct wl_state *s = arg;

	s->ps = psx_open(s->dev, &s->o, &s->fail);
	if (!s->ps)
		return;
	run_committers(s, late_committer, 8);
	urt_ps_stats(s->ps, &s->st);
	s->ret[0] = urt_ps_close(s->ps);
}

static void run_delay(uint64_t delay_ns, struct wl_state *s)
{
	s->dev = psx_sim(8u << 20, 33);
	wl_opts(s, URT_PS_SYNC_AUTO);
	s->o.group_delay_ns = delay_ns;
	psx_run_and_close(body_delay, s, &s->dev, NULL, &s->fail);
	cr_expect_eq(s->errors, 0);
	cr_expect_eq(s->ret[0], 0);
	cr_expect_eq(s->st.commits, 8);
}

Test(wal, delay_window_gathers_late_commits)
{
	struct wl_state with = { 0 }, without = { 0 };

	/* A 250 ms window holds 7 x 2 ms of arrivals even when a busy machine stretches them. */
	run_delay(250000000, &with);
	without.serial = true;
	run_delay(0, &without);
	cr_expect_leq(with.st.batches, 2, "window: %llu batches for 8 commits",
		      (unsigned long long)with.st.batches);
	cr_expect_geq(without.st.batches, 8, "no window, one commit at a time: %llu batches for 8 commits",
		      (unsigned long long)without.st.batches);
}
