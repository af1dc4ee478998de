/*
 * The poll-wait mode of a reactor: sleeping in poll(2) on the ring's fd
 * instead of in io_uring_enter(GETEVENTS), for running urt under valgrind.
 *
 * Why: valgrind 3.19 does not mark io_uring_enter as a syscall that may
 * block, so a thread sleeping in it keeps valgrind's big lock and every
 * other thread of the process stops (the reactor sleeps in io_cqring_wait
 * while the main thread waits in read(2) on valgrind's lock pipe, and the
 * post that would wake the reactor is never written: callgrind hangs on
 * any urt program).  poll(2) is a blocking syscall to valgrind, which
 * releases the lock around it.  The ring's fd polls readable when CQEs or
 * deferred task work are waiting (io_uring_poll); the wait is also bounded
 * (WAIT_POLL_MS) so a wakeup the poll queue misses costs a millisecond,
 * never a hang.
 *
 * On when the process runs under valgrind (RUNNING_ON_VALGRIND, when the
 * valgrind headers are installed) or when the environment has URT_WAIT=poll
 * (to test the mode natively).  The I/O path is otherwise unchanged.
 */
#ifndef URT_RUNTIME_WAIT_POLL_H
#define URT_RUNTIME_WAIT_POLL_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define URT_HAVE_VALGRIND_H 1
#endif
#endif

/* Longest sleep of one poll-mode wait, in milliseconds. */
#define WAIT_POLL_MS 1

/* Whether reactors should sleep in poll(2) (see above). */
static inline bool wait_poll_wanted(void)
{
	const char *e = getenv("URT_WAIT");

	if (e && strcmp(e, "poll") == 0)
		return true;
#ifdef URT_HAVE_VALGRIND_H
	if (RUNNING_ON_VALGRIND)
		return true;
#endif
	return false;
}

#endif /* URT_RUNTIME_WAIT_POLL_H */
