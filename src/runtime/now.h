/*
 * The loop's clock (now.c has the design notes): core_now(c) is the time
 * of the current loop iteration, read once per iteration (now_tick), from
 * the TSC where it is invariant.
 */
#ifndef URT_RUNTIME_NOW_H
#define URT_RUNTIME_NOW_H

#include <stdbool.h>
#include <stdint.h>

#include "base/compiler.h"
#include "runtime/tsc.h"

/* One core's clock state; touched only by its reactor thread. */
struct core_clock {
	uint64_t now_ns;	/* The iteration's time (CLOCK_MONOTONIC ns); never decreases. */
	bool tsc;		/* Reads scale the TSC (invariant TSC found), else clock_gettime. */
	uint64_t tsc0;		/* TSC at the last anchor. */
	uint64_t ns0;		/* CLOCK_MONOTONIC at the last anchor. */
	uint64_t cal_tsc;	/* TSC at the first anchor (calibration baseline). */
	uint64_t cal_ns;	/* CLOCK_MONOTONIC at the first anchor. */
	uint64_t mult;		/* ns per TSC tick, 32.32 fixed point. */
	uint64_t tsc_next;	/* TSC at which to anchor again (bounds drift and overflow). */
	uint64_t anchors;	/* Anchors taken (clock_gettime reads on the TSC path). */
};

void now_init(struct core_clock *k);
uint64_t now_read_slow(struct core_clock *k);

/* A fresh reading of k (for callers that need the time, not the iteration's). */
static inline uint64_t now_read(struct core_clock *k)
{
	uint64_t t, ns;

	if (urt_unlikely(!k->tsc))
		return now_read_slow(k);
	t = tsc_read();
	if (urt_unlikely(t - k->tsc0 >= k->tsc_next - k->tsc0))
		return now_read_slow(k);
	ns = k->ns0 + (((t - k->tsc0) * k->mult) >> 32);
	if (urt_unlikely(ns < k->now_ns))
		ns = k->now_ns;		/* Never backwards (an anchor corrected a fast estimate). */
	k->now_ns = ns;
	return ns;
}

/* The time of the current iteration (the last now_tick). */
static inline uint64_t core_clock_now(const struct core_clock *k)
{
	return k->now_ns;
}

/* A new loop iteration begins (after the wait): read the clock. */
static inline void now_tick(struct core_clock *k)
{
	now_read(k);
}

#endif /* URT_RUNTIME_NOW_H */
