/*
 * Misaligned O_DIRECT I/O is rejected with -EINVAL before it reaches the
 * kernel, with a message naming the rule; the callback never runs.
 */
#include <sys/stat.h>

#include "fixture.h"

struct align_run {
	struct urt_dev *dev;
	bool direct;		/* The file was opened O_DIRECT. */
	uint32_t off_align;	/* Its offset alignment. */
	int res[5];
	char msg[5][256];
	int callbacks;
};

static void never_cb(struct urt_io *io, int res, void *arg)
{
	(void)io;
	(void)res;
	((struct align_run *)arg)->callbacks++;
}

static void align_body(void *p)
{
	struct align_run *r = p;
	uint8_t *buf = urt_buf_get(16384);
	struct iovec iov[2] = { { buf, 4096 }, { buf + 4096 + 1, 4096 } };
	struct urt_io io;

	urt_io_prep_read(&io, r->dev, buf + 1, 4096, 0);		/* Buffer address. */
	r->res[0] = urt_io_submit(&io, never_cb, r);
	snprintf(r->msg[0], sizeof(r->msg[0]), "%s", urt_last_error());
	urt_io_prep_write(&io, r->dev, buf, 4096, 100);		/* Offset. */
	r->res[1] = urt_io_submit(&io, never_cb, r);
	snprintf(r->msg[1], sizeof(r->msg[1]), "%s", urt_last_error());
	urt_io_prep_read(&io, r->dev, buf, 1000, 0);			/* Length. */
	r->res[2] = urt_io_submit(&io, never_cb, r);
	snprintf(r->msg[2], sizeof(r->msg[2]), "%s", urt_last_error());
	urt_io_prep_readv(&io, r->dev, iov, 2, 0);			/* One bad vector entry. */
	r->res[3] = urt_io_submit(&io, never_cb, r);
	urt_io_prep_read(&io, r->dev, buf, 4096, 4096);		/* Aligned: accepted. */
	r->res[4] = (int)urt_io_wait(&io);
	urt_buf_put(buf);
}

/* Runs body(r) in a fiber on a fresh runtime, with r->dev a 1 MiB test file (O_DIRECT or not). */
static void align_on_file(bool direct, void (*body)(void *), struct align_run *r)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct fx_file f;

	urt_rt_opts_default(&o);
	rt = fx_start(&o);
	fx_file_open(&f, 1 << 20, direct);
	r->dev = f.dev;
	r->direct = urt_dev_info(f.dev)->direct;
	r->off_align = urt_dev_info(f.dev)->off_align;
	fx_run(rt, 0, body, r);
	fx_file_close(&f);
	urt_rt_stop(rt);
}

Test(align, misaligned_direct_io_rejected)
{
	struct align_run r = { 0 };

	align_on_file(true, align_body, &r);
	cr_assert(r.direct);
	cr_assert_gt(r.off_align, 1);
	for (int i = 0; i < 4; i++)
		cr_expect_eq(r.res[i], -EINVAL, "case %d gave %d", i, r.res[i]);
	cr_expect(strstr(r.msg[0], "not aligned") != NULL, "%s", r.msg[0]);
	cr_expect(strstr(r.msg[1], "offset 100") != NULL, "%s", r.msg[1]);
	cr_expect(strstr(r.msg[2], "length 1000") != NULL, "%s", r.msg[2]);
	cr_expect_eq(r.res[4], 4096);
	cr_expect_eq(r.callbacks, 0, "a rejected op must not call back");
}

/* Buffered I/O has no alignment rule: the same odd request succeeds. */
static void buffered_body(void *p)
{
	struct align_run *r = p;
	static uint8_t odd[3000];
	struct urt_io io;

	memset(odd, 0x5a, sizeof(odd));
	urt_io_prep_write(&io, r->dev, odd + 1, 1000, 100);
	r->res[0] = urt_io_wait(&io);
	memset(odd, 0, sizeof(odd));
	urt_io_prep_read(&io, r->dev, odd + 1, 1000, 100);
	r->res[1] = urt_io_wait(&io);
	r->callbacks = odd[1] == 0x5a && odd[1000] == 0x5a && odd[1001] == 0;
}

Test(align, buffered_io_unrestricted)
{
	struct align_run r = { 0 };

	align_on_file(false, buffered_body, &r);
	cr_expect_eq(r.res[0], 1000);
	cr_expect_eq(r.res[1], 1000);
	cr_expect_eq(r.callbacks, 1, "data read back differs");
}

Test(align, bad_paths)
{
	struct urt_dev *dev;
	struct urt_dev_opts o;

	urt_dev_opts_default(&o);
	cr_expect_eq(urt_dev_open("/nonexistent/urt/file", &o, &dev), -ENOENT);
	cr_expect(strstr(urt_last_error(), "/nonexistent/urt/file") != NULL);
	cr_expect_eq(urt_dev_open("/dev/null", &o, &dev), -EINVAL);
	cr_expect(strstr(urt_last_error(), "not a regular file or block device") != NULL, "%s",
		  urt_last_error());
	o.backend = "nosuch";
	cr_expect_eq(urt_dev_open("/tmp", &o, &dev), -ENODEV);
}

/* A deadline or sleep too long to add to the submission time is refused, not wrapped (urt-cp crashed). */
static void huge_timeout_body(void *p)
{
	struct align_run *r = p;
	uint8_t *buf = urt_buf_get(4096);
	struct urt_io io;

	urt_io_prep_read(&io, r->dev, buf, 4096, 0);
	io.timeout_ns = UINT64_MAX;
	r->res[0] = urt_io_submit(&io, never_cb, r);
	snprintf(r->msg[0], sizeof(r->msg[0]), "%s", urt_last_error());
	urt_io_prep_timeout(&io, URT_IO_TIMEOUT_MAX_NS + 1);
	r->res[1] = urt_io_submit(&io, never_cb, r);
	urt_io_prep_read(&io, r->dev, buf, 4096, 0);
	io.timeout_ns = URT_IO_TIMEOUT_MAX_NS;		/* The largest: accepted, and the read completes. */
	r->res[2] = (int)urt_io_wait(&io);
	urt_buf_put(buf);
}

Test(align, huge_timeouts_are_refused)
{
	struct align_run r = { 0 };

	align_on_file(true, huge_timeout_body, &r);
	cr_expect_eq(r.res[0], -EINVAL, "timeout_ns UINT64_MAX gave %d", r.res[0]);
	cr_expect(strstr(r.msg[0], "above the largest deadline") != NULL, "%s", r.msg[0]);
	cr_expect_eq(r.res[1], -EINVAL, "a sleep past the bound gave %d", r.res[1]);
	cr_expect_eq(r.res[2], 4096);
	cr_expect_eq(r.callbacks, 0, "a refused op must not call back");
}

Test(align, existing_file_is_never_grown)
{
	char path[] = "/tmp/urt-grow-XXXXXX";
	struct urt_dev *dev;
	struct urt_dev_opts o;
	struct stat st;
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "hello\n", 6), 6);
	close(fd);
	urt_dev_opts_default(&o);
	o.direct = false;
	o.create = true;
	o.size_bytes = 8u << 20;
	cr_expect_eq(urt_dev_open(path, &o, &dev), -EINVAL);
	cr_expect(strstr(urt_last_error(), "has 6 bytes, fewer than the 8388608 asked for") != NULL,
		  "%s", urt_last_error());
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_size, 6, "the file was grown to %lld bytes", (long long)st.st_size);
	/* An empty file is sized, as a new one is. */
	cr_assert_eq(truncate(path, 0), 0);
	cr_assert_eq(urt_dev_open(path, &o, &dev), 0, "%s", urt_last_error());
	cr_expect_eq(urt_dev_info(dev)->size_bytes, 8u << 20);
	urt_dev_close(dev);
	unlink(path);
}

/* urt_dev_info names the file the device has open (kv's lock compares it with its own open). */
Test(align, dev_info_names_the_open_file)
{
	struct fx_file f;
	struct stat st;

	fx_file_open(&f, 1 << 20, false);
	cr_assert_eq(stat(f.path, &st), 0);
	cr_expect_eq(urt_dev_info(f.dev)->file_dev, (uint64_t)st.st_dev);
	cr_expect_eq(urt_dev_info(f.dev)->file_ino, (uint64_t)st.st_ino);
	cr_expect_neq(urt_dev_info(f.dev)->file_ino, 0);
	fx_file_close(&f);
}
