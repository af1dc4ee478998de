/*
 * urbench under too little RLIMIT_MEMLOCK: one line with the limit that
 * suffices ("ulimit -l N"), then urbench's own command-line way to pin
 * less when it has one (fewer --cores; a smaller --qd or --bs with
 * +fixedbufs), never the runtime's option names; and a run with exactly N
 * works.  The program runs as a user id of the test's own, since the
 * kernel counts locked memory per user and root is exempt (CAP_IPC_LOCK).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define OUT_MAX 4096

struct ml_run {
	char err[OUT_MAX];	/* stderr. */
	int status;		/* Exit status; 200 when the child could not set itself up. */
};

/* Run urbench with args as a user of the test's own under a soft RLIMIT_MEMLOCK of kib. */
static void run_limited(unsigned long long kib, const char *const *args, struct ml_run *r)
{
	char path[] = "/tmp/urbench-memlock-XXXXXX";
	char *argv[16];
	int argc = 0, fd, ws;
	ssize_t n;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	unlink(path);
	argv[argc++] = (char *)URBENCH_PATH;
	for (; *args; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		uid_t uid = 400000 + (uid_t)(getppid() % 100000);
		struct rlimit rl;
		int null = open("/dev/null", O_WRONLY);

		if (getrlimit(RLIMIT_MEMLOCK, &rl) || (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < kib * 1024))
			_exit(200);
		rl.rlim_cur = kib * 1024;
		if (null < 0 || dup2(null, 1) < 0 || dup2(fd, 2) < 0 || setrlimit(RLIMIT_MEMLOCK, &rl) ||
		    setgroups(0, NULL) || setresgid(uid, uid, uid) || setresuid(uid, uid, uid))
			_exit(200);
		execv(argv[0], argv);
		_exit(200);
	}
	cr_assert_eq(waitpid(pid, &ws, 0), pid);
	r->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
	n = pread(fd, r->err, sizeof(r->err) - 1, 0);
	r->err[n > 0 ? n : 0] = '\0';
	close(fd);
	if (r->status == 200)
		cr_skip_test("cannot switch to a user of the test's own or set RLIMIT_MEMLOCK here");
}

#define RUN(kib, r, ...) run_limited(kib, (const char *const[]){ __VA_ARGS__, NULL }, r)

/* The number after "ulimit -l ", or 0. */
static unsigned long long advised_kib(const char *err)
{
	const char *p = strstr(err, "ulimit -l ");
	unsigned long long kib = 0;

	return p && sscanf(p, "ulimit -l %llu", &kib) == 1 ? kib : 0;
}

static void expect_memlock_line(const struct ml_run *r)
{
	cr_expect_eq(r->status, 2, "exit status %d: %s", r->status, r->err);
	cr_expect(strstr(r->err, "RLIMIT_MEMLOCK") != NULL, "%s", r->err);
	cr_expect_gt(advised_kib(r->err), 0, "no ulimit -l number: %s", r->err);
	cr_expect(strstr(r->err, "buf_region_bytes") == NULL && strstr(r->err, "buf_allow_unregistered") == NULL,
		  "library settings named: %s", r->err);
	cr_expect(strchr(r->err, '\n') == r->err + strlen(r->err) - 1, "not one line: %s", r->err);
}

/* One core, no +fixedbufs: nothing on the command line pins less, so the ulimit advice alone; N works. */
Test(urbench_memlock, advised_limit_runs)
{
	struct ml_run *r = malloc(sizeof(*r));
	unsigned long long kib;

	cr_assert_not_null(r);
	RUN(16, r, "sim:8M", "--ops", "10", "--no-progress");
	expect_memlock_line(r);
	cr_expect(strstr(r->err, "limits.conf memlock)\n") != NULL, "more than the ulimit advice: %s", r->err);
	kib = advised_kib(r->err);
	cr_assert_gt(kib, 0);
	/*
	 * The refused run's own probe rings are another process's locked
	 * memory now, which the kernel frees asynchronously: wait for that (up
	 * to 5 s), as a user would by typing the command.  An advice that is
	 * too low fails every time: each run probes anew.
	 */
	for (int i = 0; i < 25; i++) {
		usleep(200000);
		RUN(kib, r, "sim:8M", "--ops", "10", "--no-progress");
		if (r->status == 0)
			break;
	}
	cr_expect_eq(r->status, 0, "at the advised ulimit -l %llu: exit status %d: %s", kib, r->status, r->err);
	free(r);
}

/* More than one core: fewer --cores is named. */
Test(urbench_memlock, names_fewer_cores)
{
	struct ml_run *r = malloc(sizeof(*r));

	cr_assert_not_null(r);
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		cr_skip_test("one CPU: --cores 2 is refused");
	RUN(16, r, "sim:8M", "--ops", "10", "--cores", "2", "--no-progress");
	expect_memlock_line(r);
	cr_expect(strstr(r->err, "fewer --cores") != NULL, "%s", r->err);
	free(r);
}

/* +fixedbufs registers qd x bs per core: a smaller --qd or --bs is named. */
Test(urbench_memlock, names_smaller_qd_with_fixedbufs)
{
	struct ml_run *r = malloc(sizeof(*r));

	cr_assert_not_null(r);
	RUN(16, r, "sim:8M", "--ops", "10", "--mode", "uring+fixedbufs", "--qd", "64", "--bs", "64K",
	    "--no-progress");
	expect_memlock_line(r);
	cr_expect(strstr(r->err, "a smaller --qd or --bs") != NULL, "%s", r->err);
	cr_expect(strstr(r->err, "fewer --cores") == NULL, "one core, yet: %s", r->err);
	free(r);
}
