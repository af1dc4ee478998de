/*
 * The urbench program (see app.h).
 *
 * Without arguments it runs the README's job: a 1 GiB file in $TMPDIR
 * (default /tmp) is created and filled, then 4 KiB O_DIRECT random reads
 * run at QD1 and at QD32, psync against uring+fixedbufs+regfiles, 5 s each
 * after a 1 s ramp, and the file is removed.  Without TMPDIR and with /tmp
 * in memory (tmpfs, as on Debian 13 and many CI images), the file goes to
 * /var/tmp, which is on disk by convention (FHS): a benchmark of storage
 * on memory measures memcpy, and io_uring hands every read of a tmpfs file
 * to a kernel worker thread (it cannot try it without blocking), so its
 * rows would trail psync there several times over.
 */
#include <errno.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "urbench/app.h"
#include "urbench/engine.h"
#include "urbench/report.h"
#include "urbench/target.h"
#include "urt/rt.h"

/*
 * An io_uring mode when io_uring is blocked for this process (sysctl,
 * seccomp): the row is kept, marked not runnable with the runtime's reason,
 * so that the psync rows still run and report; the exit status is 2.
 */
static bool mode_not_runnable(const struct ub_mode *m, struct ub_result *r)
{
	char why[UB_ERRMSG_MAX];

	if (m->engine == UB_ENGINE_PSYNC || urt_io_uring_check(why, sizeof(why)) == 0)
		return false;
	memset(r, 0, sizeof(*r));
	r->mode = *m;
	ub_mode_name(m, r->mode_name, sizeof(r->mode_name));
	urt_hist_init(&r->total.hist);
	r->err = urt_io_uring_check(NULL, 0);
	r->status = UB_EXIT_USAGE;
	r->not_runnable = true;
	snprintf(r->errmsg, sizeof(r->errmsg), "%s", why);
	return true;
}

static int run_modes(const struct ub_opts *o, const struct ub_target *t, FILE *out, FILE *errf)
{
	const struct ub_mode *modes = o->ncompare ? o->compare : &o->mode;
	unsigned n = o->ncompare ? o->ncompare : 1, done = 0;
	struct ub_result *r;
	int status = UB_EXIT_OK;
	char err[512];

	r = calloc(n, sizeof(*r));
	if (!r) {
		fprintf(errf, "urbench: out of memory\n");
		return UB_EXIT_FAIL;
	}
	for (unsigned i = 0; i < n; i++) {
		int s;

		if (n > 1 && mode_not_runnable(&modes[i], &r[i])) {
			done++;
			status = UB_EXIT_USAGE;
			if (o->json)	/* The text table has the reason in the row itself. */
				fprintf(errf, "urbench: %s not runnable: %s\n", r[i].mode_name, r[i].errmsg);
			continue;
		}
		s = ub_run_mode(o, &modes[i], t, &r[i]);
		done++;
		if (s == UB_EXIT_USAGE) {
			/* A mode this kernel or device cannot do: one line, nothing else. */
			fprintf(errf, "urbench: %s\n", r[i].errmsg);
			free(r);
			return UB_EXIT_USAGE;
		}
		if (s != UB_EXIT_OK) {
			status = s;
			fprintf(errf, "urbench: %s\n", r[i].errmsg[0] ? r[i].errmsg : "the run failed");
		}
	}
	if (o->json)
		ub_report_json(out, o, r, done);
	else
		ub_report_text(out, o, r, done);
	fflush(out);
	if (o->plot[0]) {
		int ret = ub_plot(o, r, done, err, sizeof(err));

		if (ret) {
			fprintf(errf, "urbench: %s\n", err);
			if (status == UB_EXIT_OK)
				status = ret == -ENOENT ? UB_EXIT_USAGE : UB_EXIT_FAIL;
		} else if (!o->json) {
			fprintf(out, "plot written to %s\n", o->plot);
		}
	}
	free(r);
	return status;
}

bool ub_in_memory(const char *path)
{
	struct statfs sf;
	struct stat st;

	/* A device node lives on devtmpfs, which statfs calls a tmpfs: its device is what counts. */
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		return false;
	return statfs(path, &sf) == 0 && (sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC);
}

/* A target file on tmpfs or ramfs: say what the figures measured (after them, on success). */
static void memory_target_note(const struct ub_opts *o, FILE *errf)
{
	if (o->target_kind != UB_TARGET_PATH || !ub_in_memory(o->target))
		return;
	fprintf(errf, "urbench: note: %s is on a file system in memory (tmpfs or ramfs), not on a device: the "
		"figures measure memory copies, and io_uring hands every read and write of such a file to a "
		"kernel worker thread (it cannot try them without blocking), so its rows trail psync here; "
		"for storage, give a target on a disk (a file under /var/tmp, or a block device)\n", o->target);
}

const char *ub_default_dir(const char **why)
{
	const char *dir = getenv("TMPDIR");

	*why = "";
	if (dir && *dir)
		return dir;
	if (ub_in_memory("/tmp") && access("/var/tmp", W_OK) == 0 && !ub_in_memory("/var/tmp")) {
		*why = " (/tmp is in memory, so /var/tmp, on disk; set TMPDIR to choose another directory)";
		return "/var/tmp";
	}
	return "/tmp";
}

static int run_default(struct ub_opts *o, FILE *out, FILE *errf)
{
	static const unsigned qds[] = { 1, 32 };
	const char *why;
	const char *dir = ub_default_dir(&why);
	struct ub_target t;
	bool created;
	char err[512];
	int status = UB_EXIT_OK, ret;

	snprintf(o->target, sizeof(o->target), "%s/urbench-%ld.tmp", dir, (long)getpid());
	o->target_kind = UB_TARGET_PATH;
	fprintf(out, "urbench with no arguments: 4 KiB O_DIRECT random reads on a 1 GiB file, QD1 and QD32,\n"
		"psync vs uring+fixedbufs+regfiles, %.0f s each after a %.0f s ramp (urbench --help for more).\n"
		"Creating %s%s ...\n", o->runtime_s, o->ramp_s, o->target, why);
	fflush(out);
	ret = ub_target_open(o, o->compare, o->ncompare, &t, &created, err, sizeof(err));
	if (ret) {
		fprintf(errf, "urbench: %s (set TMPDIR to a directory on a disk with 1 GiB free)\n", err);
		return UB_EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(qds) / sizeof(qds[0]); i++) {
		o->qd = qds[i];
		fprintf(out, "\n");
		status = run_modes(o, &t, out, errf);
		/* Blocked io_uring still leaves the psync rows of every QD to run. */
		if (status != UB_EXIT_OK && !(status == UB_EXIT_USAGE && urt_io_uring_check(NULL, 0)))
			break;
	}
	if (status == UB_EXIT_OK)
		memory_target_note(o, errf);
	if (created)
		unlink(o->target);
	return status;
}

int ub_main(int argc, char **argv, FILE *out, FILE *errf)
{
	struct ub_opts o;
	struct ub_target t;
	bool created = false;
	char err[512];
	int ret;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--list") != 0)
			continue;
		if (argc == 2)
			return ub_list(out, errf);
		/* getopt does not know --list: it would call it an unknown option. */
		fprintf(errf, "urbench: --list takes no other arguments or options: run urbench --list alone\n");
		return UB_EXIT_USAGE;
	}
	ub_opts_default(&o);
	ret = ub_opts_parse(argc, argv, &o, err, sizeof(err));
	if (ret) {
		fprintf(errf, "urbench: %s\n", err);
		return UB_EXIT_USAGE;
	}
	if (o.help) {
		fputs(ub_usage, out);
		return UB_EXIT_OK;
	}
	if (o.defaulted)
		return run_default(&o, out, errf);
	if (o.plot[0] && !ub_gnuplot_found()) {
		fprintf(errf, "urbench: gnuplot not found: install gnuplot-nox (or drop --plot)\n");
		return UB_EXIT_USAGE;
	}
	/* Before the run: a plot that cannot be written would throw the run's figures away. */
	if (o.plot[0] && ub_plot_path_check(o.plot, err, sizeof(err))) {
		fprintf(errf, "urbench: %s\n", err);
		return UB_EXIT_USAGE;
	}
	ret = ub_target_open(&o, o.ncompare ? o.compare : &o.mode, o.ncompare ? o.ncompare : 1, &t, &created, err,
			     sizeof(err));
	if (ret) {
		fprintf(errf, "urbench: %s\n", err);
		return UB_EXIT_USAGE;
	}
	if (created && !o.json)
		fprintf(out, "created %s (%llu bytes, filled with the verification signature)\n", o.target,
			(unsigned long long)o.size_bytes);
	ret = run_modes(&o, &t, out, errf);
	if (ret == UB_EXIT_OK)
		memory_target_note(&o, errf);	/* After the figures; an error stays one line. */
	return ret;
}
