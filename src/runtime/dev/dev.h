/*
 * The device registry (dev/dev.c): fixed-file slots per core.
 */
#ifndef URT_RUNTIME_DEV_DEV_H
#define URT_RUNTIME_DEV_DEV_H

#include "runtime/core.h"

/* dev.c: registered-file slot of dev on core c, or -1. */
int dev_fixed_slot(const struct urt_dev *dev, const struct urt_core *c);
void dev_registry_drop(struct urt_rt *rt);
int dev_registry_ring_init(struct urt_core *c, struct io_uring *ring);

#endif /* URT_RUNTIME_DEV_DEV_H */
