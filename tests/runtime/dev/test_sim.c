/*
 * The simulated SSD (include/urt/sim.h, src/runtime/dev/sim.c), driven
 * through the real runtime: every op runs in a fiber on a reactor and goes
 * through urt_io_submit, the ring and the completion path.
 *
 * What is checked: data round trips (plain, split, vectored, zeroes); what
 * a crash may and may not do to each write depending on flushes, FUA, the
 * cache mode and in-flight state; that tearing happens only at 512-byte
 * sector boundaries; exact crash placement; reopen; injected faults and
 * the runtime's reaction to them; latency, and flushes (with emulated FUA
 * writes) running one at a time in submission order without covering more;
 * and seed determinism.
 */
#include <time.h>

#include "../fixture.h"

#include "urt/sim.h"

/* One op run in a fiber; the test thread asserts on the result. */
enum sim_op { OP_READ, OP_WRITE, OP_WRITE_FUA, OP_FLUSH, OP_ZEROES, OP_DEALLOC, OP_READV, OP_WRITEV };

struct sim_call {
	enum sim_op op;
	struct urt_dev *dev;
	void *buf;
	uint64_t len;
	uint64_t off;
	const struct iovec *iov;
	unsigned nr;
	ssize_t res;
};

static void sim_call_fiber(void *p)
{
	struct sim_call *c = p;
	struct urt_io io;

	switch (c->op) {
	case OP_READ:
		c->res = urt_read(c->dev, c->buf, c->len, c->off);
		break;
	case OP_WRITE:
		c->res = urt_write(c->dev, c->buf, c->len, c->off);
		break;
	case OP_WRITE_FUA:
		c->res = urt_write_fua(c->dev, c->buf, c->len, c->off);
		break;
	case OP_FLUSH:
		c->res = urt_flush(c->dev);
		break;
	case OP_ZEROES:
		urt_io_prep_write_zeroes(&io, c->dev, c->len, c->off);
		c->res = urt_io_wait(&io);
		break;
	case OP_DEALLOC:
		urt_io_prep_deallocate(&io, c->dev, c->len, c->off);
		c->res = urt_io_wait(&io);
		break;
	case OP_READV:
		c->res = urt_readv(c->dev, c->iov, c->nr, c->off);
		break;
	case OP_WRITEV:
		c->res = urt_writev(c->dev, c->iov, c->nr, c->off);
		break;
	}
}

static struct urt_rt *rt;

static ssize_t run_op(enum sim_op op, struct urt_dev *dev, void *buf, uint64_t len, uint64_t off)
{
	struct sim_call c = { .op = op, .dev = dev, .buf = buf, .len = len, .off = off };

	fx_run(rt, 0, sim_call_fiber, &c);
	return c.res;
}

static ssize_t run_vec(enum sim_op op, struct urt_dev *dev, const struct iovec *iov, unsigned nr, uint64_t off)
{
	struct sim_call c = { .op = op, .dev = dev, .iov = iov, .nr = nr, .off = off };

	fx_run(rt, 0, sim_call_fiber, &c);
	return c.res;
}

static void rt_up(void)
{
	struct urt_rt_opts o;
	static const int cpu0[] = { 0 };

	urt_rt_opts_default(&o);
	o.cpus = cpu0;
	o.ncpus = 1;
	o.buf_region_bytes = 1u << 20;
	o.buf_hugepages = false;
	o.buf_allow_unregistered = true;
	o.retry_backoff_ns = 100000;	/* 100 us: retries stay quick. */
	rt = fx_start(&o);
}

static void rt_down(void)
{
	urt_rt_stop(rt);
	rt = NULL;
}

TestSuite(sim, .init = rt_up, .fini = rt_down, .timeout = 120);

static void *abuf(size_t len)
{
	void *p = aligned_alloc(4096, len);

	cr_assert_not_null(p);
	return p;
}

static void fill(uint8_t *p, uint64_t len, uint64_t seed, uint64_t off)
{
	for (uint64_t i = 0; i < len; i++)
		p[i] = fx_pattern(seed, off + i);
}

static bool matches(const uint8_t *p, uint64_t len, uint64_t seed, uint64_t off)
{
	for (uint64_t i = 0; i < len; i++)
		if (p[i] != fx_pattern(seed, off + i))
			return false;
	return true;
}

static bool all_zero(const uint8_t *p, uint64_t len)
{
	for (uint64_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static struct urt_dev *sim_open_with(uint64_t size, uint32_t block, void (*tweak)(struct urt_sim_opts *o))
{
	struct urt_sim_opts o;
	struct urt_dev *dev = NULL;
	int ret;

	urt_sim_opts_default(&o);
	o.size_bytes = size;
	o.block_bytes = block;
	if (tweak)
		tweak(&o);
	ret = urt_sim_open(&o, &dev);
	cr_assert_eq(ret, 0, "urt_sim_open: %d (%s)", ret, urt_last_error());
	return dev;
}

static struct urt_sim_stats sim_st(struct urt_dev *dev)
{
	struct urt_sim_stats st;

	cr_assert_eq(urt_sim_stats(dev, &st), 0);
	return st;
}

Test(sim, write_then_read)
{
	struct urt_dev *dev = sim_open_with(4 << 20, 4096, NULL);
	const struct urt_dev_info *in = urt_dev_info(dev);
	uint64_t big = 3u << 20;
	uint8_t *w = abuf(big), *r = abuf(big);
	struct iovec wv[2], rv[2];

	cr_assert_str_eq(in->backend, "sim");
	cr_assert(urt_sim_is(dev));
	cr_assert_eq(in->size_bytes, 4u << 20);
	cr_assert_eq(in->block_bytes, 4096);
	cr_assert_eq(in->mem_align, 4096);
	cr_assert_eq(in->off_align, 4096);
	cr_assert_eq(in->max_io_bytes, 1u << 20);
	cr_assert(in->direct && in->volatile_cache && in->fua && in->write_zeroes && in->deallocate);

	/* A fresh device reads as zeroes. */
	cr_assert_eq(run_op(OP_READ, dev, r, 8192, 4096), 8192);
	cr_assert(all_zero(r, 8192));

	fill(w, 8192, 1, 4096);
	cr_assert_eq(run_op(OP_WRITE, dev, w, 8192, 4096), 8192);
	memset(r, 0, 8192);
	cr_assert_eq(run_op(OP_READ, dev, r, 8192, 4096), 8192);
	cr_assert(matches(r, 8192, 1, 4096));

	/* 3 MiB is split into three 1 MiB commands and reassembled. */
	fill(w, big, 2, 0);
	cr_assert_eq(run_op(OP_WRITE, dev, w, big, 0), (ssize_t)big);
	memset(r, 0, big);
	cr_assert_eq(run_op(OP_READ, dev, r, big, 0), (ssize_t)big);
	cr_assert(matches(r, big, 2, 0));
	cr_assert_eq(sim_st(dev).writes, 4);
	cr_assert_eq(sim_st(dev).reads, 5);
	cr_assert_eq(sim_st(dev).bytes_written, 8192 + big);

	/* Vectors: two entries, read back through a differently split vector. */
	fill(w, 12288, 3, 1 << 20);
	wv[0] = (struct iovec){ w, 4096 };
	wv[1] = (struct iovec){ w + 4096, 8192 };
	cr_assert_eq(run_vec(OP_WRITEV, dev, wv, 2, 1 << 20), 12288);
	memset(r, 0, 12288);
	rv[0] = (struct iovec){ r, 8192 };
	rv[1] = (struct iovec){ r + 8192, 4096 };
	cr_assert_eq(run_vec(OP_READV, dev, rv, 2, 1 << 20), 12288);
	cr_assert(matches(r, 12288, 3, 1 << 20));

	/* Write-zeroes and deallocate both read back as zeroes, and touch nothing else. */
	cr_assert_eq(run_op(OP_ZEROES, dev, NULL, 4096, 0), 0);
	cr_assert_eq(run_op(OP_DEALLOC, dev, NULL, 8192, 8192), 0);
	cr_assert_eq(run_op(OP_READ, dev, r, 20480, 0), 20480);
	cr_assert(all_zero(r, 4096));
	cr_assert(matches(r + 4096, 4096, 2, 4096));
	cr_assert(all_zero(r + 8192, 8192));
	cr_assert(matches(r + 16384, 4096, 2, 16384));
	cr_assert_eq(sim_st(dev).zeroes, 1);
	cr_assert_eq(sim_st(dev).deallocates, 1);
	urt_dev_close(dev);
	free(w);
	free(r);
}

Test(sim, open_by_path)
{
	struct urt_dev_opts o;
	struct urt_dev *dev = NULL;
	uint8_t *b = abuf(4096);

	urt_dev_opts_default(&o);
	cr_assert_eq(urt_dev_open("sim:1M", &o, &dev), 0, "%s", urt_last_error());
	cr_assert(urt_sim_is(dev));
	cr_assert_eq(urt_dev_info(dev)->size_bytes, 1 << 20);
	fill(b, 4096, 9, 0);
	cr_assert_eq(run_op(OP_WRITE, dev, b, 4096, (1 << 20) - 4096), 4096);
	urt_dev_close(dev);
	o.backend = "sim";
	cr_assert_eq(urt_dev_open("sim:12345", &o, &dev), -EINVAL);	/* Not whole blocks. */
	cr_assert_eq(urt_dev_open("sim:lots", &o, &dev), -EINVAL);
	free(b);
}

/*
 * Durable A under cached B, crash, and check each 512-byte sector: it must
 * be wholly A or wholly B.  Returns 0 dropped, 1 applied, 2 torn.
 */
static int crash_one(uint32_t block, uint64_t len, uint64_t seed)
{
	struct urt_dev *dev = sim_open_with(1 << 20, block, NULL), *re = NULL;
	uint64_t off = 8 * block;
	uint8_t *b = abuf(len), *img = abuf(len);
	unsigned old = 0, new = 0;
	struct urt_sim_stats st;
	int kind;

	fill(b, len, 100, off);
	cr_assert_eq(run_op(OP_WRITE, dev, b, len, off), (ssize_t)len);
	cr_assert_eq(run_op(OP_FLUSH, dev, NULL, 0, 0), 0);
	fill(b, len, 200, off);
	cr_assert_eq(run_op(OP_WRITE, dev, b, len, off), (ssize_t)len);
	cr_assert_eq(sim_st(dev).cache_entries, 1);
	cr_assert_eq(urt_sim_crash(dev, seed), 0);
	cr_assert_eq(urt_sim_crash(dev, seed), -EALREADY);
	cr_assert_eq(urt_sim_read_durable(dev, img, len, off), 0);
	for (uint64_t s = 0; s < len; s += URT_SIM_SECTOR_BYTES) {
		bool is_old = matches(img + s, URT_SIM_SECTOR_BYTES, 100, off + s);
		bool is_new = matches(img + s, URT_SIM_SECTOR_BYTES, 200, off + s);

		cr_assert(is_old || is_new, "seed %llu: sector at %llu is neither old nor new",
			  (unsigned long long)seed, (unsigned long long)(off + s));
		old += is_old;
		new += is_new;
	}
	kind = new == 0 ? 0 : old == 0 ? 1 : 2;
	st = sim_st(dev);
	cr_assert(st.crashed);
	cr_assert_eq(st.crash_dropped, kind == 0);
	cr_assert_eq(st.crash_applied, kind == 1);
	cr_assert_eq(st.crash_torn, kind == 2);
	/* The reopened device serves exactly that image through the runtime. */
	cr_assert_eq(urt_sim_reopen(dev, &re), 0);
	memset(b, 0xee, len);
	cr_assert_eq(run_op(OP_READ, re, b, len, off), (ssize_t)len);
	cr_assert_eq(memcmp(b, img, len), 0);
	cr_assert_eq(urt_dev_info(re)->block_bytes, block);
	urt_dev_close(re);
	urt_dev_close(dev);
	free(b);
	free(img);
	return kind;
}

Test(sim, crash_drops_applies_or_tears_unflushed_writes)
{
	static const uint32_t blocks[] = { 4096, 512 };

	for (unsigned k = 0; k < 2; k++) {
		unsigned count[3] = { 0 };

		for (uint64_t seed = 1; seed <= 120; seed++)
			count[crash_one(blocks[k], 16384, seed)]++;
		cr_assert_gt(count[0], 0, "block %u: never dropped", blocks[k]);
		cr_assert_gt(count[1], 0, "block %u: never applied", blocks[k]);
		cr_assert_gt(count[2], 0, "block %u: never torn", blocks[k]);
	}
}

Test(sim, flushed_and_fua_writes_always_survive)
{
	uint8_t *b = abuf(16384), *img = abuf(16384);

	for (uint64_t seed = 1; seed <= 60; seed++) {
		struct urt_dev *dev = sim_open_with(1 << 20, 4096, NULL);

		fill(b, 16384, seed, 0);
		cr_assert_eq(run_op(OP_WRITE, dev, b, 16384, 0), 16384);
		cr_assert_eq(run_op(OP_FLUSH, dev, NULL, 0, 0), 0);
		fill(b, 8192, seed + 1000, 65536);
		cr_assert_eq(run_op(OP_WRITE_FUA, dev, b, 8192, 65536), 8192);
		cr_assert_eq(sim_st(dev).cache_entries, 0);
		cr_assert_eq(sim_st(dev).fua_writes, 1);
		cr_assert_eq(urt_sim_crash(dev, seed), 0);
		cr_assert_eq(urt_sim_read_durable(dev, img, 16384, 0), 0);
		cr_assert(matches(img, 16384, seed, 0), "seed %llu: flushed write lost", (unsigned long long)seed);
		cr_assert_eq(urt_sim_read_durable(dev, img, 8192, 65536), 0);
		cr_assert(matches(img, 8192, seed + 1000, 65536), "seed %llu: FUA write lost",
			  (unsigned long long)seed);
		cr_assert_eq(sim_st(dev).crash_dropped + sim_st(dev).crash_applied + sim_st(dev).crash_torn, 0);
		urt_dev_close(dev);
	}
	free(b);
	free(img);
}

static void no_native_fua(struct urt_sim_opts *o)
{
	o->fua = false;
}

static void lying_fua(struct urt_sim_opts *o)
{
	o->fua = false;
	o->emulate_fua = false;
}

static void write_through(struct urt_sim_opts *o)
{
	o->volatile_cache = false;
}

Test(sim, fua_emulation_and_write_through)
{
	uint8_t *b = abuf(8192), *img = abuf(8192);
	unsigned lost = 0;

	for (uint64_t seed = 1; seed <= 40; seed++) {
		/* Emulated FUA = write + flush: it also covers the write completed before it. */
		struct urt_dev *dev = sim_open_with(1 << 20, 4096, no_native_fua);

		cr_assert(!urt_dev_info(dev)->fua);
		fill(b, 4096, seed, 0);
		cr_assert_eq(run_op(OP_WRITE, dev, b, 4096, 0), 4096);
		fill(b, 4096, seed, 4096);
		cr_assert_eq(run_op(OP_WRITE_FUA, dev, b, 4096, 4096), 4096);
		cr_assert_eq(urt_sim_crash(dev, seed), 0);
		cr_assert_eq(urt_sim_read_durable(dev, img, 8192, 0), 0);
		cr_assert(matches(img, 8192, seed, 0));
		urt_dev_close(dev);

		/* Without a volatile cache every completed write is durable. */
		dev = sim_open_with(1 << 20, 4096, write_through);
		cr_assert(!urt_dev_info(dev)->volatile_cache);
		cr_assert_eq(run_op(OP_WRITE, dev, b, 4096, 4096), 4096);
		cr_assert_eq(urt_sim_crash(dev, seed), 0);
		cr_assert_eq(urt_sim_read_durable(dev, img, 4096, 4096), 0);
		cr_assert(matches(img, 4096, seed, 4096));
		urt_dev_close(dev);

		/* A device that ignores FUA can lose a "FUA" write. */
		dev = sim_open_with(1 << 20, 4096, lying_fua);
		cr_assert_eq(run_op(OP_WRITE_FUA, dev, b, 4096, 4096), 4096);
		cr_assert_eq(sim_st(dev).cache_entries, 1);
		cr_assert_eq(urt_sim_crash(dev, seed), 0);
		cr_assert_eq(urt_sim_read_durable(dev, img, 4096, 4096), 0);
		lost += all_zero(img, 4096);
		urt_dev_close(dev);
	}
	cr_assert_gt(lost, 0);
	free(b);
	free(img);
}

Test(sim, newer_durable_write_is_never_undone)
{
	uint8_t *b = abuf(8192), *img = abuf(8192);

	for (uint64_t seed = 1; seed <= 60; seed++) {
		struct urt_dev *dev = sim_open_with(1 << 20, 4096, NULL);

		/* Cached A, then FUA B over it: B is durable; A must not resurface. */
		fill(b, 8192, 1, 0);
		cr_assert_eq(run_op(OP_WRITE, dev, b, 8192, 0), 8192);
		fill(b, 8192, 2, 0);
		cr_assert_eq(run_op(OP_WRITE_FUA, dev, b, 8192, 0), 8192);
		cr_assert_eq(sim_st(dev).cache_entries, 1);
		cr_assert_eq(urt_sim_crash(dev, seed), 0);
		cr_assert_eq(urt_sim_read_durable(dev, img, 8192, 0), 0);
		cr_assert(matches(img, 8192, 2, 0), "seed %llu: an older cached write overwrote a durable one",
			  (unsigned long long)seed);
		urt_dev_close(dev);
	}
	free(b);
	free(img);
}

/* The write is in flight (10 ms) when the flush (30 ms) is submitted. */
struct inflight {
	struct urt_dev *dev;
	uint8_t *buf;
	uint64_t seed;
	int write_res;
	bool write_done;
	int flush_res;
	uint64_t cached_after_flush;
	int crash_res;
	struct urt_waitq wq;
};

static void inflight_write_done(struct urt_io *io, int res, void *arg)
{
	struct inflight *s = arg;

	(void)io;
	s->write_res = res;
	s->write_done = true;
	urt_waitq_wake_all(&s->wq);
}

static void inflight_fiber(void *p)
{
	struct inflight *s = p;
	struct urt_sim_stats st;
	struct urt_io io;

	urt_io_prep_write(&io, s->dev, s->buf, 4096, 0);
	if (urt_io_submit(&io, inflight_write_done, s))
		return;
	s->flush_res = urt_flush(s->dev);
	/* The write completed during the flush, and still is not covered by it. */
	urt_sim_stats(s->dev, &st);
	s->cached_after_flush = st.cache_entries;
	s->crash_res = urt_sim_crash(s->dev, s->seed);
	while (!s->write_done)
		urt_waitq_wait(&s->wq);
}

static void slow_write(struct urt_sim_opts *o)
{
	o->write_latency_ns = 10000000;
	o->flush_latency_ns = 30000000;
}

Test(sim, flush_does_not_cover_writes_in_flight_at_its_submission)
{
	uint8_t *b = abuf(4096), *img = abuf(4096);
	unsigned lost = 0;

	for (uint64_t seed = 1; seed <= 12; seed++) {
		struct inflight s = { .buf = b, .seed = seed };

		s.dev = sim_open_with(1 << 20, 4096, slow_write);
		fill(b, 4096, 5, 0);
		fx_run(rt, 0, inflight_fiber, &s);
		cr_assert_eq(s.flush_res, 0);
		cr_assert_eq(s.write_res, 4096, "the write completed before the crash");
		cr_assert_eq(s.cached_after_flush, 1);
		cr_assert_eq(s.crash_res, 0);
		cr_assert_eq(sim_st(s.dev).crash_dropped + sim_st(s.dev).crash_applied + sim_st(s.dev).crash_torn, 1);
		cr_assert_eq(urt_sim_read_durable(s.dev, img, 4096, 0), 0);
		lost += all_zero(img, 4096);
		urt_dev_close(s.dev);
	}
	cr_assert_gt(lost, 0);
	free(b);
	free(img);
}

Test(sim, misaligned_and_out_of_range_io_rejected)
{
	struct urt_dev *dev = sim_open_with(1 << 20, 4096, NULL), *d512;
	uint8_t *b = abuf(16384);

	cr_assert_eq(run_op(OP_WRITE, dev, b + 512, 4096, 0), -EINVAL);	/* Memory. */
	cr_assert_eq(run_op(OP_WRITE, dev, b, 4096, 512), -EINVAL);	/* Offset. */
	cr_assert_eq(run_op(OP_READ, dev, b, 1000, 0), -EINVAL);	/* Length. */
	cr_assert_eq(run_op(OP_READ, dev, b, 8192, (1 << 20) - 4096), -EINVAL);	/* Past the end. */
	cr_assert_eq(run_op(OP_ZEROES, dev, NULL, 512, 0), -EINVAL);
	cr_assert_eq(sim_st(dev).writes + sim_st(dev).reads + sim_st(dev).zeroes, 0);
	urt_dev_close(dev);

	d512 = sim_open_with(1 << 20, 512, NULL);
	cr_assert_eq(urt_dev_info(d512)->mem_align, 512);
	fill(b + 512, 1024, 4, 1536);
	cr_assert_eq(run_op(OP_WRITE, d512, b + 512, 1024, 1536), 1024);
	cr_assert_eq(run_op(OP_READ, d512, b + 4096, 1024, 1536), 1024);
	cr_assert(matches(b + 4096, 1024, 4, 1536));
	cr_assert_eq(run_op(OP_READ, d512, b + 100, 512, 0), -EINVAL);
	urt_dev_close(d512);
	free(b);
}

Test(sim, injected_read_eio_is_retried_then_surfaced)
{
	struct urt_dev *dev = sim_open_with(1 << 20, 4096, NULL);
	uint8_t *b = abuf(8192);
	struct urt_stats before, after;

	fill(b, 8192, 6, 0);
	cr_assert_eq(run_op(OP_WRITE, dev, b, 8192, 0), 8192);
	cr_assert_eq(urt_sim_inject(dev, URT_SIM_FAULT_READ_EIO, 0, 4096, URT_SIM_FOREVER), 0);
	cr_assert_eq(urt_rt_stats_total(rt, &before), 0);
	cr_assert_eq(run_op(OP_READ, dev, b, 4096, 0), -EIO);
	cr_assert_eq(urt_rt_stats_total(rt, &after), 0);
	cr_assert_eq(after.retried - before.retried, 3, "retry_max is 3");
	cr_assert_eq(sim_st(dev).faults, 4);
	cr_assert_eq(sim_st(dev).reads, 4);
	/* Outside the range reads work. */
	memset(b, 0, 8192);
	cr_assert_eq(run_op(OP_READ, dev, b, 4096, 4096), 4096);
	cr_assert(matches(b, 4096, 6, 4096));
	/* Two failures then success: the retries hide them. */
	cr_assert_eq(urt_sim_inject(dev, URT_SIM_FAULT_READ_EIO, 0, 0, 0), 0);
	cr_assert_eq(urt_sim_inject(dev, URT_SIM_FAULT_READ_EIO, 0, 4096, 2), 0);
	cr_assert_eq(urt_rt_stats_total(rt, &before), 0);
	cr_assert_eq(run_op(OP_READ, dev, b, 4096, 0), 4096);
	cr_assert(matches(b, 4096, 6, 0));
	cr_assert_eq(urt_rt_stats_total(rt, &after), 0);
	cr_assert_eq(after.retried - before.retried, 2);
	cr_assert_eq(urt_dev_error(dev), 0, "read errors do not poison the device");
	urt_dev_close(dev);
	free(b);
}

Test(sim, injected_write_eio_and_misdirected_write)
{
	struct urt_dev *dev = sim_open_with(1 << 20, 4096, NULL);
	uint8_t *b = abuf(8192);

	fill(b, 4096, 7, 0);
	cr_assert_eq(urt_sim_inject(dev, URT_SIM_FAULT_WRITE_EIO, 0, 4096, URT_SIM_FOREVER), 0);
	cr_assert_eq(run_op(OP_WRITE, dev, b, 4096, 0), -EIO);
	cr_assert_eq(sim_st(dev).writes, 4);
	cr_assert_eq(sim_st(dev).cache_entries, 0, "a failed write lands nowhere");
	cr_assert_eq(run_op(OP_READ, dev, b, 4096, 0), 4096);
	cr_assert(all_zero(b, 4096));

	fill(b, 4096, 8, 8192);
	cr_assert_eq(urt_sim_inject(dev, URT_SIM_FAULT_MISDIRECT, 8192, 4096, 1), 0);
	cr_assert_eq(run_op(OP_WRITE, dev, b, 4096, 8192), 4096);
	cr_assert_eq(run_op(OP_READ, dev, b, 8192, 8192), 8192);
	cr_assert(all_zero(b, 4096), "the target block kept its old data");
	cr_assert(matches(b + 4096, 4096, 8, 8192), "the data landed one block further");
	/* The fault was used up: the next write lands where it should. */
	fill(b, 4096, 8, 8192);
	cr_assert_eq(run_op(OP_WRITE, dev, b, 4096, 8192), 4096);
	cr_assert_eq(run_op(OP_READ, dev, b + 4096, 4096, 8192), 4096);
	cr_assert(matches(b + 4096, 4096, 8, 8192));
	cr_assert_eq(urt_sim_inject(dev, 99, 0, 0, 1), -EINVAL);
	urt_dev_close(dev);
	free(b);
}

Test(sim, injected_flush_eio_makes_the_device_sticky)
{
	struct urt_dev *dev = sim_open_with(1 << 20, 4096, NULL);
	uint8_t *b = abuf(4096);

	fill(b, 4096, 9, 0);
	cr_assert_eq(urt_sim_inject(dev, URT_SIM_FAULT_FLUSH_EIO, 0, 0, 1), 0);
	cr_assert_eq(run_op(OP_WRITE, dev, b, 4096, 0), 4096);
	cr_assert_eq(run_op(OP_FLUSH, dev, NULL, 0, 0), -EIO);
	cr_assert_eq(sim_st(dev).flushes, 1, "a failed flush is never retried");
	cr_assert_eq(urt_dev_error(dev), -EIO);
	cr_assert_eq(run_op(OP_WRITE, dev, b, 4096, 4096), -EIO);
	cr_assert_eq(run_op(OP_FLUSH, dev, NULL, 0, 0), -EIO);
	cr_assert_eq(sim_st(dev).writes, 1, "later writes never reach the device");
	cr_assert_eq(sim_st(dev).flushes, 1);
	/* The failed flush made nothing durable. */
	cr_assert_eq(sim_st(dev).cache_entries, 1);
	urt_dev_close(dev);
	free(b);
}

static void slow_flush(struct urt_sim_opts *o)
{
	o->flush_latency_ns = 1000000;
}

Test(sim, latency_delays_completions)
{
	struct urt_dev *dev = sim_open_with(1 << 20, 4096, slow_flush);
	struct urt_stats st;
	uint64_t p50;

	for (int i = 0; i < 20; i++)
		cr_assert_eq(run_op(OP_FLUSH, dev, NULL, 0, 0), 0);
	cr_assert_eq(urt_rt_stats_total(rt, &st), 0);
	cr_assert_eq(st.lat.count, 20);
	p50 = urt_hist_percentile(&st.lat, 50);
	/* The histogram is exact to 1/64. */
	cr_assert_geq(p50, 1000000 - 1000000 / 64, "p50 %llu ns", (unsigned long long)p50);
	/* Rank 2 of 20 (rank 1 would read the histogram's min field); the mean is exact. */
	cr_assert_geq(urt_hist_percentile(&st.lat, 10), 1000000 - 1000000 / 64);
	cr_assert_geq(urt_hist_mean(&st.lat), 1000000.0);
	urt_dev_close(dev);
}

/* ---- The flush queue (flush_serial) ------------------------------------- */

#define QD_MAX 64
#define QD_LAT 2000000ull	/* 2 ms per flush: far above the cost of submitting a few ops. */

/* Ops submitted together from one fiber, without yielding in between. */
struct qd {
	struct urt_dev *dev;
	unsigned n;
	enum sim_op ops[QD_MAX];	/* OP_FLUSH, OP_WRITE or OP_WRITE_FUA. */
	uint8_t *buf;			/* n blocks: op i writes block i from block i. */
	struct urt_io io[QD_MAX];
	int res[QD_MAX];
	uint64_t done_ns[QD_MAX];	/* Completion time of op i, from t0. */
	unsigned order[QD_MAX];		/* order[k]: the op that completed k-th. */
	unsigned ndone;
	uint64_t t0;			/* Taken just before the first submission. */
	int submit_err;
	struct urt_waitq wq;
};

static void qd_done(struct urt_io *io, int res, void *arg)
{
	struct qd *q = arg;
	unsigned i = (unsigned)(io - q->io);

	q->res[i] = res;
	q->done_ns[i] = urt_clock_ns() - q->t0;
	q->order[q->ndone++] = i;
	urt_waitq_wake_all(&q->wq);
}

static void qd_fiber(void *p)
{
	struct qd *q = p;

	q->t0 = urt_clock_ns();
	for (unsigned i = 0; i < q->n; i++) {
		if (q->ops[i] == OP_FLUSH) {
			urt_io_prep_flush(&q->io[i], q->dev);
		} else {
			urt_io_prep_write(&q->io[i], q->dev, q->buf + i * 4096, 4096, i * 4096);
			if (q->ops[i] == OP_WRITE_FUA)
				q->io[i].flags |= URT_IO_FUA;
		}
		q->submit_err = urt_io_submit(&q->io[i], qd_done, q);
		if (q->submit_err) {
			q->n = i;
			break;
		}
	}
	while (q->ndone < q->n)
		urt_waitq_wait(&q->wq);
}

static struct qd *qd_run(struct urt_dev *dev, const enum sim_op *ops, unsigned n)
{
	struct qd *q = calloc(1, sizeof(*q));

	cr_assert_not_null(q);
	cr_assert_leq(n, QD_MAX);
	q->dev = dev;
	q->n = n;
	memcpy(q->ops, ops, n * sizeof(*ops));
	q->buf = abuf((size_t)n * 4096);
	fill(q->buf, (uint64_t)n * 4096, 21, 0);
	fx_run(rt, 0, qd_fiber, q);
	cr_assert_eq(q->submit_err, 0);
	cr_assert_eq(q->ndone, n);
	return q;
}

static void qd_free(struct qd *q)
{
	free(q->buf);
	free(q);
}

static void queued_flush(struct urt_sim_opts *o)
{
	o->flush_latency_ns = QD_LAT;
}

Test(sim, flushes_submitted_together_complete_one_after_another)
{
	struct urt_dev *dev = sim_open_with(1 << 20, 4096, queued_flush);
	enum sim_op ops[8];
	struct urt_sim_opts def;
	struct qd *q;

	urt_sim_opts_default(&def);
	cr_assert(def.flush_serial, "the realistic model is the default");
	for (unsigned i = 0; i < 8; i++)
		ops[i] = OP_FLUSH;
	q = qd_run(dev, ops, 8);
	for (unsigned k = 0; k < 8; k++) {
		cr_assert_eq(q->res[k], 0);
		cr_assert_eq(q->order[k], k, "completion %u was flush %u: flushes run in submission order", k,
			     q->order[k]);
		/*
		 * Flush k waited for the k before it and then ran its own
		 * latency.  Only a lower bound: timers never fire early, but a
		 * loaded machine may deliver late.  Overlapping flushes would
		 * all be done after about one latency.
		 */
		cr_assert_geq(q->done_ns[k], (k + 1) * QD_LAT, "flush %u done after %llu ns", k,
			      (unsigned long long)q->done_ns[k]);
	}
	cr_assert_eq(sim_st(dev).flushes, 8);
	cr_assert_gt(sim_st(dev).flush_queued_ns, 0);
	qd_free(q);
	urt_dev_close(dev);
}

Test(sim, flush_after_idle_waits_only_its_own_latency)
{
	struct urt_dev *dev = sim_open_with(1 << 20, 4096, queued_flush);
	enum sim_op ops[8] = { OP_FLUSH, OP_FLUSH, OP_FLUSH, OP_FLUSH, OP_FLUSH, OP_FLUSH, OP_FLUSH, OP_FLUSH };
	struct urt_sim_stats before, after;
	struct qd *q = qd_run(dev, ops, 8);
	uint64_t t0, took;

	qd_free(q);
	before = sim_st(dev);
	cr_assert_eq(before.flushes, 8);
	/* Submitted microseconds apart, 2 ms each: the burst did queue. */
	cr_assert_gt(before.flushes_queued, 0);
	/*
	 * The burst is over: its last completion was reaped at or after the
	 * queue's end, so a flush submitted now finds the queue empty.  This
	 * is exact, not timing: the stats show it never queued.
	 */
	t0 = urt_clock_ns();
	cr_assert_eq(run_op(OP_FLUSH, dev, NULL, 0, 0), 0);
	took = urt_clock_ns() - t0;
	after = sim_st(dev);
	cr_assert_eq(after.flushes, 9);
	cr_assert_eq(after.flushes_queued, before.flushes_queued, "a flush on an idle device does not queue");
	cr_assert_eq(after.flush_queued_ns, before.flush_queued_ns);
	cr_assert_geq(took, QD_LAT, "it still takes its own latency: %llu ns", (unsigned long long)took);
	urt_dev_close(dev);
}

static void emulated_fua_queued(struct urt_sim_opts *o)
{
	o->fua = false;
	o->flush_latency_ns = QD_LAT;
}

Test(sim, emulated_fua_writes_queue_with_flushes)
{
	struct urt_dev *dev = sim_open_with(1 << 20, 4096, emulated_fua_queued);
	enum sim_op ops[5] = { OP_FLUSH, OP_WRITE_FUA, OP_FLUSH, OP_WRITE_FUA, OP_WRITE };
	uint8_t *img = abuf(5 * 4096);
	struct urt_sim_stats st;
	struct qd *q = qd_run(dev, ops, 5);

	for (unsigned i = 0; i < 5; i++)
		cr_assert_eq(q->res[i], i == 0 || i == 2 ? 0 : 4096, "op %u: %d", i, q->res[i]);
	/* The plain write does not queue: it completes first, before any flush. */
	cr_assert_eq(q->order[0], 4);
	for (unsigned k = 0; k < 4; k++) {
		cr_assert_eq(q->order[k + 1], k, "completion %u was op %u", k + 1, q->order[k + 1]);
		cr_assert_geq(q->done_ns[k], (k + 1) * QD_LAT, "op %u done after %llu ns", k,
			      (unsigned long long)q->done_ns[k]);
	}
	st = sim_st(dev);
	cr_assert_eq(st.flushes, 2);
	cr_assert_eq(st.fua_writes, 2);
	/*
	 * The last FUA write's flush covered everything completed by then:
	 * both FUA writes and the plain write (which completed long before).
	 */
	cr_assert_eq(st.cache_entries, 0);
	cr_assert_eq(urt_sim_read_durable(dev, img, 5 * 4096, 0), 0);
	cr_assert(matches(img + 4096, 4096, 21, 4096));
	cr_assert(matches(img + 3 * 4096, 4096, 21, 3 * 4096));
	cr_assert(matches(img + 4 * 4096, 4096, 21, 4 * 4096));
	qd_free(q);
	free(img);
	urt_dev_close(dev);
}

Test(sim, queued_flush_covers_only_writes_completed_before_its_submission)
{
	/* Flush A, a write W, flush B, submitted together: W completes while B waits behind A. */
	enum sim_op ops[3] = { OP_FLUSH, OP_WRITE, OP_FLUSH };
	uint8_t *img = abuf(2 * 4096);
	unsigned lost = 0;

	for (uint64_t seed = 1; seed <= 12; seed++) {
		struct urt_dev *dev = sim_open_with(1 << 20, 4096, queued_flush);
		struct qd *q = qd_run(dev, ops, 3);

		cr_assert_eq(q->res[0], 0);
		cr_assert_eq(q->res[1], 4096);
		cr_assert_eq(q->res[2], 0);
		cr_assert_eq(q->order[0], 1, "the write completes first");
		cr_assert_geq(q->done_ns[2], 2 * QD_LAT, "B ran after A");
		/* B started after W completed, and still does not cover it. */
		cr_assert_eq(sim_st(dev).cache_entries, 1);
		cr_assert_eq(urt_sim_crash(dev, seed), 0);
		cr_assert_eq(urt_sim_read_durable(dev, img, 2 * 4096, 0), 0);
		lost += all_zero(img + 4096, 4096);
		qd_free(q);
		urt_dev_close(dev);
	}
	cr_assert_gt(lost, 0, "an uncovered write can be lost");
	free(img);
}

Test(sim, zero_flush_latency_never_queues)
{
	struct urt_dev *dev = sim_open_with(1 << 20, 4096, NULL);
	enum sim_op ops[QD_MAX];
	struct urt_sim_stats st;
	struct qd *q;

	for (unsigned i = 0; i < QD_MAX; i++)
		ops[i] = i % 2 ? OP_FLUSH : OP_WRITE;
	q = qd_run(dev, ops, QD_MAX);
	for (unsigned i = 0; i < QD_MAX; i++)
		cr_assert_eq(q->res[i], i % 2 ? 0 : 4096);
	st = sim_st(dev);
	cr_assert_eq(st.flushes, QD_MAX / 2);
	cr_assert_eq(st.flushes_queued, 0);
	cr_assert_eq(st.flush_queued_ns, 0);
	qd_free(q);
	urt_dev_close(dev);
}

/* A fixed random workload, then a crash: the post-crash image. */
static uint8_t *workload_image(uint64_t dev_seed, uint64_t crash_seed, struct urt_sim_stats *st)
{
	struct urt_sim_opts o;
	struct urt_dev *dev, *re = NULL;
	uint8_t *whole;
	uint64_t rng = 0x1234567;
	uint8_t *b = abuf(65536), *img = malloc(1 << 20);

	urt_sim_opts_default(&o);
	o.size_bytes = 1 << 20;
	o.block_bytes = 512;
	o.seed = dev_seed;
	cr_assert_eq(urt_sim_open(&o, &dev), 0);
	for (int i = 0; i < 80; i++) {
		uint64_t len = (fx_rand(&rng) % 64 + 1) * 512;
		uint64_t off = fx_rand(&rng) % ((1 << 20) / 512 - 128) * 512;

		fill(b, len, (uint64_t)i, off);
		cr_assert_eq(run_op(i % 7 == 3 ? OP_WRITE_FUA : OP_WRITE, dev, b, len, off), (ssize_t)len);
		if (i % 25 == 5)
			cr_assert_eq(run_op(OP_FLUSH, dev, NULL, 0, 0), 0);
	}
	cr_assert_eq(urt_sim_crash(dev, crash_seed), 0);
	cr_assert_eq(urt_sim_read_durable(dev, img, 1 << 20, 0), 0);
	*st = sim_st(dev);
	/* The reopened device serves the whole image, every chunk of it, through the runtime. */
	cr_assert_eq(urt_sim_reopen(dev, &re), 0);
	whole = abuf(1 << 20);
	cr_assert_eq(run_op(OP_READ, re, whole, 1 << 20, 0), 1 << 20);
	cr_assert_eq(memcmp(whole, img, 1 << 20), 0);
	free(whole);
	urt_dev_close(re);
	urt_dev_close(dev);
	free(b);
	return img;
}

Test(sim, same_seed_same_image)
{
	struct urt_sim_stats s1, s2, s3;
	uint8_t *a = workload_image(1, 77, &s1), *b = workload_image(1, 77, &s2), *c = workload_image(1, 78, &s3);

	cr_assert_eq(memcmp(a, b, 1 << 20), 0);
	cr_assert_eq(s1.crash_dropped, s2.crash_dropped);
	cr_assert_eq(s1.crash_applied, s2.crash_applied);
	cr_assert_eq(s1.crash_torn, s2.crash_torn);
	cr_assert_gt(s1.crash_dropped + s1.crash_applied + s1.crash_torn, 10);
	cr_assert_neq(memcmp(a, c, 1 << 20), 0, "another crash seed draws differently");
	free(a);
	free(b);
	free(c);
}

/* Ten FUA writes, one block each; the device dies right after the fifth is submitted. */
Test(sim, crash_after_the_nth_command)
{
	struct urt_dev *dev = sim_open_with(1 << 20, 4096, NULL), *re = NULL;
	uint8_t *b = abuf(4096);
	unsigned in_flight_landed = 0;

	cr_assert_eq(urt_sim_crash_after(dev, 5), 0);
	for (uint64_t i = 0; i < 10; i++) {
		fill(b, 4096, 50 + i, i * 4096);
		cr_assert_eq(run_op(OP_WRITE_FUA, dev, b, 4096, i * 4096), i < 4 ? 4096 : -EIO, "write %llu",
			     (unsigned long long)i);
	}
	cr_assert(sim_st(dev).crashed);
	cr_assert_eq(sim_st(dev).commands, 5, "nothing reached the device after the crash");
	cr_assert_eq(urt_dev_error(dev), -EIO);
	cr_assert_eq(run_op(OP_READ, dev, b, 4096, 0), -EIO);
	cr_assert_eq(urt_sim_reopen(dev, &re), 0);
	for (uint64_t i = 0; i < 10; i++) {
		cr_assert_eq(run_op(OP_READ, re, b, 4096, i * 4096), 4096);
		if (i < 4)
			cr_assert(matches(b, 4096, 50 + i, i * 4096), "block %llu", (unsigned long long)i);
		else if (i == 4)
			in_flight_landed = !all_zero(b, 4096);
		else
			cr_assert(all_zero(b, 4096), "block %llu written after the crash", (unsigned long long)i);
	}
	/* The in-flight fifth write was decided by the seeded draw, as one of the three outcomes. */
	cr_assert_eq(sim_st(dev).crash_dropped + sim_st(dev).crash_applied + sim_st(dev).crash_torn, 1);
	cr_assert_eq(in_flight_landed, sim_st(dev).crash_dropped == 0);
	/* The reopened device works and is healthy. */
	cr_assert_eq(urt_dev_error(re), 0);
	cr_assert_eq(run_op(OP_WRITE, re, b, 4096, 0), 4096);
	urt_dev_close(re);
	urt_dev_close(dev);
	free(b);
}

struct hook_log {
	struct urt_sim_cmd cmds[8];
	unsigned n;
};

/* Crash when the "superblock" at offset 0 is written. */
static bool superblock_hook(void *arg, const struct urt_sim_cmd *cmd)
{
	struct hook_log *log = arg;

	if (log->n < 8)
		log->cmds[log->n++] = *cmd;
	return cmd->op == URT_OP_WRITE && cmd->off == 0;
}

Test(sim, hook_crashes_at_a_chosen_command)
{
	struct urt_dev *dev = sim_open_with(1 << 20, 4096, NULL);
	struct hook_log log = { 0 };
	uint8_t *b = abuf(8192);

	cr_assert_eq(urt_sim_set_hook(dev, superblock_hook, &log), 0);
	fill(b, 8192, 60, 4096);
	cr_assert_eq(run_op(OP_WRITE, dev, b, 8192, 4096), 8192);
	cr_assert_eq(run_op(OP_FLUSH, dev, NULL, 0, 0), 0);
	cr_assert_eq(run_op(OP_WRITE_FUA, dev, b, 4096, 0), -EIO);
	cr_assert_eq(log.n, 3);
	cr_assert_eq(log.cmds[0].index, 1);
	cr_assert_eq(log.cmds[0].op, URT_OP_WRITE);
	cr_assert_eq(log.cmds[0].off, 4096);
	cr_assert_eq(log.cmds[0].len, 8192);
	cr_assert_eq(log.cmds[1].op, URT_OP_FLUSH);
	cr_assert_eq(log.cmds[2].index, 3);
	cr_assert(log.cmds[2].fua);
	cr_assert(sim_st(dev).crashed);
	/* The flushed write survived whatever the draw did to the superblock write. */
	cr_assert_eq(urt_sim_read_durable(dev, b, 8192, 4096), 0);
	cr_assert(matches(b, 8192, 60, 4096));
	urt_dev_close(dev);
	free(b);
}

static void tiny_cache(struct urt_sim_opts *o)
{
	o->cache_entries_max = 4;
}

Test(sim, full_cache_evicts_oldest_writes_to_durable)
{
	uint8_t *b = abuf(4096), *img = abuf(4096);

	for (uint64_t seed = 1; seed <= 20; seed++) {
		struct urt_dev *dev = sim_open_with(1 << 20, 4096, tiny_cache);

		for (uint64_t i = 0; i < 10; i++) {
			fill(b, 4096, i, i * 4096);
			cr_assert_eq(run_op(OP_WRITE, dev, b, 4096, i * 4096), 4096);
		}
		/* Each write is evicted once four newer ones are cached (the bound includes the new one). */
		cr_assert_eq(sim_st(dev).evictions, 6);
		cr_assert_eq(sim_st(dev).cache_entries, 4);
		cr_assert_eq(urt_sim_crash(dev, seed), 0);
		for (uint64_t i = 0; i < 6; i++) {
			cr_assert_eq(urt_sim_read_durable(dev, img, 4096, i * 4096), 0);
			cr_assert(matches(img, 4096, i, i * 4096), "seed %llu: evicted block %llu lost",
				  (unsigned long long)seed, (unsigned long long)i);
		}
		urt_dev_close(dev);
	}
	free(b);
	free(img);
}

Test(sim, api_rejects_misuse)
{
	struct urt_dev *dev = sim_open_with(1 << 20, 4096, NULL), *re = NULL;
	struct urt_sim_opts o;
	uint8_t b[16];

	cr_assert_eq(urt_sim_reopen(dev, &re), -EINVAL, "reopen needs a crash first");
	cr_assert_eq(urt_sim_read_durable(dev, b, 16, (1 << 20) - 8), -EINVAL);
	cr_assert_eq(urt_sim_read_durable(dev, b, 16, 100), 0, "any alignment");
	cr_assert_eq(urt_sim_crash_after(dev, 0), 0);
	urt_sim_opts_default(&o);
	o.block_bytes = 1024;
	cr_assert_eq(urt_sim_open(&o, &re), -EINVAL);
	urt_sim_opts_default(&o);
	o.max_io_bytes = 1000;
	cr_assert_eq(urt_sim_open(&o, &re), -EINVAL);
	for (int i = 0; i < 16; i++)
		cr_assert_eq(urt_sim_inject(dev, URT_SIM_FAULT_READ_EIO, 0, 4096, 1), 0);
	cr_assert_eq(urt_sim_inject(dev, URT_SIM_FAULT_READ_EIO, 0, 4096, 1), -ENOSPC);
	cr_assert_eq(urt_sim_crash(dev, 1), 0);
	cr_assert_eq(urt_sim_crash_after(dev, 3), -EALREADY);
	urt_dev_close(dev);
}

/*
 * Model check against the contract, with writes and flushes overlapping in
 * flight: after the crash every sector must hold the newest write that was
 * guaranteed durable (a completed FUA write, or a write that completed
 * before a flush was submitted that then completed), or a write submitted
 * after it.  Each sector carries the id of the write that put it there.
 */
#define MC_OPS 160
#define MC_BLOCKS 32

struct mc_op {
	struct urt_io io;
	struct mc_state *s;
	int kind;		/* 0 write, 1 FUA write, 2 flush. */
	uint64_t id;		/* Write id (submission order, from 1). */
	uint64_t off, len;
	uint64_t submit_clock;	/* Completions seen when it was submitted. */
	uint64_t done_clock;	/* Its completion's clock value; 0 = not completed. */
	int res;
	uint8_t *buf;
};

struct mc_state {
	struct urt_dev *dev;
	uint64_t seed;
	uint64_t clock;		/* Completions so far. */
	unsigned n, pending;
	struct mc_op ops[MC_OPS];
	struct urt_waitq wq;
	int crash_res;
};

static void mc_done(struct urt_io *io, int res, void *arg)
{
	struct mc_op *op = arg;

	(void)io;
	op->res = res;
	op->done_clock = ++op->s->clock;
	op->s->pending--;
	urt_waitq_wake_all(&op->s->wq);
}

static void mc_fiber(void *p)
{
	struct mc_state *s = p;
	uint64_t rng = s->seed * 0x9e3779b97f4a7c15ull + 1, next_id = 1;
	unsigned crash_at = (unsigned)(fx_rand(&rng) % MC_OPS);

	for (s->n = 0; s->n < MC_OPS; s->n++) {
		struct mc_op *op = &s->ops[s->n];
		uint64_t r = fx_rand(&rng) % 10;

		if (s->n == crash_at)
			break;
		op->s = s;
		op->kind = r < 6 ? 0 : r < 8 ? 1 : 2;
		op->submit_clock = s->clock;
		if (op->kind == 2) {
			urt_io_prep_flush(&op->io, s->dev);
		} else {
			uint64_t blocks = fx_rand(&rng) % 3 + 1;

			op->id = next_id++;
			op->off = fx_rand(&rng) % (MC_BLOCKS - blocks + 1) * 4096;
			op->len = blocks * 4096;
			op->buf = aligned_alloc(4096, op->len);
			for (uint64_t k = 0; k < op->len; k += URT_SIM_SECTOR_BYTES) {
				memcpy(op->buf + k, &op->id, 8);
				memcpy(op->buf + k + 8, &(uint64_t){ op->off + k }, 8);
			}
			urt_io_prep_write(&op->io, s->dev, op->buf, op->len, op->off);
			if (op->kind == 1)
				op->io.flags |= URT_IO_FUA;
		}
		s->pending++;
		if (urt_io_submit(&op->io, mc_done, op))
			abort();
		/* Sometimes let completions arrive, sometimes pile up in flight. */
		if (fx_rand(&rng) % 3 == 0)
			urt_sleep_ns(fx_rand(&rng) % 400000);
	}
	s->crash_res = urt_sim_crash(s->dev, s->seed);
	while (s->pending)
		urt_waitq_wait(&s->wq);
}

static void slow_everything(struct urt_sim_opts *o)
{
	o->size_bytes = MC_BLOCKS * 4096;
	o->write_latency_ns = 300000;
	o->flush_latency_ns = 150000;
}

Test(sim, crash_respects_the_durability_contract)
{
	uint8_t *img = abuf(MC_BLOCKS * 4096);
	uint64_t guaranteed_checks = 0, newer_seen = 0;

	for (uint64_t seed = 1; seed <= 40; seed++) {
		struct mc_state *s = calloc(1, sizeof(*s));

		s->seed = seed;
		s->dev = sim_open_with(MC_BLOCKS * 4096, 4096, slow_everything);
		fx_run(rt, 0, mc_fiber, s);
		cr_assert_eq(s->crash_res, 0);
		cr_assert_eq(urt_sim_read_durable(s->dev, img, MC_BLOCKS * 4096, 0), 0);
		for (uint64_t sec = 0; sec < MC_BLOCKS * 4096; sec += URT_SIM_SECTOR_BYTES) {
			uint64_t g = 0, got, where;	/* Newest guaranteed write id of this sector. */
			bool allowed;

			for (unsigned i = 0; i < s->n; i++) {
				struct mc_op *w = &s->ops[i];
				bool durable = false;

				if (w->kind == 2 || sec < w->off || sec >= w->off + w->len || w->res < 0 || !w->done_clock)
					continue;
				durable = w->kind == 1;
				for (unsigned j = 0; j < s->n && !durable; j++) {
					struct mc_op *f = &s->ops[j];

					durable = f->kind == 2 && f->res == 0 && f->done_clock &&
						  w->done_clock <= f->submit_clock;
				}
				if (durable && w->id > g)
					g = w->id;
			}
			memcpy(&got, img + sec, 8);
			memcpy(&where, img + sec + 8, 8);
			if (got == 0) {
				allowed = g == 0 && all_zero(img + sec, URT_SIM_SECTOR_BYTES);
			} else {
				allowed = got >= g && where == sec;
				for (unsigned i = 0; i < s->n && allowed; i++)
					if (s->ops[i].kind != 2 && s->ops[i].id == got)
						allowed = sec >= s->ops[i].off && sec < s->ops[i].off + s->ops[i].len;
			}
			cr_assert(allowed, "seed %llu sector %llu: holds write %llu, newest guaranteed is %llu",
				  (unsigned long long)seed, (unsigned long long)sec, (unsigned long long)got,
				  (unsigned long long)g);
			guaranteed_checks += g != 0;
			newer_seen += got > g;
		}
		for (unsigned i = 0; i < s->n; i++)
			free(s->ops[i].buf);
		urt_dev_close(s->dev);
		free(s);
	}
	/* The workload did exercise both sides of the contract. */
	cr_assert_gt(guaranteed_checks, 100);
	cr_assert_gt(newer_seen, 10);
	free(img);
}

/* Every core of a runtime writes its own blocks of one device, then flushes. */
struct mc_core {
	struct urt_dev *dev;
	unsigned core;
	int bad;		/* Ops that failed. */
	sem_t *done;
};

#define CORE_BLOCKS 16
#define CORE_ROUNDS 200

static void core_worker(void *p)
{
	struct mc_core *w = p;
	uint8_t *b = aligned_alloc(4096, 4096), *r = aligned_alloc(4096, 4096);

	for (unsigned i = 0; i < CORE_ROUNDS; i++) {
		uint64_t off = (w->core * CORE_BLOCKS + i % CORE_BLOCKS) * 4096ull;

		fill(b, 4096, i, off);
		w->bad += urt_write(w->dev, b, 4096, off) != 4096;
		w->bad += urt_read(w->dev, r, 4096, off) != 4096 || memcmp(b, r, 4096) != 0;
		if (i % 10 == 9)
			w->bad += urt_flush(w->dev) != 0;
	}
	w->bad += urt_flush(w->dev) != 0;
	free(b);
	free(r);
	sem_post(w->done);
}

Test(sim, cores_share_one_device)
{
	struct urt_rt_opts o;
	struct urt_rt *rt2;
	struct urt_dev *dev = sim_open_with(1 << 20, 4096, NULL);
	struct mc_core w[8];
	uint8_t *img = abuf(4096);
	unsigned n;
	sem_t done;

	urt_rt_opts_default(&o);
	o.buf_region_bytes = 1u << 20;
	o.buf_hugepages = false;
	o.buf_allow_unregistered = true;
	rt2 = fx_start(&o);
	n = urt_rt_ncores(rt2) < 8 ? urt_rt_ncores(rt2) : 8;
	sem_init(&done, 0, 0);
	for (unsigned c = 0; c < n; c++) {
		w[c] = (struct mc_core){ .dev = dev, .core = c, .done = &done };
		cr_assert_eq(urt_fiber_spawn_on(rt2, c, core_worker, &w[c]), 0);
	}
	for (unsigned c = 0; c < n; c++)
		sem_wait(&done);
	urt_rt_stop(rt2);
	cr_assert_eq(urt_sim_crash(dev, 3), 0);
	for (unsigned c = 0; c < n; c++) {
		cr_assert_eq(w[c].bad, 0, "core %u", c);
		for (unsigned k = 0; k < CORE_BLOCKS; k++) {
			uint64_t off = (c * CORE_BLOCKS + k) * 4096ull;
			/* The last round that wrote block k. */
			unsigned last = k + (CORE_ROUNDS - 1 - k) / CORE_BLOCKS * CORE_BLOCKS;

			cr_assert_eq(urt_sim_read_durable(dev, img, 4096, off), 0);
			cr_assert(matches(img, 4096, last, off), "core %u block %u", c, k);
		}
	}
	cr_assert_eq(sim_st(dev).writes, (uint64_t)n * CORE_ROUNDS);
	urt_dev_close(dev);
	free(img);
	sem_destroy(&done);
}
