/*
 * The page store on a device that goes offline (src/runtime/dev/health.c):
 * the device stalls (every command times out), its controller resets fail,
 * and it goes OFFLINE.  The store reacts as to any failed write: the commit
 * in flight fails with -ENODEV, the store turns sticky and refuses every
 * later commit (URT_E_STICKY, urt_ps_error -ENODEV, a message saying so),
 * and after a power cycle the acknowledged data is intact while the failed
 * commit is absent: nothing was acknowledged that was not durable.  The
 * same holds when the device is simply gone (its driver removed it: the
 * sim's GONE fault), which takes it OFFLINE at the first command.
 */
#include "ps_fixture.h"

#define LOG_BYTES (256u << 10)

struct off_state {
	struct urt_dev *dev;
	struct urt_dev *crashed;
	struct urt_ps_opts o;
	struct psx_fail fail;
	int ret[8];
	uint64_t v[4];
	char msg[512];
	struct urt_dev_health h;
	bool gone;		/* The device is removed (GONE) instead of stalling with failed resets. */
};

static void body_offline(void *arg)
{
	struct off_state *s = arg;
	struct urt_ps *ps = psx_open(s->dev, &s->o, &s->fail);
	int err;

	if (!ps)
		return;
	/* Acknowledged, so durable; pages 2 and 3 also stay cached, so only writes meet the stall. */
	s->ret[0] = psx_write_page(ps, 1, 10) | psx_write_page(ps, 2, 11) | psx_write_page(ps, 3, 12);
	if (s->gone) {
		urt_sim_inject(s->dev, URT_SIM_FAULT_GONE, 0, 0, URT_SIM_FOREVER);
	} else {
		urt_sim_inject(s->dev, URT_SIM_FAULT_TIMEOUT, 0, 0, URT_SIM_FOREVER);
		urt_sim_inject(s->dev, URT_SIM_FAULT_RESET_FAIL, 0, 0, URT_SIM_FOREVER);
	}
	s->ret[1] = psx_write_page(ps, 2, 20);		/* The device goes offline under it. */
	urt_dev_health(s->dev, &s->h);
	s->ret[2] = psx_write_page(ps, 3, 30);		/* Refused. */
	snprintf(s->msg, sizeof(s->msg), "%s", urt_last_error());
	s->ret[3] = urt_ps_error(ps);
	s->ret[4] = urt_ps_close(ps);
	ps = psx_power_cycle(&s->dev, &s->crashed, &s->o, 5, &s->fail);
	if (!ps)
		return;
	s->v[0] = psx_read_page(ps, 1, &err);
	s->ret[5] = err;
	s->v[1] = psx_read_page(ps, 2, &err);
	s->ret[6] = psx_write_page(ps, 4, 40);		/* A healthy device again. */
	s->ret[7] = urt_ps_close(ps);
}

static void run_offline(bool gone)
{
	struct off_state s = { .gone = gone };
	struct urt_sim_opts so;
	struct urt_dev_health_opts ho;

	urt_sim_opts_default(&so);
	so.size_bytes = 8u << 20;
	so.seed = 3;
	so.cmd_timeout_ns = 2000000;	/* The simulated driver gives up on a command after 2 ms. */
	s.dev = tests_sim_open(&so);
	urt_dev_health_opts_default(&ho);
	ho.timeouts_max = 2;
	ho.resets_max = 1;
	cr_assert_eq(urt_dev_health_set(s.dev, &ho), 0);
	urt_ps_opts_default(&s.o);
	s.o.create = true;
	s.o.log_bytes = LOG_BYTES;
	s.o.pool_pages = 8;
	psx_run_and_close(body_offline, &s, &s.dev, &s.crashed, &s.fail);
	cr_expect_eq(s.ret[0], 0);
	cr_expect_eq(s.ret[1], -ENODEV, "the commit in flight fails with the device's error: %d", s.ret[1]);
	cr_expect_eq(s.h.state, URT_DEV_OFFLINE, "the device is %s", urt_dev_state_name(s.h.state));
	if (gone) {
		cr_expect(s.h.gone, "offline because the device is gone");
		cr_expect_eq(s.h.resets, 0, "nothing to reset");
		cr_expect_eq(s.h.timeouts, 0);
	} else {
		cr_expect(!s.h.gone);
		cr_expect_eq(s.h.resets, 1);
		cr_expect_eq(s.h.reset_failures, 1);
		cr_expect_geq(s.h.timeouts, 2);
	}
	cr_expect_eq(s.ret[2], URT_E_STICKY, "later commits are refused: %d", s.ret[2]);
	cr_expect(strstr(s.msg, "refuses") && strstr(s.msg, urt_strerror(-ENODEV)), "a clear message: %s", s.msg);
	cr_expect_eq(s.ret[3], -ENODEV, "urt_ps_error names the cause: %d", s.ret[3]);
	cr_expect_eq(s.ret[4], -ENODEV);
	cr_expect_eq(s.ret[5], 0);
	cr_expect_eq(s.v[0], 10, "acknowledged data survives");
	cr_expect_eq(s.v[1], 11, "the failed commit is absent: page 2 holds the acknowledged txid 11, "
		     "shows %llu", (unsigned long long)s.v[1]);
	cr_expect_eq(s.ret[6], 0);
	cr_expect_eq(s.ret[7], 0);
}

Test(dev_offline, page_store_refuses_commits) { run_offline(false); }
Test(dev_offline, page_store_refuses_commits_on_a_device_gone) { run_offline(true); }
