/*
 * urbench job files: fio option names land in urbench's fields, [global]
 * applies to the jobs after it, and every bad file is refused with one line
 * naming the file, line, section and key, before any job runs.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "urbench/jobfile.h"
#include "urbench/opts.h"

static char dir[200];
static char ini[260];
static char target[260];

static void setup(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/urbench-job-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(ini, sizeof(ini), "%s/job.ini", dir);
	snprintf(target, sizeof(target), "%s/target.dat", dir);
}

static void teardown(void)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(urbench_jobfile, .init = setup, .fini = teardown);

static void write_ini(const char *text)
{
	FILE *f = fopen(ini, "w");

	cr_assert_not_null(f);
	cr_assert_geq(fputs(text, f), 0);
	cr_assert_eq(fclose(f), 0);
}

/* Load ini and parse job i's command line into o. */
static void job_opts(const struct ub_jobfile *jf, unsigned i, struct ub_opts *o)
{
	struct ub_job_argv *a = malloc(sizeof(*a));
	char err[768];

	cr_assert_not_null(a);
	cr_assert_eq(ub_jobfile_job_argv(jf, i, 0, NULL, a, NULL, err, sizeof(err)), 0, "%s", err);
	ub_opts_default(o);
	cr_assert_eq(ub_opts_parse(a->argc, a->argv, o, err, sizeof(err)), 0, "%s", err);
	free(a);
}

/* Load must fail with -EINVAL and an error containing every needle. */
static void load_fails(const char *text, const char *const *needles)
{
	struct ub_jobfile *jf = NULL;
	char err[768];

	write_ini(text);
	cr_assert_eq(ub_jobfile_load(ini, &jf, err, sizeof(err)), -EINVAL, "loaded: %s", text);
	cr_assert_null(jf);
	for (; *needles; needles++)
		cr_assert_not_null(strstr(err, *needles), "\"%s\" not in: %s", *needles, err);
}

#define LOAD_FAILS(text, ...) load_fails(text, (const char *const[]){ __VA_ARGS__, NULL })

/* The whole program on ini with extra arguments; out and err come back malloc'ed. */
static int run_jobfile(char **out, char **err, const char *const *args)
{
	char *argv[16];
	size_t olen, elen;
	FILE *fo = open_memstream(out, &olen), *fe = open_memstream(err, &elen);
	int argc = 0, status;

	argv[argc++] = (char *)"urbench";
	argv[argc++] = ini;
	for (; *args; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;
	status = ub_jobfile_main(argc, argv, fo, fe);
	fclose(fo);
	fclose(fe);
	return status;
}

#define RUN(out, err, ...) run_jobfile(out, err, (const char *const[]){ __VA_ARGS__, NULL })

Test(urbench_jobfile, fio_names_and_global)
{
	struct ub_jobfile *jf;
	struct ub_opts o;
	char text[1024], err[768];

	snprintf(text, sizeof(text),
		 "; fio style\n"
		 "[global]\n"
		 "filename=%s\n"
		 "size=64m\n"
		 "bs=16k\n"
		 "direct=1\n"
		 "time_based=1\n"
		 "runtime=2s\n"
		 "ioengine=io_uring\n"
		 "fixedbufs=1\n"
		 "registerfiles=1\n"
		 "\n"
		 "[empty]\n"
		 "\n"
		 "[deep]\n"
		 "rw=randwrite\n"
		 "iodepth=32\n"
		 "bs=128k\n"
		 "runtime=1m\n"
		 "\n"
		 "[global]\n"
		 "ramp_time=500ms\n"
		 "\n"
		 "[threads]\n"
		 "ioengine=psync\n"
		 "fixedbufs=0\n"
		 "registerfiles=0\n"
		 "numjobs=8\n"
		 "iodepth=64\n"
		 "direct=0\n",
		 target);
	write_ini(text);
	cr_assert_eq(ub_jobfile_load(ini, &jf, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(jf->njobs, 3);
	cr_assert_str_eq(jf->jobs[0].name, "empty");
	cr_assert_str_eq(jf->jobs[2].name, "threads");
	cr_assert_eq(jf->jobs[1].line, 15);

	job_opts(jf, 0, &o);
	cr_assert_str_eq(o.target, target);
	cr_assert_eq(o.size_bytes, 64ull << 20);
	cr_assert_eq(o.bs, 16384);
	cr_assert_eq(o.rw, UB_RW_RANDREAD);
	cr_assert_eq(o.qd, 1);
	cr_assert(o.direct);
	cr_assert_float_eq(o.runtime_s, 2.0, 1e-9);
	cr_assert_float_eq(o.ramp_s, 0.0, 1e-9, "the second [global] comes after this job");
	cr_assert_eq(o.mode.engine, UB_ENGINE_URING);
	cr_assert_eq(o.mode.mods, UB_MOD_FIXEDBUFS | UB_MOD_REGFILES);

	job_opts(jf, 1, &o);
	cr_assert_eq(o.rw, UB_RW_RANDWRITE);
	cr_assert_eq(o.qd, 32);
	cr_assert_eq(o.bs, 131072);
	cr_assert_float_eq(o.runtime_s, 60.0, 1e-9);

	/* fio's sync engines: numjobs is the depth, iodepth does not count. */
	job_opts(jf, 2, &o);
	cr_assert_eq(o.mode.engine, UB_ENGINE_PSYNC);
	cr_assert_eq(o.mode.mods, 0);
	cr_assert_eq(o.qd, 8);
	cr_assert_not(o.direct);
	cr_assert_float_eq(o.ramp_s, 0.5, 1e-9);
	ub_jobfile_free(jf);
}

Test(urbench_jobfile, env_urbench_names_and_size_bound_jobs)
{
	struct ub_jobfile *jf;
	struct ub_opts o;
	char err[768];

	cr_assert_eq(setenv("URB_TEST_BS", "8k", 1), 0);
	write_ini("[global]\n"
		  "filename=sim:8m\n"
		  "bs=${URB_TEST_BS}\n"
		  "[native]\n"
		  "mode=uring+hybrid\n"
		  "qd=4\n"
		  "rw=randrw\n"
		  "rwmixwrite=30\n"
		  "ops=1000\n"
		  "[bytes]\n"
		  "ioengine=io_uring\n"
		  "io_size=1m\n"
		  "sync=dsync\n"
		  "rw=randwrite\n"
		  "randseed=77\n");
	cr_assert_eq(ub_jobfile_load(ini, &jf, err, sizeof(err)), 0, "%s", err);
	job_opts(jf, 0, &o);
	cr_assert_eq(o.bs, 8192);
	cr_assert_eq(o.mode.mods, UB_MOD_HYBRID);
	cr_assert_eq(o.qd, 4);
	cr_assert_eq(o.rwmix_read, 70);
	cr_assert_eq(o.ops, 1000);
	/* Without time_based, fio does io_size (or size) bytes: 1 MiB / 8 KiB. */
	job_opts(jf, 1, &o);
	cr_assert_eq(o.ops, 128);
	cr_assert(o.fua);
	cr_assert_eq(o.seed, 77);
	ub_jobfile_free(jf);
}

Test(urbench_jobfile, unknown_option_names_section_and_key)
{
	LOAD_FAILS("[global]\nbs=4k\n[j1]\nfrobnicate=3\n", "job.ini:4", "[j1]", "unknown option frobnicate");
	LOAD_FAILS("[global]\nirange=2\n[j1]\n", "job.ini:2", "[global]", "irange");
}

Test(urbench_jobfile, syntax_errors_name_the_line)
{
	LOAD_FAILS("[j]\ntime_based\n", "job.ini:2", "[j] time_based", "time_based=1");
	LOAD_FAILS("bs=4k\n[j]\n", "job.ini:1", "before the first [section]");
	LOAD_FAILS("no section\n[j]\n", "job.ini:1: no section: ", "before the first [section]");
	LOAD_FAILS("[j\nbs=4k\n", "job.ini:1", "no closing ]");
	LOAD_FAILS("[a]\n[a]\n", "job.ini:2", "[a] appears twice");
	LOAD_FAILS("[global]\nbs=4k\n", "no job");
	LOAD_FAILS("[j]\nfilename=${URB_TEST_SURELY_UNSET}\n", "job.ini:2", "[j] filename",
		   "${URB_TEST_SURELY_UNSET} is not set");
	LOAD_FAILS("[j]\nbs=\n", "job.ini:2", "[j] bs has an empty value");
}

Test(urbench_jobfile, missing_file)
{
	struct ub_jobfile *jf = NULL;
	char err[768];

	cr_assert_eq(ub_jobfile_load("/nonexistent/x.ini", &jf, err, sizeof(err)), -ENOENT);
	cr_assert_not_null(strstr(err, "/nonexistent/x.ini"), "%s", err);
}

/* Translation errors: the fio value urbench cannot honour, by section and key. */
static void argv_fails(const char *text, const char *const *needles)
{
	struct ub_jobfile *jf;
	struct ub_job_argv *a = malloc(sizeof(*a));
	char err[768];

	cr_assert_not_null(a);
	write_ini(text);
	cr_assert_eq(ub_jobfile_load(ini, &jf, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(ub_jobfile_job_argv(jf, 0, 0, NULL, a, NULL, err, sizeof(err)), -EINVAL, "accepted: %s", text);
	for (; *needles; needles++)
		cr_assert_not_null(strstr(err, *needles), "\"%s\" not in: %s", *needles, err);
	ub_jobfile_free(jf);
	free(a);
}

#define ARGV_FAILS(text, ...) argv_fails(text, (const char *const[]){ __VA_ARGS__, NULL })

Test(urbench_jobfile, values_urbench_cannot_honour)
{
	ARGV_FAILS("[j]\nfilename=x\nioengine=libaio\nsize=1m\n", "job.ini:3: [j] ioengine=libaio", "io_uring");
	ARGV_FAILS("[j]\nfilename=x\nrw=rw\nsize=1m\n", "[j] rw=rw", "randrw");
	ARGV_FAILS("[j]\nfilename=x\nruntime=10\n", "[j] runtime=10", "time_based=1");
	ARGV_FAILS("[j]\nfilename=x\ntime_based=1\n", "[j] time_based=1", "needs runtime=");
	ARGV_FAILS("[j]\nfilename=x\n", "[j] has neither runtime=");
	ARGV_FAILS("[j]\nfilename=x\nsize=1m\nfixedbufs=1\n", "[j] fixedbufs=1", "ioengine=io_uring");
	ARGV_FAILS("[j]\nfilename=x\nsize=1m\nthread=0\n", "[j] thread=0", "threads");
	ARGV_FAILS("[j]\nfilename=x\nsize=1m\nsync=1\n", "[j] sync=1", "dsync");
	ARGV_FAILS("[j]\nfilename=x\nsize=1m\nmode=uring\nioengine=io_uring\n", "ioengine=io_uring", "not both");
	ARGV_FAILS("[j]\nfilename=x\nsize=1m\nramp_time=3d\n", "[j] ramp_time=3d", "unit");
}

/* The lines above name no empty section "[]". */
Test(urbench_jobfile, no_empty_brackets_before_a_section)
{
	struct ub_jobfile *jf = NULL;
	char err[768];

	write_ini("time_based\n[j]\n");
	cr_assert_eq(ub_jobfile_load(ini, &jf, err, sizeof(err)), -EINVAL);
	cr_assert_null(strstr(err, "[]"), "%s", err);
}

/*
 * iodepth is checked whatever the engine: psync (fio's default) runs one
 * I/O per job and ignores a valid depth, as fio does, but a malformed one
 * is an error in the file, not a value to skip.
 */
Test(urbench_jobfile, bad_iodepth_refused_with_any_engine)
{
	struct ub_jobfile *jf;
	struct ub_opts o;
	char err[768];

	ARGV_FAILS("[j]\nfilename=x\nsize=1m\niodepth=abc\n", "job.ini:4: [j] iodepth=abc", "1 or more");
	ARGV_FAILS("[j]\nfilename=x\nsize=1m\niodepth=0\n", "job.ini:4: [j] iodepth=0", "1 or more");
	ARGV_FAILS("[j]\nfilename=x\nsize=1m\niodepth=-1\n", "job.ini:4: [j] iodepth=-1", "1 or more");
	ARGV_FAILS("[global]\niodepth=4x\n[j]\nfilename=x\nsize=1m\nioengine=psync\n", "job.ini:2: [j] iodepth=4x");
	ARGV_FAILS("[j]\nfilename=x\nsize=1m\nqd=2\niodepth=abc\n", "[j] iodepth=abc");
	/* A valid depth with psync is accepted and, as in fio, has no effect. */
	write_ini("[j]\nfilename=x\nsize=1m\niodepth=16\n");
	cr_assert_eq(ub_jobfile_load(ini, &jf, err, sizeof(err)), 0, "%s", err);
	job_opts(jf, 0, &o);
	cr_assert_eq(o.mode.engine, UB_ENGINE_PSYNC);
	cr_assert_eq(o.qd, 1);
	ub_jobfile_free(jf);
}

Test(urbench_jobfile, bad_value_in_a_later_job_runs_nothing)
{
	char text[512], *out, *err;
	struct stat st;

	snprintf(text, sizeof(text),
		 "[global]\nfilename=%s\nsize=4m\nioengine=io_uring\nnumber_ios=100\n"
		 "[good]\n"
		 "[bad]\nbs=4q\n",
		 target);
	write_ini(text);
	cr_assert_eq(RUN(&out, &err, "--no-progress"), 2);
	cr_assert_not_null(strstr(err, "job.ini:8: [bad] bs=4q: bad --bs 4q"), "%s", err);
	cr_assert_eq(strchr(err, '\n'), err + strlen(err) - 1, "one line: %s", err);
	cr_assert_eq(stat(target, &st), -1, "the good job ran although the file is bad");
	free(out);
	free(err);
}

Test(urbench_jobfile, numjobs_needs_as_many_cpus)
{
	char text[512], *out, *err;

	snprintf(text, sizeof(text), "[j]\nfilename=%s\nsize=4m\nioengine=io_uring\nnumjobs=2\ncpus_allowed=0\n"
		 "number_ios=10\n", target);
	write_ini(text);
	cr_assert_eq(RUN(&out, &err, "--no-progress"), 2);
	cr_assert_not_null(strstr(err, "[j] numjobs=2"), "%s", err);
	free(out);
	free(err);
}

Test(urbench_jobfile, two_jobs_one_json_document)
{
	char text[512], *out, *err;
	json_object *top, *jobs, *j, *runs;

	snprintf(text, sizeof(text),
		 "[global]\nfilename=%s\nsize=4m\nnumber_ios=300\n"
		 "[reads]\nioengine=io_uring\nfixedbufs=1\niodepth=4\n"
		 "[writes]\nname=psync writes\nrw=randwrite\nnumjobs=2\n",
		 target);
	write_ini(text);
	cr_assert_eq(RUN(&out, &err, "--json", "--no-progress"), 0, "%s", err);
	top = json_tokener_parse(out);
	cr_assert_not_null(top, "not JSON: %s", out);
	cr_assert(json_object_object_get_ex(top, "jobs", &jobs));
	cr_assert_eq(json_object_array_length(jobs), 2);
	j = json_object_array_get_idx(jobs, 0);
	cr_assert_str_eq(json_object_get_string(json_object_object_get(j, "job")), "reads");
	cr_assert_eq(json_object_get_int(json_object_object_get(j, "qd")), 4);
	cr_assert(json_object_object_get_ex(j, "runs", &runs));
	cr_assert_str_eq(json_object_get_string(json_object_object_get(json_object_array_get_idx(runs, 0), "mode")),
			 "uring+fixedbufs");
	cr_assert_eq(json_object_get_int64(json_object_object_get(
			     json_object_object_get(json_object_array_get_idx(runs, 0), "total"), "ops")), 300);
	j = json_object_array_get_idx(jobs, 1);
	cr_assert_str_eq(json_object_get_string(json_object_object_get(j, "job")), "psync writes");
	cr_assert_str_eq(json_object_get_string(json_object_object_get(j, "rw")), "randwrite");
	cr_assert_eq(json_object_get_int(json_object_object_get(j, "qd")), 2);
	json_object_put(top);
	free(out);
	free(err);
}

Test(urbench_jobfile, wanted)
{
	char *a1[] = { "urbench", "x.ini", NULL }, *a2[] = { "urbench", "f.dat", "--job", "j", NULL };
	char *a3[] = { "urbench", "f.dat", "--qd", "4", NULL }, *a4[] = { "urbench", "--json", "x.ini", NULL };

	cr_assert(ub_jobfile_wanted(2, a1));
	cr_assert(ub_jobfile_wanted(4, a2));
	cr_assert_not(ub_jobfile_wanted(4, a3));
	cr_assert_not(ub_jobfile_wanted(3, a4), "the job file comes first, or with --job");
}
