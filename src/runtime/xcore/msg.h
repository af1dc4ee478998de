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
/* Cross-core traffic this recent (loop time) makes a core spin before sleeping. */
#define POST_SPIN_WINDOW_NS 1000000ull

/* The spin of msg_sleep_begin: true when a post or a CQE came (msg.c). */
bool msg_sleep_spin(struct urt_core *c);

/*
 * Before a sleep on the main ring: spin a little while posts flow between
 * cores, then tell producers that the core may sleep.  Returns false when
 * the core must not sleep (a post or a CQE came); true when it may, and
 * then the caller calls msg_sleep_end after the sleep.  Inline: a core
 * with no recent cross-core traffic only does the consumer's half of the
 * Dekker pair (msg.c's design notes).
 */
static inline bool msg_sleep_begin(struct urt_core *c)
{
	/* Not in poll-wait mode: under valgrind threads run one at a time, so a spin only delays the peer. */
	if (urt_unlikely(core_now(c) - c->post_last_ns < POST_SPIN_WINDOW_NS) && c->post_spin_ns &&
	    !c->stopping && !c->wait_poll && msg_sleep_spin(c))
		return false;
	/* The consumer's half of the Dekker pair (see the design notes). */
	atomic_store(&c->sleeping, 1);
	if (atomic_load(&c->doorbell)) {
		atomic_store_explicit(&c->sleeping, 0, memory_order_release);	/* Release: see msg_sleep_end. */
		return false;
	}
	c->stats.sleeps++;
	return true;
}

/*
 * After the sleep: clear the flag.  A release store, not a sequentially
 * consistent one (an xchg on x86, a full barrier at every sleep): the
 * clear is in no Dekker pair.  A producer that still reads the 1 sends one
 * spurious wakeup, as one could just before the clear; it still takes the
 * 1 to 0 itself, so there stays at most one wakeup per store of 1
 * (msg.c's design notes).
 */
static inline void msg_sleep_end(struct urt_core *c)
{
	atomic_store_explicit(&c->sleeping, 0, memory_order_release);
}

#endif /* URT_RUNTIME_XCORE_MSG_H */
