/*
 * The RLIMIT_MEMLOCK preflight (memlock.c has the design notes).
 */
#ifndef URT_RUNTIME_MEMLOCK_H
#define URT_RUNTIME_MEMLOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/core.h"

/* The process is not bound by RLIMIT_MEMLOCK (CAP_IPC_LOCK or an infinite limit). */
bool memlock_unlimited(void);

/* Locked bytes of a ring of sq_entries and cq_entries (both rounded up to powers of two), SQE128|CQE32 if big. */
uint64_t memlock_ring_charge(unsigned sq_entries, unsigned cq_entries, bool big);

/* Locked bytes of one ring of kind: its SQ/CQ memory, without buffers. */
uint64_t memlock_ring_bytes(const struct urt_rt_opts *o, enum ring_kind kind);

/* Mask of (1u << ring_kind) that every core opens at start in o's mode. */
unsigned memlock_start_kinds(const struct urt_rt_opts *o);

/*
 * Locked bytes of ncores cores each with the rings in kinds, with the
 * buffer region registered on each when bufs, plus the probe's rings.
 */
uint64_t memlock_need(const struct urt_rt_opts *o, unsigned ncores, unsigned kinds, bool bufs);

/* 0, or -ENOMEM with a message naming the limit, the count and the fix when memlock_need exceeds it. */
int memlock_check(const struct urt_rt_opts *o, unsigned ncores, unsigned kinds, bool bufs);

/*
 * The kernel refused what (a ring, a registration) with err although
 * memlock_check passed: set the message, naming the limit, the count and a
 * limit that covers the user's other locked memory too.
 */
void memlock_refused(const struct urt_rt_opts *o, unsigned ncores, unsigned kinds, bool bufs, const char *what,
		     int err);

#endif /* URT_RUNTIME_MEMLOCK_H */
