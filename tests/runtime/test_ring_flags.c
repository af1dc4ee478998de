/*
 * The setup flags each ring gets (src/runtime/ring.c, ring_wanted_flags
 * and ring_init_fallback): the fallback drops an optional flag when the
 * kernel answers EINVAL, so a ring that lost SINGLE_ISSUER, DEFER_TASKRUN
 * or HYBRID_IOPOLL on a kernel that has them still works, only slower or
 * in another mode, and no data test notices.  Here each flag the probe
 * (urt_kernel_probe) found must be on the ring that asks for it, read
 * back from the kernel's answer (urt_stats.ring_flags, poll_ring_flags).
 * A kernel without a flag is a skip of that test.
 */
#include <liburing.h>

#include "runtime/compat.h"	/* IORING_SETUP_HYBRID_IOPOLL on older liburing headers. */

#include "fixture.h"

/* Start a one-core runtime in mode; the setup flags of its main and IOPOLL rings. */
static void flags_of(enum urt_poll_mode mode, uint32_t *main_flags, uint32_t *poll_flags)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct urt_stats st;

	fx_opts_cpu0(&o);
	o.mode = mode;
	o.buf_region_bytes = 64u << 10;
	rt = fx_start(&o);
	cr_assert_eq(urt_rt_stats(rt, 0, &st), 0);
	urt_rt_stop(rt);
	*main_flags = st.ring_flags;
	*poll_flags = st.poll_ring_flags;
	cr_log_info("mode %d: main ring flags 0x%x, IOPOLL ring flags 0x%x", (int)mode, *main_flags, *poll_flags);
}

/* Interrupt mode: one issuer, task work deferred to the loop's enter, and the flag that shows it pending. */
Test(ring_flags, interrupt_main_ring_defers_task_work)
{
	struct urt_kernel_features kf;
	uint32_t m, p;

	urt_kernel_probe(&kf);
	if (!kf.single_issuer || !kf.defer_taskrun)
		cr_skip_test("the kernel refuses SINGLE_ISSUER or DEFER_TASKRUN");
	flags_of(URT_POLL_INTERRUPT, &m, &p);
	cr_expect(m & IORING_SETUP_SINGLE_ISSUER, "main ring 0x%x without SINGLE_ISSUER", m);
	cr_expect(m & IORING_SETUP_DEFER_TASKRUN, "main ring 0x%x without DEFER_TASKRUN", m);
	cr_expect(m & IORING_SETUP_TASKRUN_FLAG, "main ring 0x%x without TASKRUN_FLAG", m);
	cr_expect(m & IORING_SETUP_SUBMIT_ALL, "main ring 0x%x without SUBMIT_ALL", m);
	cr_expect_not(m & (IORING_SETUP_SQPOLL | IORING_SETUP_IOPOLL), "main ring 0x%x polls", m);
	cr_expect_eq(p, 0, "an IOPOLL ring (0x%x) in interrupt mode", p);
}

/* SQPOLL: the SQ thread is the one issuer; the task-run flags are not asked for (the kernel refuses them). */
Test(ring_flags, sqpoll_main_ring_is_single_issuer)
{
	struct urt_kernel_features kf;
	uint32_t m, p;

	urt_kernel_probe(&kf);
	if (!kf.sqpoll || !kf.single_issuer)
		cr_skip_test("the kernel refuses SQPOLL or SINGLE_ISSUER");
	flags_of(URT_POLL_SQPOLL, &m, &p);
	cr_expect(m & IORING_SETUP_SQPOLL, "main ring 0x%x without SQPOLL", m);
	cr_expect(m & IORING_SETUP_SINGLE_ISSUER, "main ring 0x%x without SINGLE_ISSUER", m);
	cr_expect_not(m & IORING_SETUP_DEFER_TASKRUN, "main ring 0x%x with DEFER_TASKRUN under SQPOLL", m);
}

/* IOPOLL: the main ring as in interrupt mode, and a second ring that polls, deferring its task work too. */
Test(ring_flags, iopoll_mode_has_a_polled_ring)
{
	struct urt_kernel_features kf;
	uint32_t m, p;

	urt_kernel_probe(&kf);
	if (!kf.iopoll || !kf.defer_taskrun)
		cr_skip_test("the kernel refuses IOPOLL or DEFER_TASKRUN");
	flags_of(URT_POLL_IOPOLL, &m, &p);
	cr_expect(m & IORING_SETUP_DEFER_TASKRUN, "main ring 0x%x without DEFER_TASKRUN", m);
	cr_expect(p & IORING_SETUP_IOPOLL, "IOPOLL ring 0x%x without IOPOLL", p);
	cr_expect(p & IORING_SETUP_DEFER_TASKRUN, "IOPOLL ring 0x%x without DEFER_TASKRUN", p);
	cr_expect_not(p & IORING_SETUP_HYBRID_IOPOLL, "IOPOLL ring 0x%x is hybrid in plain IOPOLL mode", p);
}

/* Hybrid: the polled ring sleeps part of each poll in the kernel (HYBRID_IOPOLL, 6.13). */
Test(ring_flags, hybrid_mode_polls_hybrid)
{
	struct urt_kernel_features kf;
	uint32_t m, p;

	urt_kernel_probe(&kf);
	if (!kf.iopoll || !kf.hybrid_iopoll)
		cr_skip_test("the kernel refuses IOPOLL or HYBRID_IOPOLL");
	flags_of(URT_POLL_HYBRID, &m, &p);
	cr_expect(p & IORING_SETUP_IOPOLL, "IOPOLL ring 0x%x without IOPOLL", p);
	cr_expect(p & IORING_SETUP_HYBRID_IOPOLL, "IOPOLL ring 0x%x without HYBRID_IOPOLL", p);
}
