/*
 * Cross-core post queues of a core (xcore/msg.c): set up, torn down and
 * drained once per loop iteration.
 */
#ifndef URT_RUNTIME_XCORE_MSG_H
#define URT_RUNTIME_XCORE_MSG_H

#include "runtime/core.h"

/* msg.c */
int msg_init(struct urt_core *c);
void msg_exit(struct urt_core *c);
void msg_drain(struct urt_core *c);

#endif /* URT_RUNTIME_XCORE_MSG_H */
