/*
 * urbench's live progress line, seen on a pseudo-terminal as a user sees
 * it: when stderr is a terminal, once a second "\r\033[K<mode> run: <IOPS>
 * IOPS  <MiB/s> MiB/s  p99 <us> us  <n> s left", erased again before the
 * report; none with --no-progress, and none when stderr is not a terminal
 * (a pipe or a file), so logs stay clean.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define OUT_MAX 16384

static char dir[200];
static char path[240];

static void setup(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/urbench-pty-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/target.dat", dir);
}

static void teardown(void)
{
	unlink(path);
	rmdir(dir);
}

TestSuite(urbench_progress, .init = setup, .fini = teardown);

/*
 * Run urbench on path (psync, QD1, 1.5 s) with extra (or NULL), its
 * stdout and stderr on a new pseudo-terminal when tty, else on a pipe;
 * everything it wrote lands in out.  Returns its exit status.
 */
static int run(bool tty, const char *extra, char *out)
{
	char *argv[] = { URBENCH_PATH, path, "--size", "8M", "--runtime", "1.5", "--mode", "psync", (char *)extra, NULL };
	int fd, p[2], ws;
	size_t used = 0;
	time_t end = time(NULL) + 30;
	pid_t pid;

	if (tty) {
		pid = forkpty(&fd, NULL, NULL, NULL);
		cr_assert_geq(pid, 0, "forkpty: %s", strerror(errno));
	} else {
		cr_assert_eq(pipe(p), 0);
		pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			dup2(p[1], 1);
			dup2(p[1], 2);
			close(p[0]);
			close(p[1]);
		}
		fd = p[0];
	}
	if (pid == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	if (!tty)
		close(p[1]);
	while (time(NULL) < end && used + 1 < OUT_MAX) {
		struct pollfd pf = { fd, POLLIN, 0 };
		ssize_t n;

		if (poll(&pf, 1, 1000) <= 0)
			continue;
		n = read(fd, out + used, OUT_MAX - 1 - used);
		if (n <= 0)
			break;	/* EOF, or EIO from the pty once the child has gone. */
		used += (size_t)n;
	}
	out[used] = '\0';
	close(fd);
	if (time(NULL) >= end)
		kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, &ws, 0), pid);
	cr_assert(WIFEXITED(ws), "urbench was killed; output: %s", out);
	cr_assert_neq(WEXITSTATUS(ws), 127, "cannot run %s", argv[0]);
	return WEXITSTATUS(ws);
}

Test(urbench_progress, live_line_on_a_terminal)
{
	char *out = malloc(OUT_MAX), *line;
	double iops = -1, left = -1;

	cr_assert_not_null(out);
	cr_assert_eq(run(true, NULL, out), 0, "output: %s", out);
	line = strstr(out, "\r\033[Kpsync run: ");
	cr_assert_not_null(line, "no progress line on the terminal: %s", out);
	cr_expect_eq(sscanf(line, "\r\033[Kpsync run: %lf", &iops), 1, "%s", line);
	cr_expect(strstr(line, " IOPS  ") && strstr(line, " MiB/s  p99 ") && strstr(line, " us  "), "%s", line);
	cr_expect(strstr(line, " s left") != NULL, "no time left: %s", line);
	cr_expect_eq(sscanf(strstr(line, " us  ") + 5, "%lf s left", &left), 1);
	cr_expect(left >= 0 && left <= 1.5, "%.1f s left of a 1.5 s run", left);
	cr_expect_gt(iops, 0, "the live line shows no I/O: %s", line);
	/* The line is erased before the report, which then follows on a clean line. */
	cr_expect(strstr(line + 1, "\r\033[Kurbench: randread") != NULL, "the report does not start on an erased line: %s",
		  out);
	free(out);
}

Test(urbench_progress, no_progress_keeps_the_terminal_clean)
{
	char *out = malloc(OUT_MAX);

	cr_assert_not_null(out);
	cr_assert_eq(run(true, "--no-progress", out), 0, "output: %s", out);
	cr_expect(strstr(out, "\033[K") == NULL && strstr(out, " s left") == NULL, "a live line despite --no-progress: %s",
		  out);
	cr_expect(strstr(out, "urbench: randread") != NULL, "no report: %s", out);
	free(out);
}

Test(urbench_progress, no_live_line_into_a_pipe)
{
	char *out = malloc(OUT_MAX);

	cr_assert_not_null(out);
	cr_assert_eq(run(false, NULL, out), 0, "output: %s", out);
	cr_expect(strstr(out, "\033[K") == NULL && strstr(out, " s left") == NULL, "a live line into a pipe: %s", out);
	cr_expect(strstr(out, "urbench: randread") != NULL, "no report: %s", out);
	free(out);
}
