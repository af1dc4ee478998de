/*
 * Block io_uring for the calling process and its future children, as a
 * container's seccomp profile does: io_uring_setup answers EPERM (or, with
 * tests_block_io_uring_errno, another errno: profiles that pretend the
 * system call does not exist answer ENOSYS).  The
 * filter cannot be removed again, so a test installs it only in a process
 * of its own (a Criterion test runs in one; otherwise fork first).
 * io_uring_enter and io_uring_register stay allowed: without a ring they
 * have nothing to act on, and this is what Docker's profile does too.
 */
#ifndef URT_TESTS_URING_BLOCK_H
#define URT_TESTS_URING_BLOCK_H

#include <errno.h>
#include <seccomp.h>

/* 0, or the -errno of libseccomp (the caller skips: no seccomp here).  io_uring_setup answers err. */
static inline int tests_block_io_uring_errno(int err)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int ret;

	if (!ctx)
		return -ENOMEM;
	/* libseccomp sets no_new_privs first (SCMP_FLTATR_CTL_NNP defaults on), so no CAP_SYS_ADMIN is needed. */
	ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO((unsigned)err), SCMP_SYS(io_uring_setup), 0);
	if (ret == 0)
		ret = seccomp_load(ctx);
	seccomp_release(ctx);
	return ret;
}

/* The usual case: io_uring_setup answers EPERM, as Docker's default profile does. */
static inline int tests_block_io_uring(void)
{
	return tests_block_io_uring_errno(EPERM);
}

#endif /* URT_TESTS_URING_BLOCK_H */
