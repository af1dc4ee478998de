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

#endif /* URT_RUNTIME_BUF_H */
