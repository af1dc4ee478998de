/*
 * Kernel feature probing, done once per process and cached; and why
 * io_uring is unavailable when it is (blocked.c).
 */
#ifndef URT_RUNTIME_PROBE_H
#define URT_RUNTIME_PROBE_H

#include <stddef.h>

#include "urt/rt.h"

/* The cached result of urt_kernel_probe(). */
const struct urt_kernel_features *probe_features(void);

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
