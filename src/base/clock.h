/*
 * The clocks urt reads, in nanoseconds.  One helper each, used by the
 * library, the benchmarks, the examples and the tests alike.
 *
 *   urt_clock_ns()       CLOCK_MONOTONIC: latencies, deadlines, intervals.
 *   urt_clock_wall_ns()  CLOCK_REALTIME: timestamps stored on disk or shown
 *                        to people (superblock times, INFO fields).
 *
 * The reactor reads urt_clock_ns() once per loop iteration and keeps it in
 * core->now_ns, so an op on the I/O path costs no clock read of its own.
 */
#ifndef URT_BASE_CLOCK_H
#define URT_BASE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t urt_clock_read_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t urt_clock_ns(void)
{
	return urt_clock_read_ns(CLOCK_MONOTONIC);
}

static inline uint64_t urt_clock_wall_ns(void)
{
	return urt_clock_read_ns(CLOCK_REALTIME);
}

#endif /* URT_BASE_CLOCK_H */
