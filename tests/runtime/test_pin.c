/*
 * Reactor pinning, asserted from where the work runs: a fiber on each core
 * reads the CPU it runs on (sched_getcpu) and the CPUs it may run on
 * (sched_getaffinity of its thread).  Pinned, that is exactly the core's
 * CPU; unpinned, the reactor keeps the process's whole mask.
 */
#include <sched.h>

#include "fixture.h"

struct pin_seen {
	int cpu;		/* sched_getcpu() inside the fiber. */
	cpu_set_t mask;		/* sched_getaffinity(0) inside the fiber. */
	int err;		/* errno of a failed call, or 0. */
};

static void pin_body(void *p)
{
	struct pin_seen *s = p;

	/* Yield first, so the check also covers a fiber resumed by the loop, not only its first run. */
	urt_fiber_yield();
	s->cpu = sched_getcpu();
	CPU_ZERO(&s->mask);
	if (s->cpu < 0 || sched_getaffinity(0, sizeof(s->mask), &s->mask))
		s->err = errno;
}

static struct urt_rt *start(bool pin)
{
	struct urt_rt_opts o;

	urt_rt_opts_default(&o);
	o.pin = pin;
	o.buf_region_bytes = 64u << 10;
	return fx_start(&o);
}

Test(pin, each_reactor_runs_on_its_cpu_only)
{
	struct urt_rt *rt = start(true);

	for (unsigned core = 0; core < urt_rt_ncores(rt); core++) {
		int cpu = urt_rt_core_cpu(rt, core);
		struct pin_seen s = { .cpu = -1 };

		fx_run(rt, core, pin_body, &s);
		cr_assert_eq(s.err, 0, "core %u: %s", core, strerror(s.err));
		cr_expect_eq(s.cpu, cpu, "core %u's fiber ran on CPU %d, not its CPU %d", core, s.cpu, cpu);
		cr_expect_eq(CPU_COUNT(&s.mask), 1, "core %u may run on %d CPUs", core, CPU_COUNT(&s.mask));
		cr_expect(CPU_ISSET(cpu, &s.mask), "core %u is not allowed on its CPU %d", core, cpu);
	}
	urt_rt_stop(rt);
}

Test(pin, unpinned_reactors_keep_the_process_mask)
{
	cpu_set_t mine;
	struct urt_rt *rt;

	CPU_ZERO(&mine);
	cr_assert_eq(sched_getaffinity(0, sizeof(mine), &mine), 0);
	if (CPU_COUNT(&mine) < 2)
		cr_skip_test("one CPU: pinned and unpinned look the same");
	rt = start(false);
	for (unsigned core = 0; core < urt_rt_ncores(rt); core++) {
		struct pin_seen s = { .cpu = -1 };

		fx_run(rt, core, pin_body, &s);
		cr_assert_eq(s.err, 0, "core %u: %s", core, strerror(s.err));
		cr_expect(CPU_EQUAL(&s.mask, &mine), "unpinned core %u has a mask of %d CPUs, the process %d", core,
			  CPU_COUNT(&s.mask), CPU_COUNT(&mine));
	}
	urt_rt_stop(rt);
}
