/*
 * urbench as a program (ub_main): JSON that parses, --compare with one row
 * per mode and the baseline's ratio at 1.00x, exit statuses with one-line
 * errors, --help, and --plot.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "urbench/app.h"
#include "urbench/opts.h"
#include "urbench/report.h"

static char dir[200];
static char path[240];

static void setup(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/urbench-rep-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/target.dat", dir);
}

static void teardown(void)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(urbench_report, .init = setup, .fini = teardown);

/* Run ub_main; its stdout and stderr come back in out and err (malloc'ed). */
static int run_main(char **out, char **err, const char *const *args)
{
	char *argv[64];
	size_t olen, elen;
	FILE *fo = open_memstream(out, &olen), *fe = open_memstream(err, &elen);
	int argc = 0, status;

	argv[argc++] = (char *)"urbench";
	for (; *args; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;
	status = ub_main(argc, argv, fo, fe);
	fclose(fo);
	fclose(fe);
	return status;
}

#define RUN(out, err, ...) run_main(out, err, (const char *const[]){ __VA_ARGS__, NULL })

static bool have_python(void)
{
	return system("python3 -c 'import json' >/dev/null 2>&1") == 0;
}

/* Check text with a python3 program reading JSON from stdin; true when it exits 0. */
static bool python_check(const char *text, const char *program)
{
	char file[400], cmd[2400];
	FILE *f;

	snprintf(file, sizeof(file), "%s/out.json", dir);
	f = fopen(file, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "python3 -c \"%s\" < '%s'", program, file);
	return system(cmd) == 0;
}

static unsigned count_lines(const char *s)
{
	unsigned n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

Test(urbench_report, json_parses)
{
	char *out, *err;
	int status = RUN(&out, &err, path, "--size", "8M", "--json", "--ops", "3000", "--qd", "4", "--verify");

	cr_assert_eq(status, 0, "%s", err);
	cr_assert(strstr(out, "\"tool\": \"urbench\""), "%s", out);
	cr_assert(strstr(out, "\"ops\": 3000"), "%s", out);
	if (!have_python()) {
		free(out);
		free(err);
		cr_skip_test("python3 not found: JSON syntax not checked");
	}
	cr_assert(python_check(out, "import json,sys; d=json.load(sys.stdin); r=d['runs'][0]; "
				    "assert r['total']['ops']==3000, r['total']; "
				    "assert r['total']['bytes']==3000*4096; assert r['status']==0; "
				    "assert r['ratio_iops']==1.0; assert len(r['cores'])==1; "
				    "assert r['total']['lat_us']['p50']>0; assert d['bs']==4096"),
		  "JSON did not parse or lacked fields:\n%s", out);
	free(out);
	free(err);
}

Test(urbench_report, compare_one_row_per_mode)
{
	static const char *const modes[] = { "psync", "uring", "uring+fixedbufs+regfiles" };
	char *out, *err;
	int status = RUN(&out, &err, path, "--size", "8M", "--ops", "2000", "--qd", "4", "--compare",
			 "psync,uring,uring+fixedbufs+regfiles");

	cr_assert_eq(status, 0, "%s", err);
	for (size_t i = 0; i < 3; i++) {
		unsigned rows = 0;
		size_t n = strlen(modes[i]);

		for (const char *line = out; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
			if (strncmp(line, modes[i], n) == 0 && line[n] == ' ')
				rows++;
		cr_assert_eq(rows, 1, "%u rows for %s in:\n%s", rows, modes[i], out);
	}
	/* The baseline's ratio to itself. */
	cr_assert(strstr(out, "1.00x"), "%s", out);
	free(out);
	free(err);
}

Test(urbench_report, compare_json_has_every_mode)
{
	char *out, *err;
	int status = RUN(&out, &err, path, "--size", "8M", "--ops", "1000", "--json", "--compare", "psync,uring");

	cr_assert_eq(status, 0, "%s", err);
	if (!have_python()) {
		free(out);
		free(err);
		cr_skip_test("python3 not found");
	}
	cr_assert(python_check(out, "import json,sys; d=json.load(sys.stdin); "
				    "assert [r['mode'] for r in d['runs']]==['psync','uring']; "
				    "assert d['runs'][0]['ratio_iops']==1.0; "
				    "assert all(r['total']['ops']==1000 for r in d['runs'])"),
		  "%s", out);
	free(out);
	free(err);
}

Test(urbench_report, bad_input_exits_2_with_one_line)
{
	const char *const *cases[] = {
		(const char *const[]){ path, "--qd", "0", NULL },
		(const char *const[]){ path, "--size", "8M", "--bs", "1000", "--ops", "10", NULL },
		(const char *const[]){ path, "--size", "8M", "--mode", "passthru", "--ops", "10", NULL },
		(const char *const[]){ path, "--size", "8M", "--mode", "uring+iopoll", "--ops", "10", NULL },
		(const char *const[]){ "/dev/null", "--ops", "10", NULL },
		(const char *const[]){ "/nonexistent-dir/f", "--ops", "10", NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out, *err;
		int status = run_main(&out, &err, cases[i]);

		cr_assert_eq(status, 2, "case %zu: status %d, stderr %s", i, status, err);
		cr_assert_eq(count_lines(err), 1, "case %zu: stderr is not one line: %s", i, err);
		cr_assert(strncmp(err, "urbench: ", 9) == 0, "case %zu: %s", i, err);
		free(out);
		free(err);
	}
}

Test(urbench_report, help)
{
	char *out, *err;
	int status = RUN(&out, &err, "--help");

	cr_assert_eq(status, 0);
	cr_assert(strstr(out, "usage: urbench"), "%s", out);
	cr_assert_str_eq(err, "");
	free(out);
	free(err);
}

Test(urbench_report, plot_draws_an_svg)
{
	char *out, *err, svg[400], head[512] = { 0 };
	FILE *f;
	int status;

	if (!ub_gnuplot_found())
		cr_skip_test("gnuplot not found: install gnuplot-nox");
	snprintf(svg, sizeof(svg), "%s/chart.svg", dir);
	status = RUN(&out, &err, path, "--size", "8M", "--runtime", "1.2", "--qd", "4", "--compare", "psync,uring",
		     "--plot", svg);
	cr_assert_eq(status, 0, "%s", err);
	f = fopen(svg, "r");
	cr_assert_not_null(f, "no %s", svg);
	cr_assert_gt(fread(head, 1, sizeof(head) - 1, f), 0);
	fclose(f);
	cr_assert(strstr(head, "<svg"), "not an SVG: %s", head);
	free(out);
	free(err);
}

Test(urbench_report, plot_without_gnuplot_says_what_to_install)
{
	char *out, *err, svg[400], *old = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
	int status;

	snprintf(svg, sizeof(svg), "%s/chart.svg", dir);
	setenv("PATH", dir, 1);
	status = RUN(&out, &err, path, "--size", "8M", "--ops", "10", "--plot", svg);
	if (old)
		setenv("PATH", old, 1);
	free(old);
	cr_assert_eq(status, 2);
	cr_assert(strstr(err, "gnuplot not found: install gnuplot-nox"), "%s", err);
	free(out);
	free(err);
}

/*
 * A --plot path that cannot be created is refused before the run (the
 * target is not even created), with one line and exit 2; and gnuplot never
 * writes to urbench's stdout, so --json stays one JSON document.  The real
 * program runs, since gnuplot would write to the process's stdout.
 */
Test(urbench_report, plot_path_checked_before_the_run)
{
	char cmd[2000], outf[300], errf[300], svg[300], *out = NULL, *err = NULL;
	size_t len = 0;
	struct stat st;
	FILE *f;
	int status;

	if (!ub_gnuplot_found())
		cr_skip_test("gnuplot not found: install gnuplot-nox");
	snprintf(outf, sizeof(outf), "%s/out.txt", dir);
	snprintf(errf, sizeof(errf), "%s/err.txt", dir);
	snprintf(svg, sizeof(svg), "%s/no-such-dir/x.svg", dir);
	snprintf(cmd, sizeof(cmd), "'%s' '%s' --size 8M --ops 10 --json --no-progress --plot '%s' >'%s' 2>'%s'",
		 URBENCH_PATH, path, svg, outf, errf);
	status = system(cmd);
	cr_assert(WIFEXITED(status));
	f = fopen(outf, "r");
	cr_assert_not_null(f);
	cr_assert_geq(getdelim(&out, &len, '\0', f), -1);
	fclose(f);
	f = fopen(errf, "r");
	cr_assert_not_null(f);
	len = 0;
	cr_assert_geq(getdelim(&err, &len, '\0', f), -1);
	fclose(f);
	cr_expect_eq(WEXITSTATUS(status), 2, "exit status %d; stderr: %s", WEXITSTATUS(status), err ? err : "");
	cr_expect(out == NULL || strstr(out, "<svg") == NULL, "gnuplot wrote to stdout: %.200s", out);
	cr_expect(err && strstr(err, svg) && strstr(err, "--plot"), "the path is not named: %s", err ? err : "");
	cr_expect(err && count_lines(err) == 1, "stderr is not one line: %s", err ? err : "");
	cr_expect_eq(stat(path, &st), -1, "the run started (target created) before the plot path was checked");
	free(out);
	free(err);
}

/* --list takes nothing else; with more, say so instead of calling it unknown. */
Test(urbench_report, list_takes_no_other_arguments)
{
	const char *const *cases[] = {
		(const char *const[]){ "--list", "--json", NULL },
		(const char *const[]){ "--list", "x", NULL },
		(const char *const[]){ "x", "--list", NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out, *err;
		int status = run_main(&out, &err, cases[i]);

		cr_expect_eq(status, 2, "case %zu: status %d, stderr %s", i, status, err);
		cr_expect(strstr(err, "--list takes no other") != NULL, "case %zu: %s", i, err);
		cr_expect(strstr(err, "unknown option") == NULL, "case %zu: %s", i, err);
		cr_expect_eq(count_lines(err), 1, "case %zu: stderr is not one line: %s", i, err);
		free(out);
		free(err);
	}
}

/* A target that is a symbolic link to nothing: say so, and where it points. */
Test(urbench_report, dangling_symlink_target_is_named)
{
	char link[300], dest[300], *out, *err;
	int status;

	snprintf(link, sizeof(link), "%s/link.dat", dir);
	snprintf(dest, sizeof(dest), "%s/gone/target.dat", dir);
	cr_assert_eq(symlink(dest, link), 0);
	status = RUN(&out, &err, link, "--size", "8M", "--ops", "10", "--no-progress");
	cr_expect_eq(status, 2, "status %d, stderr %s", status, err);
	cr_expect(strstr(err, "dangling symbolic link") != NULL, "%s", err);
	cr_expect(strstr(err, dest) != NULL, "where it points is not said: %s", err);
	cr_expect(strstr(err, "File exists") == NULL, "%s", err);
	unlink(link);
	free(out);
	free(err);
}

/*
 * In a forked child: a mount namespace of its own with a tmpfs on where.
 * Returns 0, or writes the step that failed and why to fd and returns -1
 * (no CAP_SYS_ADMIN; or, in a chroot whose root is not a mount point, the
 * MS_PRIVATE of "/" fails with EINVAL).
 */
static int private_tmpfs(const char *where, const char *size, int fd)
{
	const char *step = "unshare(CLONE_NEWNS)";

	if (unshare(CLONE_NEWNS) == 0) {
		step = "making / private (MS_REC | MS_PRIVATE)";
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0) {
			step = "mounting a tmpfs";
			if (mount("tmpfs", where, "tmpfs", 0, size) == 0)
				return 0;
		}
	}
	dprintf(fd, "%s: %s", step, strerror(errno));
	return -1;
}

/*
 * A target on a file system in memory gets a note on stderr saying what
 * the figures measure there; a target on disk none.  The tmpfs is mounted
 * on the test's directory in a child with a mount namespace of its own
 * (skipped without the privilege for that).
 */
Test(urbench_report, memory_target_is_named)
{
	char *out, *err, got[4096] = "";
	int pfd[2], st;
	ssize_t n = 0, k;
	pid_t pid;

	cr_assert_eq(pipe(pfd), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int status;

		close(pfd[0]);
		if (private_tmpfs(dir, "size=64m", pfd[1]) != 0)
			_exit(77);
		/* Buffered: tmpfs takes O_DIRECT only since Linux 6.6. */
		status = RUN(&out, &err, path, "--size", "8M", "--ops", "2000", "--qd", "4", "--mode", "psync",
			     "--buffered");
		dprintf(pfd[1], "status %d\n%s", status, err);
		_exit(0);
	}
	close(pfd[1]);
	while (n < (ssize_t)sizeof(got) - 1 && (k = read(pfd[0], got + n, sizeof(got) - 1 - (size_t)n)) > 0)
		n += k;
	close(pfd[0]);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
		cr_skip_test("no private tmpfs for the target (%s): the note is not checked", got);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	cr_assert(strncmp(got, "status 0\n", 9) == 0, "urbench failed: %s", got);
	cr_expect(strstr(got, "is on a file system in memory (tmpfs or ramfs)") != NULL, "stderr: %s", got);
}

Test(urbench_report, disk_target_gets_no_memory_note)
{
	char disk[240], *out, *err;
	int status;

	snprintf(disk, sizeof(disk), "%s", path);
	if (ub_in_memory(dir)) {
		if (ub_in_memory("/var/tmp") || access("/var/tmp", W_OK) != 0)
			cr_skip_test("TMPDIR (%s) is a tmpfs and /var/tmp no writable disk here", dir);
		snprintf(disk, sizeof(disk), "/var/tmp/urbench-rep-%ld.dat", (long)getpid());
	}
	status = RUN(&out, &err, disk, "--size", "8M", "--ops", "2000", "--qd", "4", "--mode", "psync");
	if (strcmp(disk, path) != 0)
		unlink(disk);
	cr_assert_eq(status, 0, "%s", err);
	cr_expect(strstr(err, "in memory") == NULL, "stderr: %s", err);
	free(out);
	free(err);
}

/*
 * The default target's directory: TMPDIR when set; else /tmp, or /var/tmp
 * when /tmp is a tmpfs (checked in a child with a tmpfs mounted on /tmp in
 * a mount namespace of its own; skipped without the privilege for that).
 */
Test(urbench_report, default_dir_avoids_a_tmpfs_tmp)
{
	const char *why, *old = getenv("TMPDIR");
	char *saved = old ? strdup(old) : NULL;
	int pfd[2], st;
	char got[300] = "";
	ssize_t n;
	pid_t pid;

	setenv("TMPDIR", "/some/where", 1);
	cr_expect_str_eq(ub_default_dir(&why), "/some/where");
	cr_expect_str_eq(why, "");
	unsetenv("TMPDIR");
	if (ub_in_memory("/var/tmp") || access("/var/tmp", W_OK) != 0) {
		if (saved)
			setenv("TMPDIR", saved, 1);
		free(saved);
		cr_skip_test("/var/tmp is not a writable disk-backed directory here");
	}
	cr_assert_eq(pipe(pfd), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		const char *d;

		close(pfd[0]);
		if (private_tmpfs("/tmp", "size=1m", pfd[1]) != 0)
			_exit(77);
		d = ub_default_dir(&why);
		dprintf(pfd[1], "%s|%s", d, why);
		_exit(0);
	}
	close(pfd[1]);
	n = read(pfd[0], got, sizeof(got) - 1);
	close(pfd[0]);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	if (saved)
		setenv("TMPDIR", saved, 1);
	free(saved);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
		cr_skip_test("no private tmpfs on /tmp (%s): the tmpfs /tmp case is not checked", got);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	cr_assert_gt(n, 0);
	cr_expect(strncmp(got, "/var/tmp|", 9) == 0, "with /tmp a tmpfs the default directory was: %s", got);
	cr_expect(strstr(got, "/tmp is in memory") != NULL, "no reason given: %s", got);
}

/* A device node is on devtmpfs, which statfs calls a tmpfs; its data is on the device: no note. */
Test(urbench_report, device_node_is_not_in_memory)
{
	cr_expect(!ub_in_memory("/dev/null"), "/dev/null counted as a file in memory");
	cr_expect(!ub_in_memory("/nonexistent/urbench"), "a path statfs cannot read counted as in memory");
}
