/*
 * Block io_uring for the calling process and its future children, as a
 * container's seccomp profile does: io_uring_setup answers EPERM.  The
 * filter cannot be removed again, so a test installs it only in a process
 * of its own (a Criterion test runs in one; otherwise fork first).
 * io_uring_enter and io_uring_register stay allowed: without a ring they
 * have nothing to act on, and this is what Docker's profile does too.
 */
#ifndef URT_TESTS_URING_BLOCK_H
#define URT_TESTS_URING_BLOCK_H

#include <errno.h>
#include <seccomp.h>

/* 0, or the -errno of libseccomp (the caller skips: no seccomp here). */
static inline int tests_block_io_uring(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int ret;

	if (!ctx)
		return -ENOMEM;
	/* libseccomp sets no_new_privs first (SCMP_FLTATR_CTL_NNP defaults on), so no CAP_SYS_ADMIN is needed. */
	ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(io_uring_setup), 0);
	if (ret == 0)
		ret = seccomp_load(ctx);
	seccomp_release(ctx);
	return ret;
}

#endif /* URT_TESTS_URING_BLOCK_H */
