/*
 * urt_io_submit's fast path for READ and WRITE (src/runtime/io.c,
 * io_rw_fast): an op that passes the precomputed per-device checks
 * (dev_fast_init) skips io_validate and goes bare.  These tests check that
 * the shortcut drops no rule: every op it must not take gets the same
 * error and message as on the checked path, and the callback never runs;
 * a failed flush's sticky error (dev_set_sticky) turns the fast path off
 * for that device; and the ops it takes move the right bytes and count in
 * the SQE statistics (plain fd, registered file, registered buffer).
 */
#include <fcntl.h>

#include "fixture.h"
#include "runtime/core.h"

#define BLK 4096

static void fast_fill(const char *path, uint64_t seed, size_t len)
{
	uint8_t *p = malloc(len);
	int fd = open(path, O_WRONLY);

	cr_assert_not_null(p);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	for (size_t i = 0; i < len; i++)
		p[i] = fx_pattern(seed, i);
	cr_assert_eq(pwrite(fd, p, len, 0), (ssize_t)len);
	close(fd);
	free(p);
}

Test(io_fast, precomputed_at_open)
{
	struct fx_file d, b;
	struct urt_dev *ro;
	struct urt_dev_opts o;

	fx_file_open(&d, 1 << 20, true);
	fx_file_open(&b, 1 << 20, false);
	/* O_DIRECT: masks from the reported alignment; buffered: no masks. */
	cr_expect_eq(d.dev->mem_mask, urt_dev_info(d.dev)->mem_align - 1);
	cr_expect_eq(d.dev->off_mask, urt_dev_info(d.dev)->off_align - 1);
	cr_expect_gt(d.dev->off_mask, 0);
	cr_expect_eq(b.dev->mem_mask, 0);
	cr_expect_eq(b.dev->off_mask, 0);
	cr_expect_eq(b.dev->rw_len_max, urt_dev_info(b.dev)->max_io_bytes);
	cr_expect_eq(atomic_load(&b.dev->rw_fast), (1u << URT_OP_READ) | (1u << URT_OP_WRITE));
	/* Read-only: reads may go fast, writes never. */
	urt_dev_opts_default(&o);
	o.direct = false;
	o.readonly = true;
	cr_assert_eq(urt_dev_open(b.path, &o, &ro), 0, "%s", urt_last_error());
	cr_expect_eq(atomic_load(&ro->rw_fast), 1u << URT_OP_READ);
	urt_dev_close(ro);
	/* A sticky error turns the fast path off for every op of the device. */
	dev_set_sticky(b.dev, -EIO);
	cr_expect_eq(atomic_load(&b.dev->rw_fast), 0);
	cr_expect_eq(urt_dev_error(b.dev), -EIO);
	fx_file_close(&d);
	fx_file_close(&b);
}

#define CASES 8

struct reject_run {
	struct urt_dev *direct;	/* O_DIRECT file. */
	struct urt_dev *ro;	/* Read-only buffered file. */
	int res[CASES];		/* Each rejected submit's return. */
	char msg[CASES][256];	/* Its urt_last_error(). */
	int callbacks;		/* Must stay 0. */
	int read_ok;		/* A good read after them: its result. */
};

static void never_cb(struct urt_io *io, int res, void *arg)
{
	(void)io;
	(void)res;
	((struct reject_run *)arg)->callbacks++;
}

static void reject_one(struct reject_run *r, int i, struct urt_io *io)
{
	r->res[i] = urt_io_submit(io, never_cb, r);
	snprintf(r->msg[i], sizeof(r->msg[i]), "%s", urt_last_error());
}

static void reject_body(void *p)
{
	struct reject_run *r = p;
	uint8_t *buf = urt_buf_get(BLK);
	struct urt_io io;

	urt_io_prep_read(&io, r->direct, buf, 0, 0);			/* Length 0. */
	reject_one(r, 0, &io);
	urt_io_prep_read(&io, r->direct, buf, 3ull << 30, 0);		/* Length above 2 GiB. */
	reject_one(r, 1, &io);
	urt_io_prep_read(&io, r->direct, buf, BLK, 0);			/* Priority class. */
	io.prio = URT_PRIO_COUNT;
	reject_one(r, 2, &io);
	urt_io_prep_read(&io, r->direct, buf + 512 + 1, BLK, 0);	/* Buffer address. */
	reject_one(r, 3, &io);
	urt_io_prep_write(&io, r->direct, buf, BLK, 512 + 100);	/* Offset. */
	reject_one(r, 4, &io);
	urt_io_prep_write(&io, r->ro, buf, BLK, 0);			/* Read-only device. */
	reject_one(r, 5, &io);
	urt_io_prep_read(&io, NULL, buf, BLK, 0);			/* No device. */
	reject_one(r, 6, &io);
	io.op = URT_OP_WRITE;						/* No device, write. */
	reject_one(r, 7, &io);
	urt_io_prep_read(&io, r->direct, buf, BLK, BLK);		/* Good: accepted. */
	r->read_ok = urt_io_wait(&io);
	urt_buf_put(buf);
}

Test(io_fast, rejects_with_the_checked_messages)
{
	/* Each case of reject_body: its result and a part of its message (NULL: none checked). */
	static const struct {
		int res;
		const char *msg;
	} want[CASES] = {
		{ -EINVAL, "length 0 out of range" },
		{ -EINVAL, "out of range (1 B..2 GiB)" },
		{ -EINVAL, "unknown priority class 3" },
		{ -EINVAL, "not aligned" },
		{ -EINVAL, "offset 612" },
		{ -EPERM, "opened read-only" },
		{ -EINVAL, "needs a device" },
		{ -EINVAL, NULL },
	};
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct fx_file d, b;
	struct urt_dev_opts dopts;
	struct reject_run r = { 0 };

	fx_opts_cpu0(&o);
	rt = fx_start(&o);
	fx_file_open(&d, 1 << 20, true);
	fx_file_open(&b, 1 << 20, false);
	urt_dev_opts_default(&dopts);
	dopts.direct = false;
	dopts.readonly = true;
	cr_assert_eq(urt_dev_open(b.path, &dopts, &r.ro), 0, "%s", urt_last_error());
	cr_assert_neq(atomic_load(&d.dev->rw_fast), 0, "the O_DIRECT file should qualify for the fast path");
	r.direct = d.dev;
	fx_run(rt, 0, reject_body, &r);
	urt_dev_close(r.ro);
	fx_file_close(&d);
	fx_file_close(&b);
	urt_rt_stop(rt);
	for (int i = 0; i < CASES; i++) {
		cr_expect_eq(r.res[i], want[i].res, "case %d: %d", i, r.res[i]);
		if (want[i].msg)
			cr_expect(strstr(r.msg[i], want[i].msg) != NULL, "case %d: %s", i, r.msg[i]);
	}
	cr_expect_eq(r.read_ok, BLK);
	cr_expect_eq(r.callbacks, 0, "a rejected op must not call back");
}

struct sticky_run {
	struct urt_dev *dev;
	int before;		/* A write before the sticky error. */
	int write_res;		/* A write after it: refused. */
	char write_msg[256];	/* Its message. */
	int read_res;		/* A read after it: still served. */
	bool read_ok;		/* With the file's bytes. */
	int callbacks;		/* Of the refused write: must stay 0. */
};

static void sticky_cb(struct urt_io *io, int res, void *arg)
{
	(void)io;
	(void)res;
	((struct sticky_run *)arg)->callbacks++;
}

static void sticky_body(void *p)
{
	struct sticky_run *r = p;
	static uint8_t buf[BLK];
	struct urt_io io;

	memset(buf, 0, sizeof(buf));
	for (size_t i = 0; i < BLK; i++)
		buf[i] = fx_pattern(11, BLK + i);
	urt_io_prep_write(&io, r->dev, buf, BLK, BLK);
	r->before = urt_io_wait(&io);
	/* What a failed flush does (req.c), on this device. */
	dev_set_sticky(r->dev, -EIO);
	urt_io_prep_write(&io, r->dev, buf, BLK, 0);
	r->write_res = urt_io_submit(&io, sticky_cb, r);
	snprintf(r->write_msg, sizeof(r->write_msg), "%s", urt_last_error());
	memset(buf, 0, sizeof(buf));
	urt_io_prep_read(&io, r->dev, buf, BLK, 0);
	r->read_res = urt_io_wait(&io);
	r->read_ok = true;
	for (size_t i = 0; i < BLK; i++)
		if (buf[i] != fx_pattern(7, i))
			r->read_ok = false;
}

Test(io_fast, sticky_error_refuses_writes)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct fx_file f;
	struct sticky_run r = { 0 };

	fx_opts_cpu0(&o);
	rt = fx_start(&o);
	fx_file_open(&f, 1 << 20, false);
	fast_fill(f.path, 7, BLK);
	r.dev = f.dev;
	fx_run(rt, 0, sticky_body, &r);
	fx_file_close(&f);
	urt_rt_stop(rt);
	cr_expect_eq(r.before, BLK);
	cr_expect_eq(r.write_res, -EIO);
	cr_expect(strstr(r.write_msg, "an earlier flush failed") != NULL, "%s", r.write_msg);
	cr_expect_eq(r.callbacks, 0);
	cr_expect_eq(r.read_res, BLK);
	cr_expect(r.read_ok, "the read after the sticky error returned other bytes");
}

struct count_run {
	struct urt_dev *dev;
	int res[3];		/* Plain memory read, registered-buffer read, FUA write. */
	bool bare[3];		/* Each went bare. */
	bool bytes_ok;		/* Both reads gave the file's bytes. */
};

static void count_cb(struct urt_io *io, int res, void *arg)
{
	(void)io;
	*(int *)arg = res;
}

/* Submit io, note whether it went bare, and wait for its answer. */
static int count_one(struct urt_io *io, bool *bare)
{
	int res = 1;
	int ret = urt_io_submit(io, count_cb, &res);

	if (ret)
		return ret;
	*bare = io_is_bare(io);
	while (res == 1)
		urt_fiber_yield();
	return res;
}

static void count_body(void *p)
{
	struct count_run *r = p;
	static uint8_t plain[BLK];
	uint8_t *reg = urt_buf_get(BLK);
	struct urt_io io;

	urt_io_prep_read(&io, r->dev, plain, BLK, 0);
	r->res[0] = count_one(&io, &r->bare[0]);
	urt_io_prep_read(&io, r->dev, reg, BLK, 0);
	r->res[1] = count_one(&io, &r->bare[1]);
	r->bytes_ok = true;
	for (size_t i = 0; i < BLK; i++)
		if (plain[i] != fx_pattern(3, i) || reg[i] != fx_pattern(3, i))
			r->bytes_ok = false;
	urt_io_prep_write(&io, r->dev, reg, BLK, BLK);
	io.flags |= URT_IO_FUA;
	r->res[2] = count_one(&io, &r->bare[2]);
	urt_buf_put(reg);
}

static void count_check(bool registered)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct fx_file f;
	struct count_run r = { 0 };
	struct urt_stats s0, s1;

	fx_opts_cpu0(&o);
	rt = fx_start(&o);
	fx_file_open(&f, 1 << 20, false);
	fast_fill(f.path, 3, BLK);
	if (registered)
		cr_assert_eq(urt_dev_register(rt, f.dev), 0, "%s", urt_last_error());
	r.dev = f.dev;
	cr_assert_eq(urt_rt_stats(rt, 0, &s0), 0);
	fx_run(rt, 0, count_body, &r);
	cr_assert_eq(urt_rt_stats(rt, 0, &s1), 0);
	fx_file_close(&f);
	urt_rt_stop(rt);
	for (int i = 0; i < 3; i++) {
		cr_expect_eq(r.res[i], BLK, "op %d gave %d", i, r.res[i]);
		cr_expect(r.bare[i], "op %d did not go bare", i);
	}
	cr_expect(r.bytes_ok, "a read returned other bytes than the file's");
	cr_expect_eq(s1.sqes_fixed_buf - s0.sqes_fixed_buf, 2, "the registered-buffer read and write");
	if (registered) {
		cr_expect_eq(s1.sqes_fixed_file - s0.sqes_fixed_file, 3);
		cr_expect_eq(s1.sqes_plain_fd - s0.sqes_plain_fd, 0);
	} else {
		cr_expect_eq(s1.sqes_fixed_file - s0.sqes_fixed_file, 0);
		cr_expect_eq(s1.sqes_plain_fd - s0.sqes_plain_fd, 3);
	}
	cr_expect_eq(s1.fixed_file_misses - s0.fixed_file_misses, 0);
}

Test(io_fast, counts_plain_fd_and_fixed_buffer)
{
	count_check(false);
}

Test(io_fast, counts_registered_file)
{
	count_check(true);
}
