/*
 * bench_runtime: the cost of the urt runtime per op, against a raw liburing
 * loop doing the same work on the same CPU, in the same process and run.
 *
 * Two workloads, each at batch 1 and batch 32:
 *   nop        IORING_OP_NOP: the pure submit/complete path.
 *   pagecache  4 KiB reads at random offsets of a 64 MiB file that sits in
 *              the page cache (buffered): io_uring serves them inline.
 *
 * urt side: one reactor pinned to the CPU; a posted function issues
 * `batch` ops and every completion callback issues the next, so `batch` ops
 * stay in flight and the reactor hands each loop's SQEs to the kernel in
 * one io_uring_enter.  Raw side: a thread pinned to the same CPU with a ring
 * of the same setup flags (SINGLE_ISSUER|DEFER_TASKRUN) preps `batch` SQEs,
 * calls io_uring_submit_and_wait(batch) and reaps them, in a loop.  Neither
 * side uses registered files or buffers.
 *
 * The two sides alternate (urt first on even runs, raw first on odd runs)
 * and each figure is the median of the runs; the ratio is urt / raw ops per
 * second.  Host steal time from /proc/stat is printed with each figure,
 * since on this shared machine steal can make a run several times slower.
 *
 * CPU split: each side also reads getrusage(RUSAGE_THREAD) on the thread
 * that runs its loop (the reactor for urt), at the first issue and at the
 * last completion, and prints user and system nanoseconds per op (medians).
 * The split says where a gap lies: in urt's own code (user) or in the
 * kernel's handling of the ring (system); the user side is counted exactly
 * by callgrind (below), since this VM has no PMU for instruction counters.
 *
 * BENCH_RAW_RING=urt gives the raw ring urt's main-ring setup instead
 * (adds COOP_TASKRUN|TASKRUN_FLAG and a CQ of 2 x req_max entries), so the
 * kernel side of the two can be compared with the same ring.
 *
 * Usage: bench_runtime [nop_ops [runs [file]]]  (defaults 2000000, 5,
 *        $TMPDIR/bench_runtime.dat); page-cache runs use nop_ops / 4.
 * For profiling one side alone (perf record), set BENCH_ONLY=urt or
 * BENCH_ONLY=raw: the other side is skipped and its ratio shows as 0;
 * BENCH_WORKLOAD=nop or pagecache runs one workload only, BENCH_BATCH=1
 * or 32 one batch size only.  BENCH_SCHED=fifo (or another policy) puts
 * the device scheduler on the urt side's file (issue 13: its cost against
 * the same build without it; NOPs have no device and never pass it).
 *
 * Instruction counts: under valgrind the reactor sleeps in poll(2) instead
 * of io_uring_enter (src/runtime/wait_poll.h), so callgrind runs this
 * program; bench/callgrind-runtime runs it at two op counts per side,
 * workload and batch, and divides the difference in instructions by the
 * difference in ops, which cancels setup and teardown.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "urbench/result.h"
#include "urt/dev.h"
#include "urt/error.h"
#include "urt/io.h"
#include "urt/rt.h"

#define RUNS_MAX 31
#define BATCH_MAX 32
#define FILE_BYTES (64u << 20)
#define BLOCK 4096u

/* xorshift64: the next random block offset of the file. */
static uint64_t next_off(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return (x % (FILE_BYTES / BLOCK)) * BLOCK;
}

/* One measurement: what to do and what came out. */
struct job {
	bool read;		/* Page-cache reads, else NOPs. */
	unsigned batch;		/* Ops in flight. */
	uint64_t ops;		/* Ops to complete. */
	int fd;			/* The file (reads). */
	struct urt_dev *dev;	/* The same file through urt (reads). */
	int cpu;		/* CPU to run on. */
	char *bufs;		/* batch x BLOCK bytes. */
	/* urt side. */
	struct urt_io io[BATCH_MAX];	/* The ops in flight. */
	uint64_t issued;		/* Ops issued. */
	uint64_t completed;		/* Ops completed. */
	uint64_t rng;			/* Offsets. */
	int err;			/* First error. */
	sem_t done;			/* Posted when completed == ops. */
	struct rusage ru0, ru1;		/* Loop thread's CPU at the first issue and the last completion. */
	bool raw_urt_ring;		/* BENCH_RAW_RING=urt: the raw ring gets urt's setup. */
};

static double tv_ns(const struct timeval *a, const struct timeval *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e9 + (double)(b->tv_usec - a->tv_usec) * 1e3;
}

/* User and system ns per op of the last run of j. */
static void cpu_split(const struct job *j, double *usr, double *sys)
{
	*usr = tv_ns(&j->ru0.ru_utime, &j->ru1.ru_utime) / (double)j->ops;
	*sys = tv_ns(&j->ru0.ru_stime, &j->ru1.ru_stime) / (double)j->ops;
}

static void urt_issue(struct job *j, unsigned slot);

static void urt_done(struct urt_io *io, int res, void *arg)
{
	struct job *j = arg;

	if (res < 0 && !j->err)
		j->err = res;
	j->completed++;
	if (j->issued < j->ops) {
		urt_issue(j, (unsigned)(io - j->io));
	} else if (j->completed == j->ops) {
		getrusage(RUSAGE_THREAD, &j->ru1);
		sem_post(&j->done);
	}
}

static void urt_issue(struct job *j, unsigned slot)
{
	struct urt_io *io = &j->io[slot];
	int ret;

	if (j->read)
		urt_io_prep_read(io, j->dev, j->bufs + (size_t)slot * BLOCK, BLOCK, next_off(&j->rng));
	else
		urt_io_prep_nop(io);
	ret = urt_io_submit(io, urt_done, j);
	if (ret) {
		fprintf(stderr, "urt_io_submit: %s%s%s%s\n", urt_strerror(ret),
			*urt_last_error() ? " (" : "", urt_last_error(), *urt_last_error() ? ")" : "");
		abort();
	}
	j->issued++;
}

static void urt_start(void *arg)
{
	struct job *j = arg;

	getrusage(RUSAGE_THREAD, &j->ru0);
	for (unsigned i = 0; i < j->batch; i++)
		urt_issue(j, i);
}

static double run_urt(struct urt_rt *rt, struct job *j)
{
	uint64_t t0;

	j->issued = 0;
	j->completed = 0;
	j->rng = 88172645463325252ull;
	sem_init(&j->done, 0, 0);
	t0 = urt_clock_ns();
	if (urt_core_post(rt, 0, urt_start, j))
		abort();
	sem_wait(&j->done);
	sem_destroy(&j->done);
	if (j->err) {
		fprintf(stderr, "urt op failed: %s\n", urt_strerror(j->err));
		exit(1);
	}
	return (double)j->ops / ((double)(urt_clock_ns() - t0) / 1e9);
}

static void *raw_main(void *arg)
{
	struct job *j = arg;
	struct io_uring ring;
	struct io_uring_params p;
	struct io_uring_cqe *cqe;
	uint64_t done = 0, rng = 88172645463325252ull, t0;
	cpu_set_t set;
	int ret;

	CPU_ZERO(&set);
	CPU_SET(j->cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL;
	if (j->raw_urt_ring) {
		/* urt's main ring (ring.c): its flags and a CQ sized from req_max (1024). */
		p.flags |= IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_CQSIZE |
			   IORING_SETUP_CLAMP;
		p.cq_entries = 2048;
	}
	ret = io_uring_queue_init_params(64, &ring, &p);
	if (ret) {
		fprintf(stderr, "io_uring_queue_init: %s\n", strerror(-ret));
		exit(1);
	}
	getrusage(RUSAGE_THREAD, &j->ru0);
	t0 = urt_clock_ns();
	while (done < j->ops) {
		unsigned n = j->ops - done < j->batch ? (unsigned)(j->ops - done) : j->batch, head, seen = 0;

		for (unsigned i = 0; i < n; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

			if (j->read)
				io_uring_prep_read(sqe, j->fd, j->bufs + (size_t)i * BLOCK, BLOCK, next_off(&rng));
			else
				io_uring_prep_nop(sqe);
		}
		ret = io_uring_submit_and_wait(&ring, n);
		if (ret < 0) {
			fprintf(stderr, "io_uring_submit_and_wait: %s\n", strerror(-ret));
			exit(1);
		}
		io_uring_for_each_cqe(&ring, head, cqe) {
			if (cqe->res < 0) {
				fprintf(stderr, "raw op failed: %s\n", strerror(-cqe->res));
				exit(1);
			}
			seen++;
		}
		io_uring_cq_advance(&ring, seen);
		done += seen;
	}
	/* Hand the elapsed time back through issued (the raw side does not use it otherwise). */
	j->issued = urt_clock_ns() - t0;
	getrusage(RUSAGE_THREAD, &j->ru1);
	io_uring_queue_exit(&ring);
	return NULL;
}

static double run_raw(struct job *j)
{
	pthread_t th;

	if (pthread_create(&th, NULL, raw_main, j))
		abort();
	pthread_join(th, NULL);
	return (double)j->ops / ((double)j->issued / 1e9);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int make_cached_file(const char *path, int *fd_out)
{
	char *buf = malloc(1u << 20);
	int fd;

	if (!buf)
		return -ENOMEM;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		free(buf);
		return -errno;
	}
	memset(buf, 0xa5, 1u << 20);
	for (uint64_t off = 0; off < FILE_BYTES; off += 1u << 20)
		if (pwrite(fd, buf, 1u << 20, (off_t)off) != 1 << 20) {
			free(buf);
			close(fd);
			return -EIO;
		}
	/* Read it once so every page is cached. */
	for (uint64_t off = 0; off < FILE_BYTES; off += 1u << 20)
		if (pread(fd, buf, 1u << 20, (off_t)off) != 1 << 20) {
			free(buf);
			close(fd);
			return -EIO;
		}
	free(buf);
	*fd_out = fd;
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t nop_ops = argc > 1 ? strtoull(argv[1], NULL, 10) : 2000000;
	unsigned runs = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 5;
	const char *tmp = getenv("TMPDIR");
	char path[512];
	struct urt_rt_opts ro;
	struct urt_dev_opts dopts;
	struct urt_rt *rt;
	struct urt_stats *st;
	struct job *j;
	int cpu, ret;
	static const unsigned batches[] = { 1, 32 };
	const char *only = getenv("BENCH_ONLY");
	bool skip_urt = only && strcmp(only, "raw") == 0;
	bool skip_raw = only && strcmp(only, "urt") == 0;
	const char *workload = getenv("BENCH_WORKLOAD");
	unsigned only_batch = getenv("BENCH_BATCH") ? (unsigned)strtoul(getenv("BENCH_BATCH"), NULL, 10) : 0;

	if (argc > 3)
		snprintf(path, sizeof(path), "%s", argv[3]);
	else
		snprintf(path, sizeof(path), "%s/bench_runtime.dat", tmp && *tmp ? tmp : "/tmp");
	if (runs == 0 || runs > RUNS_MAX || nop_ops < 1000) {
		fprintf(stderr, "usage: bench_runtime [nop_ops >= 1000 [runs 1..%d [file]]]\n", RUNS_MAX);
		return 2;
	}
	j = calloc(1, sizeof(*j));
	st = malloc(sizeof(*st));
	if (!j || !st)
		return 1;
	cpu = sched_getcpu();
	j->cpu = cpu;
	j->bufs = aligned_alloc(4096, BATCH_MAX * BLOCK);
	ret = make_cached_file(path, &j->fd);
	if (ret) {
		fprintf(stderr, "bench_runtime: cannot make %s: %s\n", path, strerror(-ret));
		return 1;
	}
	urt_rt_opts_default(&ro);
	ro.cpus = &cpu;
	ro.ncpus = 1;
	ro.buf_region_bytes = 64u << 10;
	ret = urt_rt_start(&ro, &rt);
	if (ret) {
		fprintf(stderr, "bench_runtime: urt_rt_start: %s%s%s%s\n", urt_strerror(ret),
			*urt_last_error() ? " (" : "", urt_last_error(), *urt_last_error() ? ")" : "");
		return 1;
	}
	urt_dev_opts_default(&dopts);
	dopts.direct = false;
	ret = urt_dev_open(path, &dopts, &j->dev);
	if (ret) {
		fprintf(stderr, "bench_runtime: urt_dev_open %s: %s%s%s%s\n", path, urt_strerror(ret),
			*urt_last_error() ? " (" : "", urt_last_error(), *urt_last_error() ? ")" : "");
		return 1;
	}
	if (getenv("BENCH_SCHED") && strcmp(getenv("BENCH_SCHED"), "none") != 0) {
		struct urt_sched_opts sc;

		urt_sched_opts_default(&sc);
		if (urt_sched_policy_parse(getenv("BENCH_SCHED"), &sc.policy)) {
			fprintf(stderr, "bench_runtime: BENCH_SCHED=%s: give none, fifo, sstf, scan or cscan\n",
				getenv("BENCH_SCHED"));
			return 2;
		}
		ret = urt_dev_sched_set(j->dev, &sc);
		if (ret) {
			fprintf(stderr, "bench_runtime: urt_dev_sched_set: %s (%s)\n", urt_last_error(), strerror(-ret));
			return 1;
		}
	}
	printf("bench_runtime: CPU %d, median of %u runs, urt vs raw liburing alternating%s%s\n", cpu, runs,
	       getenv("BENCH_SCHED") ? ", scheduler " : "", getenv("BENCH_SCHED") ? getenv("BENCH_SCHED") : "");
	j->raw_urt_ring = getenv("BENCH_RAW_RING") && strcmp(getenv("BENCH_RAW_RING"), "urt") == 0;
	printf("%-10s %5s %14s %14s %7s %13s %7s %17s %17s\n", "workload", "batch", "urt ops/s", "raw ops/s", "ratio",
	       "urt enters/op", "steal%", "urt usr/sys ns/op", "raw usr/sys ns/op");
	for (int w = 0; w < 2; w++) {
		if (workload && strcmp(workload, w ? "pagecache" : "nop") != 0)
			continue;
		for (size_t b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
			double u[RUNS_MAX], r[RUNS_MAX], uu[RUNS_MAX], us[RUNS_MAX], ru[RUNS_MAX], rs[RUNS_MAX];
			struct ub_cpu_times s0, s1;
			double um, rm, steal;
			uint64_t enters0 = 0, ops0 = 0;

			if (only_batch && batches[b] != only_batch)
				continue;
			j->read = w == 1;
			j->batch = batches[b];
			j->ops = j->read ? nop_ops / 4 : nop_ops;
			ub_cpu_times_read(&s0);
			if (urt_rt_stats(rt, 0, st) == 0) {
				enters0 = st->enters;
				ops0 = st->completed;
			}
			/* One unmeasured round of each side to warm caches and rings. */
			if (!skip_urt)
				run_urt(rt, j);
			if (!skip_raw)
				run_raw(j);
			for (unsigned i = 0; i < runs; i++) {
				uu[i] = us[i] = ru[i] = rs[i] = 0;
				for (int side = 0; side < 2; side++) {
					/* urt first on even runs, raw first on odd ones. */
					if ((side == 0) == (i % 2 == 0)) {
						u[i] = skip_urt ? 0 : run_urt(rt, j);
						if (!skip_urt)
							cpu_split(j, &uu[i], &us[i]);
					} else {
						r[i] = skip_raw ? 0 : run_raw(j);
						if (!skip_raw)
							cpu_split(j, &ru[i], &rs[i]);
					}
				}
			}
			ub_cpu_times_read(&s1);
			if (urt_rt_stats(rt, 0, st) == 0 && st->completed > ops0) {
				enters0 = st->enters - enters0;
				ops0 = st->completed - ops0;
			}
			um = median(u, runs);
			rm = median(r, runs);
			steal = ub_steal_pct(&s0, &s1);
			printf("%-10s %5u %14.0f %14.0f %6.2fx %13.3f %7.1f %8.0f/%-8.0f %8.0f/%-8.0f\n",
			       j->read ? "pagecache" : "nop", j->batch, um, rm, rm > 0 ? um / rm : 0,
			       ops0 ? (double)enters0 / (double)ops0 : 0, steal, median(uu, runs), median(us, runs),
			       median(ru, runs), median(rs, runs));
			fflush(stdout);
		}
	}
	urt_dev_close(j->dev);
	urt_rt_stop(rt);
	close(j->fd);
	if (argc <= 3)
		unlink(path);
	free(j->bufs);
	free(st);
	free(j);
	return 0;
}
