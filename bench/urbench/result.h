/*
 * Results of one urbench run: per core and in total, plus the machine
 * context (CPU time, steal) needed to read them honestly.
 */
#ifndef URBENCH_RESULT_H
#define URBENCH_RESULT_H

#include <stdbool.h>
#include <stdint.h>

#include "urbench/opts.h"
#include "urt/dev.h"
#include "urt/hist.h"

#define UB_SERIES_MAX 600	/* Seconds of IOPS-over-time kept for --plot. */
#define UB_ERRMSG_MAX 512	/* Longest one-line error. */

/* Latency summary in nanoseconds, from a urt_hist. */
struct ub_lat {
	uint64_t min;	/* Exact. */
	uint64_t p50;	/* Within 1.6% (urt_hist error bound). */
	uint64_t p90;
	uint64_t p99;
	uint64_t p999;
	uint64_t max;	/* Exact. */
	double mean;	/* Exact up to rounding. */
};

/* The counters of one core (all psync threads of a CPU are one core). */
struct ub_core_result {
	int cpu;		/* CPU it ran on (-1 for the total). */
	uint64_t ops;		/* Measured data ops completed (reads + writes). */
	uint64_t reads;		/* Of which reads. */
	uint64_t writes;	/* Of which writes. */
	uint64_t syncs;		/* Flushes issued by --fsync-every (not in ops). */
	uint64_t bytes;		/* Bytes moved by ops. */
	double secs;		/* Measured wall time of this core. */
	uint64_t enters;	/* Syscalls that submitted or waited (uring: io_uring_enter). */
	uint64_t sqes;		/* SQEs handed to the kernel (uring only). */
	struct urt_hist hist;	/* Latency of ops, ns. */
};

struct ub_result {
	struct ub_mode mode;			/* What ran. */
	char mode_name[96];			/* Its canonical name. */
	char backend[32];			/* urt backend name, or "psync". */
	bool bufs_registered;			/* uring: the buffer region was registered. */
	uint32_t ring_flags;			/* uring: setup flags of core 0's main ring. */
	unsigned ncores;			/* Entries in core. */
	struct ub_core_result core[UB_CPUS_MAX];/* Per core. */
	struct ub_core_result total;		/* Sum; secs = the longest core's time. */
	double cpu_user_s;			/* getrusage user time over the measurement. */
	double cpu_sys_s;			/* getrusage system time over the measurement. */
	double steal_pct;			/* Host steal, % of all CPU time, /proc/stat. */
	uint64_t errors;			/* Ops that failed. */
	uint64_t verify_errors;			/* Reads whose data failed the signature. */
	uint64_t series[UB_SERIES_MAX];		/* Completed ops per second of measurement. */
	unsigned nseries;			/* Seconds in series. */
	int err;				/* 0 or the -errno that ended the run. */
	int status;				/* enum ub_exit. */
	bool not_runnable;			/* Not run: io_uring is blocked here (errmsg says why). */
	char errmsg[UB_ERRMSG_MAX];		/* One line when err or errors. */
	bool has_health;			/* uring on a device: health holds its recovery state. */
	struct urt_dev_health health;		/* The device's state and timeout counters after the run. */
};

/* Derived figures (0 when the denominator is 0). */
double ub_core_iops(const struct ub_core_result *c);
double ub_core_mibs(const struct ub_core_result *c);
double ub_core_syscalls_per_io(const struct ub_core_result *c);
double ub_core_batch(const struct ub_core_result *c);	/* SQEs per enter; 0 when no enter. */
double ub_result_cpu_us_per_io(const struct ub_result *r);

void ub_lat_summary(const struct urt_hist *h, struct ub_lat *out);

/* Fill r->total from r->core[]. */
void ub_result_sum(struct ub_result *r);

/* /proc/stat counters of all CPUs, for steal. */
struct ub_cpu_times {
	uint64_t steal;	/* Jiffies stolen by the hypervisor. */
	uint64_t total;	/* All jiffies. */
};

int ub_cpu_times_read(struct ub_cpu_times *t);
double ub_steal_pct(const struct ub_cpu_times *a, const struct ub_cpu_times *b);

#endif /* URBENCH_RESULT_H */
