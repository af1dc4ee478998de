/*
 * compare-engines: urt's embedded key-value store against the embedded
 * stores people use instead (RocksDB, LMDB, WiredTiger), in one program,
 * one run, on the same machine and the same data.
 *
 *   compare-engines [--quick] [--dir DIR] [--keys N] [--seconds S]
 *                   [--rounds R] [--engines urt,urt-local,rocksdb,lmdb,wiredtiger]
 *                   [--readers N] [--scan-keys N] [--urt-cores N]
 *
 * Each engine first gets a fresh store in DIR/<engine>.<pid> holding keys
 * 0..N-1 (16-byte keys, 100-byte values), loaded its fastest way and then
 * made durable.  Then R rounds, the engines alternating (round r starts
 * with engine r), each engine running in turn:
 *
 *   opened with a cache that holds the data twice over:
 *     warm      one ordered scan of every key (checks that all N are there)
 *     get       random point gets from `readers` workers        -> get-cached
 *     scan      ordered scans of 10,000 keys from a random start,
 *               one worker                                      -> scan
 *     put-W     random durable overwrites of 100-byte values from
 *               W = 1, 16, 64 writers                           -> put-1/16/64
 *     sync      flush / checkpoint (untimed)
 *   reopened with a cache of a tenth of the data, reads bypassing the OS
 *   page cache where the engine can:
 *     get       random point gets from `readers` workers        -> get-10x
 *
 * Workers are threads for RocksDB, LMDB and WiredTiger, and fibers spread
 * over the runtime's cores for urt.  "urt" workers use any key (about half
 * their calls cross to the other core's shard); "urt-local" workers use
 * only keys of their own core's shard (eng_urt.c).  Every timed phase prints one "row"
 * line (ops/s, p50/p99 latency, process CPU and device bytes per op from
 * /proc/self, the host's steal time, and the time the process's threads
 * waited for a CPU and how often they were put on one, per op, from
 * each thread's /proc/self/task/N/schedstat); the end prints the medians of the
 * rounds as one table with urt (and urt-local) / each other engine, in
 * Markdown for docs/engine.md.
 * Any failed operation is an error: the program prints it and exits 1.
 *
 * --quick is a run of seconds (the ctest smoke test); the defaults are the
 * full run (minutes).  Wrap timed runs in `flock /work/locks/bench`.
 * Exit status: 0, 1 (an engine failed), 2 (bad usage), 3 (DIR cannot take
 * O_DIRECT, e.g. tmpfs).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "urbench/result.h"
#include "urt/error.h"
#include "urt/hist.h"

/* Workloads of the table, in its order. */
enum wl { WL_PUT1, WL_PUT16, WL_PUT64, WL_GET_CACHED, WL_GET_10X, WL_SCAN, WL_COUNT };
static const char *const wl_name[WL_COUNT] = { "put-1", "put-16", "put-64", "get-cached", "get-10x",
					       "scan-10k" };

#define ENGINES_MAX 5u
#define ROUNDS_MAX 15u
/* Workers of the load (urt's NOSYNC puts need many in flight). */
#define LOAD_WORKERS 16u
/* Keys a load worker takes at a time. */
#define LOAD_CHUNK 10000u

struct opts {
	const char *dir;		/* Parent of the engines' directories. */
	uint64_t keys;			/* Keys of the data set. */
	size_t value;			/* Value bytes. */
	double seconds;			/* Length of each timed phase. */
	unsigned rounds;		/* Rounds of every engine. */
	unsigned readers;		/* Workers of the get phases. */
	unsigned writers[3];		/* Workers of put-1/16/64. */
	uint64_t scan_keys;		/* Keys per scan. */
	unsigned urt_cores;		/* urt's reactors; 0 = one per CPU. */
	const struct ce_engine *engines[ENGINES_MAX];	/* Engines, in round-0 order. */
	unsigned nengines;		/* Entries in engines. */
};

/* One timed phase's figures. */
struct figures {
	double ops_s;		/* Operations per second. */
	double p50_us;		/* Median latency of one operation. */
	double p99_us;		/* 99th percentile. */
	double cpu_us_op;	/* Process CPU time (user + system, all threads) per op. */
	double wbytes_op;	/* Bytes the process wrote to the block layer per op. */
	double rbytes_op;	/* Bytes it read from the block layer per op. */
	double steal_pct;	/* Host steal time during the phase. */
	double wait_us_op;	/* Time the process's threads were runnable but waited for a CPU, per op. */
	double runs_op;		/* Times its threads were put on a CPU (wakeups and preemptions), per op. */
	double secs;		/* Length of the phase, until its last worker ended. */
	double load1;		/* 1-minute load average at its end (other jobs on the machine). */
	bool valid;		/* The phase ran. */
};

enum kind { K_LOAD, K_PUT, K_GET, K_SCAN, K_WARM };

struct phase {
	const struct opts *o;		/* Options. */
	const struct ce_engine *e;	/* Engine. */
	void *db;			/* Its open store. */
	enum kind kind;			/* What the workers do. */
	uint64_t deadline_ns;		/* End of a timed phase. */
	_Atomic uint64_t next;		/* Load: next chunk's first key. */
	sem_t done;			/* One post per finished worker. */
};

struct worker {
	struct phase *ph;		/* Shared state. */
	uint64_t rng;			/* xorshift state. */
	uint64_t ops;			/* Operations done. */
	struct urt_hist lat;		/* Latency of each operation (ns). */
	int err;			/* First error, or 0. */
	char errtext[1024];		/* Its text. */
	pthread_t thread;		/* When the driver made a thread for it. */
};

static _Thread_local char last_error[512];

void ce_set_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
}

const char *ce_last_error(void)
{
	return last_error;
}

/* ce_last_error for a message: never an empty field when an engine set none. */
static const char *ce_detail(void)
{
	return last_error[0] ? last_error : "no detail from the engine";
}

void ce_key(uint64_t k, char *buf)
{
	char tmp[CE_KEY_BYTES + 1];

	snprintf(tmp, sizeof(tmp), "key:%012" PRIu64, k % UINT64_C(1000000000000));
	memcpy(buf, tmp, CE_KEY_BYTES);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/* Process-wide counters read before and after a phase. */
struct proc_sample {
	double cpu_s;		/* utime + stime of every thread, seconds. */
	uint64_t rbytes;	/* /proc/self/io read_bytes. */
	uint64_t wbytes;	/* /proc/self/io write_bytes. */
	struct ub_cpu_times host;	/* /proc/stat, for steal. */
	double run_delay_s;	/* Sum over threads of schedstat run_delay: runnable, not running. */
	uint64_t runs;		/* Sum over threads of schedstat pcount: times put on a CPU. */
};

/*
 * Scheduler figures of every live thread (/proc/self/task/N/schedstat:
 * time on CPU, time runnable but waiting for one, times put on one).  A
 * phase whose operations wait for threads that sleep shows here as waits
 * and wakeups per op; threads that exited during the phase are missed.
 */
static void sched_sample_read(struct proc_sample *s)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		char path[300];	/* A d_name is at most 255 bytes. */
		unsigned long long run, delay, pcount;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/schedstat", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fscanf(f, "%llu %llu %llu", &run, &delay, &pcount) == 3) {
			s->run_delay_s += (double)delay / 1e9;
			s->runs += pcount;
		}
		fclose(f);
	}
	closedir(d);
}

static void proc_sample_read(struct proc_sample *s)
{
	char buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;

	memset(s, 0, sizeof(*s));
	f = fopen("/proc/self/stat", "r");
	if (f) {
		if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) != NULL)
			sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
		fclose(f);
	}
	s->cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	f = fopen("/proc/self/io", "r");
	if (f) {
		while (fgets(buf, sizeof(buf), f)) {
			unsigned long long v;

			if (sscanf(buf, "read_bytes: %llu", &v) == 1)
				s->rbytes = v;
			else if (sscanf(buf, "write_bytes: %llu", &v) == 1)
				s->wbytes = v;
		}
		fclose(f);
	}
	ub_cpu_times_read(&s->host);
	sched_sample_read(s);
}

/* The 1-minute load average: runnable tasks, this benchmark's own included. */
static double load_avg(void)
{
	double l = 0;
	FILE *f = fopen("/proc/loadavg", "r");

	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = 0;
		fclose(f);
	}
	return l;
}

static int worker_fail(struct worker *w, int err, const char *what)
{
	if (w->err == 0) {
		w->err = err;
		snprintf(w->errtext, sizeof(w->errtext), "%s %s: %s (%s)", w->ph->e->name, what,
			 ce_detail(), urt_strerror(err));
	}
	return err;
}

/* A random key of the data set that the engine wants this worker to use. */
static void pick_key(struct worker *w, void *h, char *key)
{
	const struct ce_engine *e = w->ph->e;

	do
		ce_key(rnd(&w->rng) % w->ph->o->keys, key);
	while (e->key_wanted && !e->key_wanted(h, key, CE_KEY_BYTES));
}

static void worker_loop(struct worker *w, void *h)
{
	struct phase *ph = w->ph;
	const struct opts *o = ph->o;
	const struct ce_engine *e = ph->e;
	char key[CE_KEY_BYTES];
	size_t buf_len = o->value + 64, vlen;
	char *val = malloc(o->value), *buf = malloc(buf_len);
	uint64_t got;
	int ret;

	if (!val || !buf) {
		worker_fail(w, -ENOMEM, "worker buffers");
		goto out;
	}
	for (size_t i = 0; i < o->value; i++)
		val[i] = (char)rnd(&w->rng);
	if (ph->kind == K_LOAD) {
		for (;;) {
			uint64_t lo = atomic_fetch_add(&ph->next, LOAD_CHUNK), hi;

			if (lo >= o->keys)
				break;
			hi = lo + LOAD_CHUNK < o->keys ? lo + LOAD_CHUNK : o->keys;
			ret = e->load(h, lo, hi, val, o->value);
			if (ret) {
				worker_fail(w, ret, "load");
				break;
			}
			w->ops += hi - lo;
		}
		goto out;
	}
	if (ph->kind == K_WARM) {
		ce_key(0, key);
		ret = e->scan(h, key, CE_KEY_BYTES, o->keys + 1, &got);
		if (ret == 0 && got != o->keys) {
			ce_set_error("found %" PRIu64 " keys, not %" PRIu64, got, o->keys);
			ret = -EIO;
		}
		if (ret)
			worker_fail(w, ret, "scan of the whole store");
		w->ops = got;
		goto out;
	}
	while (w->err == 0) {
		uint64_t t0;

		if ((w->ops & 7) == 0 && now_ns() >= ph->deadline_ns)
			break;
		t0 = now_ns();
		switch (ph->kind) {
		case K_PUT:
			pick_key(w, h, key);
			val[w->ops % o->value] = (char)w->ops;	/* Each put writes a new value. */
			ret = e->put(h, key, CE_KEY_BYTES, val, o->value);
			if (ret)
				worker_fail(w, ret, "put");
			break;
		case K_GET:
			pick_key(w, h, key);
			ret = e->get(h, key, CE_KEY_BYTES, buf, buf_len, &vlen);
			if (ret)
				worker_fail(w, ret, "get");
			else if (vlen != o->value)
				worker_fail(w, -EIO, "get returned a value of the wrong length");
			break;
		case K_SCAN: {
			uint64_t span = o->keys > o->scan_keys ? o->keys - o->scan_keys : 1;

			ce_key(rnd(&w->rng) % span, key);
			ret = e->scan(h, key, CE_KEY_BYTES, o->scan_keys, &got);
			if (ret)
				worker_fail(w, ret, "scan");
			else if (got != (o->scan_keys < o->keys ? o->scan_keys : o->keys))
				worker_fail(w, -EIO, "scan returned fewer keys than asked for");
			break;
		}
		default:
			break;
		}
		urt_hist_add(&w->lat, now_ns() - t0);
		w->ops++;
	}
out:
	free(val);
	free(buf);
}

static void worker_main(void *arg)
{
	struct worker *w = arg;
	struct phase *ph = w->ph;
	void *h = NULL;
	int ret;

	ret = ph->e->worker_open(ph->db, &h);
	if (ret) {
		worker_fail(w, ret, "worker open");
	} else {
		worker_loop(w, h);
		ph->e->worker_close(h);
	}
	sem_post(&ph->done);
}

static void *worker_thread(void *arg)
{
	worker_main(arg);
	return NULL;
}

/*
 * Runs n workers of kind on the open store db; fills f (timed kinds).
 * Returns 0 or the first worker's error (printed).
 */
static int phase_run(const struct opts *o, const struct ce_engine *e, void *db, enum kind kind, unsigned n,
		     struct figures *f)
{
	struct worker *ws = calloc(n, sizeof(*ws));
	struct phase ph = { .o = o, .e = e, .db = db, .kind = kind };
	struct proc_sample s0, s1;
	struct urt_hist lat;
	uint64_t t0, ops = 0;
	unsigned started = 0;
	double secs;
	int ret = 0;

	if (!ws)
		return -ENOMEM;
	sem_init(&ph.done, 0, 0);
	proc_sample_read(&s0);
	t0 = now_ns();
	ph.deadline_ns = t0 + (uint64_t)(o->seconds * 1e9);
	for (unsigned i = 0; i < n; i++) {
		ws[i].ph = &ph;
		ws[i].rng = 0x9e3779b97f4a7c15ull * (i + 1) ^ t0;
		urt_hist_init(&ws[i].lat);
		if (e->spawn)
			ret = e->spawn(db, i, worker_main, &ws[i]);
		else
			ret = -pthread_create(&ws[i].thread, NULL, worker_thread, &ws[i]);
		if (ret) {
			fprintf(stderr, "compare-engines: %s: cannot start worker %u: %s\n", e->name, i,
				strerror(-ret));
			break;
		}
		started++;
	}
	for (unsigned i = 0; i < started; i++)
		sem_wait(&ph.done);
	secs = (double)(now_ns() - t0) / 1e9;
	proc_sample_read(&s1);
	if (!e->spawn)
		for (unsigned i = 0; i < started; i++)
			pthread_join(ws[i].thread, NULL);
	urt_hist_init(&lat);
	for (unsigned i = 0; i < started; i++) {
		if (ws[i].err && ret == 0) {
			ret = ws[i].err;
			fprintf(stderr, "compare-engines: %s\n", ws[i].errtext);
		}
		urt_hist_merge(&lat, &ws[i].lat);
		ops += ws[i].ops;
	}
	if (f) {
		f->ops_s = (double)ops / secs;
		f->p50_us = (double)urt_hist_percentile(&lat, 50) / 1e3;
		f->p99_us = (double)urt_hist_percentile(&lat, 99) / 1e3;
		f->cpu_us_op = ops ? (s1.cpu_s - s0.cpu_s) * 1e6 / (double)ops : 0;
		f->wbytes_op = ops ? (double)(s1.wbytes - s0.wbytes) / (double)ops : 0;
		f->rbytes_op = ops ? (double)(s1.rbytes - s0.rbytes) / (double)ops : 0;
		f->steal_pct = ub_steal_pct(&s0.host, &s1.host);
		f->wait_us_op = ops ? (s1.run_delay_s - s0.run_delay_s) * 1e6 / (double)ops : 0;
		f->runs_op = ops ? (double)(s1.runs - s0.runs) / (double)ops : 0;
		f->secs = secs;
		f->load1 = load_avg();
		f->valid = ret == 0 && ops > 0;
		if (ret == 0 && ops == 0) {
			fprintf(stderr, "compare-engines: %s: a phase of %.1f s completed no operation\n",
				e->name, secs);
			ret = -EIO;
		}
	}
	free(ws);
	return ret;
}

static void row_print(unsigned round, const struct ce_engine *e, enum wl wl, unsigned workers,
		      const struct figures *f)
{
	printf("row round=%u engine=%-10s workload=%-10s workers=%-2u ops/s=%-9.0f p50_us=%-8.1f "
	       "p99_us=%-8.1f cpu_us/op=%-7.2f wbytes/op=%-7.0f rbytes/op=%-7.0f steal=%.1f%% load=%.1f secs=%.2f "
	       "cpuwait_us/op=%.2f runs/op=%.3f\n",
	       round, e->name, wl_name[wl], workers, f->ops_s, f->p50_us, f->p99_us, f->cpu_us_op,
	       f->wbytes_op, f->rbytes_op, f->steal_pct, f->load1, f->secs, f->wait_us_op, f->runs_op);
	fflush(stdout);
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static void engine_dir(const struct opts *o, const struct ce_engine *e, char *buf, size_t len)
{
	snprintf(buf, len, "%s/compare-engines.%d/%s", o->dir, (int)getpid(), e->name);
}

/* Data bytes the engines hold: key + value of every key. */
static uint64_t data_bytes(const struct opts *o)
{
	return o->keys * (CE_KEY_BYTES + o->value);
}

static unsigned workers_max(const struct opts *o)
{
	unsigned m = o->readers;

	for (unsigned i = 0; i < 3; i++)
		if (o->writers[i] > m)
			m = o->writers[i];
	return m < 8 ? 8 : m;
}

/* Creates e's store and loads the data set; prints the load rate. */
static int engine_load(const struct opts *o, const struct ce_engine *e)
{
	char dir[4096];
	struct ce_cfg c = { .dir = dir, .fresh = true, .keys = o->keys, .value = o->value,
			    .cache_bytes = data_bytes(o) * 2 + (64ull << 20), .workers_max = workers_max(o),
			    .cores = o->urt_cores };
	struct figures f = { 0 };
	uint64_t t0 = now_ns();
	void *db;
	int ret;

	engine_dir(o, e, dir, sizeof(dir));
	if (mkdir(dir, 0755) && errno != EEXIST) {
		fprintf(stderr, "compare-engines: mkdir %s: %s\n", dir, strerror(errno));
		return -errno;
	}
	ret = e->open(&c, &db);
	if (ret) {
		fprintf(stderr, "compare-engines: %s: open %s: %s (%s)\n", e->name, dir, ce_detail(),
			urt_strerror(ret));
		return ret;
	}
	ret = phase_run(o, e, db, K_LOAD, LOAD_WORKERS, &f);
	if (ret == 0) {
		ret = e->sync(db);
		if (ret)
			fprintf(stderr, "compare-engines: %s: sync after load: %s (%s)\n", e->name,
				ce_detail(), urt_strerror(ret));
	}
	if (e->close(db) && ret == 0) {
		fprintf(stderr, "compare-engines: %s: close: %s\n", e->name, ce_detail());
		ret = -EIO;
	}
	if (ret == 0)
		printf("load engine=%-10s keys=%" PRIu64 " in %.1f s (%.0f keys/s, then made durable)\n",
		       e->name, o->keys, (double)(now_ns() - t0) / 1e9, f.ops_s);
	return ret;
}

/* One round of every workload on engine e; figures go to res[wl]. */
static int engine_round(const struct opts *o, const struct ce_engine *e, unsigned round,
			struct figures res[WL_COUNT])
{
	char dir[4096];
	struct ce_cfg c = { .dir = dir, .keys = o->keys, .value = o->value,
			    .cache_bytes = data_bytes(o) * 2 + (64ull << 20), .workers_max = workers_max(o),
			    .cores = o->urt_cores };
	void *db;
	int ret, ret2;

	engine_dir(o, e, dir, sizeof(dir));
	ret = e->open(&c, &db);
	if (ret) {
		fprintf(stderr, "compare-engines: %s: open: %s (%s)\n", e->name, ce_detail(), urt_strerror(ret));
		return ret;
	}
	ret = phase_run(o, e, db, K_WARM, 1, NULL);
	if (ret == 0)
		ret = phase_run(o, e, db, K_GET, o->readers, &res[WL_GET_CACHED]);
	if (ret == 0) {
		row_print(round, e, WL_GET_CACHED, o->readers, &res[WL_GET_CACHED]);
		ret = phase_run(o, e, db, K_SCAN, 1, &res[WL_SCAN]);
	}
	if (ret == 0)
		row_print(round, e, WL_SCAN, 1, &res[WL_SCAN]);
	for (unsigned i = 0; i < 3 && ret == 0; i++) {
		ret = phase_run(o, e, db, K_PUT, o->writers[i], &res[WL_PUT1 + i]);
		if (ret == 0)
			row_print(round, e, (enum wl)(WL_PUT1 + i), o->writers[i], &res[WL_PUT1 + i]);
	}
	if (ret == 0 && e->report)
		e->report(db, stdout);
	if (ret == 0) {
		ret = e->sync(db);
		if (ret)
			fprintf(stderr, "compare-engines: %s: sync: %s (%s)\n", e->name, ce_detail(),
				urt_strerror(ret));
	}
	ret2 = e->close(db);
	if (ret2 && ret == 0) {
		fprintf(stderr, "compare-engines: %s: close: %s (%s)\n", e->name, ce_detail(),
			urt_strerror(ret2));
		ret = ret2;
	}
	if (ret)
		return ret;

	/* A tenth of the data in cache, reads past the OS page cache. */
	c.cache_bytes = data_bytes(o) / 10;
	c.direct = true;
	ret = e->open(&c, &db);
	if (ret) {
		fprintf(stderr, "compare-engines: %s: open (10x): %s (%s)\n", e->name, ce_detail(),
			urt_strerror(ret));
		return ret;
	}
	ret = phase_run(o, e, db, K_GET, o->readers, &res[WL_GET_10X]);
	if (ret == 0) {
		row_print(round, e, WL_GET_10X, o->readers, &res[WL_GET_10X]);
		if (e->report)
			e->report(db, stdout);
	}
	ret2 = e->close(db);
	if (ret2 && ret == 0) {
		fprintf(stderr, "compare-engines: %s: close (10x): %s (%s)\n", e->name, ce_detail(),
			urt_strerror(ret2));
		ret = ret2;
	}
	return ret;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median of field (an offset into struct figures) over n rounds. */
static double median(const struct figures *per_round, unsigned stride, unsigned n, size_t field)
{
	double v[ROUNDS_MAX];

	for (unsigned i = 0; i < n; i++)
		memcpy(&v[i], (const char *)&per_round[i * stride] + field, sizeof(double));
	qsort(v, n, sizeof(double), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void fmt_rate(char *buf, size_t len, double v)
{
	if (v >= 1e6)
		snprintf(buf, len, "%.2fM", v / 1e6);
	else if (v >= 1e4)
		snprintf(buf, len, "%.0fk", v / 1e3);
	else if (v >= 1e3)
		snprintf(buf, len, "%.1fk", v / 1e3);
	else
		snprintf(buf, len, "%.0f", v);
}

/* Whether engine i is one of urt's (its ratios are taken against the others). */
static bool is_urt(const struct opts *o, unsigned i)
{
	return strncmp(o->engines[i]->name, "urt", 3) == 0;
}

/* res[round][engine][wl] */
static void table_print(const struct opts *o, const struct figures *res, double steal_run)
{
	unsigned ne = o->nengines, stride = ne * WL_COUNT;

	printf("\n== medians of %u round(s); %" PRIu64 " keys, %zu-byte values, %.1f s phases; "
	       "steal over the whole run %.1f%%; steal and load columns: mean over the engines of "
	       "each one's median\n\n", o->rounds, o->keys, o->value, o->seconds, steal_run);
	printf("| workload | ");
	for (unsigned i = 0; i < ne; i++)
		printf("%s ops/s (p99 µs) | ", o->engines[i]->name);
	for (unsigned u = 0; u < ne; u++)
		for (unsigned i = 0; is_urt(o, u) && i < ne; i++)
			if (!is_urt(o, i))
				printf("%s/%s | ", o->engines[u]->name, o->engines[i]->name);
	printf("steal %% | load |\n|---|");
	for (unsigned i = 0; i < ne; i++)
		printf("---|");
	for (unsigned u = 0; u < ne; u++)
		for (unsigned i = 0; is_urt(o, u) && i < ne; i++)
			if (!is_urt(o, i))
				printf("---|");
	printf("---|---|\n");
	for (unsigned w = 0; w < WL_COUNT; w++) {
		double ops[ENGINES_MAX], steal = 0, load = 0;

		printf("| %s | ", wl_name[w]);
		for (unsigned i = 0; i < ne; i++) {
			const struct figures *f = &res[i * WL_COUNT + w];
			char r[32];

			ops[i] = median(f, stride, o->rounds, offsetof(struct figures, ops_s));
			fmt_rate(r, sizeof(r), ops[i]);
			printf("%s (%.0f) | ", r, median(f, stride, o->rounds, offsetof(struct figures, p99_us)));
			steal += median(f, stride, o->rounds, offsetof(struct figures, steal_pct)) / ne;
			load += median(f, stride, o->rounds, offsetof(struct figures, load1)) / ne;
		}
		for (unsigned u = 0; u < ne; u++)
			for (unsigned i = 0; is_urt(o, u) && i < ne; i++)
				if (!is_urt(o, i))
					printf("%.2fx | ", ops[i] > 0 ? ops[u] / ops[i] : 0);
		printf("%.1f | %.1f |\n", steal, load);
	}
	printf("\nPer operation, medians (process CPU µs / bytes written to the device / bytes read):\n\n");
	printf("| workload | ");
	for (unsigned i = 0; i < ne; i++)
		printf("%s | ", o->engines[i]->name);
	printf("\n|---|");
	for (unsigned i = 0; i < ne; i++)
		printf("---|");
	printf("\n");
	for (unsigned w = 0; w < WL_COUNT; w++) {
		printf("| %s | ", wl_name[w]);
		for (unsigned i = 0; i < ne; i++) {
			const struct figures *f = &res[i * WL_COUNT + w];

			printf("%.1f / %.0f / %.0f | ", median(f, stride, o->rounds, offsetof(struct figures, cpu_us_op)),
			       median(f, stride, o->rounds, offsetof(struct figures, wbytes_op)),
			       median(f, stride, o->rounds, offsetof(struct figures, rbytes_op)));
		}
		printf("\n");
	}
	fflush(stdout);
}

static const struct ce_engine *engine_by_name(const char *name, size_t len)
{
	static const struct ce_engine *const all[] = { &ce_engine_urt, &ce_engine_urt_local, &ce_engine_rocksdb,
						       &ce_engine_lmdb, &ce_engine_wiredtiger };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (strlen(all[i]->name) == len && strncmp(all[i]->name, name, len) == 0)
			return all[i];
	return NULL;
}

static int parse_engines(struct opts *o, const char *list)
{
	o->nengines = 0;
	while (*list) {
		size_t len = strcspn(list, ",");
		const struct ce_engine *e = engine_by_name(list, len);

		if (!e) {
			fprintf(stderr, "compare-engines: unknown engine '%.*s' (urt, urt-local, rocksdb, lmdb, wiredtiger)\n",
				(int)len, list);
			return -EINVAL;
		}
		for (unsigned i = 0; i < o->nengines; i++)
			if (o->engines[i] == e) {
				fprintf(stderr, "compare-engines: engine %s named twice\n", e->name);
				return -EINVAL;
			}
		o->engines[o->nengines++] = e;
		list += len;
		if (*list == ',')
			list++;
	}
	if (o->nengines == 0) {
		fprintf(stderr, "compare-engines: --engines names no engine\n");
		return -EINVAL;
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: compare-engines [--quick] [--dir DIR] [--keys N] [--seconds S] [--rounds R]\n"
		"                       [--engines urt,urt-local,rocksdb,lmdb,wiredtiger]\n"
		"                       [--readers N] [--scan-keys N]\n"
		"                       [--urt-cores N]\n"
		"  full run (default): 500000 keys, 1.5 s phases, 3 rounds (about 6 minutes)\n"
		"  --quick:            10000 keys, 0.2 s phases, 1 round (seconds; the smoke test)\n");
}

static int parse_u64(const char *name, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "compare-engines: %s wants a whole number from %" PRIu64 " to %" PRIu64
			", not '%s'\n", name, min, max, s);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "dir", required_argument, NULL, 'd' },
		{ "keys", required_argument, NULL, 'k' },
		{ "seconds", required_argument, NULL, 's' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "engines", required_argument, NULL, 'e' },
		{ "readers", required_argument, NULL, 'R' },
		{ "scan-keys", required_argument, NULL, 'S' },
		{ "urt-cores", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct opts o = { .dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", .keys = 500000, .value = 100,
			  .seconds = 1.5, .rounds = 3, .readers = 16, .writers = { 1, 16, 64 },
			  .scan_keys = 10000 };
	const char *engines = "urt,urt-local,rocksdb,lmdb,wiredtiger";
	bool keys_set = false, seconds_set = false, rounds_set = false;
	struct figures *res;
	struct proc_sample run0, run1;
	char top[4096];
	uint64_t v;
	int ch, ret = 0;

	while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (ch) {
		case 'q':
			if (!keys_set)
				o.keys = 10000;
			if (!seconds_set)
				o.seconds = 0.2;
			if (!rounds_set)
				o.rounds = 1;
			break;
		case 'd': o.dir = optarg; break;
		case 'k':
			if (parse_u64("--keys", optarg, 1000, 100000000, &o.keys))
				return 2;
			keys_set = true;
			break;
		case 's': {
			char *end;

			o.seconds = strtod(optarg, &end);
			if (end == optarg || *end || !(o.seconds > 0 && o.seconds <= 600)) {
				fprintf(stderr, "compare-engines: --seconds wants a number above 0 and at most 600, "
						"not '%s'\n", optarg);
				return 2;
			}
			seconds_set = true;
			break;
		}
		case 'r':
			if (parse_u64("--rounds", optarg, 1, ROUNDS_MAX, &v))
				return 2;
			o.rounds = (unsigned)v;
			rounds_set = true;
			break;
		case 'e': engines = optarg; break;
		case 'R':
			if (parse_u64("--readers", optarg, 1, 256, &v))
				return 2;
			o.readers = (unsigned)v;
			break;
		case 'S':
			if (parse_u64("--scan-keys", optarg, 1, 10000000, &o.scan_keys))
				return 2;
			break;
		case 'C':
			if (parse_u64("--urt-cores", optarg, 1, 64, &v))
				return 2;
			o.urt_cores = (unsigned)v;
			break;
		case 'h': usage(); return 0;
		default: usage(); return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "compare-engines: unexpected argument '%s'\n", argv[optind]);
		usage();
		return 2;
	}
	if (parse_engines(&o, engines))
		return 2;
	res = calloc((size_t)o.rounds * o.nengines * WL_COUNT, sizeof(*res));
	if (!res)
		return 1;
	snprintf(top, sizeof(top), "%s/compare-engines.%d", o.dir, (int)getpid());
	if (mkdir(top, 0755)) {
		fprintf(stderr, "compare-engines: mkdir %s: %s\n", top, strerror(errno));
		return 1;
	}
	/* The 10x phase reads past the page cache: the directory must take O_DIRECT. */
	{
		char probe[4200];
		int fd;

		snprintf(probe, sizeof(probe), "%s/odirect-probe", top);
		fd = open(probe, O_RDWR | O_CREAT | O_DIRECT, 0644);
		if (fd < 0) {
			fprintf(stderr, "compare-engines: %s does not take O_DIRECT (%s; tmpfs?): the 10x phase "
					"needs direct reads, so give --dir a directory on a disk file system\n",
				o.dir, strerror(errno));
			unlink(probe);
			rmdir(top);
			return 3;
		}
		close(fd);
		unlink(probe);
	}
	printf("compare-engines: %" PRIu64 " keys of %u+%zu bytes (%.0f MiB of data), %u round(s), "
	       "%.2f s per phase, %u readers, writers %u/%u/%u, %ld CPUs, files in %s\n",
	       o.keys, CE_KEY_BYTES, o.value, (double)data_bytes(&o) / 1048576.0, o.rounds, o.seconds,
	       o.readers, o.writers[0], o.writers[1], o.writers[2], sysconf(_SC_NPROCESSORS_ONLN), top);
	for (unsigned i = 0; i < o.nengines; i++)
		printf("mode engine=%-10s %s\n", o.engines[i]->name, o.engines[i]->durable_mode);
	fflush(stdout);
	for (unsigned i = 0; i < o.nengines && ret == 0; i++)
		ret = engine_load(&o, o.engines[i]);
	proc_sample_read(&run0);
	for (unsigned r = 0; r < o.rounds && ret == 0; r++)
		for (unsigned k = 0; k < o.nengines && ret == 0; k++) {
			unsigned i = (r + k) % o.nengines;

			ret = engine_round(&o, o.engines[i], r + 1,
					   &res[((size_t)r * o.nengines + i) * WL_COUNT]);
		}
	proc_sample_read(&run1);
	if (ret == 0)
		table_print(&o, res, ub_steal_pct(&run0.host, &run1.host));
	nftw(top, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(res);
	if (ret) {
		fprintf(stderr, "compare-engines: stopped by the error above\n");
		return 1;
	}
	return 0;
}
