/*
 * fio-style job files for urbench: `urbench job.ini`.
 *
 * A job file is an INI file (read with libinih).  A [global] section sets
 * defaults for the jobs that follow it; every other section is one job.
 * Keys are fio's option names (rw, bs, iodepth, size, filename, runtime,
 * numjobs, direct, ioengine, fixedbufs, ...), translated to urbench's
 * options, or urbench's own names (mode, compare, qd, cores, verify, ...).
 * Values may use ${NAME} for an environment variable, as fio's do, so the
 * job files of bench/fio/ run unchanged.
 *
 * Each job becomes one urbench command line; every job is checked before
 * any runs (a bad file runs nothing), then the jobs run one after the other
 * (as fio's `stonewall` would), each with its own table, or, with --json,
 * one document with a "jobs" array.
 *
 * An unknown key, a key without a value, a fio value urbench cannot honour
 * (ioengine=libaio, rw=rw, runtime without time_based) is refused with one
 * line naming the file, the line, the section and the key.
 */
#ifndef URBENCH_JOBFILE_H
#define URBENCH_JOBFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define UB_JOBS_MAX 32		/* Jobs in one file. */
#define UB_JOB_KEYS_MAX 48	/* Keys of one job, [global] included. */
#define UB_JOB_NAME_MAX 64	/* Longest section name. */
#define UB_JOB_KEY_MAX 48	/* Longest key. */
#define UB_JOB_VALUE_MAX 256	/* Longest value, after ${VAR} expansion. */
#define UB_JOB_ARGS_MAX 48	/* Arguments of one job's command line. */

/* One key = value of a job, with where it came from. */
struct ub_job_entry {
	char key[UB_JOB_KEY_MAX];	/* As written, lower case. */
	char value[UB_JOB_VALUE_MAX];	/* ${VAR} expanded. */
	char section[UB_JOB_NAME_MAX];	/* "global" or the job's name. */
	unsigned line;			/* Line in the file. */
};

/* One job: the [global] keys in force at its section, then its own. */
struct ub_job {
	char name[UB_JOB_NAME_MAX];			/* Its section. */
	unsigned line;					/* Line of its [section]. */
	unsigned nentries;				/* Entries in entries. */
	struct ub_job_entry entries[UB_JOB_KEYS_MAX];	/* In file order. */
};

struct ub_jobfile {
	char path[256];			/* The file. */
	unsigned njobs;			/* Entries in jobs. */
	struct ub_job global;		/* [global] keys read so far. */
	struct ub_job jobs[UB_JOBS_MAX];/* The jobs in file order. */
};

/* A job translated into an urbench command line. */
struct ub_job_argv {
	int argc;				/* Arguments, argv[0] included. */
	char *argv[UB_JOB_ARGS_MAX + 1];	/* NULL-terminated; point into store. */
	const struct ub_job_entry *src[UB_JOB_ARGS_MAX];	/* Entry behind argv[i], or NULL. */
	char store[UB_JOB_ARGS_MAX][UB_JOB_VALUE_MAX];	/* The strings. */
	unsigned warnings;			/* Lines written to the warning stream. */
};

/*
 * Read path into a new *out (free with ub_jobfile_free).  Returns 0, or
 * -errno / -EINVAL with one line in err: "FILE:LINE [section] key: why".
 */
int ub_jobfile_load(const char *path, struct ub_jobfile **out, char *err, size_t errlen);
void ub_jobfile_free(struct ub_jobfile *jf);

/*
 * Translate job i into an urbench command line in *a (argv[0] "urbench"),
 * followed by the extra arguments (command-line options that apply to every
 * job).  Keys urbench reads but that change nothing it reports on (e.g.
 * percentile_list) produce one line each on warn (may be NULL).  Returns 0
 * or -EINVAL with one line in err naming the section and key.
 */
int ub_jobfile_job_argv(const struct ub_jobfile *jf, unsigned i, int nextra, char *const *extra,
			struct ub_job_argv *a, FILE *warn, char *err, size_t errlen);

/*
 * Whether argv asks for a job file: its first argument ends in .ini or
 * .fio, or --job FILE is given.
 */
bool ub_jobfile_wanted(int argc, char *const *argv);

/*
 * The program for a job file: load, translate and check every job, then
 * run them in order.  The other arguments apply to every job (e.g. --json,
 * --no-progress).  Returns enum ub_exit: 2 for a bad file (nothing ran),
 * else the worst status of the jobs.
 */
int ub_jobfile_main(int argc, char **argv, FILE *out, FILE *err);

#endif /* URBENCH_JOBFILE_H */
