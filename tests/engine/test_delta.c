/*
 * Page-delta log records (wal.c rule D1, recovery.c delta_base):
 *   - a small change after the page's first image is logged as a delta of
 *     a few hundred bytes, and survives a power cut;
 *   - the changes of one page by the commits of one batch share one record;
 *   - the first change of a page after a checkpoint is a full image again;
 *   - an image leaves out the zero hole the store's user names (page_hole),
 *     and is whole when the named bytes are not zero; both recover;
 *   - a delta whose base image is missing (home unwritten, or home corrupt)
 *     makes the open fail with URT_E_CORRUPT naming the page;
 *   - a store of format version 1 opens and is upgraded by its first
 *     checkpoint, and a newer version is refused naming both versions.
 */
#include "base/crc32c.h"
#include "engine/format/format.h"
#include "ps_fixture.h"

#define LOG_BYTES (256u << 10)
#define PAGE_START (URT_SB_REGION_SIZE + LOG_BYTES)
#define NCOMMITTERS 8

struct dt_state {
	struct urt_dev *dev;
	struct urt_dev *crashed;
	struct urt_ps_opts o;
	struct urt_ps_stats st[4];
	int ret[16];
	uint64_t v[8];
	unsigned live;
	struct urt_waitq wq;
	char msg[512];
	struct psx_fail fail;
};

static void dt_opts(struct dt_state *s)
{
	urt_ps_opts_default(&s->o);
	s->o.create = true;
	s->o.log_bytes = LOG_BYTES;
	s->o.pool_pages = 16;
}

static void dt_run(struct dt_state *s, uint64_t flush_ns, void (*body)(void *arg))
{
	struct urt_sim_opts o;

	urt_sim_opts_default(&o);
	o.size_bytes = 8u << 20;
	o.seed = 77;
	o.fua = false;
	o.flush_latency_ns = flush_ns;
	s->dev = tests_sim_open(&o);
	psx_run_and_close(body, s, &s->dev, &s->crashed, &s->fail);
}

/* Writes n bytes of value v at off of page pgno in a transaction of its own. */
static int poke(struct urt_ps *ps, uint64_t pgno, uint32_t off, uint32_t n, uint8_t v)
{
	struct urt_tx *tx;
	void *p;
	int ret = urt_tx_begin(ps, &tx);

	if (ret)
		return ret;
	ret = urt_page_get(tx, pgno, URT_PAGE_WRITE, &p);
	if (ret) {
		urt_tx_abort(tx);
		return ret;
	}
	memset((uint8_t *)p + off, v, n);
	return urt_tx_commit(tx);
}

/*
 * Cuts the power after the device's seed-chosen command, closes ps, and
 * opens the store again from the crashed image (the fixture's device
 * swap).  NULL when the reopen (*ret) or the open (s->fail) failed.
 */
static struct urt_ps *crash_and_reopen(struct dt_state *s, struct urt_ps *ps, uint64_t seed, int *ret)
{
	urt_sim_crash(s->dev, seed);
	urt_ps_close(ps);
	*ret = psx_reopen_crashed(&s->dev, &s->crashed);
	if (*ret)
		return NULL;
	s->o.create = false;
	return psx_open(s->dev, &s->o, &s->fail);
}

/* Whether page pgno holds v at [off, off+n) and zeros elsewhere, except for other_off. */
static bool page_is(struct urt_ps *ps, uint64_t pgno, uint32_t off, uint32_t n, uint8_t v)
{
	struct urt_tx *tx;
	const uint8_t *p;
	void *data;
	bool ok = true;

	if (urt_tx_begin(ps, &tx))
		return false;
	if (urt_page_get(tx, pgno, URT_PAGE_READ, &data)) {
		urt_tx_abort(tx);
		return false;
	}
	p = data;
	for (uint32_t i = 0; i < urt_ps_page_data_bytes(ps); i++)
		ok &= p[i] == (i >= off && i < off + n ? v : 0);
	urt_tx_abort(tx);
	return ok;
}

/* ---- Small changes are deltas and survive a power cut --------------------- */

static void body_small(void *arg)
{
	struct dt_state *s = arg;
	struct urt_ps *ps = psx_open(s->dev, &s->o, &s->fail);

	if (!ps)
		return;
	s->ret[0] = poke(ps, 3, 0, 1000, 0x11);		/* First change: an image. */
	urt_ps_stats(ps, &s->st[0]);
	s->ret[1] = poke(ps, 3, 500, 100, 0x22);	/* 100 bytes: a delta. */
	urt_ps_stats(ps, &s->st[1]);
	ps = crash_and_reopen(s, ps, 3, &s->ret[2]);
	if (!ps)
		return;
	urt_ps_stats(ps, &s->st[2]);
	{
		struct urt_tx *tx;
		const uint8_t *p;
		void *data;

		s->ret[3] = urt_tx_begin(ps, &tx);
		if (s->ret[3] == 0) {
			s->ret[3] = urt_page_get(tx, 3, URT_PAGE_READ, &data);
			if (s->ret[3] == 0) {
				p = data;
				for (uint32_t i = 0; i < 1000; i++)
					s->v[0] += p[i] != (i >= 500 && i < 600 ? 0x22 : 0x11);
				for (uint32_t i = 1000; i < urt_ps_page_data_bytes(ps); i++)
					s->v[0] += p[i] != 0;
			}
			urt_tx_abort(tx);
		}
	}
	/* After the open checkpoint, the next change of the page is an image again. */
	s->ret[4] = poke(ps, 3, 0, 8, 0x33);
	urt_ps_stats(ps, &s->st[3]);
	s->ret[5] = urt_ps_close(ps);
}

Test(delta, small_change_is_a_delta_and_recovers)
{
	struct dt_state s = { 0 };

	dt_opts(&s);
	dt_run(&s, 0, body_small);
	for (int i = 0; i < 6; i++)
		cr_expect_eq(s.ret[i], 0, "step %d: %d", i, s.ret[i]);
	cr_expect_eq(s.st[0].log_images, 1);
	cr_expect_eq(s.st[0].log_deltas, 0);
	cr_expect_eq(s.st[1].log_images, 1);
	cr_expect_eq(s.st[1].log_deltas, 1);
	/* A 100-byte change: record header, one entry, 7 chunks of 16 bytes. */
	cr_expect_leq(s.st[1].log_bytes - s.st[0].log_bytes, 4096,
		      "the delta batch took %llu bytes",
		      (unsigned long long)(s.st[1].log_bytes - s.st[0].log_bytes));
	cr_expect_eq(s.st[2].recovered_pages, 2, "replayed %llu page records",
		     (unsigned long long)s.st[2].recovered_pages);
	cr_expect_eq(s.st[2].recovered_deltas, 1);
	cr_expect_eq(s.v[0], 0, "%llu bytes of page 3 wrong after recovery",
		     (unsigned long long)s.v[0]);
	cr_expect_eq(s.st[3].log_images, 1, "first change after a checkpoint: an image");
	cr_expect_eq(s.st[3].log_deltas, 0);
}

/* ---- Images leave out a named zero hole ------------------------------------ */

/* The test's page layout: bytes from 1000 on are unused. */
static uint32_t hole_after_1000(const void *data, size_t len, uint32_t *off, void *arg)
{
	(void)data;
	(void)arg;
	*off = 1000;
	return (uint32_t)len - 1000;
}

static void body_hole(void *arg)
{
	struct dt_state *s = arg;
	struct urt_ps *ps = psx_open(s->dev, &s->o, &s->fail);

	if (!ps)
		return;
	urt_ps_stats(ps, &s->st[0]);
	s->ret[0] = poke(ps, 3, 0, 1000, 0x11);		/* First change: an image with its hole out. */
	urt_ps_stats(ps, &s->st[1]);
	s->ret[1] = poke(ps, 5, 1500, 100, 0x44);	/* The named hole is not zero: a whole image. */
	urt_ps_stats(ps, &s->st[2]);
	ps = crash_and_reopen(s, ps, 5, &s->ret[2]);
	if (!ps)
		return;
	urt_ps_stats(ps, &s->st[3]);
	s->v[0] = page_is(ps, 3, 0, 1000, 0x11);
	s->v[1] = page_is(ps, 5, 1500, 100, 0x44);
	s->ret[3] = urt_ps_close(ps);
}

Test(delta, image_leaves_out_the_named_zero_hole_and_recovers)
{
	struct dt_state s = { 0 };
	uint64_t first, second;

	dt_opts(&s);
	s.o.page_hole = hole_after_1000;
	dt_run(&s, 0, body_hole);
	for (int i = 0; i < 4; i++)
		cr_expect_eq(s.ret[i], 0, "step %d: %d", i, s.ret[i]);
	first = s.st[1].log_bytes - s.st[0].log_bytes;
	second = s.st[2].log_bytes - s.st[1].log_bytes;
	cr_expect_eq(s.st[1].log_images, 1);
	cr_expect_eq(s.st[1].log_image_holes, 1, "the first image left its hole out");
	cr_expect_eq(s.st[1].log_image_hole_bytes, 4096 - URT_PAGE_HDR_SIZE - 1000);
	/* Batch header, the image (page header + 1000 bytes + hole header), COMMIT: one 4 KiB block. */
	cr_expect_leq(first, 4096, "the holed image's batch took %llu bytes", (unsigned long long)first);
	cr_expect_eq(s.st[2].log_images, 2);
	cr_expect_eq(s.st[2].log_image_holes, 1, "a hint naming nonzero bytes was not refused");
	cr_expect_gt(second, 4096, "the whole image's batch took only %llu bytes",
		     (unsigned long long)second);
	cr_expect_lt(first, second);
	cr_expect_eq(s.st[3].recovered_pages, 2);
	cr_expect(s.v[0], "page 3 is not its 1000 bytes and zeros after recovery");
	cr_expect(s.v[1], "page 5 is not its 100 bytes and zeros after recovery");
}

/* ---- Written ranges (urt_page_write_at) ----------------------------------- */

/* The byte page 3 must hold at i after body_ranges' commits. */
static uint8_t ranges_expected(uint32_t i)
{
	if (i >= 500 && i < 600)
		return 0x22;
	if (i >= 700 && i < 710)
		return 0x55;
	if (i < 1000)
		return 0x11;
	if (i >= 2000 && i < 2050)
		return 0x44;
	return i == 3000 ? 0x66 : 0;
}

static int write_at_fill(struct urt_tx *tx, uint64_t pgno, uint32_t off, uint32_t n, uint8_t v)
{
	uint8_t buf[128];

	memset(buf, v, n);
	return urt_page_write_at(tx, pgno, off, buf, n);
}

static void body_ranges(void *arg)
{
	struct dt_state *s = arg;
	struct urt_ps *ps = psx_open(s->dev, &s->o, &s->fail);
	struct urt_tx *tx;
	uint8_t *p;

	if (!ps)
		return;
	s->ret[0] = poke(ps, 3, 0, 1000, 0x11);		/* The image the ranges rest on. */
	urt_ps_stats(ps, &s->st[0]);
	/* Two ranges of one page in one transaction: one delta, no compare of the page. */
	s->ret[1] = urt_tx_begin(ps, &tx);
	if (s->ret[1])
		return;
	s->ret[1] |= write_at_fill(tx, 3, 500, 100, 0x22);
	/* Read-your-writes: a READ get sees the range (and leaves the copy ranged). */
	s->ret[1] |= urt_page_get(tx, 3, URT_PAGE_READ, (void **)&p);
	if (s->ret[1] == 0)
		s->v[1] = p[500] == 0x22 && p[499] == 0x11;
	s->ret[1] |= write_at_fill(tx, 3, 2000, 50, 0x44);
	s->ret[1] |= urt_tx_commit(tx);
	/* A range, then a plain WRITE get that writes elsewhere: both bytes must be logged. */
	s->ret[2] = urt_tx_begin(ps, &tx);
	if (s->ret[2])
		return;
	s->ret[2] |= write_at_fill(tx, 3, 700, 10, 0x55);
	s->ret[2] |= urt_page_get(tx, 3, URT_PAGE_WRITE, (void **)&p);
	if (s->ret[2] == 0)
		p[3000] = 0x66;
	s->ret[2] |= urt_tx_commit(tx);
	urt_ps_stats(ps, &s->st[1]);
	/* The same bytes again: nothing changes, nothing is logged. */
	s->ret[3] = urt_tx_begin(ps, &tx);
	if (s->ret[3])
		return;
	s->ret[3] |= write_at_fill(tx, 3, 500, 100, 0x22);
	s->ret[3] |= urt_tx_commit(tx);
	urt_ps_stats(ps, &s->st[2]);
	ps = crash_and_reopen(s, ps, 5, &s->ret[4]);
	if (!ps)
		return;
	urt_ps_stats(ps, &s->st[3]);
	s->ret[5] = urt_tx_begin(ps, &tx);
	if (s->ret[5] == 0) {
		s->ret[5] = urt_page_get(tx, 3, URT_PAGE_READ, (void **)&p);
		for (uint32_t i = 0; s->ret[5] == 0 && i < urt_ps_page_data_bytes(ps); i++)
			s->v[0] += p[i] != ranges_expected(i);
		urt_tx_abort(tx);
	}
	s->ret[6] = urt_ps_close(ps);
}

Test(delta, written_ranges_are_logged_and_recover)
{
	struct dt_state s = { 0 };

	dt_opts(&s);
	dt_run(&s, 0, body_ranges);
	for (int i = 0; i < 7; i++)
		cr_expect_eq(s.ret[i], 0, "step %d: %d", i, s.ret[i]);
	cr_expect_eq(s.v[1], 1, "a READ get in the transaction did not see its range");
	cr_expect_eq(s.st[1].log_deltas - s.st[0].log_deltas, 2, "%llu deltas for two commits",
		     (unsigned long long)(s.st[1].log_deltas - s.st[0].log_deltas));
	cr_expect_eq(s.st[2].log_bytes, s.st[1].log_bytes, "an unchanged range was logged");
	cr_expect_eq(s.st[2].commits_readonly, s.st[1].commits_readonly + 1);
	cr_expect_eq(s.st[3].recovered_deltas, 2, "replayed %llu deltas",
		     (unsigned long long)s.st[3].recovered_deltas);
	cr_expect_eq(s.v[0], 0, "%llu bytes of page 3 wrong after recovery",
		     (unsigned long long)s.v[0]);
}

/* ---- One record per page per batch ---------------------------------------- */

struct co_arg {
	struct dt_state *s;
	struct urt_ps *ps;
	unsigned id;
};

static void co_committer(void *arg)
{
	struct co_arg *a = arg;
	unsigned done = 0;

	while (done < 20) {
		int ret = poke(a->ps, 0, a->id * 100, 100, (uint8_t)(1 + done));

		if (ret == -EBUSY) {
			urt_fiber_yield();	/* Another committer holds page 0. */
			continue;
		}
		if (ret) {
			a->s->ret[1] = ret;
			break;
		}
		done++;
	}
	if (--a->s->live == 0)
		urt_waitq_wake_all(&a->s->wq);
}

static void body_coalesce(void *arg)
{
	struct dt_state *s = arg;
	struct co_arg args[NCOMMITTERS];
	struct urt_ps *ps = psx_open(s->dev, &s->o, &s->fail);

	if (!ps)
		return;
	s->ret[0] = poke(ps, 0, 4000, 8, 1);	/* The image the deltas rest on. */
	urt_ps_stats(ps, &s->st[0]);
	s->live = NCOMMITTERS;
	for (unsigned i = 0; i < NCOMMITTERS; i++) {
		args[i] = (struct co_arg){ .s = s, .ps = ps, .id = i };
		if (urt_fiber_spawn(co_committer, &args[i]))
			abort();
	}
	while (s->live)
		urt_waitq_wait(&s->wq);
	urt_ps_stats(ps, &s->st[1]);
	s->ret[2] = urt_ps_close(ps);
}

Test(delta, one_record_per_page_per_batch)
{
	struct dt_state s = { 0 };
	uint64_t batches, records, commits;

	dt_opts(&s);
	dt_run(&s, 300000, body_coalesce);	/* 0.3 ms flushes: batches gather commits. */
	cr_expect_eq(s.ret[0], 0);
	cr_expect_eq(s.ret[1], 0);
	cr_expect_eq(s.ret[2], 0);
	batches = s.st[1].batches - s.st[0].batches;
	commits = s.st[1].commits - s.st[0].commits;
	records = s.st[1].log_deltas + s.st[1].log_images - s.st[0].log_deltas - s.st[0].log_images;
	cr_expect_eq(commits, NCOMMITTERS * 20);
	cr_expect_eq(records, batches, "%llu page records in %llu batches: one per batch",
		     (unsigned long long)records, (unsigned long long)batches);
	cr_expect_lt(batches, commits / 2, "%llu batches for %llu commits: no group commit",
		     (unsigned long long)batches, (unsigned long long)commits);
}

/* ---- A commit that changes no byte ----------------------------------------- */

/* Writes 0x5a over 16 bytes of page 3; its commit is the batch in flight. */
static void first_writer(void *arg)
{
	struct dt_state *s = arg;
	struct urt_ps *ps = (struct urt_ps *)(uintptr_t)s->v[7];

	s->ret[1] = poke(ps, 3, 100, 16, 0x5a);
	s->v[0] = 1;
	if (--s->live == 0)
		urt_waitq_wake_all(&s->wq);
}

/*
 * A second transaction writes the same bytes while the first one's batch
 * waits for its flush: its commit changes nothing and logs nothing, but it
 * must not return before those bytes are durable (it would acknowledge a
 * write a power cut can still lose).
 */
static void body_unchanged_waits(void *arg)
{
	struct dt_state *s = arg;
	struct urt_ps *ps = psx_open(s->dev, &s->o, &s->fail);

	if (!ps)
		return;
	s->ret[0] = poke(ps, 3, 0, 8, 1);
	urt_ps_stats(ps, &s->st[0]);
	s->v[7] = (uint64_t)(uintptr_t)ps;
	s->live = 1;
	if (urt_fiber_spawn(first_writer, s))
		abort();
	/* Let the first commit install its bytes and its batch go to the device. */
	urt_sleep_ns(2000000);
	urt_ps_stats(ps, &s->st[1]);
	s->ret[2] = poke(ps, 3, 100, 16, 0x5a);
	urt_ps_stats(ps, &s->st[2]);
	s->v[1] = s->v[0];
	while (s->live)
		urt_waitq_wait(&s->wq);
	s->ret[3] = urt_ps_close(ps);
}

Test(delta, unchanged_commit_waits_for_durable_bytes)
{
	struct dt_state s = { 0 };

	dt_opts(&s);
	dt_run(&s, 200000000, body_unchanged_waits);	/* 200 ms flushes: the first batch is slow. */
	cr_expect_eq(s.ret[0], 0);
	cr_expect_eq(s.ret[1], 0);
	cr_expect_eq(s.ret[2], 0);
	cr_expect_eq(s.ret[3], 0);
	/* The first commit was in flight (not durable) when the second began... */
	cr_expect_eq(s.st[1].batches, s.st[0].batches, "the first batch was durable already");
	cr_expect_eq(s.st[1].commits, s.st[0].commits);
	/* ...and the second returned only once it was, having logged nothing itself. */
	cr_expect_eq(s.st[2].batches, s.st[0].batches + 1, "%llu batches when the unchanged commit returned",
		     (unsigned long long)(s.st[2].batches - s.st[0].batches));
	cr_expect_eq(s.st[2].commits_readonly, s.st[1].commits_readonly + 1);
	cr_expect_geq(s.st[2].durable_lsn, s.st[1].durable_lsn);
}

/* ---- A delta without its base image --------------------------------------- */

/* Moves the checkpoint of every valid superblock copy on dev to lsn. */
static int move_checkpoint(struct urt_dev *dev, uint64_t lsn)
{
	uint8_t *buf = urt_buf_get(URT_SB_REGION_SIZE);
	int ret = -EIO;

	if (!buf)
		return -ENOMEM;
	if (urt_read(dev, buf, URT_SB_REGION_SIZE, 0) != URT_SB_REGION_SIZE)
		goto out;
	for (int slot = 0; slot < 2; slot++) {
		struct superblock sb;
		uint8_t *p = buf + slot * URT_SB_SLOT_SIZE;

		if (superblock_decode(p, URT_SB_SLOT_SIZE, &sb, NULL))
			continue;
		sb.checkpoint_lsn = lsn;
		if (superblock_encode(&sb, p, URT_SB_SLOT_SIZE, NULL))
			goto out;
	}
	if (urt_write(dev, buf, URT_SB_REGION_SIZE, 0) == URT_SB_REGION_SIZE &&
	    urt_flush(dev) == 0)
		ret = 0;
out:
	urt_buf_put(buf);
	return ret;
}

/*
 * Page 5 gets an image (one batch), then a delta (the next batch); the
 * superblock is then moved to the delta's batch, so the log from the
 * checkpoint holds a delta of page 5 and no image.  corrupt_home: garbage
 * over page 5's home as well (else the home was never written).
 */
static void run_no_base(struct dt_state *s, bool corrupt_home)
{
	struct urt_ps *ps = psx_open(s->dev, &s->o, &s->fail);
	struct urt_ps_stats st;
	uint64_t delta_lsn;

	if (!ps)
		return;
	s->ret[0] = poke(ps, 5, 0, 64, 0x55);
	urt_ps_stats(ps, &st);
	delta_lsn = st.durable_lsn;	/* The next batch starts where this one ended. */
	s->ret[1] = poke(ps, 5, 100, 10, 0x66);
	urt_ps_stats(ps, &s->st[0]);
	urt_sim_crash(s->dev, 9);
	urt_ps_close(ps);
	s->ret[2] = psx_reopen_crashed(&s->dev, &s->crashed);
	if (s->ret[2])
		return;
	s->ret[3] = move_checkpoint(s->dev, delta_lsn);
	if (corrupt_home) {
		uint8_t *buf = urt_buf_get(4096);

		memset(buf, 0xa5, 4096);
		s->ret[4] = urt_write(s->dev, buf, 4096, PAGE_START + 5 * 4096) == 4096 ? 0 : -EIO;
		urt_buf_put(buf);
	}
	s->o.create = false;
	s->ret[5] = urt_ps_open(s->dev, &s->o, &ps);
	snprintf(s->msg, sizeof(s->msg), "%s", urt_last_error());
	if (s->ret[5] == 0)
		urt_ps_close(ps);
}

static void body_no_base_unwritten(void *arg) { run_no_base(arg, false); }
static void body_no_base_corrupt(void *arg) { run_no_base(arg, true); }

static void expect_no_base(struct dt_state *s, const char *home)
{
	for (int i = 0; i < 5; i++)
		cr_expect_eq(s->ret[i], 0, "step %d: %d", i, s->ret[i]);
	cr_expect_eq(s->st[0].log_deltas, 1, "the second change was not a delta");
	cr_expect_eq(s->ret[5], URT_E_CORRUPT, "open: %d (%s)", s->ret[5], s->msg);
	cr_expect(strstr(s->msg, "page 5:") != NULL, "message names the page: %s", s->msg);
	cr_expect(strstr(s->msg, "no base image") != NULL, "message: %s", s->msg);
	cr_expect(strstr(s->msg, home) != NULL, "message says the home is %s: %s", home, s->msg);
}

Test(delta, missing_base_image_is_corruption)
{
	struct dt_state s = { 0 };

	dt_opts(&s);
	dt_run(&s, 0, body_no_base_unwritten);
	expect_no_base(&s, "unwritten");
}

Test(delta, corrupt_base_image_is_corruption)
{
	struct dt_state s = { 0 };

	dt_opts(&s);
	dt_run(&s, 0, body_no_base_corrupt);
	expect_no_base(&s, "corrupt");
}

/* ---- Format versions ------------------------------------------------------ */

/* Rewrites the version of both superblock copies (and their checksums). */
static int set_version(struct urt_dev *dev, uint32_t version)
{
	uint8_t *buf = urt_buf_get(URT_SB_REGION_SIZE);
	int ret = -EIO;

	if (!buf)
		return -ENOMEM;
	if (urt_read(dev, buf, URT_SB_REGION_SIZE, 0) == URT_SB_REGION_SIZE) {
		for (int slot = 0; slot < 2; slot++) {
			uint8_t *p = buf + slot * URT_SB_SLOT_SIZE;

			urt_store_le32(p + offsetof(struct urt_sb_disk, version), version);
			urt_store_le32(p + offsetof(struct urt_sb_disk, crc), 0);
			urt_store_le32(p + offsetof(struct urt_sb_disk, crc),
				       urt_crc32c(0, p, URT_SB_SIZE));
		}
		if (urt_write(dev, buf, URT_SB_REGION_SIZE, 0) == URT_SB_REGION_SIZE)
			ret = 0;
	}
	urt_buf_put(buf);
	return ret;
}

/* The highest version among the valid superblock copies on dev. */
static uint32_t disk_version(struct urt_dev *dev)
{
	uint8_t *buf = urt_buf_get(URT_SB_REGION_SIZE);
	uint32_t v = 0;

	if (buf && urt_read(dev, buf, URT_SB_REGION_SIZE, 0) == URT_SB_REGION_SIZE)
		for (int slot = 0; slot < 2; slot++) {
			struct superblock sb;

			if (superblock_decode(buf + slot * URT_SB_SLOT_SIZE, URT_SB_SLOT_SIZE, &sb,
					      NULL) == 0 && sb.version > v)
				v = sb.version;
		}
	urt_buf_put(buf);
	return v;
}

static void body_versions(void *arg)
{
	struct dt_state *s = arg;
	struct urt_ps *ps = psx_open(s->dev, &s->o, &s->fail);

	if (!ps)
		return;
	s->ret[0] = poke(ps, 2, 10, 20, 0x42);
	s->ret[1] = urt_ps_close(ps);
	/* A version 1 store: its log holds images only, as version 1 wrote them. */
	s->ret[2] = set_version(s->dev, 1);
	s->v[0] = disk_version(s->dev);
	s->o.create = false;
	ps = psx_open(s->dev, &s->o, &s->fail);
	if (!ps)
		return;
	s->v[1] = disk_version(s->dev);		/* The open checkpoint upgraded it. */
	s->v[2] = page_is(ps, 2, 10, 20, 0x42);
	s->ret[3] = urt_ps_close(ps);
	/* A newer version than this build knows. */
	s->ret[4] = set_version(s->dev, URT_FORMAT_VERSION + 1);
	s->ret[5] = urt_ps_open(s->dev, &s->o, &ps);
	snprintf(s->msg, sizeof(s->msg), "%s", urt_last_error());
}

Test(delta, old_version_upgrades_newer_is_refused)
{
	struct dt_state s = { 0 };
	char want[64];

	dt_opts(&s);
	dt_run(&s, 0, body_versions);
	for (int i = 0; i < 5; i++)
		cr_expect_eq(s.ret[i], 0, "step %d: %d", i, s.ret[i]);
	cr_expect_eq(s.v[0], 1);
	cr_expect_eq(s.v[1], URT_FORMAT_VERSION, "after the first checkpoint: version %llu",
		     (unsigned long long)s.v[1]);
	cr_expect(s.v[2], "page 2 lost its data across the upgrade");
	cr_expect_eq(s.ret[5], URT_E_VERSION, "newer version: %d", s.ret[5]);
	snprintf(want, sizeof(want), "version %u, newer than this build's version %u",
		 URT_FORMAT_VERSION + 1, URT_FORMAT_VERSION);
	cr_expect(strstr(s.msg, want) != NULL, "message names both versions: %s", s.msg);
}
