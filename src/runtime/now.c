/*
 * The loop's clock: the time of a loop iteration, for op latencies,
 * deadlines and the scheduler's expiry.
 *
 * Design notes
 * ------------
 * Reading CLOCK_MONOTONIC costs 50-120 ns on this project's VMs (kvm-clock:
 * the vDSO scales the TSC through the hypervisor's page, with a retry
 * loop), against ~20 ns for the TSC itself, and a loop iteration at batch 1
 * is one op: the read was a tenth of urt's whole cost per NOP.  So the
 * loop reads once per iteration, after its wait (now_tick), and every op
 * answered or submitted in that iteration uses that time (core_now); with
 * an invariant TSC (CPUID 0x80000007 EDX bit 8) the read is rdtsc scaled
 * by a factor measured against CLOCK_MONOTONIC.  (A lazier clock, read on
 * first use, was tried: its per-use staleness test cost 12 instructions per
 * NOP at batch 32, more than the read it saved in iterations without ops.)
 * The clock is re-anchored to CLOCK_MONOTONIC every ANCHOR_NS (and after
 * any longer gap, e.g. a sleep), each time refining the factor over the
 * whole time since the first anchor, so the error of an estimate stays
 * below (factor error) x ANCHOR_NS: about 2 us at the first anchor (a 100
 * us calibration), tens of ns after a second.  Readings never go
 * backwards: when an anchor finds the estimate ahead, time stands still
 * until it catches up.  Without an invariant TSC, every read is
 * clock_gettime.
 *
 * States: TSC (k->tsc) or CLOCK (!k->tsc), fixed by now_init.
 *
 * Values are CLOCK_MONOTONIC nanoseconds, comparable with urt_clock_ns()
 * up to that error; they are only compared with other readings of the
 * same core (submit and answer times, deadlines).
 */
#include <stdint.h>

#include "base/clock.h"
#include "runtime/now.h"
#include "runtime/tsc.h"

/* Anchor to CLOCK_MONOTONIC at least this often (bounds drift and the 64-bit product). */
#define ANCHOR_NS 20000000ull
/* First calibration: spin this long between two anchors. */
#define CALIBRATE_NS 100000ull

/* Anchor k at (t, ns) and refine the factor over the time since the first anchor. */
static void now_anchor(struct core_clock *k, uint64_t t, uint64_t ns)
{
	if (t > k->cal_tsc && ns > k->cal_ns)
		k->mult = (uint64_t)(((unsigned __int128)(ns - k->cal_ns) << 32) / (t - k->cal_tsc));
	k->tsc0 = t;
	k->ns0 = ns;
	/* ANCHOR_NS worth of ticks. */
	k->tsc_next = t + (k->mult ? (uint64_t)(((unsigned __int128)ANCHOR_NS << 32) / k->mult) : 1);
	k->anchors++;
}

void now_init(struct core_clock *k)
{
	uint64_t t0, ns0, ns;

	*k = (struct core_clock){ 0 };
	k->now_ns = urt_clock_ns();
	if (!tsc_invariant())
		return;
	t0 = tsc_read();
	ns0 = urt_clock_ns();
	do
		ns = urt_clock_ns();
	while (ns - ns0 < CALIBRATE_NS);
	k->cal_tsc = t0;
	k->cal_ns = ns0;
	now_anchor(k, tsc_read(), ns);
	if (!k->mult)
		return;		/* A TSC that did not move: keep clock_gettime. */
	k->tsc = true;
	k->now_ns = ns;
}

/* clock_gettime: without a TSC, or to anchor again. */
uint64_t now_read_slow(struct core_clock *k)
{
	uint64_t ns = urt_clock_ns();

	if (k->tsc)
		now_anchor(k, tsc_read(), ns);
	if (ns < k->now_ns)
		ns = k->now_ns;
	k->now_ns = ns;
	return ns;
}
