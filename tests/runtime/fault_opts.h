/*
 * Options of a one-core runtime with the fault injector armed: every op in
 * op_mask gets a fault of kinds (at a rate of 100%), drawn from seed.  The
 * tests of timeouts, retries and shutdown start from these and add their
 * own bounds (fault.count_max, fault.delay_ns, retry_backoff_ns).
 */
#ifndef URT_TESTS_FAULT_OPTS_H
#define URT_TESTS_FAULT_OPTS_H

#include "urt/rt.h"

static inline void fx_fault_opts(struct urt_rt_opts *o, uint64_t seed, uint32_t kinds,
				 uint32_t op_mask)
{
	static const int cpu0[] = { 0 };

	urt_rt_opts_default(o);
	o->cpus = cpu0;
	o->ncpus = 1;
	o->fault.seed = seed;
	o->fault.rate_ppm = 1000000;
	o->fault.kinds = kinds;
	o->fault.op_mask = op_mask;
}

#endif /* URT_TESTS_FAULT_OPTS_H */
