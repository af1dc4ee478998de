/*
 * The loop's side of fibers (fiber/fiber.c): run the runnable ones, tear
 * all of them down at exit.
 */
#ifndef URT_RUNTIME_FIBER_FIBER_H
#define URT_RUNTIME_FIBER_FIBER_H

#include "runtime/core.h"

/* fiber.c */
void fiber_run_ready(struct urt_core *c);
void fiber_exit_all(struct urt_core *c);

/* Whether a fiber of c is runnable (inline: the loop asks every iteration). */
static inline bool fiber_has_ready(const struct urt_core *c)
{
	return !STAILQ_EMPTY(&c->run_q) || !STAILQ_EMPTY(&c->urgent_q);
}

#endif /* URT_RUNTIME_FIBER_FIBER_H */
