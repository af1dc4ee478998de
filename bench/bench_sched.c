/*
 * The device I/O scheduler, measured (docs/runtime.md, "The I/O scheduler").
 *
 *   bench_sched policies [REPS] [OPS] [QD]
 *       sim hdd (1 GiB, 7200 rpm), 4 KiB random reads at QD (32; up to
 *       QD_MAX), depth 1 at the drive: fifo, sstf and cscan with and
 *       without the expiry, scan.  Throughput, total head travel, mean and
 *       p99.9 latency, and where the drive's time went per command (the
 *       sim's seek_ns, rotate_ns, transfer_ns), then the ceiling any
 *       offset order has on this model: FIFO's time per command over the
 *       least a command can cost (a track-to-track seek, half a turn of
 *       rotational latency, the transfer).
 *   bench_sched merge [REPS] [FILE]
 *       A checkpoint of 10,000 dirty pages in runs of adjacent pages (run
 *       length 1..16, gaps 1..64 pages), written sorted by offset as
 *       BACKGROUND writes with 64 in flight, with and without merging: on
 *       sim hdd and, with FILE, on that O_DIRECT file.  Time and commands
 *       (SQEs) per page.
 *   bench_sched prio [REPS]
 *       sim ssd (parallelism 4, 200 us writes, 1 ms flush): commit latency
 *       (4 KiB write + flush, URGENT) alone, during a checkpoint of 10,000
 *       pages as BACKGROUND, during one with every op NORMAL (no classes),
 *       and with no scheduler.  p50 and p99.
 *
 * Variants alternate within each repetition; medians over repetitions are
 * printed with the host steal time of the whole run (/proc/stat).
 */
#include <errno.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "urt/buf.h"
#include "urt/dev.h"
#include "urt/fiber.h"
#include "urt/io.h"
#include "urt/rt.h"
#include "urt/sim.h"
#include "urbench/result.h"

#define PG 4096u
#define QD_MAX 128

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t xrand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_dbl);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Run fn(arg) in a fiber on the runtime's core 0 and wait. */
struct call {
	void (*fn)(void *arg);
	void *arg;
	sem_t done;
};

static void trampoline(void *p)
{
	struct call *c = p;

	c->fn(c->arg);
	sem_post(&c->done);
}

static void run_on(struct urt_rt *rt, void (*fn)(void *), void *arg)
{
	struct call c = { .fn = fn, .arg = arg };

	sem_init(&c.done, 0, 0);
	if (urt_fiber_spawn_on(rt, 0, trampoline, &c)) {
		fprintf(stderr, "spawn failed\n");
		exit(1);
	}
	sem_wait(&c.done);
	sem_destroy(&c.done);
}

static struct urt_rt *rt_start(void)
{
	static const int cpu0[] = { 0 };
	struct urt_rt_opts o;
	struct urt_rt *rt;

	urt_rt_opts_default(&o);
	o.cpus = cpu0;
	o.ncpus = 1;
	o.buf_region_bytes = 8u << 20;
	o.buf_allow_unregistered = true;
	if (urt_rt_start(&o, &rt)) {
		fprintf(stderr, "urt_rt_start: %s\n", urt_last_error());
		exit(1);
	}
	return rt;
}

/* ---- A window of ops kept in flight, each from a list of offsets. ---- */

struct stream {
	struct urt_dev *dev;
	bool write;
	uint8_t prio;
	const uint64_t *offs;	/* Offsets, in submission order. */
	unsigned n;		/* Ops to do. */
	unsigned qd;		/* In flight. */
	unsigned next, done;
	int err;
	uint8_t *bufs;		/* qd pages. */
	struct urt_io io[QD_MAX];
	uint64_t t_sub[QD_MAX];
	uint64_t *lat;		/* n latencies, or NULL. */
	struct urt_waitq wq;
};

static void stream_done(struct urt_io *io, int res, void *arg);

static void stream_submit(struct stream *s, unsigned slot)
{
	uint64_t off = s->offs[s->next];
	int ret;

	if (s->write)
		urt_io_prep_write(&s->io[slot], s->dev, s->bufs + (uint64_t)slot * PG, PG, off);
	else
		urt_io_prep_read(&s->io[slot], s->dev, s->bufs + (uint64_t)slot * PG, PG, off);
	s->io[slot].prio = s->prio;
	s->t_sub[slot] = now_ns();
	s->next++;
	ret = urt_io_submit(&s->io[slot], stream_done, s);
	if (ret && !s->err)
		s->err = ret;
}

static void stream_done(struct urt_io *io, int res, void *arg)
{
	struct stream *s = arg;
	unsigned slot = (unsigned)(io - s->io);

	if (res != (int)PG && !s->err)
		s->err = res < 0 ? res : -EIO;
	if (s->lat)
		s->lat[s->done] = now_ns() - s->t_sub[slot];
	s->done++;
	if (s->next < s->n)
		stream_submit(s, slot);
	urt_waitq_wake_all(&s->wq);
}

static void stream_run(void *arg)
{
	struct stream *s = arg;

	memset(&s->wq, 0, sizeof(s->wq));
	s->next = s->done = 0;
	for (unsigned i = 0; i < s->qd && i < s->n; i++)
		stream_submit(s, i);
	while (s->done < s->n)
		urt_waitq_wait(&s->wq);
}

static uint8_t *page_bufs(unsigned n)
{
	uint8_t *p = aligned_alloc(PG, (size_t)n * PG);

	memset(p, 0x5a, (size_t)n * PG);
	return p;
}

/* ---- policies ---- */

struct pol_variant {
	const char *name;
	enum urt_sched_policy policy;
	uint64_t expire_ns;
};

static void bench_policies(unsigned reps, unsigned nops, unsigned qd, uint64_t span)
{
	static const struct pol_variant var[] = {
		{ "fifo", URT_SCHED_FIFO, 500000000 },
		{ "sstf+expiry", URT_SCHED_SSTF, 500000000 },
		{ "sstf, no expiry", URT_SCHED_SSTF, 0 },
		{ "scan", URT_SCHED_SCAN, 500000000 },
		{ "cscan+expiry", URT_SCHED_CSCAN, 500000000 },
		{ "cscan, no expiry", URT_SCHED_CSCAN, 0 },
	};
	enum { NV = sizeof(var) / sizeof(var[0]) };
	double iops[NV][16], seek[NV][16], mean[NV][16], p999[NV][16], maxl[NV][16], sk[NV][16], rot[NV][16];
	double xf[NV][16], expd[NV][16];
	struct ub_cpu_times c0, c1;
	uint64_t *offs = malloc(nops * sizeof(*offs)), *lat = malloc(nops * sizeof(*lat)), seed = 42;
	struct urt_rt *rt = rt_start();
	struct urt_sim_opts model;

	urt_sim_opts_default(&model);
	for (unsigned i = 0; i < nops; i++)
		offs[i] = xrand(&seed) % (span / PG) * PG;
	ub_cpu_times_read(&c0);
	for (unsigned r = 0; r < reps; r++) {
		for (unsigned v = 0; v < NV; v++) {
			struct urt_sim_opts so;
			struct urt_sched_opts sc;
			struct urt_sim_stats ss;
			struct urt_sched_stats st;
			struct stream s = { 0 };
			uint64_t t0, t1, sum = 0;

			urt_sim_opts_default(&so);
			so.size_bytes = 1ull << 30;
			so.profile = URT_SIM_HDD;
			if (urt_sim_open(&so, &s.dev)) {
				fprintf(stderr, "sim: %s\n", urt_last_error());
				exit(1);
			}
			urt_sched_opts_default(&sc);
			sc.policy = var[v].policy;
			sc.depth_max = 1;	/* The drive takes one command at a time; the queue is ours. */
			sc.expire_ns[URT_PRIO_NORMAL] = var[v].expire_ns;
			urt_dev_sched_set(s.dev, &sc);
			s.offs = offs;
			s.n = nops;
			s.qd = qd;
			s.bufs = page_bufs(qd);
			s.lat = lat;
			t0 = now_ns();
			run_on(rt, stream_run, &s);
			t1 = now_ns();
			if (s.err) {
				fprintf(stderr, "%s: error %d\n", var[v].name, s.err);
				exit(1);
			}
			urt_sim_stats(s.dev, &ss);
			urt_dev_sched_stats(s.dev, &st);
			for (unsigned i = 0; i < nops; i++)
				sum += lat[i];
			qsort(lat, nops, sizeof(*lat), cmp_u64);
			iops[v][r] = nops / ((t1 - t0) / 1e9);
			seek[v][r] = ss.seek_bytes / (double)(1ull << 30);
			mean[v][r] = sum / (double)nops / 1e6;
			p999[v][r] = lat[(size_t)(nops * 0.999)] / 1e6;
			maxl[v][r] = lat[nops - 1] / 1e6;
			sk[v][r] = ss.seek_ns / (double)ss.reads / 1e6;
			rot[v][r] = ss.rotate_ns / (double)ss.reads / 1e6;
			xf[v][r] = ss.transfer_ns / (double)ss.reads / 1e6;
			expd[v][r] = st.expired / (double)nops;
			free(s.bufs);
			urt_dev_close(s.dev);
		}
	}
	ub_cpu_times_read(&c1);
	urt_rt_stop(rt);
	printf("sim hdd 1 GiB, 7200 rpm, 4 KiB random reads over the first %llu MiB, QD%u, drive depth 1, "
	       "%u ops, median of %u, steal %.1f%%\n", (unsigned long long)(span >> 20), qd, nops, reps,
	       ub_steal_pct(&c0, &c1));
	printf("%-16s %7s %6s %9s %7s %8s %9s %8s %8s %8s %8s %8s %8s\n", "policy", "IOPS", "x fifo", "seek GiB",
	       "x fifo", "mean ms", "p99.9 ms", "max ms", "seek/op", "rot/op", "xfer/op", "svc/op", "expired");
	{
		double f_iops = median(iops[0], reps), f_seek = median(seek[0], reps);
		double period_ms = 60000.0 / model.hdd_rpm;
		double xfer_ms = PG * period_ms / model.hdd_track_bytes, floor_ms, f_ms;

		for (unsigned v = 0; v < NV; v++) {
			double a = median(iops[v], reps), b = median(seek[v], reps);
			double svc = median(sk[v], reps) + median(rot[v], reps) + median(xf[v], reps);

			printf("%-16s %7.1f %6.2f %9.1f %7.3f %8.1f %9.1f %8.1f %8.2f %8.2f %8.3f %8.2f %8.3f\n",
			       var[v].name, a, a / f_iops, b, b / f_seek, median(mean[v], reps), median(p999[v], reps),
			       median(maxl[v], reps), median(sk[v], reps), median(rot[v], reps), median(xf[v], reps),
			       svc, median(expd[v], reps));
		}
		/*
		 * The least a command can cost on this model, whatever the order, while the queued ops lie
		 * on different tracks: every seek a track-to-track.  A span of few tracks per queued op
		 * (SPAN_MIB) goes below it: ops of one track are served in one turn, in offset order.
		 */
		floor_ms = model.hdd_seek_track_ns / 1e6 + period_ms / 2 + xfer_ms;
		f_ms = 1000.0 / f_iops;
		printf("ceiling: fifo %.2f ms a command (wall) / floor %.2f ms (track seek %.2f + half a turn %.2f + "
		       "transfer %.3f) = %.2fx fifo for any offset order\n", f_ms, floor_ms,
		       model.hdd_seek_track_ns / 1e6, period_ms / 2, xfer_ms, f_ms / floor_ms);
		f_ms = median(sk[0], reps) + median(rot[0], reps) + median(xf[0], reps);
		printf("ceiling in drive time: fifo svc %.2f ms / floor %.2f ms = %.2fx\n", f_ms, floor_ms, f_ms / floor_ms);
	}
	free(offs);
	free(lat);
}

/* ---- merge ---- */

/* 10,000 dirty pages in runs of 1..16 adjacent pages, gaps of 1..64 pages, ascending. */
static unsigned ckpt_pages(uint64_t *offs, unsigned n, uint64_t seed)
{
	uint64_t pg = 0;
	unsigned k = 0;

	while (k < n) {
		unsigned run = 1 + (unsigned)(xrand(&seed) % 16);

		for (unsigned i = 0; i < run && k < n; i++)
			offs[k++] = (pg++) * PG;
		pg += 1 + xrand(&seed) % 64;
	}
	return k;
}

static void bench_merge(unsigned reps, const char *file)
{
	enum { NPAGES = 10000 };
	const char *tname[2] = { "sim hdd", file };
	double t[2][2][16], per[2][2][16];
	uint64_t *offs = malloc(NPAGES * sizeof(*offs));
	struct ub_cpu_times c0, c1;
	struct urt_rt *rt = rt_start();
	unsigned ntargets = file ? 2 : 1;

	ckpt_pages(offs, NPAGES, 7);
	ub_cpu_times_read(&c0);
	for (unsigned r = 0; r < reps; r++) {
		for (unsigned tg = 0; tg < ntargets; tg++) {
			for (unsigned m = 0; m < 2; m++) {
				struct urt_sched_opts sc;
				struct urt_sched_stats st;
				struct stream s = { 0 };
				uint64_t t0, t1;
				int ret;

				if (tg == 0) {
					struct urt_sim_opts so;

					urt_sim_opts_default(&so);
					so.size_bytes = 1ull << 30;
					so.profile = URT_SIM_HDD;
					so.cache_entries_max = 1u << 20;
					so.cache_bytes_max = 1ull << 30;
					ret = urt_sim_open(&so, &s.dev);
				} else {
					struct urt_dev_opts d;

					urt_dev_opts_default(&d);
					d.create = true;
					d.size_bytes = 1ull << 30;
					ret = urt_dev_open(file, &d, &s.dev);
				}
				if (ret) {
					fprintf(stderr, "%s: %s\n", tname[tg], urt_last_error());
					exit(1);
				}
				urt_sched_opts_default(&sc);
				sc.policy = URT_SCHED_CSCAN;
				sc.depth_max = tg == 0 ? 1 : 32;
				sc.merge = m == 1;
				urt_dev_sched_set(s.dev, &sc);
				s.write = true;
				s.prio = URT_PRIO_BACKGROUND;
				s.offs = offs;
				s.n = NPAGES;
				s.qd = 64;
				s.bufs = page_bufs(64);
				t0 = now_ns();
				run_on(rt, stream_run, &s);
				t1 = now_ns();
				if (s.err) {
					fprintf(stderr, "%s: error %d\n", tname[tg], s.err);
					exit(1);
				}
				urt_dev_sched_stats(s.dev, &st);
				t[tg][m][r] = (t1 - t0) / 1e6;
				per[tg][m][r] = st.commands / (double)NPAGES;
				free(s.bufs);
				urt_dev_close(s.dev);
			}
		}
	}
	ub_cpu_times_read(&c1);
	urt_rt_stop(rt);
	printf("checkpoint of %u dirty pages in runs of 1..16 (sorted, BACKGROUND, 64 in flight, cscan), "
	       "median of %u, steal %.1f%%\n", NPAGES, reps, ub_steal_pct(&c0, &c1));
	printf("%-28s %12s %12s %10s %12s %12s\n", "target", "unmerged ms", "merged ms", "speedup", "SQE/page un",
	       "SQE/page m");
	for (unsigned tg = 0; tg < ntargets; tg++) {
		double a = median(t[tg][0], reps), b = median(t[tg][1], reps);

		printf("%-28s %12.1f %12.1f %10.2f %12.3f %12.3f\n", tname[tg], a, b, a / b, median(per[tg][0], reps),
		       median(per[tg][1], reps));
	}
	free(offs);
}

/* ---- prio ---- */

struct commits {
	struct urt_dev *dev;
	uint8_t *buf;
	uint8_t prio;
	volatile bool *stop;	/* Set when the checkpoint finished; NULL: run n commits. */
	unsigned n, done;
	uint64_t lat[20000];
	int err;
};

static void commits_run(void *arg)
{
	struct commits *c = arg;

	c->done = 0;
	while (c->done < (sizeof(c->lat) / sizeof(c->lat[0])) && (c->stop ? !*c->stop : c->done < c->n)) {
		struct urt_io w, f;
		uint64_t t0 = now_ns();
		int ret;

		urt_io_prep_write(&w, c->dev, c->buf, PG, (uint64_t)(c->done % 256) * PG);
		w.prio = c->prio;
		ret = urt_io_wait(&w);
		if (ret != (int)PG) {
			c->err = ret;
			return;
		}
		urt_io_prep_flush(&f, c->dev);
		f.prio = c->prio;
		ret = urt_io_wait(&f);
		if (ret) {
			c->err = ret;
			return;
		}
		c->lat[c->done++] = now_ns() - t0;
	}
}

struct ckpt_then_stop {
	struct stream *s;
	volatile bool *stop;
};

static void ckpt_fiber(void *arg)
{
	struct ckpt_then_stop *k = arg;

	stream_run(k->s);
	*k->stop = true;
}

struct both {
	struct urt_rt *rt;
	struct commits *c;
	struct ckpt_then_stop *k;
};

static void both_run(void *arg)
{
	struct both *b = arg;

	urt_fiber_spawn(ckpt_fiber, b->k);
	commits_run(b->c);
}

static void bench_prio(unsigned reps)
{
	enum { NPAGES = 10000, NV = 4 };
	static const char *const vname[NV] = { "no checkpoint", "checkpoint, classes", "checkpoint, no classes",
					       "checkpoint, no scheduler" };
	double p50[NV][16], p99[NV][16], ck[NV][16], n[NV][16];
	uint64_t *offs = malloc(NPAGES * sizeof(*offs));
	struct ub_cpu_times c0, c1;
	struct urt_rt *rt = rt_start();
	struct commits *cm = calloc(1, sizeof(*cm));

	/* Every other page: no two adjacent, so merging does not shrink the checkpoint. */
	for (unsigned i = 0; i < NPAGES; i++)
		offs[i] = (1024 + 2ull * i) * PG;
	cm->buf = page_bufs(1);
	ub_cpu_times_read(&c0);
	for (unsigned r = 0; r < reps; r++) {
		for (unsigned v = 0; v < NV; v++) {
			struct urt_sim_opts so;
			struct urt_sched_opts sc;
			struct stream s = { 0 };
			volatile bool stop = false;
			struct ckpt_then_stop k = { &s, &stop };
			struct both b = { rt, cm, &k };
			uint64_t t0;

			urt_sim_opts_default(&so);
			so.size_bytes = 256u << 20;
			so.parallelism = 4;
			so.write_latency_ns = 200000;
			so.flush_latency_ns = 1000000;
			so.cache_entries_max = 1u << 20;
			so.cache_bytes_max = 1ull << 30;
			if (urt_sim_open(&so, &s.dev)) {
				fprintf(stderr, "sim: %s\n", urt_last_error());
				exit(1);
			}
			urt_sched_opts_default(&sc);
			sc.depth_max = 8;
			sc.class_depth_max[URT_PRIO_BACKGROUND] = 2;
			if (v != 3)
				urt_dev_sched_set(s.dev, &sc);
			cm->dev = s.dev;
			cm->prio = v == 1 ? URT_PRIO_URGENT : URT_PRIO_NORMAL;
			cm->err = 0;
			s.write = true;
			s.prio = v == 1 ? URT_PRIO_BACKGROUND : URT_PRIO_NORMAL;
			s.offs = offs;
			s.n = NPAGES;
			s.qd = 64;
			s.bufs = page_bufs(64);
			t0 = now_ns();
			if (v == 0) {
				cm->stop = NULL;
				cm->n = 400;
				run_on(rt, commits_run, cm);
			} else {
				cm->stop = &stop;
				run_on(rt, both_run, &b);
				while (!stop)
					nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
			}
			ck[v][r] = (now_ns() - t0) / 1e6;
			if (cm->err || s.err) {
				fprintf(stderr, "%s: error %d %d\n", vname[v], cm->err, s.err);
				exit(1);
			}
			qsort(cm->lat, cm->done, sizeof(cm->lat[0]), cmp_u64);
			p50[v][r] = cm->lat[cm->done / 2] / 1e6;
			p99[v][r] = cm->lat[(size_t)(cm->done * 0.99)] / 1e6;
			n[v][r] = cm->done;
			free(s.bufs);
			urt_dev_close(s.dev);
		}
	}
	ub_cpu_times_read(&c1);
	urt_rt_stop(rt);
	printf("commit (4 KiB write + flush) on sim ssd: parallelism 4, write 200 us, flush 1 ms; checkpoint of %u "
	       "pages, 64 in flight; scheduler depth 8, BACKGROUND depth 2; median of %u, steal %.1f%%\n", NPAGES,
	       reps, ub_steal_pct(&c0, &c1));
	printf("%-28s %9s %9s %12s %9s %12s\n", "variant", "commits", "p50 ms", "p99 ms", "x alone", "run ms");
	for (unsigned v = 0; v < NV; v++) {
		double a = median(p99[v], reps);

		printf("%-28s %9.0f %9.2f %12.2f %9.2f %12.1f\n", vname[v], median(n[v], reps), median(p50[v], reps),
		       a, a / median(p99[0], reps), median(ck[v], reps));
	}
	free(cm->buf);
	free(cm);
	free(offs);
}

int main(int argc, char **argv)
{
	unsigned reps = argc > 2 ? (unsigned)atoi(argv[2]) : 3;

	if (reps == 0 || reps > 16)
		reps = 3;
	if (argc > 1 && strcmp(argv[1], "policies") == 0) {
		unsigned qd = argc > 4 ? (unsigned)atoi(argv[4]) : 32;

		if (qd == 0 || qd > QD_MAX) {
			fprintf(stderr, "bench_sched: QD %s: give 1 to %u\n", argv[4], QD_MAX);
			return 2;
		}
		uint64_t span = argc > 5 ? strtoull(argv[5], NULL, 10) << 20 : 1ull << 30;

		if (span < (1u << 20) || span > (1ull << 30)) {
			fprintf(stderr, "bench_sched: SPAN_MIB %s: give 1 to 1024\n", argv[5]);
			return 2;
		}
		bench_policies(reps, argc > 3 ? (unsigned)atoi(argv[3]) : 1000, qd, span);
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "merge") == 0) {
		bench_merge(reps, argc > 3 ? argv[3] : NULL);
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "prio") == 0) {
		bench_prio(reps);
		return 0;
	}
	fprintf(stderr, "usage: bench_sched policies [REPS] [OPS] [QD] [SPAN_MIB] | merge [REPS] [FILE] | prio [REPS]\n");
	return 2;
}
