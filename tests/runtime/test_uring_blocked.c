/*
 * io_uring blocked by a seccomp filter (as a container runtime's default
 * profile does): urt_io_uring_check and urt_rt_start fail with -EPERM and a
 * message that names the cause (the seccomp filter, and the value of
 * kernel.io_uring_disabled read from /proc) and what to do, in every poll
 * mode; never the bare errno of io_uring_queue_init.  Each test blocks
 * io_uring only in its own process (Criterion runs each test in one).
 */
#include <stdio.h>

#include "fixture.h"
#include "../uring_block.h"

/* "kernel.io_uring_disabled is N" as this machine has it, or "" without the sysctl. */
static void sysctl_phrase(char *buf, size_t len)
{
	FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
	long v;

	buf[0] = '\0';
	if (!f)
		return;
	if (fscanf(f, "%ld", &v) == 1)
		snprintf(buf, len, "kernel.io_uring_disabled is %ld", v);
	fclose(f);
}

static void block(void)
{
	int ret = tests_block_io_uring();

	if (ret)
		cr_skip_test("cannot install a seccomp filter here: %s", strerror(-ret));
}

static void expect_clear(const char *msg)
{
	char phrase[64];

	sysctl_phrase(phrase, sizeof(phrase));
	cr_expect(strstr(msg, "io_uring is unavailable") != NULL, "message: %s", msg);
	cr_expect(strstr(msg, "seccomp filter") != NULL, "the cause is not named: %s", msg);
	cr_expect(strstr(msg, "Seccomp: 2") != NULL, "the /proc evidence is missing: %s", msg);
	cr_expect(!phrase[0] || strstr(msg, phrase) != NULL, "the sysctl's value (%s) is missing: %s", phrase, msg);
	cr_expect(strstr(msg, "Fix:") != NULL && strstr(msg, "io_uring_setup, io_uring_enter and io_uring_register"),
		  "no fix is given: %s", msg);
	cr_expect(strstr(msg, "io_uring_queue_init(flags") == NULL, "the bare errno is back: %s", msg);
	cr_expect(strstr(msg, "refuses") == NULL, "a mode is blamed: %s", msg);
}

/* Unblocked, the check passes and says nothing (the machine's io_uring works: FACTS.md). */
Test(uring_blocked, check_passes_when_allowed)
{
	char why[512] = "stale";

	cr_assert_eq(urt_io_uring_check(why, sizeof(why)), 0, "io_uring is blocked before the test: %s", why);
	cr_expect_str_empty(why);
}

static void start_blocked(enum urt_poll_mode mode)
{
	struct urt_kernel_features kf;
	struct urt_rt_opts o;
	struct urt_rt *rt = NULL;
	char why[512];
	int ret;

	block();
	cr_assert_eq(urt_io_uring_check(why, sizeof(why)), -EPERM);
	expect_clear(why);
	urt_kernel_probe(&kf);
	cr_expect(!kf.io_uring && !kf.sqpoll && !kf.iopoll, "the probe claims features of a blocked io_uring");
	urt_rt_opts_default(&o);
	o.mode = mode;
	ret = urt_rt_start(&o, &rt);
	cr_assert_eq(ret, -EPERM, "urt_rt_start: %d (%s)", ret, urt_last_error());
	expect_clear(urt_last_error());
	cr_expect_str_eq(urt_last_error(), why, "urt_rt_start and urt_io_uring_check say different things");
}

Test(uring_blocked, interrupt_start_says_why) { start_blocked(URT_POLL_INTERRUPT); }
/* The probe fails too: SQPOLL must not be reported as refused by the kernel. */
Test(uring_blocked, sqpoll_start_says_why) { start_blocked(URT_POLL_SQPOLL); }
Test(uring_blocked, iopoll_start_says_why) { start_blocked(URT_POLL_IOPOLL); }
