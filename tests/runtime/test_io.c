/*
 * Data integrity: random aligned offsets and sizes, written and read back
 * byte for byte, in every poll mode the machine supports (a mode the kernel
 * or device lacks is a skip with the reason).
 */
#include "fixture.h"

#include "urt/error.h"

#define FILE_BYTES (8u << 20)
#define ROUNDS 200

struct io_run {
	struct urt_dev *dev;
	uint64_t seed;
	bool fixed;		/* Use urt_buf_get (READ/WRITE_FIXED) or heap memory. */
	int bad_write, bad_read, bad_flush;	/* Results that were wrong. */
	uint64_t mismatches;	/* Bytes that came back different. */
	uint64_t bytes;		/* Bytes verified. */
};

static void io_body(void *p)
{
	struct io_run *r = p;
	uint64_t s = r->seed;
	uint32_t blk = urt_dev_info(r->dev)->off_align;

	for (int i = 0; i < ROUNDS; i++) {
		uint64_t len = (fx_rand(&s) % 64 + 1) * blk;
		uint64_t off = fx_rand(&s) % ((FILE_BYTES - len) / blk) * blk;
		uint8_t *buf = r->fixed ? urt_buf_get(len) : aligned_alloc(4096, (len + 4095) / 4096 * 4096);
		ssize_t n;

		for (uint64_t k = 0; k < len; k++)
			buf[k] = fx_pattern(r->seed + (uint64_t)i, off + k);
		n = urt_write(r->dev, buf, len, off);
		if (n != (ssize_t)len)
			r->bad_write++;
		memset(buf, 0xee, len);
		n = urt_read(r->dev, buf, len, off);
		if (n != (ssize_t)len)
			r->bad_read++;
		for (uint64_t k = 0; k < len; k++)
			r->mismatches += buf[k] != fx_pattern(r->seed + (uint64_t)i, off + k);
		r->bytes += len;
		if (r->fixed)
			urt_buf_put(buf);
		else
			free(buf);
	}
	if (urt_flush(r->dev) != 0)
		r->bad_flush++;
}

/* Vectored I/O with three segments of different sizes. */
static void iov_body(void *p)
{
	struct io_run *r = p;
	uint8_t *a = urt_buf_get(4096), *b = urt_buf_get(8192), *c = urt_buf_get(4096);
	struct iovec iov[3] = { { a, 4096 }, { b, 8192 }, { c, 4096 } };
	ssize_t n;

	for (int k = 0; k < 4096; k++)
		a[k] = fx_pattern(7, (uint64_t)k), c[k] = fx_pattern(9, (uint64_t)k);
	for (int k = 0; k < 8192; k++)
		b[k] = fx_pattern(8, (uint64_t)k);
	n = urt_writev(r->dev, iov, 3, 65536);
	r->bad_write += n != 16384;
	memset(a, 0, 4096), memset(b, 0, 8192), memset(c, 0, 4096);
	n = urt_readv(r->dev, iov, 3, 65536);
	r->bad_read += n != 16384;
	for (int k = 0; k < 4096; k++)
		r->mismatches += (a[k] != fx_pattern(7, (uint64_t)k)) + (c[k] != fx_pattern(9, (uint64_t)k));
	for (int k = 0; k < 8192; k++)
		r->mismatches += b[k] != fx_pattern(8, (uint64_t)k);
	r->bytes += 16384;
	urt_buf_put(a), urt_buf_put(b), urt_buf_put(c);
}

static void run_mode_opts(enum urt_poll_mode mode, bool regfiles, bool sq_shared)
{
	struct urt_kernel_features kf;
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct fx_file f;
	struct urt_stats st;

	urt_kernel_probe(&kf);
	if (mode == URT_POLL_SQPOLL && !kf.sqpoll)
		cr_skip_test("the kernel refuses IORING_SETUP_SQPOLL");
	urt_rt_opts_default(&o);
	o.mode = mode;
	o.sq_thread_shared = sq_shared;
	rt = fx_start(&o);
	fx_file_open(&f, FILE_BYTES, true);
	if (regfiles)
		cr_assert_eq(urt_dev_register(rt, f.dev), 0, "%s", urt_last_error());
	for (unsigned core = 0; core < urt_rt_ncores(rt); core++) {
		struct io_run fixed = { .dev = f.dev, .seed = 100 + core, .fixed = true };
		struct io_run heap = { .dev = f.dev, .seed = 200 + core, .fixed = false };
		struct io_run vec = { .dev = f.dev };

		fx_run(rt, core, io_body, &fixed);
		fx_run(rt, core, io_body, &heap);
		fx_run(rt, core, iov_body, &vec);
		cr_expect_eq(fixed.bad_write + fixed.bad_read + fixed.bad_flush, 0);
		cr_expect_eq(heap.bad_write + heap.bad_read + heap.bad_flush, 0);
		cr_expect_eq(vec.bad_write + vec.bad_read, 0);
		cr_expect_eq(fixed.mismatches + heap.mismatches + vec.mismatches, 0, "core %u: %llu bytes differ",
			     core, (unsigned long long)(fixed.mismatches + heap.mismatches + vec.mismatches));
		cr_expect_gt(fixed.bytes, 0);
	}
	cr_assert_eq(urt_rt_stats_total(rt, &st), 0);
	cr_expect_eq(st.submitted, st.completed);
	cr_expect_eq(st.failed, 0);
	cr_expect_gt(st.enters, 0);
	cr_expect(st.bufs_registered);
	/* The fixed paths really ran: READ/WRITE_FIXED for urt_buf_get memory, and the file by its slot. */
	cr_expect_gt(st.sqes_fixed_buf, 0, "no READ_FIXED/WRITE_FIXED although the buffers are registered");
	cr_expect_eq(st.fixed_file_misses, 0, "%llu SQEs of the registered file went by the plain fd",
		     (unsigned long long)st.fixed_file_misses);
	if (regfiles) {
		cr_expect_gt(st.sqes_fixed_file, 0);
		cr_expect_eq(st.sqes_plain_fd, 0, "%llu SQEs used the plain fd", (unsigned long long)st.sqes_plain_fd);
	} else {
		cr_expect_eq(st.sqes_fixed_file, 0);
		cr_expect_gt(st.sqes_plain_fd, 0);
	}
	fx_file_close(&f);
	urt_rt_stop(rt);
}

static void run_mode(enum urt_poll_mode mode, bool regfiles)
{
	run_mode_opts(mode, regfiles, false);
}

Test(io, interrupt) { run_mode(URT_POLL_INTERRUPT, false); }
/* One SQ thread serves every core's ring (IORING_SETUP_ATTACH_WQ). */
Test(io, sqpoll_shared_thread) { run_mode_opts(URT_POLL_SQPOLL, true, true); }
Test(io, interrupt_regfiles) { run_mode(URT_POLL_INTERRUPT, true); }
Test(io, sqpoll) { run_mode(URT_POLL_SQPOLL, true); }
Test(io, hybrid) { run_mode(URT_POLL_HYBRID, false); }

/* IOPOLL needs a device with poll queues; ext4 on virtio-blk has none. */
struct iopoll_probe {
	struct urt_dev *dev;
	ssize_t res;
	char msg[256];
};

static void iopoll_body(void *p)
{
	struct iopoll_probe *pr = p;
	uint8_t *buf = urt_buf_get(4096);

	pr->res = urt_read(pr->dev, buf, 4096, 0);
	snprintf(pr->msg, sizeof(pr->msg), "%s", urt_last_error());
	urt_buf_put(buf);
}

static struct urt_rt *iopoll_start(struct fx_file *f)
{
	struct urt_kernel_features kf;
	struct urt_rt_opts o;

	urt_kernel_probe(&kf);
	if (!kf.iopoll)
		cr_skip_test("the kernel refuses IORING_SETUP_IOPOLL");
	urt_rt_opts_default(&o);
	o.mode = URT_POLL_IOPOLL;
	fx_file_open(f, 1 << 20, true);
	return fx_start(&o);
}

/* The data suite on IOPOLL, where the device has poll queues. */
Test(io, iopoll)
{
	struct fx_file f;
	struct urt_rt *rt = iopoll_start(&f);
	struct io_run run = { .dev = f.dev, .seed = 5, .fixed = true };

	if (!urt_dev_info(f.dev)->poll_capable) {
		fx_file_close(&f);
		urt_rt_stop(rt);
		cr_skip_test("no device with poll queues here (the scratch file's block queue has io_poll=0); "
			     "IOPOLL is exercised in the NVMe QEMU suite");
	}
	fx_run(rt, 0, io_body, &run);
	fx_file_close(&f);
	urt_rt_stop(rt);
	cr_expect_eq(run.mismatches + run.bad_read + run.bad_write, 0);
}

/* A device without poll queues is refused with a clear error, not a hang. */
Test(io, iopoll_refused_without_poll_queues)
{
	struct fx_file f;
	struct urt_rt *rt = iopoll_start(&f);
	struct iopoll_probe pr = { .dev = f.dev };

	if (urt_dev_info(f.dev)->poll_capable) {
		fx_file_close(&f);
		urt_rt_stop(rt);
		cr_skip_test("the scratch device has poll queues, so nothing is refused");
	}
	fx_run(rt, 0, iopoll_body, &pr);
	fx_file_close(&f);
	urt_rt_stop(rt);
	cr_expect_eq(pr.res, -EOPNOTSUPP);
	cr_expect(strstr(pr.msg, "poll queues") != NULL, "message: %s", pr.msg);
}
