/*
 * The registered buffer region of a core (buf.c).
 */
#ifndef URT_RUNTIME_BUF_H
#define URT_RUNTIME_BUF_H

#include "runtime/core.h"

/* buf.c */
int buf_region_init(struct urt_core *c);
void buf_region_exit(struct urt_core *c);
int buf_register(struct urt_core *c, struct io_uring *ring);
bool buf_region_contains(const struct urt_core *c, const void *p, size_t len);
void buf_ref(struct urt_core *c, void *p);
void buf_unref(struct urt_core *c, void *p);

/*
 * Whether [p, p+len) lies in c's buffer region and the region is
 * registered with the rings: then it is registered buffer 0.  Inline for
 * the submit path; the subtraction wraps for p below the region.
 */
static inline bool buf_region_registered_has(const struct urt_core *c, const void *p, uint64_t len)
{
	const struct buf_region *b = &c->bufs;
	uintptr_t d = (uintptr_t)p - (uintptr_t)b->base;

	return b->registered && d < b->bytes && len <= b->bytes - d;
}

#endif /* URT_RUNTIME_BUF_H */
