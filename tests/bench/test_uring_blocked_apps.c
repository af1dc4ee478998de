/*
 * urbench and urkv with io_uring blocked by a seccomp filter, as in a
 * container with an older runtime's default profile.  urbench still runs
 * its psync rows, marks each io_uring row "not runnable" with the cause and
 * the fix, and exits 2; urkv refuses to start with the same words.  The
 * filter is installed in a forked child just before it execs the program.
 */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../uring_block.h"

#define OUT_MAX 16384

struct prog_run {
	char out[OUT_MAX];	/* stdout. */
	char err[OUT_MAX];	/* stderr. */
	int status;		/* Exit status, or -1 when it was killed or timed out. */
};

/* Read whatever fd has into buf (NUL-terminated, at most OUT_MAX - 1 bytes in all). */
static bool drain(int fd, char *buf, size_t *used)
{
	ssize_t n;

	if (*used + 1 >= OUT_MAX)
		return false;
	n = read(fd, buf + *used, OUT_MAX - 1 - *used);
	if (n <= 0)
		return false;
	*used += (size_t)n;
	buf[*used] = '\0';
	return true;
}

/* Run argv with io_uring_setup answering err, capturing both streams; kill it after timeout_s. */
static void run_blocked_errno(char *const argv[], int err, int timeout_s, struct prog_run *r)
{
	int po[2], pe[2], ws;
	size_t no = 0, ne = 0;
	bool open_o = true, open_e = true;
	time_t end = time(NULL) + timeout_s;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	cr_assert_eq(pipe2(po, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(pe, O_CLOEXEC), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		if (tests_block_io_uring_errno(err))
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	while ((open_o || open_e) && time(NULL) < end) {
		struct pollfd p[2] = { { open_o ? po[0] : -1, POLLIN, 0 }, { open_e ? pe[0] : -1, POLLIN, 0 } };

		if (poll(p, 2, 1000) <= 0)
			continue;
		if (p[0].revents && !drain(po[0], r->out, &no))
			open_o = false;
		if (p[1].revents && !drain(pe[0], r->err, &ne))
			open_e = false;
	}
	if (open_o || open_e)
		kill(pid, SIGKILL);
	close(po[0]);
	close(pe[0]);
	cr_assert_eq(waitpid(pid, &ws, 0), pid);
	r->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
	if (r->status == 126)
		cr_skip_test("cannot install a seccomp filter here");
	cr_assert_neq(r->status, 127, "cannot run %s", argv[0]);
	cr_assert(!open_o && !open_e, "%s did not finish within %d s; stderr: %s", argv[0], timeout_s, r->err);
}

/* The usual filter: io_uring_setup answers EPERM. */
static void run_blocked(char *const argv[], int timeout_s, struct prog_run *r)
{
	run_blocked_errno(argv, EPERM, timeout_s, r);
}

/* The cause and the fix, as the runtime words them (tests/runtime/test_uring_blocked.c checks the rest). */
static void expect_reason(const char *text)
{
	cr_expect(strstr(text, "io_uring is unavailable to this process") != NULL, "no reason: %s", text);
	cr_expect(strstr(text, "seccomp filter") != NULL && strstr(text, "Seccomp: 2") != NULL,
		  "the seccomp cause is not named: %s", text);
	cr_expect(strstr(text, "kernel.io_uring_disabled is") != NULL, "the sysctl's value is missing: %s", text);
	cr_expect(strstr(text, "Fix:") != NULL, "no fix: %s", text);
	cr_expect(strstr(text, "io_uring_queue_init(flags") == NULL, "the bare errno is back: %s", text);
}

static char dir[200];
static char path[240];

static void setup(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/urt-blocked-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/target.dat", dir);
}

static void teardown(void)
{
	unlink(path);
	rmdir(dir);
}

TestSuite(uring_blocked_apps, .init = setup, .fini = teardown);

/* A compare: the psync row has figures, both io_uring rows say why they did not run; exit 2. */
Test(uring_blocked_apps, urbench_compare_runs_psync_rows)
{
	char *argv[] = { URBENCH_PATH, path, "--size", "8M", "--ops", "2000", "--no-progress", "--compare",
			 "psync,uring+fixedbufs+regfiles,uring+sqpoll", NULL };
	struct prog_run *r = malloc(sizeof(*r));
	char *psync, *row;
	double iops = 0;

	cr_assert_not_null(r);
	run_blocked(argv, 60, r);
	cr_expect_eq(r->status, 2, "exit status %d; stderr: %s", r->status, r->err);
	psync = strstr(r->out, "\npsync ");
	cr_assert_not_null(psync, "no psync row: %s%s", r->out, r->err);
	cr_expect_eq(sscanf(psync + 1, "psync %lf", &iops), 1);
	cr_expect_gt(iops, 0, "the psync row has no IOPS: %s", r->out);
	row = strstr(r->out, "\nuring+fixedbufs+regfiles ");
	cr_assert_not_null(row, "no uring row: %s", r->out);
	cr_expect(strstr(row, "not runnable: ") != NULL, "the uring row is not marked: %s", r->out);
	expect_reason(row);
	row = strstr(r->out, "\nuring+sqpoll ");
	cr_assert_not_null(row, "no sqpoll row: %s", r->out);
	cr_expect(strstr(row, "not runnable: ") != NULL, "the sqpoll row is not marked: %s", r->out);
	free(r);
}

/* --json: the psync run is in the document with its ops, the uring run has status 2 and the reason. */
Test(uring_blocked_apps, urbench_json_marks_uring_runs)
{
	char *argv[] = { URBENCH_PATH, path, "--size", "8M", "--ops", "1000", "--json", "--compare", "psync,uring",
			 NULL };
	struct prog_run *r = malloc(sizeof(*r));
	struct json_object *doc, *runs, *psync = NULL, *uring = NULL, *v;

	cr_assert_not_null(r);
	run_blocked(argv, 60, r);
	cr_expect_eq(r->status, 2, "exit status %d; stderr: %s", r->status, r->err);
	doc = json_tokener_parse(r->out);
	cr_assert_not_null(doc, "stdout is not JSON: %s", r->out);
	cr_assert(json_object_object_get_ex(doc, "runs", &runs) && json_object_is_type(runs, json_type_array),
		  "no runs array: %s", r->out);
	for (size_t i = 0; i < json_object_array_length(runs); i++) {
		struct json_object *run = json_object_array_get_idx(runs, i);
		const char *mode = json_object_object_get_ex(run, "mode", &v) ? json_object_get_string(v) : "";

		if (strcmp(mode, "psync") == 0)
			psync = run;
		else if (strcmp(mode, "uring") == 0)
			uring = run;
	}
	cr_assert_not_null(psync, "no psync run: %s", r->out);
	cr_expect(json_object_object_get_ex(psync, "status", &v) && json_object_get_int(v) == 0, "psync status");
	cr_expect(json_object_object_get_ex(psync, "total", &v) &&
			  json_object_object_get_ex(v, "ops", &v) && json_object_get_int64(v) == 1000,
		  "the psync run did not move its ops: %s", r->out);
	cr_assert_not_null(uring, "no uring run: %s", r->out);
	cr_expect(json_object_object_get_ex(uring, "status", &v) && json_object_get_int(v) == 2,
		  "uring status: %s", r->out);
	cr_assert(json_object_object_get_ex(uring, "error", &v), "uring run has no error: %s", r->out);
	expect_reason(json_object_get_string(v));
	cr_expect(strstr(r->err, "uring not runnable: ") != NULL, "stderr: %s", r->err);
	json_object_put(doc);
	free(r);
}

/* One io_uring mode alone: nothing to run, one line with the reason, exit 2. */
Test(uring_blocked_apps, urbench_single_uring_mode)
{
	char *argv[] = { URBENCH_PATH, path, "--size", "8M", "--ops", "100", "--mode", "uring", NULL };
	struct prog_run *r = malloc(sizeof(*r));

	cr_assert_not_null(r);
	run_blocked(argv, 60, r);
	cr_expect_eq(r->status, 2, "exit status %d; stderr: %s", r->status, r->err);
	expect_reason(r->err);
	free(r);
}

/*
 * A filter that answers ENOSYS, as if the kernel had no io_uring: still a
 * setup the user must change, so exit 2 with the reason, not 1 ("the run
 * failed"), alone and in a compare whose psync row runs.
 */
Test(uring_blocked_apps, urbench_enosys_is_bad_setup)
{
	char *one[] = { URBENCH_PATH, path, "--size", "8M", "--ops", "100", "--mode", "uring", "--no-progress", NULL };
	char *two[] = { URBENCH_PATH, path, "--size", "8M", "--ops", "100", "--compare", "psync,uring",
			"--no-progress", NULL };
	struct prog_run *r = malloc(sizeof(*r));

	cr_assert_not_null(r);
	run_blocked_errno(one, ENOSYS, 60, r);
	cr_expect_eq(r->status, 2, "exit status %d; stderr: %s", r->status, r->err);
	cr_expect(strstr(r->err, "io_uring is unavailable to this process") != NULL, "no reason: %s", r->err);
	cr_expect(strstr(r->err, "Function not implemented") != NULL, "the errno is not named: %s", r->err);
	run_blocked_errno(two, ENOSYS, 60, r);
	cr_expect_eq(r->status, 2, "compare: exit status %d; stderr: %s", r->status, r->err);
	cr_expect(strstr(r->out, "\npsync ") != NULL, "compare: no psync row: %s%s", r->out, r->err);
	free(r);
}

/* urkv cannot serve without io_uring: it stops at once with the same reason, exit 1. */
Test(uring_blocked_apps, urkv_says_why)
{
	char *argv[] = { URKV_PATH, "--port", "0", "--data", path, "--size", "16M", NULL };
	struct prog_run *r = malloc(sizeof(*r));

	cr_assert_not_null(r);
	run_blocked(argv, 30, r);
	cr_expect_eq(r->status, 1, "exit status %d; stderr: %s", r->status, r->err);
	expect_reason(r->err);
	cr_expect(strstr(r->err, "listening") == NULL, "urkv claims to listen: %s", r->err);
	free(r);
}
