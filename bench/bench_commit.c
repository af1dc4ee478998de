/*
 * bench_commit: durable commits per second and commit latency of the page
 * store, against a baseline that makes every commit durable on its own.
 *
 * For N = 1, 16, 64, 256 concurrent committers (fibers), each
 * committing a transaction that changes one page: all of its 4 KiB by
 * default, or -c bytes of it (-c 100: the urkv case, a few bytes of a leaf;
 * the changed range moves along the page from one commit to the next):
 *   engine/file   urt page store on an O_DIRECT file (sync AUTO: on this
 *                 disk, write + flush per batch; URT_BENCH_SYNC=fua or
 *                 flush picks a policy for A/B runs), thread per core: one
 *                 shard per CPU (its own log and pages, urt_ps_shard_region),
 *                 the N committers split evenly across the shards, as many
 *                 shards as CPUs but at most N (-S sets the count);
 *   base/file     N threads, each pwrite(4 KiB, O_DIRECT) + fdatasync per
 *                 commit (the kernel may merge concurrent flushes), pinned
 *                 round-robin to the CPUs the engine's shards used for that
 *                 N, so both sides run on the same CPUs (on this VM the
 *                 disk's interrupt lands on CPU 1, which alone changes a
 *                 QD1 write by ~25 %);
 *   engine/sim    the page store on the sim device, flush latency 1 ms, no
 *                 native FUA (write + flush per batch);
 *   base/sim      the baseline on the same device: N committers
 *                 (fibers), each doing one write + flush per commit.
 * The sim device models a consumer SSD without power-loss protection: a
 * flush programs the drive's whole volatile cache and the drive runs
 * flushes one at a time, so a flush submitted at t completes at
 * max(t, end of the previous flush) + 1 ms (urt_sim_opts.flush_serial,
 * docs/sim.md).  Writes complete at once and overlap freely.  A flush
 * covers every write completed before it was submitted, so base/sim's
 * committers share nothing but the queue: about 1 / flush latency commits
 * per second whatever N is, with latency growing as N x 1 ms.  (Linux's
 * blk-flush would coalesce concurrent fdatasync flushes on a real drive;
 * the sim models the drive, not the kernel.)  For each N the sim section
 * prints engine/base and the engine's p99 in units of the flush latency
 * (issue 5's targets: >= 20x at 64 committers, p99 <= 3x), and how many of
 * the engine's flushes had to wait for another (its checkpoints' flushes
 * share the queue with the log's).
 * Steal time from /proc/stat is printed with every figure.
 *
 * The sim section runs one shard: the sim is one drive with one flush
 * queue, and the sim target is about that queue.
 *
 * Each engine line also gives commits per batch and log bytes per commit.
 * -B skips the baselines (for before/after comparisons of the engine);
 * -n N runs only N committers; -D d sets the store's log depth (batches
 * written at once, urt_ps_opts.log_depth).  -m recovery measures replay instead: N
 * committers (default 64) on the sim device for the given seconds, then a
 * power cut and a reopen, printing how much log the open replayed and its
 * rate in records/s.
 *
 * Usage: bench_commit [-f file] [-s seconds] [-m file|sim|all] [-S shards] [-c bytes] [-B] [-n N]
 *                     [-D log_depth]
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "urbench/result.h"
#include "urt/buf.h"
#include "urt/dev.h"
#include "urt/error.h"
#include "urt/fiber.h"
#include "urt/hist.h"
#include "urt/ps.h"
#include "urt/rt.h"
#include "urt/sim.h"

#define FILE_BYTES (512ull << 20)
#define ENGINE_REGION (256ull << 20)	/* The store's region (all shards; zeroed before each run). */
#define LOG_MB_DEFAULT 64		/* Log per shard: checkpoints (two flushes each) every ~log/4 bytes. */
#define COMMITTERS_MAX 256

static const unsigned committer_counts[] = { 1, 16, 64, 256 };

/* Bytes each commit changes; 0 = the whole page (-c). */
static uint32_t change_bytes;

/* Log batches in flight at once (-D; urt_ps_opts.log_depth), 0 = the store's default. */
static uint32_t log_depth;

struct result {
	double commits_per_s;
	uint64_t p50_ns, p99_ns;
	double per_batch;
	double log_bytes_per_commit;	/* Engine: log written per commit (for the physical limit). */
	unsigned shards;		/* Engine: shards (cores) the committers ran on. */
	double steal_pct;
};

static void print_result(const char *what, unsigned n, const struct result *r)
{
	printf("%-12s N=%-4u %10.0f commits/s  p50 %8.1f us  p99 %8.1f us", what, n,
	       r->commits_per_s, r->p50_ns / 1e3, r->p99_ns / 1e3);
	if (r->per_batch > 0)
		printf("  %6.1f commits/batch  %6.0f log B/commit  %u shard%s", r->per_batch,
		       r->log_bytes_per_commit, r->shards, r->shards == 1 ? " " : "s");
	printf("  steal %4.1f%%\n", r->steal_pct);
	fflush(stdout);
}

/* ---- The engine: one shard per core, its committers in fibers there ------- */

/* One shard's run, on core `core`. */
struct eng_run {
	struct urt_dev *dev;
	bool crash;		/* Cut the power after the run and recover (-m recovery). */
	struct urt_dev *reopened;/* The post-crash device (crash). */
	struct urt_ps_stats rst;/* Stats of the recovered store (crash). */
	int rerr;		/* Error of the recovering open (crash). */
	enum urt_ps_sync sync;
	unsigned core;
	unsigned shards;
	unsigned n;		/* Committers on this shard. */
	struct urt_ps *ps;
	uint64_t deadline;	/* Set once the store is open: the open is not timed. */
	uint64_t run_ns;	/* Time the committers run. */
	unsigned live;
	struct urt_waitq wq;
	struct urt_hist hist;
	uint64_t commits;
	int err;
	char why[512];		/* urt_last_error() of the failure, copied on the reactor (thread-local there). */
	struct urt_ps_stats st;
	struct eng_arg *args;
	sem_t *done;
};

struct eng_arg {
	struct eng_run *r;
	unsigned id;
};

static void eng_committer(void *p)
{
	struct eng_arg *a = p;
	struct eng_run *r = a->r;
	uint64_t seq = 0;

	while (urt_clock_ns() < r->deadline && !r->err) {
		uint64_t t0 = urt_clock_ns();
		struct urt_tx *tx;
		void *data;
		int ret = urt_tx_begin(r->ps, &tx);

		if (ret == 0) {
			ret = urt_page_get(tx, a->id, URT_PAGE_WRITE, &data);
			if (ret == 0) {
				size_t len = urt_ps_page_data_bytes(r->ps), off = 0;

				seq++;
				if (change_bytes && change_bytes < len) {
					/* The changed range moves along the page, 8-byte aligned. */
					off = (seq * 8 * 37) % (len - change_bytes) / 8 * 8;
					len = change_bytes;
				}
				/* Never 0, so that every commit changes every byte it writes. */
				memset((uint8_t *)data + off, (int)(seq % 255 + 1), len);
				ret = urt_tx_commit(tx);
			} else {
				urt_tx_abort(tx);
			}
		}
		if (ret) {
			r->err = ret;
			break;
		}
		urt_hist_add(&r->hist, urt_clock_ns() - t0);
		r->commits++;
	}
	if (--r->live == 0)
		urt_waitq_wake_all(&r->wq);
}

static void eng_main(void *p)
{
	struct eng_run *r = p;
	struct urt_ps_opts o;
	uint64_t off, bytes;
	int ret;

	urt_ps_opts_default(&o);
	o.create = true;
	o.format = true;
	/* The bench zeroes the file region itself (real blocks); the sim zeroes cheaply. */
	o.format_zero_pages = urt_sim_is(r->dev);
	o.sync = r->sync;
	if (log_depth)
		o.log_depth = log_depth;
	o.pool_pages = 2 * COMMITTERS_MAX;
	o.log_bytes = (getenv("URT_BENCH_LOG_MB") ? strtoull(getenv("URT_BENCH_LOG_MB"), NULL, 0) : LOG_MB_DEFAULT) << 20;
	urt_ps_shard_region(ENGINE_REGION, r->shards, r->core, &off, &bytes);
	o.region_offset = off;
	o.region_bytes = bytes;
	o.shard_id = r->core;
	o.shard_count = r->shards;
	ret = urt_ps_open(r->dev, &o, &r->ps);
	if (ret) {
		fprintf(stderr, "urt_ps_open (shard %u): %s%s%s%s\n", r->core, urt_strerror(ret),
			*urt_last_error() ? " (" : "", urt_last_error(), *urt_last_error() ? ")" : "");
		r->err = ret;
		goto out;
	}
	r->live = r->n;
	r->deadline = urt_clock_ns() + r->run_ns;
	for (unsigned i = 0; i < r->n; i++) {
		r->args[i].r = r;
		r->args[i].id = i;
		urt_fiber_spawn(eng_committer, &r->args[i]);
	}
	while (r->live)
		urt_waitq_wait(&r->wq);
	urt_ps_stats(r->ps, &r->st);
	if (r->crash) {
		struct urt_ps *ps2;

		/* Power cut: what is durable stays; then recover on the post-crash image. */
		urt_sim_crash(r->dev, 1);
		urt_ps_close(r->ps);
		r->rerr = urt_sim_reopen(r->dev, &r->reopened);
		if (r->rerr == 0) {
			o.create = false;
			o.format = false;
			r->rerr = urt_ps_open(r->reopened, &o, &ps2);
		}
		if (r->rerr == 0) {
			urt_ps_stats(ps2, &r->rst);
			r->rerr = urt_ps_close(ps2);
		}
		goto out;
	}
	ret = urt_ps_close(r->ps);
	if (ret && !r->err)
		r->err = ret;
out:
	if (r->err || r->rerr)
		snprintf(r->why, sizeof(r->why), "%s", urt_last_error());
	sem_post(r->done);
}

static const char *file_path;

/*
 * Writes zeros over a file range with real (not unwritten) blocks, so that
 * later writes need no extent conversion and a flush is just a cache flush.
 */
static int file_zero(const char *path, uint64_t bytes)
{
	const size_t chunk = 1u << 20;
	void *buf;
	int fd = open(path, O_RDWR | O_DIRECT);

	if (fd < 0 || posix_memalign(&buf, 4096, chunk))
		return -1;
	memset(buf, 0, chunk);
	for (uint64_t off = 0; off < bytes; off += chunk)
		if (pwrite(fd, buf, chunk, (off_t)off) != (ssize_t)chunk)
			break;
	fdatasync(fd);
	free(buf);
	close(fd);
	return 0;
}

/* URT_BENCH_SYNC=fua|flush for A/B runs of the sync policy; unset: AUTO. */
static enum urt_ps_sync sync_policy(void)
{
	const char *s = getenv("URT_BENCH_SYNC");

	if (!s || !*s)
		return URT_PS_SYNC_AUTO;
	if (strcmp(s, "fua") == 0)
		return URT_PS_SYNC_FUA;
	if (strcmp(s, "flush") == 0)
		return URT_PS_SYNC_FLUSH;
	fprintf(stderr, "bench_commit: URT_BENCH_SYNC wants fua or flush, not '%s'\n", s);
	exit(2);
}

/*
 * Runs n committers for `seconds` on `shards` shards (cores 0..shards-1 of
 * rt, at most n), formatting each shard's region first, and merges the
 * shards' figures into res.
 */
static int run_engine(struct urt_rt *rt, struct urt_dev *dev, enum urt_ps_sync sync, unsigned n,
		      unsigned shards, uint64_t seconds, struct result *res)
{
	struct eng_run *r;
	struct eng_arg *args = calloc(n, sizeof(*args));
	struct urt_hist *all = malloc(sizeof(*all));
	struct ub_cpu_times c0, c1;
	uint64_t commits = 0, st_commits = 0, batches = 0, log_bytes = 0;
	sem_t done;
	int err = 0;

	if (shards > n)
		shards = n;
	r = calloc(shards, sizeof(*r));
	if (!r || !args || !all) {
		free(r);
		free(args);
		free(all);
		return -ENOMEM;
	}
	if (!urt_sim_is(dev))
		file_zero(file_path, ENGINE_REGION);
	sem_init(&done, 0, 0);
	urt_hist_init(all);
	ub_cpu_times_read(&c0);
	for (unsigned i = 0, first = 0; i < shards; i++) {
		r[i].dev = dev;
		r[i].sync = sync;
		r[i].core = i;
		r[i].shards = shards;
		r[i].n = n / shards + (i < n % shards);
		r[i].run_ns = seconds * 1000000000ull;
		r[i].args = args + first;
		r[i].done = &done;
		urt_hist_init(&r[i].hist);
		first += r[i].n;
		urt_fiber_spawn_on(rt, i, eng_main, &r[i]);
	}
	for (unsigned i = 0; i < shards; i++)
		sem_wait(&done);
	ub_cpu_times_read(&c1);
	for (unsigned i = 0; i < shards; i++) {
		urt_hist_merge(all, &r[i].hist);
		commits += r[i].commits;
		st_commits += r[i].st.commits;
		batches += r[i].st.batches;
		log_bytes += r[i].st.log_bytes;
		if (r[i].err && !err)
			err = r[i].err;
		if (getenv("URT_BENCH_VERBOSE"))
			fprintf(stderr, "  shard %u: batches %llu checkpoints %llu log_waits %llu flushes %llu "
				"misses %llu\n", i, (unsigned long long)r[i].st.batches,
				(unsigned long long)r[i].st.checkpoints, (unsigned long long)r[i].st.log_waits,
				(unsigned long long)r[i].st.flushes, (unsigned long long)r[i].st.misses);
	}
	res->commits_per_s = (double)commits / (double)seconds;
	res->p50_ns = urt_hist_percentile(all, 50);
	res->p99_ns = urt_hist_percentile(all, 99);
	res->per_batch = batches ? (double)st_commits / (double)batches : 0;
	res->log_bytes_per_commit = st_commits ? (double)log_bytes / (double)st_commits : 0;
	res->shards = shards;
	res->steal_pct = ub_steal_pct(&c0, &c1);
	if (err)
		fprintf(stderr, "engine run failed: %s\n", urt_strerror(err));
	free(r);
	free(args);
	free(all);
	return err;
}

/*
 * -m recovery: n committers on one shard of the sim device for `seconds`,
 * a power cut, then the open that recovers; prints the replay's figures.
 */
static int run_recovery(struct urt_rt *rt, unsigned n, uint64_t seconds)
{
	struct eng_arg *args = calloc(n, sizeof(*args));
	struct eng_run r = { 0 };
	struct urt_sim_opts so;
	struct ub_cpu_times c0, c1;
	double secs, log_mib;
	sem_t done;
	int ret;

	urt_sim_opts_default(&so);
	so.size_bytes = FILE_BYTES;
	so.fua = false;
	so.flush_latency_ns = 1000000;
	so.cache_bytes_max = 256ull << 20;
	so.cache_entries_max = 1u << 20;
	ret = args ? urt_sim_open(&so, &r.dev) : -ENOMEM;
	if (ret) {
		free(args);
		return ret;
	}
	sem_init(&done, 0, 0);
	r.sync = URT_PS_SYNC_AUTO;
	r.shards = 1;
	r.n = n;
	r.args = args;
	r.done = &done;
	r.crash = true;
	urt_hist_init(&r.hist);
	ub_cpu_times_read(&c0);
	r.run_ns = seconds * 1000000000ull;
	urt_fiber_spawn_on(rt, 0, eng_main, &r);
	sem_wait(&done);
	ub_cpu_times_read(&c1);
	ret = r.err ? r.err : r.rerr;
	if (ret) {
		fprintf(stderr, "recovery run failed: %s%s%s%s\n", urt_strerror(ret), r.why[0] ? " (" : "", r.why,
			r.why[0] ? ")" : "");
	} else {
		secs = (double)r.rst.recovery_ns / 1e9;
		log_mib = (double)(r.st.durable_lsn - r.st.checkpoint_lsn) / (1 << 20);
		printf("recovery     N=%-4u %llu commits, then a power cut: replayed %.1f MiB of log, "
		       "%llu batches, %llu page records (%llu deltas) in %.1f ms: %.0f records/s, "
		       "%.0f MiB/s  steal %4.1f%%\n", n, (unsigned long long)r.commits, log_mib,
		       (unsigned long long)r.rst.recovered_batches,
		       (unsigned long long)r.rst.recovered_pages,
		       (unsigned long long)r.rst.recovered_deltas, secs * 1e3,
		       secs > 0 ? (double)r.rst.recovered_pages / secs : 0.0,
		       secs > 0 ? log_mib / secs : 0.0, ub_steal_pct(&c0, &c1));
	}
	if (r.reopened)
		urt_dev_close(r.reopened);
	urt_dev_close(r.dev);
	free(args);
	return ret;
}

/* ---- Baseline: write + flush per commit, fibers on the sim ---------------- */

struct sim_base {
	struct urt_dev *dev;
	unsigned n;
	uint64_t deadline;
	unsigned live;
	struct urt_waitq wq;
	struct urt_hist hist;
	uint64_t commits;
	int err;
	sem_t done;
	uint64_t seconds;
};

struct sb_arg {
	struct sim_base *b;
	unsigned id;
};

static void sb_committer(void *p)
{
	struct sb_arg *a = p;
	struct sim_base *b = a->b;
	uint8_t *buf = urt_buf_get(4096);

	memset(buf, (int)a->id, 4096);
	while (urt_clock_ns() < b->deadline && !b->err) {
		uint64_t t0 = urt_clock_ns();
		ssize_t w;
		int f;

		w = urt_write(b->dev, buf, 4096, ENGINE_REGION + (uint64_t)a->id * 4096);
		f = w == 4096 ? urt_flush(b->dev) : -EIO;
		if (f) {
			b->err = f;
			break;
		}
		urt_hist_add(&b->hist, urt_clock_ns() - t0);
		b->commits++;
	}
	urt_buf_put(buf);
	if (--b->live == 0)
		urt_waitq_wake_all(&b->wq);
}

static void sb_main(void *p)
{
	static struct sb_arg args[COMMITTERS_MAX];
	struct sim_base *b = p;

	urt_hist_init(&b->hist);
	b->live = b->n;
	b->deadline = urt_clock_ns() + b->seconds * 1000000000ull;
	for (unsigned i = 0; i < b->n; i++) {
		args[i].b = b;
		args[i].id = i;
		urt_fiber_spawn(sb_committer, &args[i]);
	}
	while (b->live)
		urt_waitq_wait(&b->wq);
	sem_post(&b->done);
}

static void run_sim_base(struct urt_rt *rt, struct urt_dev *dev, unsigned n, uint64_t seconds,
			 struct result *res)
{
	struct sim_base *b = calloc(1, sizeof(*b));
	struct ub_cpu_times c0, c1;

	b->dev = dev;
	b->n = n;
	b->seconds = seconds;
	sem_init(&b->done, 0, 0);
	ub_cpu_times_read(&c0);
	urt_fiber_spawn_on(rt, 0, sb_main, b);
	sem_wait(&b->done);
	ub_cpu_times_read(&c1);
	res->commits_per_s = (double)b->commits / (double)seconds;
	res->p50_ns = urt_hist_percentile(&b->hist, 50);
	res->p99_ns = urt_hist_percentile(&b->hist, 99);
	res->per_batch = 0;
	res->steal_pct = ub_steal_pct(&c0, &c1);
	free(b);
}

/* ---- Baseline: threads doing pwrite + fdatasync on a file ----------------- */

struct thr_base {
	int fd;
	unsigned id;
	int cpu;		/* Pinned to this CPU. */
	uint64_t deadline;
	uint64_t commits;
	struct urt_hist hist;
};

static void *thr_committer(void *p)
{
	struct thr_base *t = p;
	void *buf;

	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(t->cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0) {
		fprintf(stderr, "baseline: cannot pin a thread to CPU %d\n", t->cpu);
		return NULL;
	}
	if (posix_memalign(&buf, 4096, 4096))
		return NULL;
	memset(buf, (int)t->id, 4096);
	urt_hist_init(&t->hist);
	while (urt_clock_ns() < t->deadline) {
		uint64_t t0 = urt_clock_ns();

		if (pwrite(t->fd, buf, 4096, (off_t)(ENGINE_REGION + t->id * 4096)) != 4096 || fdatasync(t->fd))
			break;
		urt_hist_add(&t->hist, urt_clock_ns() - t0);
		t->commits++;
	}
	free(buf);
	return NULL;
}

/* n baseline committers, thread i pinned to cpus[i % ncpus]. */
static int run_file_base(const char *path, unsigned n, const int *cpus, unsigned ncpus,
			 uint64_t seconds, struct result *res)
{
	struct thr_base *t = calloc(n, sizeof(*t));
	pthread_t *th = calloc(n, sizeof(*th));
	struct urt_hist *all = malloc(sizeof(*all));
	struct ub_cpu_times c0, c1;
	uint64_t deadline, commits = 0;
	int fd = open(path, O_RDWR | O_DIRECT);

	if (fd < 0 || !t || !th || !all) {
		perror("baseline open");
		return -1;
	}
	urt_hist_init(all);
	ub_cpu_times_read(&c0);
	deadline = urt_clock_ns() + seconds * 1000000000ull;
	for (unsigned i = 0; i < n; i++) {
		t[i].fd = fd;
		t[i].id = i;
		t[i].deadline = deadline;
		t[i].cpu = cpus[i % ncpus];
		pthread_create(&th[i], NULL, thr_committer, &t[i]);
	}
	for (unsigned i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		urt_hist_merge(all, &t[i].hist);
		commits += t[i].commits;
	}
	ub_cpu_times_read(&c1);
	res->commits_per_s = (double)commits / (double)seconds;
	res->p50_ns = urt_hist_percentile(all, 50);
	res->p99_ns = urt_hist_percentile(all, 99);
	res->per_batch = 0;
	res->steal_pct = ub_steal_pct(&c0, &c1);
	close(fd);
	free(t);
	free(th);
	free(all);
	return 0;
}

int main(int argc, char **argv)
{
	const char *path = "/tmp/urt-bench-commit.dat";
	const char *mode = "all";
	uint64_t seconds = 2;
	struct urt_rt_opts ro;
	struct urt_rt *rt;
	unsigned shards = 0;
	bool baselines = true;
	unsigned only_n = 0;
	enum urt_ps_sync sync;
	int opt, ret;

	while ((opt = getopt(argc, argv, "f:s:m:S:c:Bn:D:")) != -1) {
		switch (opt) {
		case 'f': path = optarg; break;
		case 's': seconds = strtoull(optarg, NULL, 0); break;
		case 'm': mode = optarg; break;
		case 'S': shards = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'c': change_bytes = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'B': baselines = false; break;
		case 'n': only_n = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'D': log_depth = (uint32_t)strtoul(optarg, NULL, 0); break;
		default:
			fprintf(stderr, "usage: %s [-f file] [-s seconds] [-m file|sim|all] [-S shards] "
				"[-c bytes] [-B] [-n N] [-D log_depth]\n", argv[0]);
			return 2;
		}
	}
	/* A bad URT_BENCH_SYNC stops the run here, before any output. */
	sync = sync_policy();
	/* One reactor per online CPU (the default); the file runs use them all. */
	urt_rt_opts_default(&ro);
	ro.buf_region_bytes = 32u << 20;
	ro.fiber_stack_bytes = 64u << 10;
	ret = urt_rt_start(&ro, &rt);
	if (ret) {
		fprintf(stderr, "urt_rt_start: %s%s%s%s\n", urt_strerror(ret),
			*urt_last_error() ? " (" : "", urt_last_error(), *urt_last_error() ? ")" : "");
		return 1;
	}
	if (shards == 0 || shards > urt_rt_ncores(rt))
		shards = urt_rt_ncores(rt);
	if (only_n > COMMITTERS_MAX) {
		fprintf(stderr, "-n: at most %u committers\n", COMMITTERS_MAX);
		return 2;
	}
	if (strcmp(mode, "recovery") == 0) {
		printf("# change %u bytes per commit; sim device, flush latency 1 ms; %llu s of commits\n",
		       change_bytes ? change_bytes : 4096, (unsigned long long)seconds);
		ret = run_recovery(rt, only_n ? only_n : 64, seconds);
		urt_rt_stop(rt);
		return ret ? 1 : 0;
	}
	if (strcmp(mode, "sim") != 0) {
		struct urt_dev_opts d;
		struct urt_dev *dev;
		int fd;

		printf("# change %u bytes per commit\n", change_bytes ? change_bytes : 4096);
		printf("# O_DIRECT file %s (%llu MiB), %llu s per point\n", path,
		       (unsigned long long)(FILE_BYTES >> 20), (unsigned long long)seconds);
		unlink(path);
		fd = open(path, O_RDWR | O_CREAT, 0600);
		if (fd < 0 || ftruncate(fd, (off_t)FILE_BYTES)) {
			perror(path);
			return 1;
		}
		close(fd);
		file_path = path;
		file_zero(path, FILE_BYTES);
		urt_dev_opts_default(&d);
		ret = urt_dev_open(path, &d, &dev);
		if (ret) {
			fprintf(stderr, "urt_dev_open: %s%s%s%s\n", urt_strerror(ret),
			*urt_last_error() ? " (" : "", urt_last_error(), *urt_last_error() ? ")" : "");
			return 1;
		}
		printf("# device: volatile cache %d, native FUA %d\n", urt_dev_info(dev)->volatile_cache,
		       urt_dev_info(dev)->fua);
		for (size_t i = 0; i < (only_n ? 1 : sizeof(committer_counts) / sizeof(committer_counts[0]));
		     i++) {
			unsigned n = only_n ? only_n : committer_counts[i];
			struct result e, b;
			int cpus[64];
			unsigned ncpus = 0;

			if (run_engine(rt, dev, sync, n, shards, seconds, &e))
				return 1;
			/* The baseline runs on the CPUs the engine's shards ran on. */
			while (ncpus < e.shards && ncpus < 64) {
				cpus[ncpus] = urt_rt_core_cpu(rt, ncpus);
				ncpus++;
			}
			print_result("engine/file", n, &e);
			if (!baselines)
				continue;
			if (run_file_base(path, n, cpus, ncpus, seconds, &b))
				return 1;
			print_result("base/file", n, &b);
			printf("%-12s N=%-4u %10.1fx\n", "speedup", n, e.commits_per_s / b.commits_per_s);
			fflush(stdout);
		}
		urt_dev_close(dev);
		unlink(path);
	}
	if (strcmp(mode, "file") != 0) {
		struct urt_sim_opts so;
		struct urt_dev *dev;

		urt_sim_opts_default(&so);
		so.size_bytes = FILE_BYTES;
		so.fua = false;
		so.flush_latency_ns = 1000000;
		so.cache_bytes_max = 256ull << 20;
		so.cache_entries_max = 1u << 20;
		printf("# change %u bytes per commit\n", change_bytes ? change_bytes : 4096);
		printf("# sim device, flush latency 1 ms, flushes serialised, no native FUA, %llu s per point\n",
		       (unsigned long long)seconds);
		ret = urt_sim_open(&so, &dev);
		if (ret) {
			fprintf(stderr, "urt_sim_open: %d\n", ret);
			return 1;
		}
		for (size_t i = 0; i < (only_n ? 1 : sizeof(committer_counts) / sizeof(committer_counts[0]));
		     i++) {
			unsigned n = only_n ? only_n : committer_counts[i];
			struct urt_sim_stats s0, s1;
			struct result e, b;
			uint64_t flushes;

			urt_sim_stats(dev, &s0);
			if (run_engine(rt, dev, sync, n, 1, seconds, &e))
				return 1;
			urt_sim_stats(dev, &s1);
			print_result("engine/sim", n, &e);
			if (!baselines)
				continue;
			run_sim_base(rt, dev, n, seconds, &b);
			print_result("base/sim", n, &b);
			flushes = s1.flushes - s0.flushes;
			printf("%-12s N=%-4u %10.1fx engine/base  p99 = %.2f x flush latency  "
			       "engine flushes %llu, %.1f%% waited (mean wait %.0f us)\n", "ratio", n,
			       e.commits_per_s / b.commits_per_s, (double)e.p99_ns / (double)so.flush_latency_ns,
			       (unsigned long long)flushes,
			       flushes ? 100.0 * (double)(s1.flushes_queued - s0.flushes_queued) / (double)flushes : 0.0,
			       s1.flushes_queued > s0.flushes_queued ?
				       (double)(s1.flush_queued_ns - s0.flush_queued_ns) / 1e3 /
					       (double)(s1.flushes_queued - s0.flushes_queued) : 0.0);
		}
		urt_dev_close(dev);
	}
	urt_rt_stop(rt);
	return 0;
}
