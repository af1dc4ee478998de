/*
 * Kernel feature probing, each answer kept once the kernel gave one; and
 * why io_uring is unavailable when it is (blocked.c).
 */
#ifndef URT_RUNTIME_PROBE_H
#define URT_RUNTIME_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "urt/rt.h"

/* The probes, one ring each (probe.c): a setup flag each, and the opcodes. */
enum probe_flag {
	PROBE_SINGLE_ISSUER,
	PROBE_DEFER_TASKRUN,
	PROBE_SQPOLL,
	PROBE_IOPOLL,
	PROBE_HYBRID_IOPOLL,
	PROBE_SQE128,		/* SQE128|CQE32. */
	PROBE_OPCODES,		/* IORING_REGISTER_PROBE: msg_ring, uring_cmd, link_timeout, rw_vec_fixed. */
	PROBES
};

/*
 * The features as last probed, probing the first time; lock-free after
 * that (hot paths may call it).  A feature whose probe has no answer yet
 * (ENOMEM, EPERM: probe.c) reads false.
 */
const struct urt_kernel_features *probe_features(void);

/* Probe again what has no answer yet, and return the features. */
const struct urt_kernel_features *probe_refresh(void);

/* The kernel answered p's probe with EINVAL: it lacks the flag. */
bool probe_refused(enum probe_flag p);

/* p's probe has an answer, yes or no. */
bool probe_answered(enum probe_flag p);

/*
 * Bytes of RLIMIT_MEMLOCK the probe rings made so far may still hold: the
 * kernel frees a closed ring asynchronously (memlock.c counts them).
 */
uint64_t probe_locked_bytes(void);

/*
 * Whether this process may create an io_uring at all: 0, or the -errno of
 * a plain io_uring_setup (cached).  Cheaper than probe_features.
 */
int probe_uring_usable(void);

/*
 * blocked.c: write into buf (len bytes) why io_uring_setup failed with err
 * (kernel.io_uring_disabled and its value, a seccomp filter, a kernel
 * without io_uring) and what to do.  Returns err.
 */
int uring_blocked_explain(int err, char *buf, size_t len);

/* The same words as urt_last_error() of the calling thread. */
void uring_blocked_set_error(int err);

#endif /* URT_RUNTIME_PROBE_H */
