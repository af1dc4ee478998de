/*
 * Cross-core post queues of a core (xcore/msg.c): set up, torn down,
 * drained once per loop iteration, and the handshake around a sleep.
 */
#ifndef URT_RUNTIME_XCORE_MSG_H
#define URT_RUNTIME_XCORE_MSG_H

#include "runtime/core.h"

/* msg.c */
int msg_init(struct urt_core *c);
void msg_exit(struct urt_core *c);
void msg_drain(struct urt_core *c);
/*
 * Before a sleep on the main ring: spin a little while posts flow between
 * cores, then tell producers that the core may sleep.  Returns false when
 * the core must not sleep (a post or a CQE came); true when it may, and
 * then the caller calls msg_sleep_end after the sleep.
 */
bool msg_sleep_begin(struct urt_core *c);
void msg_sleep_end(struct urt_core *c);

#endif /* URT_RUNTIME_XCORE_MSG_H */
