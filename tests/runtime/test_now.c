/*
 * The loop's clock (src/runtime/now.c): readings follow CLOCK_MONOTONIC
 * closely, never go backwards, re-anchor after a long gap, and the
 * iteration's time holds until the next tick.
 */
#include <criterion/criterion.h>
#include <time.h>

#include "base/clock.h"
#include "runtime/now.h"
#include "runtime/tsc.h"

Test(now, follows_monotonic_and_never_goes_back)
{
	struct core_clock k;
	uint64_t prev = 0, worst = 0, t0;

	now_init(&k);
	cr_expect_eq(k.tsc, tsc_invariant(), "the TSC path is taken exactly when the TSC is invariant");
	t0 = urt_clock_ns();
	/* 30 ms of readings: past one anchor interval (20 ms). */
	while (urt_clock_ns() - t0 < 30000000ull) {
		uint64_t a = urt_clock_ns(), v = now_read(&k), b = urt_clock_ns();
		uint64_t err = v < a ? a - v : v > b ? v - b : 0;

		cr_assert_geq(v, prev, "the clock went back: %llu after %llu", (unsigned long long)v,
			      (unsigned long long)prev);
		prev = v;
		if (err > worst)
			worst = err;
	}
	/* The first factor comes from a 100 us calibration: a few us of error at most over 20 ms. */
	cr_expect_lt(worst, 200000, "a reading was %llu ns away from CLOCK_MONOTONIC", (unsigned long long)worst);
	if (k.tsc)
		cr_expect_geq(k.anchors, 2, "no re-anchor in 30 ms (%llu anchors)", (unsigned long long)k.anchors);
}

Test(now, anchors_again_after_a_sleep)
{
	struct core_clock k;
	struct timespec ts = { .tv_nsec = 50000000 };
	uint64_t v, ref, anchors;

	now_init(&k);
	anchors = k.anchors;
	nanosleep(&ts, NULL);
	v = now_read(&k);
	ref = urt_clock_ns();
	cr_expect_leq(v, ref);
	cr_expect_lt(ref - v, 1000000, "after a 50 ms sleep the clock lags by %llu ns", (unsigned long long)(ref - v));
	if (k.tsc)
		cr_expect_gt(k.anchors, anchors, "a gap longer than the anchor interval must re-anchor");
}

Test(now, iteration_time_stands_until_the_next_tick)
{
	struct core_clock k;
	uint64_t a, b, c;

	now_init(&k);
	now_tick(&k);
	a = core_clock_now(&k);
	nanosleep(&(struct timespec){ .tv_nsec = 2000000 }, NULL);
	b = core_clock_now(&k);
	cr_expect_eq(a, b, "within one iteration the time stands still");
	now_tick(&k);
	c = core_clock_now(&k);
	cr_expect_geq(c - a, 2000000, "the next iteration reads the clock again (%llu ns later)",
		      (unsigned long long)(c - a));
}
