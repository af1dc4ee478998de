/*
 * Retry classification, driven by seeded fault injection: transient errors
 * are retried retry_max times and then surfaced, EAGAIN and short transfers
 * are resubmitted transparently, and a failed flush is never retried but
 * becomes sticky on the device.
 */
#include "fault_opts.h"
#include "fixture.h"

struct retry_run {
	struct urt_rt *rt;
	struct urt_dev *dev;
	bool fua;		/* durable_write_body: a FUA write instead of write + flush. */
	ssize_t res[4];
	uint64_t mismatches;
	int dev_error;
};

static struct urt_rt *start_faulty(uint32_t kinds, uint32_t op_mask, uint32_t count_max)
{
	struct urt_rt_opts o;

	fx_fault_opts(&o, 42, kinds, op_mask);
	o.retry_backoff_ns = 100000;
	o.fault.count_max = count_max;
	return fx_start(&o);
}

static void read_body(void *p)
{
	struct retry_run *r = p;
	uint8_t *buf = urt_buf_get(65536);

	r->res[0] = urt_read(r->dev, buf, 65536, 0);
	for (uint64_t k = 0; k < 65536; k++)
		r->mismatches += buf[k] != fx_pattern(3, k);
	urt_buf_put(buf);
}

/* Fill the first 64 KiB with a known pattern through plain pwrite. */
static void fill_pattern(struct fx_file *f)
{
	FILE *fp = fopen(f->path, "r+b");
	uint8_t b[4096];

	cr_assert(fp);
	for (uint64_t off = 0; off < 65536; off += 4096) {
		for (int k = 0; k < 4096; k++)
			b[k] = fx_pattern(3, off + (uint64_t)k);
		cr_assert_eq(fwrite(b, 1, 4096, fp), 4096);
	}
	fclose(fp);
}

/*
 * Run body in a fiber on a one-core runtime whose faults hit op_mask, over a
 * fresh 1 MiB O_DIRECT file (pre-filled with the pattern when fill), and
 * return core 0's counters.
 */
static void run_faulty(uint32_t kinds, uint32_t op_mask, uint32_t count_max, bool fill,
		       void (*body)(void *), struct retry_run *r, struct urt_stats *st)
{
	struct urt_rt *rt = start_faulty(kinds, op_mask, count_max);
	struct fx_file f;

	fx_file_open(&f, 1 << 20, true);
	if (fill)
		fill_pattern(&f);
	r->dev = f.dev;
	fx_run(rt, 0, body, r);
	cr_assert_eq(urt_rt_stats(rt, 0, st), 0);
	fx_file_close(&f);
	urt_rt_stop(rt);
}

Test(retry, eio_retried_three_times_then_surfaced)
{
	struct retry_run r = { 0 };
	struct urt_stats st;

	run_faulty(URT_FAULT_EIO, 1u << URT_OP_READ, 0, false, read_body, &r, &st);
	cr_expect_eq(r.res[0], -EIO);
	cr_expect_eq(st.retried, 3, "retried %llu", (unsigned long long)st.retried);
	cr_expect_eq(st.faults, 4, "faults %llu", (unsigned long long)st.faults);
	cr_expect_eq(st.failed, 1);
}

Test(retry, eagain_resubmitted_transparently)
{
	struct retry_run r = { 0 };
	struct urt_stats st;

	run_faulty(URT_FAULT_EAGAIN, 1u << URT_OP_READ, 5, true, read_body, &r, &st);
	cr_expect_eq(r.res[0], 65536);
	cr_expect_eq(r.mismatches, 0);
	cr_expect_eq(st.retried, 5);
}

Test(retry, short_read_completed)
{
	struct retry_run r = { 0 };
	struct urt_stats st;

	run_faulty(URT_FAULT_SHORT, 1u << URT_OP_READ, 0, true, read_body, &r, &st);
	/* 64 KiB halves down to one 512-byte block: every step is a resubmission. */
	cr_expect_eq(r.res[0], 65536);
	cr_expect_eq(r.mismatches, 0, "%llu bytes differ", (unsigned long long)r.mismatches);
	cr_expect_geq(st.retried, 6, "retried %llu", (unsigned long long)st.retried);
}

/*
 * A write made durable, by a flush after it or as a FUA write (r->fua),
 * then a later write and a read: res[0] is the plain write and res[1] the
 * flush, or res[1] the FUA write; res[2] the later write, res[3] the read.
 */
static void durable_write_body(void *p)
{
	struct retry_run *r = p;
	uint8_t *buf = urt_buf_get(4096);

	memset(buf, 1, 4096);
	if (r->fua) {
		r->res[1] = urt_write_fua(r->dev, buf, 4096, 0);
	} else {
		r->res[0] = urt_write(r->dev, buf, 4096, 0);
		r->res[1] = urt_flush(r->dev);
	}
	r->res[2] = urt_write(r->dev, buf, 4096, 4096);
	r->res[3] = urt_read(r->dev, buf, 4096, 0);
	r->dev_error = urt_dev_error(r->dev);
	urt_buf_put(buf);
}

/*
 * The durable step (what) failed with EIO: reported once, never retried,
 * and the device is sticky, refusing writes but still serving reads.
 */
static void expect_sticky_after_failed(const char *what, const struct retry_run *r,
				       const struct urt_stats *st)
{
	cr_expect_eq(r->res[1], -EIO, "the failed %s reports EIO: %zd", what, r->res[1]);
	cr_expect_eq(st->retried, 0, "a %s error must never be retried", what);
	cr_expect_eq(r->dev_error, -EIO);
	cr_expect_eq(r->res[2], -EIO, "writes after a failed %s are refused", what);
	cr_expect_eq(r->res[3], 4096, "reads still work");
}

Test(retry, failed_flush_is_sticky_and_not_retried)
{
	struct retry_run r = { 0 };
	struct urt_stats st;

	run_faulty(URT_FAULT_EIO, 1u << URT_OP_FLUSH, 1, false, durable_write_body, &r, &st);
	cr_expect_eq(r.res[0], 4096);
	expect_sticky_after_failed("flush", &r, &st);
}

Test(retry, failed_fua_write_is_sticky_and_not_retried)
{
	struct retry_run r = { .fua = true };
	struct urt_stats st;

	run_faulty(URT_FAULT_EIO, 1u << URT_OP_WRITE, 1, false, durable_write_body, &r, &st);
	expect_sticky_after_failed("FUA write", &r, &st);
}
