/*
 * Faults under the page store, injected by the sim device (fixed seeds):
 *   - EIO on a log write, or on a log flush: the commit fails with EIO, the
 *     store turns sticky, later calls get URT_E_STICKY, and after a reopen
 *     acknowledged data is intact and the failed commit is absent;
 *   - EIO on a page read: retried, then reported with the page id;
 *   - a corrupted page on disk: URT_E_CORRUPT naming the page when the log
 *     cannot help, repaired when the log holds an image of it;
 *   - a corrupted superblock copy: the other copy is used;
 *   - a garbage, truncated or newer-version device: a clear error on open.
 */
#include <fcntl.h>
#include <unistd.h>

#include "base/crc32c.h"
#include "engine/format/format.h"
#include "ps_fixture.h"

#define LOG_BYTES (256u << 10)
#define PAGE_START (URT_SB_REGION_SIZE + LOG_BYTES)	/* Page aligned for 4 KiB pages. */

struct ft_state {
	struct urt_dev *dev;
	struct urt_ps_opts o;
	int ret[16];
	char msg6[512];		/* urt_last_error() of ret[6] (it lives on the reactor's thread). */
	uint64_t v[16];
	struct urt_ps_stats st;
	struct urt_dev *crashed;
	struct psx_fail fail;
};

static void ft_opts(struct ft_state *s)
{
	urt_ps_opts_default(&s->o);
	s->o.create = true;
	s->o.log_bytes = LOG_BYTES;
	s->o.pool_pages = 8;
}

static struct urt_ps *ft_open(struct ft_state *s)
{
	return psx_open(s->dev, &s->o, &s->fail);
}

/*
 * The main-thread half of a test: body runs against a fresh 8 MiB sim
 * device whose crashes draw from seed, and must record no failure.
 */
static void ft_run(struct ft_state *s, uint64_t seed, void (*body)(void *arg))
{
	s->dev = psx_sim(8u << 20, seed);
	psx_run_and_close(body, s, &s->dev, &s->crashed, &s->fail);
}

/* Overwrites [off, off+len) of the device with bytes derived from seed. */
static int scribble(struct urt_dev *dev, uint64_t off, uint32_t len, uint64_t seed)
{
	uint8_t *buf = urt_buf_get(len);
	ssize_t n;

	for (uint32_t i = 0; i < len; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		buf[i] = (uint8_t)(seed >> 33);
	}
	n = urt_write(dev, buf, len, off);
	if (n == (ssize_t)len)
		n = urt_flush(dev);
	urt_buf_put(buf);
	return (int)(n < 0 ? n : 0);
}

/* Flips the bits of byte off of the device (read-modify-write of its 4 KiB block). */
static int flip_byte(struct urt_dev *dev, uint64_t off)
{
	uint8_t *buf = urt_buf_get(4096);
	uint64_t base = off & ~4095ull;
	ssize_t n = urt_read(dev, buf, 4096, base);

	if (n == 4096) {
		buf[off - base] ^= 0xff;
		n = urt_write(dev, buf, 4096, base);
	}
	if (n == 4096)
		n = urt_flush(dev);
	urt_buf_put(buf);
	return (int)(n < 0 ? n : 0);
}

/* Power cycle after the store was closed (psx_power_cycle). */
static struct urt_ps *ft_power_cycle(struct ft_state *s, uint64_t seed)
{
	return psx_power_cycle(&s->dev, &s->crashed, &s->o, seed, &s->fail);
}

/* Flips a byte in the newer of the two superblock copies: the store must fall back to the other. */
static int corrupt_newest_superblock(struct urt_dev *dev)
{
	uint8_t *buf = urt_buf_get(URT_SB_REGION_SIZE);
	int newest;

	urt_read(dev, buf, URT_SB_REGION_SIZE, 0);
	newest = urt_load_le64(buf + 32) > urt_load_le64(buf + URT_SB_SLOT_SIZE + 32) ? 0 : 1;
	urt_buf_put(buf);
	return flip_byte(dev, (uint64_t)newest * URT_SB_SLOT_SIZE + 100);
}

/* ---- EIO on the log ------------------------------------------------------ */

static void body_log_eio(void *arg)
{
	struct ft_state *s = arg;
	struct urt_ps *ps = ft_open(s);
	struct urt_tx *tx;
	int err;

	if (!ps)
		return;
	s->ret[0] = psx_write_page(ps, 1, 10);
	/* Forever: the runtime retries a failed write before reporting it. */
	urt_sim_inject(s->dev, s->o.sync == URT_PS_SYNC_FLUSH ? URT_SIM_FAULT_FLUSH_EIO
							       : URT_SIM_FAULT_WRITE_EIO,
		       URT_SB_REGION_SIZE, LOG_BYTES, URT_SIM_FOREVER);
	s->ret[1] = psx_write_page(ps, 2, 20);		/* The failing batch. */
	s->ret[2] = psx_write_page(ps, 3, 30);		/* Sticky from now on. */
	s->ret[3] = urt_tx_begin(ps, &tx);
	s->ret[4] = urt_ps_error(ps);
	s->ret[5] = urt_ps_checkpoint(ps);
	s->ret[6] = urt_ps_close(ps);
	/* Power cycle: the device was left in an unknown state (a failed flush is sticky). */
	ps = ft_power_cycle(s, 7);
	if (!ps)
		return;
	s->v[0] = psx_read_page(ps, 1, &err);
	s->ret[7] = err;
	s->v[1] = psx_read_page(ps, 2, &err);
	s->v[2] = psx_read_page(ps, 3, &err);
	s->ret[8] = psx_write_page(ps, 4, 40);
	s->ret[9] = urt_ps_close(ps);
}

static void run_log_eio(enum urt_ps_sync sync)
{
	struct ft_state s = { 0 };

	ft_opts(&s);
	s.o.sync = sync;
	ft_run(&s, 11, body_log_eio);
	cr_expect_eq(s.ret[0], 0);
	cr_expect_eq(s.ret[1], -EIO, "the failed batch's commit gets the I/O error: %d", s.ret[1]);
	cr_expect_eq(s.ret[2], URT_E_STICKY, "later commits: %d", s.ret[2]);
	cr_expect_eq(s.ret[3], URT_E_STICKY);
	cr_expect_eq(s.ret[4], -EIO);
	cr_expect_eq(s.ret[5], URT_E_STICKY, "no checkpoint after the failure: %d", s.ret[5]);
	cr_expect_eq(s.ret[6], -EIO);
	cr_expect_eq(s.ret[7], 0);
	cr_expect_eq(s.v[0], 10, "acknowledged data survives");
	if (sync == URT_PS_SYNC_FUA)
		cr_expect_eq(s.v[1], 0, "a failed write lands nowhere (shows %llu)",
			     (unsigned long long)s.v[1]);
	else
		cr_expect(s.v[1] == 0 || s.v[1] == 20, "after a failed flush the commit is either "
			  "absent or whole (shows %llu)", (unsigned long long)s.v[1]);
	cr_expect_eq(s.v[2], 0);
	cr_expect_eq(s.ret[8], 0);
	cr_expect_eq(s.ret[9], 0);
}

Test(faults, log_write_eio_is_sticky) { run_log_eio(URT_PS_SYNC_FUA); }
Test(faults, log_flush_eio_is_sticky) { run_log_eio(URT_PS_SYNC_FLUSH); }

/* ---- EIO on a checkpoint's page write or superblock write ---------------- */

static void body_ckpt_eio(void *arg)
{
	struct ft_state *s = arg;
	struct urt_ps *ps = ft_open(s);
	int err;

	if (!ps)
		return;
	for (uint64_t i = 0; i < 10; i++)
		s->ret[0] |= psx_write_page(ps, i, 100 + i);
	/* v[3] selects the target: 0 = the page region, 1 = both superblock slots. */
	if (s->v[3] == 0)
		urt_sim_inject(s->dev, URT_SIM_FAULT_WRITE_EIO, PAGE_START, 64 * 4096, URT_SIM_FOREVER);
	else
		urt_sim_inject(s->dev, URT_SIM_FAULT_WRITE_EIO, 0, URT_SB_REGION_SIZE, URT_SIM_FOREVER);
	s->ret[1] = urt_ps_checkpoint(ps);
	s->ret[2] = psx_write_page(ps, 20, 200);
	s->ret[3] = urt_ps_close(ps);
	urt_sim_inject(s->dev, URT_SIM_FAULT_WRITE_EIO, 0, 0, 0);
	ps = ft_power_cycle(s, 8);
	if (!ps)
		return;
	for (uint64_t i = 0; i < 10; i++)
		if (psx_read_page(ps, i, &err) != 100 + i || err)
			s->v[0]++;
	s->v[1] = psx_read_page(ps, 20, &err);
	s->ret[4] = urt_ps_close(ps);
}

static void run_ckpt_eio(uint64_t target)
{
	struct ft_state s = { 0 };

	ft_opts(&s);
	s.o.pool_pages = 32;
	s.v[3] = target;
	ft_run(&s, 18, body_ckpt_eio);
	cr_expect_eq(s.ret[0], 0);
	cr_expect_eq(s.ret[1], -EIO, "the checkpoint reports the write error: %d", s.ret[1]);
	cr_expect_eq(s.ret[2], URT_E_STICKY, "and the store is sticky: %d", s.ret[2]);
	cr_expect_eq(s.ret[3], -EIO);
	cr_expect_eq(s.v[0], 0, "%llu acknowledged pages lost", (unsigned long long)s.v[0]);
	cr_expect_eq(s.v[1], 0, "a commit refused as sticky must not appear");
	cr_expect_eq(s.ret[4], 0);
}

Test(faults, checkpoint_page_write_eio_is_sticky) { run_ckpt_eio(0); }
Test(faults, superblock_write_eio_is_sticky) { run_ckpt_eio(1); }

/* ---- EIO on a page read --------------------------------------------------- */

static void body_read_eio(void *arg)
{
	struct ft_state *s = arg;
	struct urt_ps *ps = ft_open(s);
	int err;

	if (!ps)
		return;
	s->ret[0] = psx_write_page(ps, 5, 50);
	s->ret[1] = urt_ps_close(ps);		/* Checkpoint: page 5 is home, pool is gone. */
	s->o.create = false;
	ps = ft_open(s);
	if (!ps)
		return;
	/*
	 * Five failures: the runtime retries a read 3 times (4 attempts), so the
	 * first urt_read fails and the store's own retry succeeds.
	 */
	urt_sim_inject(s->dev, URT_SIM_FAULT_READ_EIO, PAGE_START + 5 * 4096, 4096, 5);
	s->v[0] = psx_read_page(ps, 5, &err);
	s->ret[2] = err;
	urt_ps_stats(ps, &s->st);
	s->v[1] = s->st.read_retries;
	s->ret[3] = urt_ps_close(ps);
	ps = ft_open(s);
	if (!ps)
		return;
	urt_sim_inject(s->dev, URT_SIM_FAULT_READ_EIO, PAGE_START + 5 * 4096, 4096, URT_SIM_FOREVER);
	s->v[2] = psx_read_page(ps, 5, &err);
	s->ret[4] = err;
	urt_ps_stats(ps, &s->st);
	/* The store stays healthy: a read error is not sticky. */
	s->ret[5] = urt_ps_error(ps);
	s->ret[6] = psx_write_page(ps, 6, 60);
	urt_sim_inject(s->dev, URT_SIM_FAULT_READ_EIO, 0, 0, 0);
	s->ret[7] = urt_ps_close(ps);
}

Test(faults, page_read_eio_retried_then_reported)
{
	struct ft_state s = { 0 };

	ft_opts(&s);
	ft_run(&s, 12, body_read_eio);
	cr_expect_eq(s.ret[0], 0);
	cr_expect_eq(s.ret[1], 0);
	cr_expect_eq(s.ret[2], 0, "transient failures are retried: %d", s.ret[2]);
	cr_expect_eq(s.v[0], 50);
	cr_expect_eq(s.v[1], 1, "retries counted: %llu", (unsigned long long)s.v[1]);
	cr_expect_eq(s.ret[3], 0);
	cr_expect_eq(s.ret[4], -EIO, "persistent failure reported: %d", s.ret[4]);
	cr_expect_eq(s.st.bad_pgno, 5, "with the page id: %llu", (unsigned long long)s.st.bad_pgno);
	cr_expect_eq(s.ret[5], 0);
	cr_expect_eq(s.ret[6], 0);
	cr_expect_eq(s.ret[7], 0);
}

/* ---- Corrupt pages -------------------------------------------------------- */

static void body_corrupt_page(void *arg)
{
	struct ft_state *s = arg;
	struct urt_ps *ps = ft_open(s);
	int err;

	if (!ps)
		return;
	s->ret[0] = psx_write_page(ps, 7, 70);
	s->ret[1] = urt_ps_close(ps);		/* Page 7 home, log recycled. */
	s->o.create = false;
	/* Flip bytes in the middle of page 7's home copy. */
	s->ret[2] = flip_byte(s->dev, PAGE_START + 7 * 4096 + 1000);
	ps = ft_open(s);
	if (!ps)
		return;
	s->v[0] = psx_read_page(ps, 7, &err);
	s->ret[3] = err;
	urt_ps_stats(ps, &s->st);
	s->v[1] = s->st.bad_pgno;
	/* Page 8: committed (in the log, not checkpointed), then the power fails. */
	s->ret[4] = psx_write_page(ps, 8, 80);
	urt_sim_crash(s->dev, 5);
	urt_ps_close(ps);
	s->ret[5] = psx_reopen_crashed(&s->dev, &s->crashed);
	if (s->ret[5])
		return;
	/* Garbage over page 8's home (as a torn write would leave): the log repairs it. */
	s->ret[6] = scribble(s->dev, PAGE_START + 8 * 4096, 4096, 2);
	ps = ft_open(s);
	if (!ps)
		return;
	s->v[2] = psx_read_page(ps, 8, &err);
	s->ret[7] = err;
	urt_ps_stats(ps, &s->st);
	s->v[3] = s->st.recovered_pages;
	s->ret[8] = urt_ps_close(ps);
}

Test(faults, corrupt_page_reported_or_repaired)
{
	struct ft_state s = { 0 };

	ft_opts(&s);
	ft_run(&s, 13, body_corrupt_page);
	cr_expect_eq(s.ret[0], 0);
	cr_expect_eq(s.ret[1], 0);
	cr_expect_eq(s.ret[2], 0);
	cr_expect_eq(s.ret[3], URT_E_CORRUPT, "a corrupt page is an error, never data: %d", s.ret[3]);
	cr_expect_eq(s.v[1], 7, "the error names the page: %llu", (unsigned long long)s.v[1]);
	cr_expect_eq(s.ret[4], 0);
	cr_expect_eq(s.ret[5], 0);
	cr_expect_eq(s.ret[6], 0);
	cr_expect_eq(s.ret[7], 0, "repaired from the log: %d", s.ret[7]);
	cr_expect_eq(s.v[2], 80);
	cr_expect_geq(s.v[3], 1);
	cr_expect_eq(s.ret[8], 0);
}

/* ---- Superblock copies ---------------------------------------------------- */

static void body_sb_fallback(void *arg)
{
	struct ft_state *s = arg;
	struct urt_ps *ps = ft_open(s);
	int err;

	if (!ps)
		return;
	s->ret[0] = psx_write_page(ps, 9, 90);
	s->ret[1] = urt_ps_checkpoint(ps);
	s->ret[2] = psx_write_page(ps, 10, 100);
	s->ret[3] = urt_ps_close(ps);
	s->o.create = false;
	s->ret[4] = corrupt_newest_superblock(s->dev);
	ps = ft_open(s);
	if (!ps)
		return;
	s->v[0] = psx_read_page(ps, 9, &err);
	s->v[1] = psx_read_page(ps, 10, &err);
	s->ret[5] = err;
	s->ret[6] = urt_ps_close(ps);
	/* Both copies corrupt: a clear error. */
	s->ret[7] = flip_byte(s->dev, 100);
	s->ret[8] = flip_byte(s->dev, 100 + URT_SB_SLOT_SIZE);
	s->ret[9] = urt_ps_open(s->dev, &s->o, &ps);
}

Test(faults, superblock_copy_fallback)
{
	struct ft_state s = { 0 };

	ft_opts(&s);
	ft_run(&s, 14, body_sb_fallback);
	for (int i = 0; i <= 8; i++)
		cr_expect_eq(s.ret[i], 0, "step %d: %d", i, s.ret[i]);
	cr_expect_eq(s.v[0], 90, "data through the older copy");
	cr_expect_eq(s.v[1], 100);
	cr_expect_eq(s.ret[9], URT_E_CORRUPT, "both copies bad: %d", s.ret[9]);
}

/*
 * The same after heavy traffic: the log has wrapped many times, so the
 * fallback only works if the log the older copy needs was kept (format.md
 * rule W3, stricter option).
 */
static void body_sb_fallback_wrapped(void *arg)
{
	struct ft_state *s = arg;
	struct urt_ps *ps = ft_open(s);
	int err;

	if (!ps)
		return;
	for (uint64_t i = 0; i < 300; i++)
		s->ret[0] |= psx_write_page(ps, i % 40, 1 + i);
	urt_ps_stats(ps, &s->st);
	/* Power cut while running: no closing checkpoint. */
	urt_sim_crash(s->dev, 17);
	urt_ps_close(ps);
	s->ret[1] = psx_reopen_crashed(&s->dev, &s->crashed);
	if (s->ret[1])
		return;
	s->o.create = false;
	s->ret[2] = corrupt_newest_superblock(s->dev);
	ps = ft_open(s);
	if (!ps)
		return;
	for (uint64_t pg = 0; pg < 40; pg++) {
		uint64_t want = 1 + 260 + (pg + 20) % 40;	/* The last write i < 300 with i % 40 == pg. */

		uint64_t got = psx_read_page(ps, pg, &err);

		if (got != want || err) {
			if (!s->v[0]++)
				psx_failf(&s->fail, "page %llu: txid %llu, err %d (%s), want %llu",
					  (unsigned long long)pg, (unsigned long long)got, err,
					  urt_strerror(err), (unsigned long long)want);
		}
	}
	s->ret[3] = urt_ps_close(ps);
}

Test(faults, superblock_copy_fallback_after_log_wraps)
{
	struct ft_state s = { 0 };

	ft_opts(&s);
	s.o.log_bytes = 64u << 10;	/* 300 commits of 4 KiB: about 20 laps. */
	s.o.pool_pages = 48;
	s.o.checkpoint_pct = 95;	/* Late checkpoints: the log runs full between them. */
	ft_run(&s, 16, body_sb_fallback_wrapped);
	cr_expect_eq(s.ret[0], 0);
	cr_expect_gt(s.st.checkpoints, 10, "checkpoints %llu", (unsigned long long)s.st.checkpoints);
	cr_expect_eq(s.ret[1], 0);
	cr_expect_eq(s.ret[2], 0);
	cr_expect_eq(s.v[0], 0, "%llu pages wrong after falling back", (unsigned long long)s.v[0]);
	cr_expect_eq(s.ret[3], 0);
}

/* ---- Bad devices ---------------------------------------------------------- */

static void body_garbage(void *arg)
{
	struct ft_state *s = arg;
	struct urt_ps *ps;
	uint8_t *buf;

	s->o.create = false;
	s->ret[0] = scribble(s->dev, 0, 64u << 10, 6);
	s->ret[1] = urt_ps_open(s->dev, &s->o, &ps);
	/* create formats only a blank region: never over the garbage (it may be someone's data). */
	s->o.create = true;
	s->ret[6] = urt_ps_open(s->dev, &s->o, &ps);
	snprintf(s->msg6, sizeof(s->msg6), "%s", urt_last_error());
	/* A valid store of a newer format version: format overwrites the garbage. */
	s->o.format = true;
	ps = ft_open(s);
	s->o.format = false;
	if (!ps)
		return;
	s->ret[2] = urt_ps_close(ps);
	buf = urt_buf_get(URT_SB_REGION_SIZE);
	urt_read(s->dev, buf, URT_SB_REGION_SIZE, 0);
	for (int slot = 0; slot < 2; slot++) {
		uint8_t *p = buf + slot * URT_SB_SLOT_SIZE;

		urt_store_le32(p + 8, URT_FORMAT_VERSION + 1);
		urt_store_le32(p + 12, 0);
		urt_store_le32(p + 12, urt_crc32c(0, p, URT_SB_SIZE));
	}
	urt_write(s->dev, buf, URT_SB_REGION_SIZE, 0);
	urt_buf_put(buf);
	s->o.create = false;
	s->ret[3] = urt_ps_open(s->dev, &s->o, &ps);
	/* A region smaller than the store: truncated. */
	s->o.format = true;
	s->o.create = true;
	ps = ft_open(s);
	if (!ps)
		return;
	s->ret[4] = urt_ps_close(ps);
	s->o.format = false;
	s->o.create = false;
	s->o.region_bytes = 4u << 20;
	s->ret[5] = urt_ps_open(s->dev, &s->o, &ps);
}

Test(faults, garbage_newer_and_truncated_devices)
{
	struct ft_state s = { 0 };

	ft_opts(&s);
	ft_run(&s, 15, body_garbage);
	cr_expect_eq(s.ret[0], 0);
	cr_expect_eq(s.ret[1], URT_E_BADFORMAT, "garbage: %d", s.ret[1]);
	cr_expect_eq(s.ret[6], URT_E_BADFORMAT, "create over garbage: %d", s.ret[6]);
	cr_expect_not_null(strstr(s.msg6, "not formatting over it"), "create over garbage: %s", s.msg6);
	cr_expect_eq(s.ret[2], 0);
	cr_expect_eq(s.ret[3], URT_E_VERSION, "newer version: %d", s.ret[3]);
	cr_expect_eq(s.ret[4], 0);
	cr_expect_eq(s.ret[5], URT_E_BADFORMAT, "truncated: %d", s.ret[5]);
}

/* A real file cut short after format. */
static void body_truncated_file(void *arg)
{
	struct ft_state *s = arg;
	struct urt_ps *ps = ft_open(s);

	if (ps)
		s->ret[0] = urt_ps_close(ps);
}

static void body_reopen(void *arg)
{
	struct ft_state *s = arg;
	struct urt_ps *ps;

	s->o.create = false;
	s->ret[1] = urt_ps_open(s->dev, &s->o, &ps);
}

Test(faults, truncated_file)
{
	struct urt_rt *rt = psx_start();
	struct ft_state s = { 0 };
	char path[] = "/tmp/urt-ps-trunc-XXXXXX";
	struct urt_dev_opts d;
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 8 << 20), 0);
	ft_opts(&s);
	urt_dev_opts_default(&d);
	cr_assert_eq(urt_dev_open(path, &d, &s.dev), 0, "%s", urt_last_error());
	psx_run(rt, body_truncated_file, &s);
	urt_dev_close(s.dev);
	cr_assert_eq(ftruncate(fd, 4 << 20), 0);
	close(fd);
	cr_assert_eq(urt_dev_open(path, &d, &s.dev), 0);
	psx_run(rt, body_reopen, &s);
	urt_dev_close(s.dev);
	urt_rt_stop(rt);
	unlink(path);
	cr_assert_eq(s.fail.failed, 0, "%s", s.fail.msg);
	cr_expect_eq(s.ret[0], 0);
	cr_expect_eq(s.ret[1], URT_E_BADFORMAT, "truncated file: %d (%s)", s.ret[1], urt_last_error());
}
