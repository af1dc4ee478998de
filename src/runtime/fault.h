/*
 * Seeded fault injection (fault.c).
 */
#ifndef URT_RUNTIME_FAULT_H
#define URT_RUNTIME_FAULT_H

#include "runtime/core.h"

/* fault.c: the fault to inject now, or 0. */
uint32_t fault_pick(struct urt_core *c, unsigned op);		/* At completion. */
uint32_t fault_pick_submit(struct urt_core *c, unsigned op);	/* At submission (STALL). */

#endif /* URT_RUNTIME_FAULT_H */
