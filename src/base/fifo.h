/*
 * urt's one intrusive FIFO: the STAILQ of the standard <sys/queue.h>.
 *
 * Every first-in first-out list in urt (the fiber run queue, wait queues,
 * the request backlog, the kv store's request queues, the simulated
 * device's write cache) is a STAILQ_HEAD with a STAILQ_ENTRY in its
 * elements, or a TAILQ where an element must leave from the middle.  Use
 * the macros directly: STAILQ_INIT, STAILQ_INSERT_TAIL, STAILQ_FIRST,
 * STAILQ_REMOVE_HEAD, STAILQ_CONCAT, STAILQ_EMPTY.
 *
 * A STAILQ head must be initialised (its last pointer points into the head
 * itself).  A head inside a structure the API documents as "zero-initialise
 * it", such as struct urt_waitq, is made ready on first use with
 * URT_STAILQ_READY.  Such a head must not be copied or moved while it holds
 * elements, as with any STAILQ.
 */
#ifndef URT_BASE_FIFO_H
#define URT_BASE_FIFO_H

#include <sys/queue.h>

#include "base/compiler.h"

/* Make a zero-filled STAILQ head a valid empty queue; a no-op once it is one. */
#define URT_STAILQ_READY(head)                                  \
	do {                                                    \
		if (urt_unlikely((head)->stqh_last == NULL))    \
			STAILQ_INIT(head);                      \
	} while (0)

#endif /* URT_BASE_FIFO_H */
