/*
 * urbench engines against a small file: each mode moves exactly the ops and
 * bytes asked for, reads return the data that was written, and a mode the
 * device cannot do ends with status 2 and a clear line.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "urbench/engine.h"
#include "urbench/target.h"
#include "urt/dev.h"
#include "urt/error.h"
#include "urt/rt.h"

#define FILE_BYTES (8u << 20)

static char dir[200];
static char path[240];
static struct ub_result *res;

static void setup(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/urbench-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/target.dat", dir);
	res = calloc(1, sizeof(*res));
	cr_assert_not_null(res);
}

static void teardown(void)
{
	unlink(path);
	rmdir(dir);
	free(res);
}

TestSuite(urbench_engines, .init = setup, .fini = teardown);

/* Options for a short run of `ops` ops on path. */
static void opts_for(struct ub_opts *o, enum ub_rw rw, unsigned qd, uint64_t ops)
{
	ub_opts_default(o);
	snprintf(o->target, sizeof(o->target), "%s", path);
	o->target_kind = UB_TARGET_PATH;
	o->size_bytes = FILE_BYTES;
	o->rw = rw;
	o->qd = qd;
	o->ops = ops;
	o->ramp_s = 0;
	o->verify = true;
	o->progress = 0;
}

/* ub_target_open's inputs and outputs. */
struct target_case {
	struct ub_opts o;	/* What to open; the test edits it between opens. */
	struct ub_mode m;	/* The mode it is opened for. */
	struct ub_target t;	/* The target the last open returned. */
	bool created;		/* The last open created the file. */
	char err[512];		/* Why the last open failed. */
};

static int target_case_open(struct target_case *x)
{
	return ub_target_open(&x->o, &x->m, 1, &x->t, &x->created, x->err, sizeof(x->err));
}

/* Sets the mode to the one named name, which must parse. */
static void target_case_mode(struct target_case *x, const char *name)
{
	cr_assert_eq(ub_mode_parse(name, &x->m, x->err, sizeof(x->err)), 0, "%s", x->err);
}

/* Ten ops of rw on path at QD 1 in mode "uring": this first open must succeed. */
static void target_case_init(struct target_case *x, enum ub_rw rw)
{
	opts_for(&x->o, rw, 1, 10);
	target_case_mode(x, "uring");
	cr_assert_eq(target_case_open(x), 0, "%s", x->err);
}

/* Opens path as o says for the mode named mode_name and runs it; returns the exit status. */
static int run(const struct ub_opts *o, const char *mode_name)
{
	struct target_case x = { .o = *o };

	target_case_mode(&x, mode_name);
	cr_assert_eq(target_case_open(&x), 0, "%s", x.err);
	return ub_run_mode(&x.o, &x.m, &x.t, res);
}

/* Runs o in the mode named mode_name; the run must end with UB_EXIT_OK. */
static void run_ok(const struct ub_opts *o, const char *mode_name)
{
	int status = run(o, mode_name);

	cr_assert_eq(status, UB_EXIT_OK, "%s: %s", mode_name, res->errmsg);
}

static void assert_reads_ok(const char *mode, uint64_t ops)
{
	struct ub_opts o;

	opts_for(&o, UB_RW_RANDREAD, 8, ops);
	run_ok(&o, mode);
	cr_assert_eq(res->total.ops, ops, "%s: %llu ops", mode, (unsigned long long)res->total.ops);
	cr_assert_eq(res->total.reads, ops);
	cr_assert_eq(res->total.writes, 0);
	cr_assert_eq(res->total.bytes, ops * 4096);
	cr_assert_eq(res->total.hist.count, ops);
	cr_assert_eq(res->verify_errors, 0);
	cr_assert_eq(res->errors, 0);
	cr_assert_gt(res->total.secs, 0);
	cr_assert_gt(res->total.hist.min, 0);
}

/* Skip when the kernel refuses the mode's ring setup (not the device). */
static void skip_unless_mode_starts(enum urt_poll_mode mode, const char *name)
{
	struct urt_rt_opts ro;
	struct urt_rt *rt;
	int cpu = 0;

	urt_rt_opts_default(&ro);
	ro.mode = mode;
	ro.ncpus = 1;
	{
		struct ub_opts o;

		ub_opts_default(&o);
		cpu = o.cpus[0];
	}
	ro.cpus = &cpu;
	ro.buf_region_bytes = 64u << 10;
	if (urt_rt_start(&ro, &rt))
		cr_skip_test("%s: this kernel refuses the ring setup: %s", name, urt_last_error());
	urt_rt_stop(rt);
}

Test(urbench_engines, created_file_holds_the_signature_psync)
{
	assert_reads_ok("psync", 2000);
	cr_assert_str_eq(res->backend, "psync");
	/* One syscall per op. */
	cr_assert_eq(res->total.enters, 2000);
}

Test(urbench_engines, uring)
{
	assert_reads_ok("uring", 2000);
	cr_assert_str_eq(res->backend, "file");
	cr_assert_gt(res->total.enters, 0);
	cr_assert_not(res->bufs_registered);
}

Test(urbench_engines, uring_fixedbufs_regfiles)
{
	assert_reads_ok("uring+fixedbufs+regfiles", 2000);
	cr_assert(res->bufs_registered, "fixed buffers were not registered");
	/* At QD8 the reactor batches: more than one SQE per enter on average. */
	cr_assert_gt(ub_core_batch(&res->total), 1.0);
}

Test(urbench_engines, uring_sqpoll)
{
	skip_unless_mode_starts(URT_POLL_SQPOLL, "sqpoll");
	assert_reads_ok("uring+fixedbufs+regfiles+sqpoll", 2000);
	cr_assert(res->ring_flags & 2u /* IORING_SETUP_SQPOLL */, "ring flags 0x%x", res->ring_flags);
}

Test(urbench_engines, uring_hybrid)
{
	assert_reads_ok("uring+hybrid", 2000);
}

/*
 * Whether the device under dir has poll queues, as the runtime sees it: a
 * scratch file there opened with O_DIRECT.  Asked of the device, never of
 * the run under test, so that an IOPOLL run that quietly went another way
 * fails instead of looking like a device that polls.
 */
static bool dir_device_polls(void)
{
	char probe[260];
	struct urt_dev_opts d;
	struct urt_dev *dev;
	bool polls;
	int fd, ret;

	snprintf(probe, sizeof(probe), "%s/poll-probe.dat", dir);
	fd = open(probe, O_CREAT | O_RDWR | O_TRUNC, 0600);
	cr_assert_geq(fd, 0, "%s: %s", probe, strerror(errno));
	cr_assert_eq(ftruncate(fd, 1 << 20), 0);
	close(fd);
	urt_dev_opts_default(&d);
	d.direct = true;
	ret = urt_dev_open(probe, &d, &dev);
	unlink(probe);
	if (ret == -EINVAL)
		return false;	/* No O_DIRECT here (tmpfs): buffered I/O never polls. */
	cr_assert_eq(ret, 0, "urt_dev_open(%s): %s", probe, urt_last_error());
	polls = urt_dev_info(dev)->poll_capable;
	urt_dev_close(dev);
	return polls;
}

Test(urbench_engines, iopoll_on_a_file_is_a_clear_error)
{
	struct ub_opts o;
	int status;

	if (dir_device_polls())
		cr_skip_test("the scratch file's device has poll queues (queue/io_poll 1): nothing to refuse");
	opts_for(&o, UB_RW_RANDREAD, 4, 100);
	status = run(&o, "uring+iopoll");
	cr_assert_neq(status, UB_EXIT_OK, "uring+iopoll ran on a device without poll queues: not polled I/O");
	cr_assert_eq(status, UB_EXIT_USAGE, "%s", res->errmsg);
	cr_assert_eq(res->err, -EOPNOTSUPP, "%d: %s", res->err, res->errmsg);
	cr_assert(strstr(res->errmsg, "IOPOLL"), "%s", res->errmsg);
	cr_assert_null(strchr(res->errmsg, '\n'));
}

/* Write the signature with the tool's write workload, then read it back. */
static void write_then_verify(const char *writer, const char *reader, unsigned qd)
{
	struct ub_opts o;
	uint64_t blocks = FILE_BYTES / 4096;
	int fd, status;

	/* A file of zeroes: reading it with --verify must fail. */
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, FILE_BYTES), 0);
	close(fd);
	opts_for(&o, UB_RW_READ, 1, 16);
	status = run(&o, reader);
	cr_assert_eq(status, UB_EXIT_FAIL, "zeroes passed verification");
	cr_assert_gt(res->verify_errors, 0);
	cr_assert(strstr(res->errmsg, "verification failed"), "%s", res->errmsg);

	/* Sequential writes of every block, by qd workers or slots. */
	opts_for(&o, UB_RW_WRITE, qd, blocks);
	run_ok(&o, writer);
	cr_assert_eq(res->total.writes, blocks);
	cr_assert_eq(res->total.bytes, blocks * 4096);

	/* Every block now checks, in order and at random. */
	opts_for(&o, UB_RW_READ, 1, blocks);
	status = run(&o, reader);
	cr_assert_eq(status, UB_EXIT_OK, "%s after %s: %s", reader, writer, res->errmsg);
	cr_assert_eq(res->total.reads, blocks);
	opts_for(&o, UB_RW_RANDREAD, 16, 4000);
	run_ok(&o, reader);
}

Test(urbench_engines, uring_writes_verify_with_psync)
{
	write_then_verify("uring+fixedbufs+regfiles", "psync", 8);
}

Test(urbench_engines, psync_writes_verify_with_uring)
{
	write_then_verify("psync", "uring", 4);
}

Test(urbench_engines, randrw_with_flushes_and_fua)
{
	static const char *const modes[] = { "psync", "uring+fixedbufs" };

	for (size_t i = 0; i < 2; i++) {
		struct ub_opts o;

		opts_for(&o, UB_RW_RANDRW, 4, 2000);
		o.rwmix_read = 50;
		o.fsync_every = 16;
		o.fua = i == 1;
		run_ok(&o, modes[i]);
		cr_assert_eq(res->total.ops, 2000);
		cr_assert_eq(res->total.reads + res->total.writes, 2000);
		cr_assert(res->total.writes > 800 && res->total.writes < 1200, "%llu writes",
			  (unsigned long long)res->total.writes);
		/* About one flush per 16 writes per worker. */
		cr_assert_geq(res->total.syncs, res->total.writes / 16 - 4, "%llu flushes for %llu writes",
			      (unsigned long long)res->total.syncs, (unsigned long long)res->total.writes);
	}
}

Test(urbench_engines, nop_target)
{
	struct ub_opts o;

	ub_opts_default(&o);
	snprintf(o.target, sizeof(o.target), "nop");
	o.target_kind = UB_TARGET_NOP;
	o.qd = 32;
	o.ops = 100000;
	o.progress = 0;
	run_ok(&o, "uring");
	cr_assert_eq(res->total.ops, 100000);
	cr_assert_eq(res->total.bytes, 0);
	cr_assert_str_eq(res->backend, "nop");
	/* 32 in flight: far fewer than one enter per op. */
	cr_assert_lt(ub_core_syscalls_per_io(&res->total), 0.5);
}

Test(urbench_engines, timed_run_with_ramp)
{
	struct ub_opts o;

	opts_for(&o, UB_RW_RANDREAD, 4, 0);
	o.runtime_s = 0.5;
	o.ramp_s = 0.2;
	run_ok(&o, "uring");
	cr_assert_gt(res->total.ops, 0);
	cr_assert(res->total.secs > 0.3 && res->total.secs < 3, "%.3f s measured", res->total.secs);
	cr_assert_gt(res->nseries, 0);
}

Test(urbench_engines, target_errors)
{
	struct target_case x;

	/* Misaligned block size for O_DIRECT. */
	target_case_init(&x, UB_RW_RANDREAD);
	cr_assert(x.created);
	x.o.bs = 1000;
	x.o.verify = false;
	cr_assert_eq(target_case_open(&x), -EINVAL);
	cr_assert(strstr(x.err, "not a multiple of"), "%s", x.err);
	/* Buffered I/O takes any size. */
	x.o.direct = false;
	cr_assert_eq(target_case_open(&x), 0, "%s", x.err);
	x.o.direct = true;
	x.o.bs = 4096;

	/* Passthrough on a regular file. */
	target_case_mode(&x, "passthru");
	cr_assert_eq(target_case_open(&x), -EINVAL);
	cr_assert(strstr(x.err, "not an NVMe generic char device"), "%s", x.err);

	/* A char device that is not NVMe. */
	snprintf(x.o.target, sizeof(x.o.target), "/dev/null");
	target_case_mode(&x, "uring");
	cr_assert_eq(target_case_open(&x), -ENODEV);
	cr_assert(strstr(x.err, "not an NVMe generic device"), "%s", x.err);

	/* A file in a directory that does not exist. */
	snprintf(x.o.target, sizeof(x.o.target), "%s/no/such/dir/f", dir);
	cr_assert_lt(target_case_open(&x), 0);
	cr_assert(strstr(x.err, "cannot create"), "%s", x.err);

	/* A missing device node is not created. */
	snprintf(x.o.target, sizeof(x.o.target), "/dev/urbench-no-such-device");
	cr_assert_eq(target_case_open(&x), -ENOENT);
	cr_assert(strstr(x.err, "does not exist"), "%s", x.err);
}

Test(urbench_engines, sim_target)
{
	struct ub_opts o;

	ub_opts_default(&o);
	snprintf(o.target, sizeof(o.target), "sim:16M");
	o.target_kind = UB_TARGET_SIM;
	o.size_bytes = 16u << 20;
	o.rw = UB_RW_RANDWRITE;
	o.verify = true;
	o.qd = 16;
	o.ops = 5000;
	o.progress = 0;
	run_ok(&o, "uring+fixedbufs");
	cr_assert_str_eq(res->backend, "sim");
	cr_assert_eq(res->total.writes, 5000);
	cr_assert_eq(res->total.bytes, 5000ull * 4096);
}

Test(urbench_engines, size_bounds_an_existing_target)
{
	struct target_case x;

	target_case_init(&x, UB_RW_READ);
	cr_assert_eq(x.t.span_bytes, FILE_BYTES, "without --size the whole file is used");
	x.o.size_bytes = 1u << 20;
	x.o.size_given = true;
	cr_assert_eq(target_case_open(&x), 0, "%s", x.err);
	cr_assert_not(x.created);
	cr_assert_eq(x.t.span_bytes, 1u << 20, "--size 1M on an 8 MiB file");
	/* A larger --size than the file does not grow it. */
	x.o.size_bytes = 64u << 20;
	cr_assert_eq(target_case_open(&x), 0, "%s", x.err);
	cr_assert_eq(x.t.span_bytes, FILE_BYTES);
}
