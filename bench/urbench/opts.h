/*
 * urbench options: what to run, on what, how long, and how to report.
 *
 * ub_opts_default() gives the settings of a plain `urbench FILE` run;
 * ub_opts_parse() applies the command line on top and checks every field,
 * so that the engines never see an inconsistent combination.
 */
#ifndef URBENCH_OPTS_H
#define URBENCH_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UB_CPUS_MAX 64		/* Cores one run may use. */
#define UB_COMPARE_MAX 8	/* Modes one --compare may list. */
#define UB_PATH_MAX 256		/* Longest target or plot path. */
#define UB_QD_MAX 4096		/* Largest --qd (psync: threads per core). */

/* Exit statuses of the tool. */
enum ub_exit {
	UB_EXIT_OK = 0,
	UB_EXIT_FAIL = 1,	/* The run failed: I/O error or verification mismatch. */
	UB_EXIT_USAGE = 2,	/* Bad input, or a mode this kernel/device cannot do. */
};

enum ub_rw {
	UB_RW_RANDREAD = 0,
	UB_RW_RANDWRITE,
	UB_RW_READ,	/* Sequential. */
	UB_RW_WRITE,	/* Sequential. */
	UB_RW_RANDRW,	/* Random, --rwmix percent reads. */
};

enum ub_engine {
	UB_ENGINE_PSYNC = 0,	/* Threads doing blocking pread/pwrite. */
	UB_ENGINE_URING,	/* urt reactors, callback-driven. */
	UB_ENGINE_PASSTHRU,	/* urt with the NVMe passthrough backend. */
};

/* Modifiers of the uring and passthru engines (combinable). */
enum ub_mod {
	UB_MOD_FIXEDBUFS = 1u << 0,	/* Buffers from the registered region. */
	UB_MOD_REGFILES = 1u << 1,	/* The device fd in the fixed-file table. */
	UB_MOD_SQPOLL = 1u << 2,	/* Kernel SQ polling thread. */
	UB_MOD_IOPOLL = 1u << 3,	/* Polled completions (needs poll queues). */
	UB_MOD_HYBRID = 1u << 4,	/* Spin on the CQ, then sleep. */
};

struct ub_mode {
	enum ub_engine engine;	/* Engine. */
	unsigned mods;		/* Mask of enum ub_mod. */
};

enum ub_target_kind {
	UB_TARGET_PATH = 0,	/* Regular file, block device or NVMe char device. */
	UB_TARGET_NOP,		/* No device: IORING_OP_NOP. */
	UB_TARGET_SIM,		/* The simulated device, "sim:SIZE". */
};

struct ub_opts {
	char target[UB_PATH_MAX];	/* Path, "nop" or "sim:SIZE". */
	enum ub_target_kind target_kind;/* What target names. */
	uint64_t size_bytes;		/* --size: size of a created file or of sim. */
	bool size_given;		/* --size was given: also the region of an existing target. */
	enum ub_rw rw;			/* Workload. */
	unsigned rwmix_read;		/* randrw: percent of reads (0..100). */
	uint32_t bs;			/* Block size in bytes. */
	unsigned qd;			/* Queue depth per core (psync: threads per core). */
	int cpus[UB_CPUS_MAX];		/* CPUs to run on. */
	unsigned ncpus;			/* Entries in cpus. */
	double runtime_s;		/* Measured time, when ops is 0. */
	uint64_t ops;			/* Measured ops in total; 0 = run for runtime_s. */
	double ramp_s;			/* Unmeasured warm-up before the measurement. */
	uint64_t seed;			/* Seed of the offset generators. */
	int sched_policy;		/* --sched: enum urt_sched_policy, 0 = none (the default). */
	unsigned sched_depth;		/* --sched POLICY:DEPTH: its depth_max, 0 = the default. */
	bool direct;			/* O_DIRECT (true) or the page cache. */
	struct ub_mode mode;		/* Engine and modifiers of a single run. */
	bool fua;			/* Writes carry FUA (RWF_DSYNC). */
	unsigned fsync_every;		/* A flush after every N writes per worker; 0 = none. */
	bool verify;			/* Writes write the offset pattern; reads check it. */
	bool json;			/* Machine-readable output on stdout. */
	char plot[UB_PATH_MAX];		/* --plot FILE.svg, or empty. */
	struct ub_mode compare[UB_COMPARE_MAX];	/* --compare modes, baseline first. */
	unsigned ncompare;		/* Entries in compare; 0 = a single run. */
	int progress;			/* Live line: 1 on, 0 off, -1 when stderr is a TTY. */
	bool keep;			/* Keep a file urbench created (default: keep). */
	bool help;			/* --help was given: print usage, run nothing. */
	bool defaulted;			/* No arguments: the built-in short compare. */
};

/* Settings of `urbench TARGET` with nothing else. */
void ub_opts_default(struct ub_opts *o);

/*
 * Parse argv (argv[0] is the program name) into o, which the caller has
 * set with ub_opts_default.  Returns 0, or -EINVAL with one line in err
 * that says what to change.  With no arguments at all it fills o with the
 * built-in compare (o->defaulted) and leaves the target for the caller.
 */
int ub_opts_parse(int argc, char **argv, struct ub_opts *o, char *err, size_t errlen);

/* Parse "uring+fixedbufs+regfiles" into *m.  0 or -EINVAL with err. */
int ub_mode_parse(const char *s, struct ub_mode *m, char *err, size_t errlen);

/* Canonical name of m ("uring+fixedbufs+regfiles") into buf. */
const char *ub_mode_name(const struct ub_mode *m, char *buf, size_t len);

/* Name of a workload ("randread"). */
const char *ub_rw_name(enum ub_rw rw);

/* Whether rw issues writes. */
bool ub_rw_writes(enum ub_rw rw);

/* Parse a size with an optional K/M/G/T suffix (binary) into *out.  0 or -EINVAL. */
int ub_size_parse(const char *s, uint64_t *out);

/* The usage text. */
extern const char ub_usage[];

#endif /* URBENCH_OPTS_H */
