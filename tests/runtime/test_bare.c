/*
 * Bare ops (design notes in src/runtime/io.c and src/runtime/req.c): an op
 * with no deadline and no fault injection, a NOP or a whole READ/WRITE on
 * the main ring, takes no request while all goes well, and gets one
 * (req_from_bare) the moment anything else happens: a short transfer, an
 * end of file, urt_io_cancel, a full SQ, the stop's cancel-all.
 *
 * Each test checks that the op went bare where it should (io_is_bare right
 * after urt_io_submit, before the fiber yields), that every op is answered
 * exactly once with the right result and the right bytes, that the
 * counters move by exactly the number of ops, and that the core's count of
 * ops in flight (ops_live, which counts bare ops and requests alike) is
 * back to 0 afterwards.
 */
#include <fcntl.h>
#include <stdatomic.h>

#include "fixture.h"
#include "runtime/core.h"

#define BLK 4096
#define NBLK 32

/* Write fx_pattern(seed) at [off, off + len) of path from the test's thread, durably. */
static void bare_fill(const char *path, uint64_t seed, uint64_t off, size_t len)
{
	uint8_t *p = malloc(len);
	int fd = open(path, O_WRONLY);

	cr_assert_not_null(p);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	for (size_t i = 0; i < len; i++)
		p[i] = fx_pattern(seed, off + i);
	cr_assert_eq(pwrite(fd, p, len, (off_t)off), (ssize_t)len);
	cr_assert_eq(fsync(fd), 0);
	close(fd);
	free(p);
}

/* Record a failure unless p[0..len) is fx_pattern(seed) from device offset off. */
static void bare_check_bytes(struct tests_fail *f, const uint8_t *p, size_t len, uint64_t seed, uint64_t off,
			     const char *what)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] != fx_pattern(seed, off + i)) {
			tests_failf(f, "%s: byte %zu (offset %llu) is %#x, wrote %#x", what, i,
				    (unsigned long long)(off + i), p[i], fx_pattern(seed, off + i));
			return;
		}
	}
}

/* Callbacks counted per op: slot i is io - base. */
struct bare_ops {
	struct urt_io io[64];	/* The ops. */
	int calls[64];		/* Callbacks per op. */
	int res[64];		/* Last result per op. */
	int done;		/* Callbacks in all. */
};

static void bare_ops_cb(struct urt_io *io, int res, void *arg)
{
	struct bare_ops *b = arg;
	int i = (int)(io - b->io);

	b->calls[i]++;
	b->res[i] = res;
	b->done++;
}

/* Wait in the fiber until n callbacks have run in all. */
static void bare_ops_wait(struct bare_ops *b, int n)
{
	while (b->done < n)
		urt_fiber_yield();
}

/* Submit io, note whether it went bare, wait for its one callback; its result. */
struct bare_one {
	int calls;	/* Callbacks so far. */
	int res;	/* Their last result. */
};

static void bare_one_cb(struct urt_io *io, int res, void *arg)
{
	struct bare_one *o = arg;

	(void)io;
	o->calls++;
	o->res = res;
}

static int bare_do(struct urt_io *io, bool *was_bare, int *calls)
{
	struct bare_one o = { 0 };
	int ret = urt_io_submit(io, bare_one_cb, &o);

	if (ret)
		return ret;
	*was_bare = io_is_bare(io);
	while (o.calls == 0)
		urt_fiber_yield();
	/* A second callback would come from the same CQE batch or a later one. */
	urt_fiber_yield();
	*calls = o.calls;
	return o.res;
}

/* Counter deltas between two urt_rt_stats snapshots. */
struct bare_delta {
	uint64_t submitted, completed, retried, failed, lat_count;
};

static struct bare_delta bare_diff(const struct urt_stats *a, const struct urt_stats *b)
{
	return (struct bare_delta){
		.submitted = b->submitted - a->submitted,
		.completed = b->completed - a->completed,
		.retried = b->retried - a->retried,
		.failed = b->failed - a->failed,
		.lat_count = b->lat.count - a->lat.count,
	};
}

static void bare_expect_delta(const struct bare_delta *d, uint64_t ops, uint64_t retried, const char *what)
{
	cr_expect_eq(d->submitted, ops, "%s: submitted moved by %llu, expected %llu", what,
		     (unsigned long long)d->submitted, (unsigned long long)ops);
	cr_expect_eq(d->completed, ops, "%s: completed moved by %llu, expected %llu", what,
		     (unsigned long long)d->completed, (unsigned long long)ops);
	cr_expect_eq(d->lat_count, ops, "%s: latency histogram moved by %llu, expected %llu", what,
		     (unsigned long long)d->lat_count, (unsigned long long)ops);
	cr_expect_eq(d->retried, retried, "%s: retried moved by %llu, expected %llu", what,
		     (unsigned long long)d->retried, (unsigned long long)retried);
	cr_expect_eq(d->failed, 0, "%s: failed moved by %llu", what, (unsigned long long)d->failed);
}

/*
 * Full writes then full reads, NBLK of each in flight at once, on a direct
 * or buffered file: all bare, all answered once with the full length.
 */
struct rw_state {
	struct urt_dev *dev;
	bool direct;
	struct bare_ops w, r;
	int bare_w, bare_r;		/* Ops that went bare at submission. */
	int submit_err;			/* First failed urt_io_submit. */
	unsigned live_before, live_after; /* ops_live around the test. */
	struct bare_delta dw, dr;	/* Counter deltas of the writes and of the reads. */
	struct tests_fail fail;
};

static void rw_fiber(void *p)
{
	struct rw_state *s = p;
	struct urt_rt *rt = urt_rt_self();
	size_t bytes = (size_t)NBLK * BLK;
	uint8_t *wbuf = s->direct ? urt_buf_get(bytes) : malloc(bytes);
	uint8_t *rbuf = s->direct ? urt_buf_get(bytes) : malloc(bytes);
	struct urt_stats s0, s1, s2;
	int ret;

	if (!wbuf || !rbuf) {
		tests_failf(&s->fail, "no buffers");
		return;
	}
	s->live_before = core_self()->ops_live;
	for (size_t i = 0; i < bytes; i++)
		wbuf[i] = fx_pattern(41, i);
	memset(rbuf, 0, bytes);
	urt_rt_stats(rt, 0, &s0);
	for (int i = 0; i < NBLK; i++) {
		urt_io_prep_write(&s->w.io[i], s->dev, wbuf + (size_t)i * BLK, BLK, (uint64_t)i * BLK);
		ret = urt_io_submit(&s->w.io[i], bare_ops_cb, &s->w);
		if (ret && !s->submit_err)
			s->submit_err = ret;
		s->bare_w += !ret && io_is_bare(&s->w.io[i]);
	}
	bare_ops_wait(&s->w, NBLK);
	urt_rt_stats(rt, 0, &s1);
	for (int i = 0; i < NBLK; i++) {
		urt_io_prep_read(&s->r.io[i], s->dev, rbuf + (size_t)i * BLK, BLK, (uint64_t)i * BLK);
		ret = urt_io_submit(&s->r.io[i], bare_ops_cb, &s->r);
		if (ret && !s->submit_err)
			s->submit_err = ret;
		s->bare_r += !ret && io_is_bare(&s->r.io[i]);
	}
	bare_ops_wait(&s->r, NBLK);
	urt_rt_stats(rt, 0, &s2);
	/* Room for a stray second callback (the sleep is an op of its own, so after the stats). */
	urt_sleep_ns(1000000);
	s->dw = bare_diff(&s0, &s1);
	s->dr = bare_diff(&s1, &s2);
	bare_check_bytes(&s->fail, rbuf, bytes, 41, 0, "read back");
	s->live_after = core_self()->ops_live;
	if (s->direct) {
		urt_buf_put(wbuf);
		urt_buf_put(rbuf);
	} else {
		free(wbuf);
		free(rbuf);
	}
}

static void rw_run(bool direct)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct fx_file f;
	struct rw_state *s = calloc(1, sizeof(*s));
	uint8_t *disk = malloc((size_t)NBLK * BLK);
	struct tests_fail ff = { 0 };
	int fd;

	cr_assert_not_null(s);
	cr_assert_not_null(disk);
	fx_opts_cpu0(&o);
	rt = fx_start(&o);
	fx_file_open(&f, (uint64_t)NBLK * BLK, direct);
	s->dev = f.dev;
	s->direct = direct;
	fx_run(rt, 0, rw_fiber, s);
	/* The file itself, read outside the runtime, holds what was written. */
	fd = open(f.path, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, disk, (size_t)NBLK * BLK, 0), (ssize_t)NBLK * BLK);
	close(fd);
	bare_check_bytes(&ff, disk, (size_t)NBLK * BLK, 41, 0, "file contents");
	fx_file_close(&f);
	urt_rt_stop(rt);

	cr_assert_eq(s->fail.failed, 0, "%s", s->fail.msg);
	cr_assert_eq(ff.failed, 0, "%s", ff.msg);
	cr_expect_eq(s->submit_err, 0, "urt_io_submit: %d", s->submit_err);
	cr_expect_eq(s->bare_w, NBLK, "%d of %d writes went bare", s->bare_w, NBLK);
	cr_expect_eq(s->bare_r, NBLK, "%d of %d reads went bare", s->bare_r, NBLK);
	for (int i = 0; i < NBLK; i++) {
		cr_expect_eq(s->w.calls[i], 1, "write %d answered %d times", i, s->w.calls[i]);
		cr_expect_eq(s->w.res[i], BLK, "write %d: %d", i, s->w.res[i]);
		cr_expect_eq(s->w.io[i].res, BLK, "write %d: io->res %d", i, s->w.io[i].res);
		cr_expect_eq(s->r.calls[i], 1, "read %d answered %d times", i, s->r.calls[i]);
		cr_expect_eq(s->r.res[i], BLK, "read %d: %d", i, s->r.res[i]);
		cr_expect_eq(s->r.io[i].res, BLK, "read %d: io->res %d", i, s->r.io[i].res);
	}
	bare_expect_delta(&s->dw, NBLK, 0, "writes");
	bare_expect_delta(&s->dr, NBLK, 0, "reads");
	cr_expect_eq(s->live_before, 0, "ops_live %u before", s->live_before);
	cr_expect_eq(s->live_after, 0, "ops_live %u after", s->live_after);
	free(disk);
	free(s);
}

Test(bare, full_read_write_direct)
{
	rw_run(true);
}

Test(bare, full_read_write_buffered)
{
	rw_run(false);
}

/*
 * A buffered 6000-byte file: a 4096-byte read at 4096 starts bare, comes
 * back short (1904), takes a request whose resubmission of the rest finds
 * the end of file, and is answered 1904 once.  Reads at and past the end
 * return 0.
 */
#define EOF_SIZE 6000

struct eof_state {
	struct urt_dev *dev;
	int res[4];		/* Results of the four reads. */
	int calls[4];		/* Their callback counts. */
	bool bare[4];		/* Whether each went bare at submission. */
	uint8_t buf[4][BLK];	/* What each read into (0xee before). */
	struct bare_delta d;
	unsigned live_after;
};

static void eof_fiber(void *p)
{
	struct eof_state *s = p;
	static const uint64_t offs[4] = { 0, BLK, 2 * BLK, EOF_SIZE };
	struct urt_stats s0, s1;
	struct urt_io io;

	memset(s->buf, 0xee, sizeof(s->buf));
	urt_rt_stats(urt_rt_self(), 0, &s0);
	for (int i = 0; i < 4; i++) {
		urt_io_prep_read(&io, s->dev, s->buf[i], BLK, offs[i]);
		s->res[i] = bare_do(&io, &s->bare[i], &s->calls[i]);
	}
	urt_rt_stats(urt_rt_self(), 0, &s1);
	s->d = bare_diff(&s0, &s1);
	s->live_after = core_self()->ops_live;
}

Test(bare, short_read_at_eof)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct fx_file f;
	struct eof_state *s = calloc(1, sizeof(*s));
	struct tests_fail ff = { 0 };

	cr_assert_not_null(s);
	fx_opts_cpu0(&o);
	rt = fx_start(&o);
	fx_file_open(&f, EOF_SIZE, false);
	bare_fill(f.path, 57, 0, EOF_SIZE);
	s->dev = f.dev;
	fx_run(rt, 0, eof_fiber, s);
	fx_file_close(&f);
	urt_rt_stop(rt);

	for (int i = 0; i < 4; i++) {
		cr_expect(s->bare[i], "read %d did not go bare", i);
		cr_expect_eq(s->calls[i], 1, "read %d answered %d times", i, s->calls[i]);
	}
	cr_expect_eq(s->res[0], BLK, "full read: %d", s->res[0]);
	cr_expect_eq(s->res[1], EOF_SIZE - BLK, "short read at the end of file: %d, expected %d", s->res[1],
		     EOF_SIZE - BLK);
	cr_expect_eq(s->res[2], 0, "read past the end of file: %d", s->res[2]);
	cr_expect_eq(s->res[3], 0, "read at the end of file: %d", s->res[3]);
	bare_check_bytes(&ff, s->buf[0], BLK, 57, 0, "first block");
	bare_check_bytes(&ff, s->buf[1], EOF_SIZE - BLK, 57, BLK, "short read");
	cr_assert_eq(ff.failed, 0, "%s", ff.msg);
	/* Nothing was written past what the file holds. */
	for (int i = EOF_SIZE - BLK; i < BLK; i++)
		cr_assert_eq(s->buf[1][i], 0xee, "short read wrote byte %d past the end of file", i);
	for (int i = 0; i < BLK; i++) {
		cr_assert_eq(s->buf[2][i], 0xee, "read past the end wrote byte %d", i);
		cr_assert_eq(s->buf[3][i], 0xee, "read at the end wrote byte %d", i);
	}
	/* The short read resumes its remainder once, and finds the end of file. */
	bare_expect_delta(&s->d, 4, 1, "reads at the end of file");
	cr_expect_eq(s->live_after, 0, "ops_live %u", s->live_after);
	free(s);
}

/* A FUA write of 100 bytes inside a block of a buffered file, at an odd offset. */
#define FUA_OFF (3 * BLK + 13)
#define FUA_LEN 100

struct fua_state {
	struct urt_dev *dev;
	int res, calls, read_res, read_calls, plain_res, plain_calls;
	bool bare, read_bare, plain_bare;
	uint8_t src[FUA_LEN];
	uint8_t back[BLK];
	struct bare_delta d;
	unsigned live_after;
};

static void fua_fiber(void *p)
{
	struct fua_state *s = p;
	struct urt_stats s0, s1;
	struct urt_io io;
	uint8_t one = 0x5a;

	for (int i = 0; i < FUA_LEN; i++)
		s->src[i] = fx_pattern(71, FUA_OFF + (uint64_t)i);
	urt_rt_stats(urt_rt_self(), 0, &s0);
	urt_io_prep_write(&io, s->dev, s->src, FUA_LEN, FUA_OFF);
	io.flags |= URT_IO_FUA;
	s->res = bare_do(&io, &s->bare, &s->calls);
	urt_io_prep_read(&io, s->dev, s->back, BLK, 3 * BLK);
	s->read_res = bare_do(&io, &s->read_bare, &s->read_calls);
	/* The device took no sticky error: a plain write after it works. */
	urt_io_prep_write(&io, s->dev, &one, 1, 0);
	s->plain_res = bare_do(&io, &s->plain_bare, &s->plain_calls);
	urt_rt_stats(urt_rt_self(), 0, &s1);
	s->d = bare_diff(&s0, &s1);
	s->live_after = core_self()->ops_live;
}

Test(bare, fua_partial_block)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct fx_file f;
	struct fua_state *s = calloc(1, sizeof(*s));
	uint8_t disk[4 * BLK];
	struct tests_fail ff = { 0 };
	int fd;

	cr_assert_not_null(s);
	fx_opts_cpu0(&o);
	rt = fx_start(&o);
	fx_file_open(&f, 4 * BLK, false);
	s->dev = f.dev;
	fx_run(rt, 0, fua_fiber, s);
	fd = open(f.path, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, disk, sizeof(disk), 0), (ssize_t)sizeof(disk));
	close(fd);
	fx_file_close(&f);
	urt_rt_stop(rt);

	cr_expect(s->bare, "the FUA write did not go bare");
	cr_expect_eq(s->calls, 1, "FUA write answered %d times", s->calls);
	cr_expect_eq(s->res, FUA_LEN, "FUA write: %d", s->res);
	cr_expect_eq(s->read_calls, 1);
	cr_expect_eq(s->read_res, BLK, "read back: %d", s->read_res);
	cr_expect_eq(s->plain_calls, 1);
	cr_expect_eq(s->plain_res, 1, "plain write after the FUA write: %d", s->plain_res);
	/* Read back through the runtime: the 100 bytes in place, zeros around them. */
	bare_check_bytes(&ff, s->back + (FUA_OFF - 3 * BLK), FUA_LEN, 71, FUA_OFF, "FUA bytes read back");
	cr_assert_eq(ff.failed, 0, "%s", ff.msg);
	for (int i = 0; i < BLK; i++)
		if (i < FUA_OFF - 3 * BLK || i >= FUA_OFF - 3 * BLK + FUA_LEN)
			cr_assert_eq(s->back[i], 0, "byte %d of the block is %#x, expected 0", i, s->back[i]);
	/* And in the file itself. */
	bare_check_bytes(&ff, disk + FUA_OFF, FUA_LEN, 71, FUA_OFF, "FUA bytes in the file");
	cr_assert_eq(ff.failed, 0, "%s", ff.msg);
	cr_expect_eq(disk[0], 0x5a);
	for (int i = 1; i < (int)sizeof(disk); i++)
		if (i < FUA_OFF || i >= FUA_OFF + FUA_LEN)
			cr_assert_eq(disk[i], 0, "file byte %d is %#x, expected 0", i, disk[i]);
	bare_expect_delta(&s->d, 3, 0, "FUA write, read, write");
	cr_expect_eq(s->live_after, 0, "ops_live %u", s->live_after);
	free(s);
}

/*
 * urt_io_cancel of bare NOPs: one at a time (ROUNDS), then a batch with
 * every other one cancelled.  Cancelling turns the op into a request; the
 * callback runs once, with 0 or -ECANCELED; a second cancel finds nothing.
 */
#define ROUNDS 64
#define BATCH 32

struct nop_state {
	struct bare_ops one;		/* io[0] reused ROUNDS times. */
	int round_calls[ROUNDS];	/* Callbacks seen per round, after a grace period. */
	int round_res[ROUNDS];
	int cancel_ret[ROUNDS], recancel_ret[ROUNDS];
	bool bare_before[ROUNDS], bare_after[ROUNDS];
	struct bare_ops batch;
	int batch_cancel_ret[BATCH], batch_recancel_ret[BATCH];
	bool batch_bare[BATCH];
	int submit_err;
	int sleeps;			/* urt_sleep_ns calls between the two stats. */
	struct bare_delta d;
	unsigned live_after;
};

static void nop_fiber(void *p)
{
	struct nop_state *s = p;
	struct urt_stats s0, s1;
	int ret;

	urt_rt_stats(urt_rt_self(), 0, &s0);
	for (int r = 0; r < ROUNDS; r++) {
		struct urt_io *io = &s->one.io[0];
		int before = s->one.done;

		urt_io_prep_nop(io);
		ret = urt_io_submit(io, bare_ops_cb, &s->one);
		if (ret && !s->submit_err)
			s->submit_err = ret;
		s->bare_before[r] = io_is_bare(io);
		s->cancel_ret[r] = urt_io_cancel(io);
		s->bare_after[r] = io_is_bare(io);
		bare_ops_wait(&s->one, before + 1);
		s->round_res[r] = s->one.res[0];
		s->recancel_ret[r] = urt_io_cancel(io);
		/*
		 * Odd rounds wait long enough for a stray second answer to
		 * show; the sleep is an op too, counted in the stats.
		 */
		if (r % 2) {
			urt_sleep_ns(200000);
			s->sleeps++;
		} else {
			urt_fiber_yield();
		}
		s->round_calls[r] = s->one.done - before;
	}
	for (int i = 0; i < BATCH; i++) {
		urt_io_prep_nop(&s->batch.io[i]);
		ret = urt_io_submit(&s->batch.io[i], bare_ops_cb, &s->batch);
		if (ret && !s->submit_err)
			s->submit_err = ret;
		s->batch_bare[i] = io_is_bare(&s->batch.io[i]);
		if (i % 2)
			s->batch_cancel_ret[i] = urt_io_cancel(&s->batch.io[i]);
	}
	bare_ops_wait(&s->batch, BATCH);
	for (int i = 0; i < BATCH; i++)
		s->batch_recancel_ret[i] = urt_io_cancel(&s->batch.io[i]);
	urt_rt_stats(urt_rt_self(), 0, &s1);
	urt_sleep_ns(1000000);
	s->d = bare_diff(&s0, &s1);
	s->live_after = core_self()->ops_live;
}

Test(bare, cancel_nop)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct nop_state *s = calloc(1, sizeof(*s));

	cr_assert_not_null(s);
	fx_opts_cpu0(&o);
	rt = fx_start(&o);
	fx_run(rt, 0, nop_fiber, s);
	urt_rt_stop(rt);

	cr_expect_eq(s->submit_err, 0, "urt_io_submit: %d", s->submit_err);
	for (int r = 0; r < ROUNDS; r++) {
		cr_expect(s->bare_before[r], "round %d: the NOP did not go bare", r);
		cr_expect_eq(s->cancel_ret[r], 0, "round %d: cancel %d", r, s->cancel_ret[r]);
		cr_expect(!s->bare_after[r], "round %d: cancel left the op bare (no request)", r);
		cr_expect_eq(s->round_calls[r], 1, "round %d: answered %d times", r, s->round_calls[r]);
		cr_expect(s->round_res[r] == 0 || s->round_res[r] == -ECANCELED, "round %d: result %d", r,
			  s->round_res[r]);
		cr_expect_eq(s->recancel_ret[r], -ENOENT, "round %d: cancel after delivery %d", r,
			     s->recancel_ret[r]);
	}
	cr_expect_eq(s->one.done, ROUNDS, "%d callbacks for %d NOPs", s->one.done, ROUNDS);
	for (int i = 0; i < BATCH; i++) {
		cr_expect(s->batch_bare[i], "batch NOP %d did not go bare", i);
		cr_expect_eq(s->batch.calls[i], 1, "batch NOP %d answered %d times", i, s->batch.calls[i]);
		if (i % 2) {
			cr_expect_eq(s->batch_cancel_ret[i], 0, "batch cancel %d: %d", i, s->batch_cancel_ret[i]);
			cr_expect(s->batch.res[i] == 0 || s->batch.res[i] == -ECANCELED, "batch NOP %d: %d", i,
				  s->batch.res[i]);
		} else {
			cr_expect_eq(s->batch.res[i], 0, "uncancelled NOP %d: %d", i, s->batch.res[i]);
		}
		cr_expect_eq(s->batch_recancel_ret[i], -ENOENT, "batch NOP %d: cancel after delivery %d", i,
			     s->batch_recancel_ret[i]);
	}
	cr_expect_eq(s->d.submitted, (uint64_t)(ROUNDS + BATCH + s->sleeps), "submitted moved by %llu",
		     (unsigned long long)s->d.submitted);
	cr_expect_eq(s->d.completed, (uint64_t)(ROUNDS + BATCH + s->sleeps), "completed moved by %llu",
		     (unsigned long long)s->d.completed);
	cr_expect_eq(s->live_after, 0, "ops_live %u after the cancels", s->live_after);
	free(s);
}

/*
 * urt_io_cancel of bare O_DIRECT reads in flight: 16 reads of written
 * blocks 1 MiB apart, every other one cancelled right after submission.
 * Each is answered once; a read that was not cancelled, or whose cancel
 * came too late, returns the block's bytes.
 */
#define DREADS 16
#define DSTRIDE (1u << 20)

struct dcancel_state {
	struct urt_dev *dev;
	struct bare_ops ops;
	uint8_t *buf;
	bool bare[DREADS], bare_after[DREADS];
	int cancel_ret[DREADS], recancel_ret[DREADS];
	int submit_err;
	struct bare_delta d;
	unsigned live_after;
	struct tests_fail fail;
};

static void dcancel_fiber(void *p)
{
	struct dcancel_state *s = p;
	struct urt_stats s0, s1;
	int ret;

	s->buf = urt_buf_get(DREADS * BLK);
	if (!s->buf) {
		tests_failf(&s->fail, "urt_buf_get failed");
		return;
	}
	memset(s->buf, 0xee, DREADS * BLK);
	urt_rt_stats(urt_rt_self(), 0, &s0);
	for (int i = 0; i < DREADS; i++) {
		struct urt_io *io = &s->ops.io[i];

		urt_io_prep_read(io, s->dev, s->buf + i * BLK, BLK, (uint64_t)i * DSTRIDE);
		ret = urt_io_submit(io, bare_ops_cb, &s->ops);
		if (ret && !s->submit_err)
			s->submit_err = ret;
		s->bare[i] = io_is_bare(io);
		if (i % 2) {
			s->cancel_ret[i] = urt_io_cancel(io);
			s->bare_after[i] = io_is_bare(io);
		}
	}
	bare_ops_wait(&s->ops, DREADS);
	for (int i = 0; i < DREADS; i++)
		s->recancel_ret[i] = urt_io_cancel(&s->ops.io[i]);
	urt_rt_stats(urt_rt_self(), 0, &s1);
	/* Room for a stray second callback (the sleep is an op of its own, so after the stats). */
	urt_sleep_ns(5000000);
	s->d = bare_diff(&s0, &s1);
	s->live_after = core_self()->ops_live;
	for (int i = 0; i < DREADS; i++) {
		char what[32];

		if (s->ops.res[i] != BLK)
			continue;
		snprintf(what, sizeof(what), "read %d", i);
		bare_check_bytes(&s->fail, s->buf + i * BLK, BLK, 83, (uint64_t)i * DSTRIDE, what);
	}
	urt_buf_put(s->buf);
}

Test(bare, cancel_direct_read)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct fx_file f;
	struct dcancel_state *s = calloc(1, sizeof(*s));
	int cancelled = 0;

	cr_assert_not_null(s);
	fx_opts_cpu0(&o);
	rt = fx_start(&o);
	fx_file_open(&f, (uint64_t)DREADS * DSTRIDE, true);
	for (int i = 0; i < DREADS; i++)
		bare_fill(f.path, 83, (uint64_t)i * DSTRIDE, BLK);
	s->dev = f.dev;
	fx_run(rt, 0, dcancel_fiber, s);
	fx_file_close(&f);
	urt_rt_stop(rt);

	cr_assert_eq(s->fail.failed, 0, "%s", s->fail.msg);
	cr_expect_eq(s->submit_err, 0, "urt_io_submit: %d", s->submit_err);
	for (int i = 0; i < DREADS; i++) {
		cr_expect(s->bare[i], "read %d did not go bare", i);
		cr_expect_eq(s->ops.calls[i], 1, "read %d answered %d times", i, s->ops.calls[i]);
		cr_expect_eq(s->recancel_ret[i], -ENOENT, "read %d: cancel after delivery %d", i, s->recancel_ret[i]);
		if (i % 2) {
			cr_expect_eq(s->cancel_ret[i], 0, "cancel %d: %d", i, s->cancel_ret[i]);
			cr_expect(!s->bare_after[i], "read %d: cancel left the op bare", i);
			cr_expect(s->ops.res[i] == BLK || s->ops.res[i] == -ECANCELED, "cancelled read %d: %d", i,
				  s->ops.res[i]);
			cancelled += s->ops.res[i] == -ECANCELED;
		} else {
			cr_expect_eq(s->ops.res[i], BLK, "uncancelled read %d: %d", i, s->ops.res[i]);
		}
	}
	cr_expect_eq(s->ops.done, DREADS, "%d callbacks for %d reads", s->ops.done, DREADS);
	cr_expect_eq(s->d.submitted, DREADS);
	cr_expect_eq(s->d.completed, DREADS);
	cr_expect_eq(s->d.lat_count, DREADS);
	cr_expect_eq(s->d.failed, (uint64_t)cancelled, "failed moved by %llu, %d reads were cancelled",
		     (unsigned long long)s->d.failed, cancelled);
	cr_expect_eq(s->live_after, 0, "ops_live %u after the cancels", s->live_after);
	cr_log_info("%d of %d cancelled reads answered -ECANCELED", cancelled, DREADS / 2);
	free(s);
}

/*
 * req_max 32 and an 8-entry SQ: NOPs, then O_DIRECT reads, 32 at once and
 * more.  The first go bare; once the SQ is full the rest take requests
 * (B2); past req_max urt_io_submit says -EAGAIN and never calls back.
 * Every accepted op is answered once, reads with their block's bytes.
 */
#define LIM_REQ 32
#define LIM_TRY 40

struct lim_state {
	struct urt_dev *dev;
	struct bare_ops nop, rd;
	int nop_ret[LIM_TRY], rd_ret[LIM_TRY];
	int nop_bare, rd_bare;		/* Accepted ops that went bare. */
	unsigned live_full, live_after;	/* ops_live with everything submitted, and at the end. */
	struct bare_delta d;
	struct tests_fail fail;
};

static void lim_fiber(void *p)
{
	struct lim_state *s = p;
	struct urt_stats s0, s1;
	uint8_t *buf = urt_buf_get(LIM_TRY * BLK);

	if (!buf) {
		tests_failf(&s->fail, "urt_buf_get failed");
		return;
	}
	urt_rt_stats(urt_rt_self(), 0, &s0);
	for (int i = 0; i < LIM_TRY; i++) {
		urt_io_prep_nop(&s->nop.io[i]);
		s->nop_ret[i] = urt_io_submit(&s->nop.io[i], bare_ops_cb, &s->nop);
		s->nop_bare += s->nop_ret[i] == 0 && io_is_bare(&s->nop.io[i]);
	}
	s->live_full = core_self()->ops_live;
	bare_ops_wait(&s->nop, LIM_REQ);
	memset(buf, 0xee, LIM_TRY * BLK);
	for (int i = 0; i < LIM_TRY; i++) {
		urt_io_prep_read(&s->rd.io[i], s->dev, buf + i * BLK, BLK, (uint64_t)i * BLK);
		s->rd_ret[i] = urt_io_submit(&s->rd.io[i], bare_ops_cb, &s->rd);
		s->rd_bare += s->rd_ret[i] == 0 && io_is_bare(&s->rd.io[i]);
	}
	bare_ops_wait(&s->rd, LIM_REQ);
	urt_rt_stats(urt_rt_self(), 0, &s1);
	/* Room for a stray callback (the sleep is an op of its own, so after the stats). */
	urt_sleep_ns(1000000);
	s->d = bare_diff(&s0, &s1);
	s->live_after = core_self()->ops_live;
	bare_check_bytes(&s->fail, buf, LIM_REQ * BLK, 97, 0, "reads at req_max");
	for (int i = LIM_REQ * BLK; i < LIM_TRY * BLK; i++)
		if (buf[i] != 0xee) {
			tests_failf(&s->fail, "a refused read wrote byte %d", i);
			break;
		}
	urt_buf_put(buf);
}

Test(bare, req_max_with_full_sq)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct fx_file f;
	struct lim_state *s = calloc(1, sizeof(*s));

	cr_assert_not_null(s);
	fx_opts_cpu0(&o);
	o.req_max = LIM_REQ;
	o.sq_entries = 8;
	rt = fx_start(&o);
	fx_file_open(&f, (uint64_t)LIM_TRY * BLK, true);
	bare_fill(f.path, 97, 0, (size_t)LIM_TRY * BLK);
	s->dev = f.dev;
	fx_run(rt, 0, lim_fiber, s);
	fx_file_close(&f);
	urt_rt_stop(rt);

	cr_assert_eq(s->fail.failed, 0, "%s", s->fail.msg);
	for (int i = 0; i < LIM_TRY; i++) {
		int want = i < LIM_REQ ? 0 : -EAGAIN;

		cr_expect_eq(s->nop_ret[i], want, "NOP %d: submit %d, expected %d", i, s->nop_ret[i], want);
		cr_expect_eq(s->rd_ret[i], want, "read %d: submit %d, expected %d", i, s->rd_ret[i], want);
		cr_expect_eq(s->nop.calls[i], i < LIM_REQ, "NOP %d answered %d times", i, s->nop.calls[i]);
		cr_expect_eq(s->rd.calls[i], i < LIM_REQ, "read %d answered %d times", i, s->rd.calls[i]);
		if (i < LIM_REQ) {
			cr_expect_eq(s->nop.res[i], 0, "NOP %d: %d", i, s->nop.res[i]);
			cr_expect_eq(s->rd.res[i], BLK, "read %d: %d", i, s->rd.res[i]);
		}
	}
	/* Both paths ran: some ops bare, the rest (SQ full) with requests. */
	cr_expect(s->nop_bare > 0 && s->nop_bare < LIM_REQ, "%d of %d NOPs went bare", s->nop_bare, LIM_REQ);
	cr_expect(s->rd_bare > 0 && s->rd_bare < LIM_REQ, "%d of %d reads went bare", s->rd_bare, LIM_REQ);
	cr_expect_eq(s->live_full, LIM_REQ, "ops_live %u with req_max ops submitted", s->live_full);
	bare_expect_delta(&s->d, 2 * LIM_REQ, 0, "ops at req_max");
	cr_expect_eq(s->live_after, 0, "ops_live %u after", s->live_after);
	free(s);
}

/*
 * urt_rt_stop while SPIN O_DIRECT reads keep themselves in flight, each
 * resubmitted from its own callback until urt_io_submit says -ESHUTDOWN.
 * Every accepted read is answered exactly once (by its data or
 * -ECANCELED), every chain ends on -ESHUTDOWN, and under ASan nothing
 * leaks.
 */
#define SPIN 64
#define SPIN_BLOCKS 16

struct spin_state {
	struct urt_dev *dev;
	struct urt_io io[SPIN];
	uint64_t off[SPIN];		/* Offset of each slot's current read. */
	uint8_t *buf;			/* SPIN blocks, one per slot. */
	_Atomic int accepted[SPIN];	/* urt_io_submit calls that returned 0. */
	_Atomic int calls[SPIN];	/* Callbacks. */
	_Atomic int last_ret[SPIN];	/* The last urt_io_submit's result. */
	_Atomic int bare_at_start;	/* First reads that went bare. */
	_Atomic int total;		/* Callbacks in all. */
	_Atomic int cancelled;		/* Callbacks with -ECANCELED. */
	_Atomic int bad_res;		/* Callbacks with another result than BLK or -ECANCELED. */
	_Atomic int last_bad;		/* The last such result. */
	_Atomic int bad_data;		/* Reads of BLK whose bytes were wrong. */
	sem_t started;
};

static void spin_cb(struct urt_io *io, int res, void *arg);

static void spin_submit(struct spin_state *s, int i, uint64_t off)
{
	int ret;

	s->off[i] = off;
	urt_io_prep_read(&s->io[i], s->dev, s->buf + i * BLK, BLK, off);
	ret = urt_io_submit(&s->io[i], spin_cb, s);
	atomic_store(&s->last_ret[i], ret);
	if (ret == 0)
		atomic_fetch_add(&s->accepted[i], 1);
}

static void spin_cb(struct urt_io *io, int res, void *arg)
{
	struct spin_state *s = arg;
	int i = (int)(io - s->io);
	int n = atomic_fetch_add(&s->total, 1);

	atomic_fetch_add(&s->calls[i], 1);
	if (res == -ECANCELED) {
		atomic_fetch_add(&s->cancelled, 1);
	} else if (res != BLK) {
		atomic_fetch_add(&s->bad_res, 1);
		atomic_store(&s->last_bad, res);
	} else {
		for (int k = 0; k < BLK; k++) {
			if (s->buf[i * BLK + k] != fx_pattern(101, s->off[i] + (uint64_t)k)) {
				atomic_fetch_add(&s->bad_data, 1);
				break;
			}
		}
	}
	memset(s->buf + i * BLK, 0xee, BLK);
	spin_submit(s, i, (uint64_t)((i * 7 + n) % SPIN_BLOCKS) * DSTRIDE);
}

static void spin_start(void *p)
{
	struct spin_state *s = p;

	for (int i = 0; i < SPIN; i++) {
		spin_submit(s, i, (uint64_t)(i % SPIN_BLOCKS) * DSTRIDE);
		atomic_fetch_add(&s->bare_at_start, io_is_bare(&s->io[i]));
	}
	sem_post(&s->started);
}

Test(bare, stop_with_reads_in_flight)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct fx_file f;
	struct spin_state *s = calloc(1, sizeof(*s));

	cr_assert_not_null(s);
	fx_opts_cpu0(&o);
	rt = fx_start(&o);
	fx_file_open(&f, (uint64_t)SPIN_BLOCKS * DSTRIDE, true);
	for (int i = 0; i < SPIN_BLOCKS; i++)
		bare_fill(f.path, 101, (uint64_t)i * DSTRIDE, BLK);
	s->dev = f.dev;
	s->buf = aligned_alloc(BLK, SPIN * BLK);
	cr_assert_not_null(s->buf);
	sem_init(&s->started, 0, 0);
	cr_assert_eq(urt_core_post(rt, 0, spin_start, s), 0);
	sem_wait(&s->started);
	/* Let the chains turn over a few times, so the stop finds them running. */
	while (atomic_load(&s->total) < 4 * SPIN)
		usleep(1000);
	urt_rt_stop(rt);
	fx_file_close(&f);
	sem_destroy(&s->started);

	cr_expect_eq(atomic_load(&s->bare_at_start), SPIN, "%d of %d first reads went bare",
		     atomic_load(&s->bare_at_start), SPIN);
	for (int i = 0; i < SPIN; i++) {
		int acc = atomic_load(&s->accepted[i]), calls = atomic_load(&s->calls[i]);

		cr_expect_eq(calls, acc, "slot %d: %d reads accepted, %d callbacks", i, acc, calls);
		cr_expect_eq(atomic_load(&s->last_ret[i]), -ESHUTDOWN,
			     "slot %d: its chain ended on %d, not on the stop", i, atomic_load(&s->last_ret[i]));
	}
	cr_expect_eq(atomic_load(&s->bad_res), 0, "%d callbacks with an unexpected result (last %d)",
		     atomic_load(&s->bad_res), atomic_load(&s->last_bad));
	cr_expect_eq(atomic_load(&s->bad_data), 0, "%d reads returned wrong bytes", atomic_load(&s->bad_data));
	cr_log_info("stop: %d callbacks, %d of them -ECANCELED", atomic_load(&s->total), atomic_load(&s->cancelled));
	free(s->buf);
	free(s);
}
