/*
 * One urbench run: the target, the phases every worker follows, and the
 * driver loop of the main thread.
 *
 * Design notes
 * ------------
 * A worker is one psync thread or one urt core.  It owns a struct ub_worker
 * and is its only writer; the main thread reads the live_* atomics for the
 * progress line and everything else only after the worker has finished.
 *
 * Phases (run->phase, written by the main thread only):
 *
 *   RAMP --ramp_s elapsed--> MEASURE --runtime_s elapsed, error, SIGINT--> STOP
 *
 * With --ramp 0 the run starts in MEASURE.  A worker notices MEASURE at its
 * next completion, resets its counters and starts its clock; from then on
 * every completion is counted.  A worker issues no new op once it sees STOP
 * or has issued its share of --ops; when its last op completes it stops its
 * clock and increments run->done.  The driver returns when done == nworkers.
 *
 * CPU time (getrusage of the whole process, which includes SQPOLL threads)
 * and steal (/proc/stat) are sampled by the driver when MEASURE begins and
 * when the last worker is done.
 */
#ifndef URBENCH_RUN_H
#define URBENCH_RUN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <time.h>

#include "base/clock.h"
#include "urbench/job.h"
#include "urbench/opts.h"
#include "urbench/result.h"
#include "urt/hist.h"

enum ub_phase {
	UB_PHASE_RAMP = 0,
	UB_PHASE_MEASURE,
	UB_PHASE_STOP,
};

/* What the engines need to know about the target. */
struct ub_target {
	enum ub_target_kind kind;	/* Path, nop or sim. */
	const char *path;		/* Path (PATH kind). */
	uint64_t span_bytes;		/* Usable size: a multiple of bs. */
	uint32_t mem_align;		/* O_DIRECT buffer alignment (1 = none). */
	uint32_t off_align;		/* O_DIRECT offset and length alignment (1 = none). */
	bool is_chardev;		/* An NVMe generic char device. */
};

struct ub_worker {
	struct urt_hist hist;		/* Latency of measured ops, ns. */
	struct urt_hist tick_hist;	/* Latency since the last one-second tick. */
	struct ub_gen gen;		/* Next offsets. */
	uint64_t ops;			/* Measured ops completed. */
	uint64_t reads;			/* Of which reads. */
	uint64_t writes;		/* Of which writes. */
	uint64_t syncs;			/* Flushes completed. */
	uint64_t bytes;			/* Bytes moved. */
	uint64_t errors;		/* Failed ops. */
	uint64_t verify_errors;		/* Reads that failed the signature. */
	uint64_t issued;		/* Ops issued since MEASURE began (for --ops). */
	uint64_t budget;		/* Share of --ops; UINT64_MAX for a timed run. */
	uint64_t t_start_ns;		/* When this worker saw MEASURE. */
	uint64_t t_end_ns;		/* Its last completion. */
	uint64_t next_tick_ns;		/* Next one-second tick of the live figures. */
	unsigned writes_since_sync;	/* For --fsync-every. */
	bool measuring;			/* Saw MEASURE. */
	int core;			/* Index of its core in the result. */
	uint64_t series[UB_SERIES_MAX];	/* Ops completed per second of measurement. */
	_Atomic uint64_t live_ops;	/* Shared: ops completed so far (any phase). */
	_Atomic uint64_t live_bytes;	/* Shared: bytes so far (any phase). */
	_Atomic uint64_t live_p99_ns;	/* Shared: p99 of the last tick. */
	uint64_t all_ops;		/* Private copy of live_ops. */
	uint64_t all_bytes;		/* Private copy of live_bytes. */
};

struct ub_run {
	const struct ub_opts *o;	/* Options. */
	struct ub_mode mode;		/* Mode of this run. */
	const struct ub_target *t;	/* Target. */
	struct ub_result *r;		/* Filled by the engine and the driver. */
	struct ub_worker *workers;	/* nworkers entries. */
	unsigned nworkers;		/* Threads (psync) or cores (uring). */
	_Atomic int phase;		/* enum ub_phase; written by the driver. */
	_Atomic unsigned done;		/* Workers finished. */
	_Atomic int err;		/* First error of a worker, or 0. */
	pthread_mutex_t err_lock;	/* Guards errmsg while err is being set. */
	char errmsg[UB_ERRMSG_MAX];	/* Message of that error. */
	uint64_t t_begin_ns;		/* When the driver started. */
	struct rusage ru0;		/* At MEASURE. */
	struct ub_cpu_times st0;	/* At MEASURE. */
};

/* Set SIGINT to end the measurement early (the run still reports). */
void ub_run_catch_sigint(void);

/* Prepare run (phase, samples) before the engine starts its workers. */
int ub_run_init(struct ub_run *run, const struct ub_opts *o, const struct ub_mode *m,
		const struct ub_target *t, struct ub_result *r, unsigned nworkers);
void ub_run_exit(struct ub_run *run);

/* Prepare worker i for a run (generator, budget, clocks). */
void ub_worker_init(struct ub_run *run, unsigned i, int core);

/*
 * Main thread: drive the phases, print the live line, and return when all
 * workers are done; then fills the CPU and steal figures of run->r.
 */
void ub_run_drive(struct ub_run *run);

/* A worker failed with err: record the first error and stop every worker. */
void ub_run_fail(struct ub_run *run, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Aggregate the workers into run->r per core (psync threads share a core). */
void ub_run_collect(struct ub_run *run);

/* The one-second tick of a worker: live p99 and the IOPS series. */
void ub_worker_tick(struct ub_worker *w, uint64_t now);

/*
 * A worker is about to issue an op: false when it must not (STOP, or its
 * share of --ops is issued).
 */
static inline bool ub_worker_may_issue(struct ub_run *run, struct ub_worker *w)
{
	int phase = atomic_load_explicit(&run->phase, memory_order_relaxed);

	if (phase == UB_PHASE_STOP)
		return false;
	if (phase == UB_PHASE_MEASURE && w->measuring) {
		if (w->issued >= w->budget)
			return false;
		w->issued++;
	}
	return true;
}

/* An op completed at now after lat_ns with bytes moved. */
static inline void ub_worker_done_op(struct ub_run *run, struct ub_worker *w, uint64_t now, uint64_t lat_ns,
				     uint64_t bytes, bool write)
{
	w->all_ops++;
	w->all_bytes += bytes;
	/* Single writer: plain stores, read by the progress line. */
	atomic_store_explicit(&w->live_ops, w->all_ops, memory_order_relaxed);
	atomic_store_explicit(&w->live_bytes, w->all_bytes, memory_order_relaxed);
	urt_hist_add(&w->tick_hist, lat_ns);
	if (now >= w->next_tick_ns)
		ub_worker_tick(w, now);
	if (!w->measuring) {
		if (atomic_load_explicit(&run->phase, memory_order_relaxed) == UB_PHASE_RAMP)
			return;
		/* The first completion of the measurement: start the clock now. */
		w->measuring = true;
		w->t_start_ns = now;
		w->issued = 0;
		return;
	}
	w->ops++;
	w->bytes += bytes;
	if (write)
		w->writes++;
	else
		w->reads++;
	urt_hist_add(&w->hist, lat_ns);
	{
		uint64_t sec = (now - w->t_start_ns) / 1000000000ull;

		if (sec < UB_SERIES_MAX)
			w->series[sec]++;
	}
	w->t_end_ns = now;
}

/* The worker has issued its last op and seen its last completion. */
void ub_worker_finish(struct ub_run *run, struct ub_worker *w);

#endif /* URBENCH_RUN_H */
