/*
 * The scheduler's merging: contiguous ops leave as one command and each
 * gets its own result back; a failed or short merged command is retried
 * per op; nothing merges across a FUA write, a flush, a class or the
 * device's maximum I/O size.  Runs on the sim device, whose counters say
 * how many commands the device saw.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "urt/sim.h"
#include "../fixture.h"
#include "../../sim_open.h"


#define PG 4096u
#define NOPS 48

struct mt {
	struct urt_dev *dev;
	struct urt_io io[NOPS];
	int res[NOPS];
	unsigned done;
	uint8_t *buf;		/* NOPS pages. */
	bool split_bufs;	/* Buffers every other page: a vectored command. */
	uint8_t prio[NOPS];
	uint8_t flags[NOPS];
	unsigned n;
	bool blocker;		/* Queue everything behind a write to page 1000. */
	int flush_after;	/* Queue a flush after this op; -1: none. */
	int other_err;		/* Error of the blocker or the flush. */
	struct urt_waitq wq;
};

static void mt_done(struct urt_io *io, int res, void *arg)
{
	struct mt *t = arg;

	t->res[io - t->io] = res;
	t->done++;
	urt_waitq_wake_all(&t->wq);
}

/* The blocker write and the flush: they must succeed too. */
static void mt_other_done(struct urt_io *io, int res, void *arg)
{
	struct mt *t = arg;

	(void)io;
	if (res < 0)
		t->other_err = res;
	t->done++;
	urt_waitq_wake_all(&t->wq);
}

/*
 * Write (or read) n contiguous pages at page 0, all submitted in one loop
 * iteration.  With t->blocker, a write to page 1000 goes first, so that every
 * op queues behind it (depth 1) and the first one merges too; with
 * t->flush_after >= 0, a flush is queued after that op.
 */
static void mt_submit_all(struct mt *t, bool write)
{
	struct urt_io blk, fl;
	unsigned want = t->n;

	t->done = 0;
	memset(&t->wq, 0, sizeof(t->wq));
	if (t->blocker) {
		urt_io_prep_write(&blk, t->dev, t->buf, PG, 1000 * PG);
		cr_assert_eq(urt_io_submit(&blk, mt_other_done, t), 0);
		want++;
	}
	for (unsigned i = 0; i < t->n; i++) {
		uint8_t *p = t->buf + (uint64_t)i * PG * (t->split_bufs ? 2 : 1);

		if (write)
			urt_io_prep_write(&t->io[i], t->dev, p, PG, (uint64_t)i * PG);
		else
			urt_io_prep_read(&t->io[i], t->dev, p, PG, (uint64_t)i * PG);
		t->io[i].prio = t->prio[i];
		t->io[i].flags |= t->flags[i];
		t->res[i] = 1;
		cr_assert_eq(urt_io_submit(&t->io[i], mt_done, t), 0);
		if ((int)i == t->flush_after) {
			urt_io_prep_flush(&fl, t->dev);
			cr_assert_eq(urt_io_submit(&fl, mt_other_done, t), 0);
			want++;
		}
	}
	while (t->done < want)
		urt_waitq_wait(&t->wq);
}

static void mt_read(void *arg)
{
	mt_submit_all(arg, false);
}

static void fill(struct mt *t, uint64_t seed)
{
	for (unsigned i = 0; i < t->n; i++) {
		uint8_t *p = t->buf + (uint64_t)i * PG * (t->split_bufs ? 2 : 1);

		for (unsigned b = 0; b < PG; b++)
			p[b] = fx_pattern(seed, (uint64_t)i * PG + b);
	}
}

static struct urt_rt *rt;

static void start(void)
{
	struct urt_rt_opts o;

	fx_opts_one_core(&o);
	o.retry_backoff_ns = 10000;
	rt = fx_start(&o);
}

static void stop(void)
{
	urt_rt_stop(rt);
}

static struct urt_dev *sim_with_sched(enum urt_sched_policy pol, uint32_t depth, uint32_t max_io)
{
	struct urt_sim_opts so;
	struct urt_sched_opts sc;
	struct urt_dev *dev;

	urt_sim_opts_default(&so);
	so.size_bytes = 16u << 20;
	so.write_latency_ns = 200000;	/* Keeps the first op in flight while the rest queue. */
	so.read_latency_ns = 200000;
	if (max_io)
		so.max_io_bytes = max_io;
	dev = tests_sim_open(&so);
	urt_sched_opts_default(&sc);
	sc.policy = pol;
	sc.depth_max = depth;
	cr_assert_eq(urt_dev_sched_set(dev, &sc), 0, "%s", urt_last_error());
	return dev;
}

static void run_write_read(void *arg)
{
	struct mt *t = arg;

	fill(t, 7);
	mt_submit_all(t, true);
	for (unsigned i = 0; i < t->n; i++)
		if (t->res[i] != (int)PG)
			return;
	memset(t->buf, 0, (size_t)NOPS * PG * 2);
	mt_submit_all(t, false);
}

static void check_data(struct mt *t, uint64_t seed)
{
	for (unsigned i = 0; i < t->n; i++) {
		uint8_t *p = t->buf + (uint64_t)i * PG * (t->split_bufs ? 2 : 1);

		cr_assert_eq(t->res[i], (int)PG, "op %u: %d", i, t->res[i]);
		for (unsigned b = 0; b < PG; b += 511)
			cr_assert_eq(p[b], fx_pattern(seed, (uint64_t)i * PG + b), "op %u byte %u", i, b);
	}
}

static struct mt *mt_new(struct urt_dev *dev, unsigned n, bool split)
{
	struct mt *t = calloc(1, sizeof(*t));

	t->dev = dev;
	t->n = n;
	t->split_bufs = split;
	t->flush_after = -1;
	t->buf = aligned_alloc(PG, (size_t)NOPS * PG * 2);
	return t;
}

static void mt_free(struct mt *t)
{
	free(t->buf);
	free(t);
}

TestSuite(sched_merge, .init = start, .fini = stop);

Test(sched_merge, contiguous_buffers_one_command)
{
	struct urt_dev *dev = sim_with_sched(URT_SCHED_FIFO, 1, 0);
	struct mt *t = mt_new(dev, 32, false);
	struct urt_sim_stats ss;
	struct urt_sched_stats st;

	fx_run(rt, 0, run_write_read, t);
	check_data(t, 7);
	urt_sim_stats(dev, &ss);
	urt_dev_sched_stats(dev, &st);
	/* Queued in one loop iteration, the 32 ops leave as one command each way. */
	cr_assert_eq(ss.writes, 1, "writes %llu", (unsigned long long)ss.writes);
	cr_assert_eq(ss.reads, 1, "reads %llu", (unsigned long long)ss.reads);
	cr_assert_eq(st.merged, 64);
	cr_assert_eq(st.commands, 2);
	mt_free(t);
	urt_dev_close(dev);
}

Test(sched_merge, scattered_buffers_vectored)
{
	struct urt_dev *dev = sim_with_sched(URT_SCHED_CSCAN, 1, 0);
	struct mt *t = mt_new(dev, 20, true);
	struct urt_sim_stats ss;

	fx_run(rt, 0, run_write_read, t);
	check_data(t, 7);
	urt_sim_stats(dev, &ss);
	cr_assert_eq(ss.writes, 1);
	cr_assert_eq(ss.reads, 1);
	mt_free(t);
	urt_dev_close(dev);
}

Test(sched_merge, never_past_max_io_bytes)
{
	/* MDTS of 4 pages: 32 contiguous pages make 8 commands of 4. */
	struct urt_dev *dev = sim_with_sched(URT_SCHED_FIFO, 1, 4 * PG);
	struct mt *t = mt_new(dev, 32, false);
	struct urt_sim_stats ss;

	fx_run(rt, 0, run_write_read, t);
	check_data(t, 7);
	urt_sim_stats(dev, &ss);
	cr_assert_eq(ss.writes, 8, "writes %llu", (unsigned long long)ss.writes);
	cr_assert_leq(ss.bytes_written, 32 * PG);
	mt_free(t);
	urt_dev_close(dev);
}

Test(sched_merge, never_across_class_or_fua)
{
	struct urt_dev *dev = sim_with_sched(URT_SCHED_FIFO, 1, 0);
	struct mt *t = mt_new(dev, 16, false);
	struct urt_sim_stats ss;

	/* Pages 1-4 NORMAL, 5-8 BACKGROUND, 9 FUA, 10-15 NORMAL: runs 1-4, 5-8, 9, 10-15. */
	for (unsigned i = 5; i <= 8; i++)
		t->prio[i] = URT_PRIO_BACKGROUND;
	t->flags[9] = URT_IO_FUA;
	fx_run(rt, 0, run_write_read, t);
	check_data(t, 7);
	urt_sim_stats(dev, &ss);
	cr_assert_eq(ss.fua_writes, 1);
	/* One command per run: no run may cross a boundary. */
	cr_assert_eq(ss.writes, 4, "writes %llu", (unsigned long long)ss.writes);
	mt_free(t);
	urt_dev_close(dev);
}

Test(sched_merge, never_across_flush)
{
	struct urt_dev *dev = sim_with_sched(URT_SCHED_FIFO, 1, 0);
	struct mt *t = mt_new(dev, 16, false);
	struct urt_sim_stats ss;

	t->flush_after = 8;
	fx_run(rt, 0, run_write_read, t);
	check_data(t, 7);
	cr_assert_eq(t->other_err, 0);
	urt_sim_stats(dev, &ss);
	cr_assert_eq(ss.flushes, 2);	/* One among the writes, one among the reads. */
	/* 0-8 before the flush; 9-15 after it. */
	cr_assert_eq(ss.writes, 2, "writes %llu", (unsigned long long)ss.writes);
	mt_free(t);
	urt_dev_close(dev);
}

Test(sched_merge, failed_merge_retried_per_op)
{
	struct urt_dev *dev = sim_with_sched(URT_SCHED_FIFO, 1, 0);
	struct mt *t = mt_new(dev, 16, false);
	struct urt_sched_stats st;

	/* Page 7 always fails to read: the merged read fails, then only op 7 does. */
	fill(t, 7);
	fx_run(rt, 0, run_write_read, t);	/* Writes and reads back once, all good. */
	check_data(t, 7);
	cr_assert_eq(urt_sim_inject(dev, URT_SIM_FAULT_READ_EIO, 7 * PG, PG, URT_SIM_FOREVER), 0);
	t->blocker = true;
	memset(t->buf, 0, (size_t)NOPS * PG * 2);
	fx_run(rt, 0, mt_read, t);
	for (unsigned i = 0; i < t->n; i++) {
		if (i == 7) {
			cr_assert_eq(t->res[i], -EIO, "op 7: %d", t->res[i]);
			continue;
		}
		cr_assert_eq(t->res[i], (int)PG, "op %u: %d", i, t->res[i]);
	}
	urt_dev_sched_stats(dev, &st);
	/* All 16 went out as one command, then each alone. */
	cr_assert_eq(st.merge_retries, 16, "merge retries %llu", (unsigned long long)st.merge_retries);
	mt_free(t);
	urt_dev_close(dev);
}

/* A short merged read: the ops it covered are done, the rest retried alone. */
static struct urt_rt *rt_short;

static void start_short(void)
{
	struct urt_rt_opts o;

	fx_opts_one_core(&o);
	o.fault.seed = 3;
	o.fault.rate_ppm = 1000000;
	o.fault.kinds = URT_FAULT_SHORT;
	o.fault.op_mask = 1u << URT_OP_READ;
	o.fault.count_max = 1;
	rt_short = fx_start(&o);
}

static void stop_short(void)
{
	urt_rt_stop(rt_short);
}

static void run_write_then_short_read(void *arg)
{
	struct mt *t = arg;

	fill(t, 5);
	mt_submit_all(t, true);
	memset(t->buf, 0, (size_t)NOPS * PG * 2);
	t->blocker = true;
	mt_submit_all(t, false);
}

Test(sched_short, short_merged_read_split_per_op, .init = start_short, .fini = stop_short)
{
	struct urt_dev *dev = sim_with_sched(URT_SCHED_SSTF, 1, 0);
	struct mt *t = mt_new(dev, 16, false);
	struct urt_sched_stats st;
	struct urt_sim_stats ss;

	fx_run(rt_short, 0, run_write_then_short_read, t);
	check_data(t, 5);
	cr_assert_eq(t->other_err, 0);
	urt_dev_sched_stats(dev, &st);
	urt_sim_stats(dev, &ss);
	/* Half of 16 pages came back: 8 ops done, 8 retried alone. */
	cr_assert_eq(st.merge_retries, 8, "merge retries %llu", (unsigned long long)st.merge_retries);
	cr_assert_eq(ss.reads, 1 + 8, "reads %llu", (unsigned long long)ss.reads);
	mt_free(t);
	urt_dev_close(dev);
}

/* Stop with ops queued in the scheduler: each is answered exactly once. */
struct stop_run {
	struct urt_dev *dev;
	uint8_t *buf;
	struct urt_io io[NOPS];
	int res[NOPS];
	unsigned calls[NOPS];
};

static void stop_done(struct urt_io *io, int res, void *arg)
{
	struct stop_run *s = arg;

	s->res[io - s->io] = res;
	s->calls[io - s->io]++;
}

static void stop_submit(void *arg)
{
	struct stop_run *s = arg;

	/* Scattered offsets, so that most ops wait in the queue as separate commands. */
	for (unsigned i = 0; i < NOPS; i++) {
		urt_io_prep_write(&s->io[i], s->dev, s->buf, PG, (uint64_t)((i * 37) % 997) * PG * 2);
		cr_assert_eq(urt_io_submit(&s->io[i], stop_done, s), 0);
	}
}

Test(sched_stop, queued_ops_answered_once_at_stop)
{
	struct urt_rt *r;
	struct urt_rt_opts o;
	struct stop_run *s = calloc(1, sizeof(*s));
	unsigned cancelled = 0;

	fx_opts_one_core(&o);
	r = fx_start(&o);
	s->dev = sim_with_sched(URT_SCHED_CSCAN, 1, 0);
	s->buf = aligned_alloc(PG, PG);
	fx_run(r, 0, stop_submit, s);
	urt_rt_stop(r);
	for (unsigned i = 0; i < NOPS; i++) {
		cr_assert_eq(s->calls[i], 1, "op %u answered %u times", i, s->calls[i]);
		cr_assert(s->res[i] == (int)PG || s->res[i] == -ECANCELED, "op %u: %d", i, s->res[i]);
		cancelled += s->res[i] == -ECANCELED;
	}
	/* 200 us a command, depth 1: most were still queued when the stop came. */
	cr_assert_gt(cancelled, 0);
	urt_dev_close(s->dev);
	free(s->buf);
	free(s);
}

/*
 * An O_DIRECT file with registered buffers scattered in the region: the
 * merged commands are WRITEV_FIXED / READV_FIXED where the kernel has them
 * (urt_kernel_probe().rw_vec_fixed), else WRITEV / READV; the data must
 * come back either way.
 */
struct file_run {
	struct urt_dev *dev;
	uint8_t *bufs[16];
	struct urt_io io[16];
	int res[16];
	unsigned done;
	bool bad;
	struct urt_waitq wq;
};

static void file_done(struct urt_io *io, int res, void *arg)
{
	struct file_run *f = arg;

	f->res[io - f->io] = res;
	f->done++;
	urt_waitq_wake_all(&f->wq);
}

static void file_pass(struct file_run *f, bool write)
{
	f->done = 0;
	for (unsigned i = 0; i < 16; i++) {
		if (write)
			urt_io_prep_write(&f->io[i], f->dev, f->bufs[i], PG, (uint64_t)i * PG);
		else
			urt_io_prep_read(&f->io[i], f->dev, f->bufs[i], PG, (uint64_t)i * PG);
		if (urt_io_submit(&f->io[i], file_done, f))
			f->res[i] = -1000;
	}
	while (f->done < 16)
		urt_waitq_wait(&f->wq);
}

static void file_body(void *arg)
{
	struct file_run *f = arg;
	void *gap[16];

	memset(&f->wq, 0, sizeof(f->wq));
	for (unsigned i = 0; i < 16; i++) {
		f->bufs[i] = urt_buf_get(PG);
		gap[i] = urt_buf_get(PG);	/* Keeps the buffers apart: a vector, not one run. */
		for (unsigned b = 0; b < PG; b++)
			f->bufs[i][b] = fx_pattern(11, (uint64_t)i * PG + b);
	}
	file_pass(f, true);
	for (unsigned i = 0; i < 16; i++)
		memset(f->bufs[i], 0, PG);
	file_pass(f, false);
	for (unsigned i = 0; i < 16; i++) {
		for (unsigned b = 0; b < PG; b++)
			if (f->bufs[i][b] != fx_pattern(11, (uint64_t)i * PG + b))
				f->bad = true;
		urt_buf_put(f->bufs[i]);
		urt_buf_put(gap[i]);
	}
}

Test(sched_merge, file_registered_vectors)
{
	struct file_run *f = calloc(1, sizeof(*f));
	struct urt_sched_opts sc;
	struct urt_sched_stats st;
	struct urt_kernel_features kf;
	struct urt_stats rs0, rs;
	struct fx_file file;
	uint64_t fixed;

	fx_file_open(&file, 1 << 20, true);
	f->dev = file.dev;
	urt_sched_opts_default(&sc);
	sc.depth_max = 1;
	cr_assert_eq(urt_dev_sched_set(f->dev, &sc), 0);
	cr_assert_eq(urt_rt_stats(rt, 0, &rs0), 0);
	fx_run(rt, 0, file_body, f);
	cr_assert_eq(urt_rt_stats(rt, 0, &rs), 0);
	for (unsigned i = 0; i < 16; i++)
		cr_assert_eq(f->res[i], (int)PG, "op %u: %d", i, f->res[i]);
	cr_assert(!f->bad, "data read back differs");
	urt_dev_sched_stats(f->dev, &st);
	cr_assert_eq(st.commands, 2, "commands %llu", (unsigned long long)st.commands);
	cr_assert_eq(st.merged, 32);
	/*
	 * Each merged command is one vector over registered buffers: READV/
	 * WRITEV_FIXED where the kernel has them (6.15) and the region is
	 * registered, else plain READV/WRITEV.  Either moves the same data,
	 * so only the counter shows a vector that quietly went unregistered.
	 */
	urt_kernel_probe(&kf);
	fixed = rs.sqes_fixed_buf - rs0.sqes_fixed_buf;
	cr_log_info("merged vectors: %llu of 2 commands FIXED (READV_FIXED %s, region %s)", (unsigned long long)fixed,
		    kf.rw_vec_fixed ? "probed" : "absent", rs.bufs_registered ? "registered" : "not registered");
	if (kf.rw_vec_fixed && rs.bufs_registered)
		cr_assert_eq(fixed, 2, "%llu of the 2 merged vectors used READV_FIXED/WRITEV_FIXED",
			     (unsigned long long)fixed);
	else
		cr_assert_eq(fixed, 0, "%llu commands counted as FIXED without READV_FIXED or a registered region",
			     (unsigned long long)fixed);
	fx_file_close(&file);
	free(f);
}
