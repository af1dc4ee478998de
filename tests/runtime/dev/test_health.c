/*
 * Recovery from command timeouts (src/runtime/dev/health.c), driven by the
 * sim device's TIMEOUT, HANG and RESET_FAIL faults:
 *   - an op whose command times out is reissued and its data is right; the
 *     device is DEGRADED, then HEALTHY after a quiet window;
 *   - a timed-out flush is reissued (not sticky) and makes the write durable;
 *   - a burst of timeouts from one stall is one round, not N;
 *   - N rounds within the window reset the controller; a hung controller
 *     that the reset revives serves the parked retry;
 *   - resets that fail, or that do not cure the timeouts, take the device
 *     OFFLINE after M in a row: the op gets -ENODEV with a message naming
 *     the device, later ops fail at once without reaching the device, and
 *     urt_dev_error is -ENODEV;
 *   - a device that is gone (GONE: its driver removed it) goes OFFLINE at
 *     the first command that fails with ENODEV, with no reset tried, and at
 *     a reset that fails with ENODEV, with no second one;
 *   - without a policy (timeouts_max 0) an op gives up after op_timeouts_max;
 *   - with op_timeouts_max 0 a timed-out flush fails and the device is sticky.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "../../fiber_run.h"
#include "../../sim_open.h"
#include "urt/buf.h"
#include "urt/dev.h"
#include "urt/io.h"
#include "urt/sim.h"

#define CMD_TIMEOUT_NS (5ull * 1000000ull)	/* The simulated driver's timeout: 5 ms. */

struct ht {
	struct urt_dev *dev;
	struct tests_fail fail;
	int ret[8];
	char msg[512];
	uint64_t ns;			/* Time an op took. */
	struct urt_sim_stats before;	/* Sim counters before the last op. */
};

static struct urt_rt *ht_start(void)
{
	static const int cpu0 = 0;
	struct urt_rt_opts o;

	urt_rt_opts_default(&o);
	o.cpus = &cpu0;
	o.ncpus = 1;
	o.buf_region_bytes = 4u << 20;
	return tests_rt_start(&o);
}

/* A 16 MiB sim device with the 5 ms command timeout and the given policy. */
static struct urt_dev *ht_dev(uint32_t n, uint32_t m, uint64_t window_ns)
{
	struct urt_sim_opts so;
	struct urt_dev_health_opts ho;
	struct urt_dev *dev;

	urt_sim_opts_default(&so);
	so.size_bytes = 16u << 20;
	so.cmd_timeout_ns = CMD_TIMEOUT_NS;
	dev = tests_sim_open(&so);
	urt_dev_health_opts_default(&ho);
	ho.timeouts_max = n;
	ho.resets_max = m;
	ho.window_ns = window_ns;
	cr_assert_eq(urt_dev_health_set(dev, &ho), 0);
	return dev;
}

static void ht_run(struct ht *s, void (*body)(void *arg))
{
	struct urt_rt *rt = ht_start();

	tests_fiber_run(rt, 0, body, s);
	urt_rt_stop(rt);
	cr_assert_eq(s->fail.failed, 0, "%s", s->fail.msg);
}

static struct urt_dev_health ht_health(struct urt_dev *dev)
{
	struct urt_dev_health h;

	cr_assert_eq(urt_dev_health(dev, &h), 0);
	return h;
}

/* Writes 4 KiB of pattern seed at off and checks it landed; 0 or the failure. */
static int ht_write(struct ht *s, uint64_t off, uint8_t seed)
{
	uint8_t *buf = urt_buf_get(4096);
	ssize_t n;

	memset(buf, seed, 4096);
	n = urt_write(s->dev, buf, 4096, off);
	urt_buf_put(buf);
	return n == 4096 ? 0 : (int)n;
}

/* Reads 4 KiB at off and checks pattern seed; the result, -EILSEQ on wrong data. */
static int ht_read(struct ht *s, uint64_t off, uint8_t seed)
{
	uint8_t *buf = urt_buf_get(4096);
	uint64_t t0 = urt_clock_ns();
	ssize_t n = urt_read(s->dev, buf, 4096, off);
	int ret = n == 4096 ? 0 : (int)n;

	s->ns = urt_clock_ns() - t0;
	if (n < 0)
		snprintf(s->msg, sizeof(s->msg), "%s", urt_last_error());
	for (unsigned i = 0; ret == 0 && i < 4096; i++)
		if (buf[i] != seed)
			ret = -EILSEQ;
	urt_buf_put(buf);
	return ret;
}

/* ---- one timeout: reissued, degraded, healthy again ------------------------- */

static void body_one_timeout(void *arg)
{
	struct ht *s = arg;

	s->ret[0] = ht_write(s, 8192, 0x5a);
	urt_sim_inject(s->dev, URT_SIM_FAULT_TIMEOUT, 8192, 4096, 1);
	s->ret[1] = ht_read(s, 8192, 0x5a);
}

Test(health, timeout_reissued_then_healthy)
{
	struct ht s = { 0 };
	struct urt_dev_health h;
	struct urt_sim_stats ss;

	s.dev = ht_dev(3, 2, 300ull * 1000000ull);
	ht_run(&s, body_one_timeout);
	cr_expect_eq(s.ret[0], 0);
	cr_expect_eq(s.ret[1], 0, "the timed-out read is reissued and reads the data: %d", s.ret[1]);
	cr_expect_geq(s.ns, CMD_TIMEOUT_NS, "it waited for the timeout (%llu ns)", (unsigned long long)s.ns);
	urt_sim_stats(s.dev, &ss);
	cr_expect_eq(ss.timeouts, 1);
	h = ht_health(s.dev);
	cr_expect_eq(h.state, URT_DEV_DEGRADED, "state %s", urt_dev_state_name(h.state));
	cr_expect_eq(h.timeouts, 1);
	cr_expect_eq(h.rounds, 1);
	cr_expect_eq(h.retries, 1);
	cr_expect_eq(h.resets, 0);
	/* A window (300 ms) without a timeout: healthy again. */
	usleep(350 * 1000);
	h = ht_health(s.dev);
	cr_expect_eq(h.state, URT_DEV_HEALTHY, "state %s after a quiet window", urt_dev_state_name(h.state));
	cr_expect_eq(urt_dev_error(s.dev), 0);
	urt_dev_close(s.dev);
}

/* ---- a flush that times out is reissued, not sticky ----------------------- */

static void body_flush_timeout(void *arg)
{
	struct ht *s = arg;

	s->ret[0] = ht_write(s, 0, 0x77);
	/* len 0: the whole device, so the flush (and only it, next) stalls. */
	urt_sim_inject(s->dev, URT_SIM_FAULT_TIMEOUT, 0, 0, 1);
	s->ret[1] = urt_flush(s->dev);
}

Test(health, flush_timeout_reissued)
{
	struct ht s = { 0 };
	uint8_t durable[4096];
	struct urt_sim_stats ss;

	s.dev = ht_dev(3, 2, 10ull * 1000000000ull);
	ht_run(&s, body_flush_timeout);
	cr_expect_eq(s.ret[0], 0);
	cr_expect_eq(s.ret[1], 0, "the flush is reissued after its timeout: %d", s.ret[1]);
	urt_sim_stats(s.dev, &ss);
	cr_expect_eq(ss.timeouts, 1);
	/* The stalled flush did nothing (not counted); the one that did is the reissue. */
	cr_expect_eq(ss.flushes, 1, "one flush took effect: %llu", (unsigned long long)ss.flushes);
	cr_assert_eq(urt_sim_read_durable(s.dev, durable, sizeof(durable), 0), 0);
	cr_expect_eq(durable[0], 0x77, "the reissued flush made the write durable");
	cr_expect_eq(durable[4095], 0x77);
	cr_expect_eq(urt_dev_error(s.dev), 0, "a timed-out flush is not a failed flush");
	urt_dev_close(s.dev);
}

/* ---- a burst from one stall is one round ------------------------------------ */

struct burst {
	struct ht *s;
	unsigned done;
	int res[8];
};

static void burst_cb(struct urt_io *io, int res, void *arg)
{
	struct burst *b = arg;

	(void)io;
	b->res[b->done++] = res;
}

static void body_burst(void *arg)
{
	struct ht *s = arg;
	struct burst b = { .s = s };
	struct urt_io io[8];
	uint8_t *buf[8];

	for (unsigned i = 0; i < 8; i++)
		s->ret[0] |= ht_write(s, i * 4096ull, (uint8_t)(i + 1));
	urt_sim_inject(s->dev, URT_SIM_FAULT_TIMEOUT, 0, 8 * 4096, 8);
	for (unsigned i = 0; i < 8; i++) {
		buf[i] = urt_buf_get(4096);
		urt_io_prep_read(&io[i], s->dev, buf[i], 4096, i * 4096ull);
		if (urt_io_submit(&io[i], burst_cb, &b))
			tests_failf(&s->fail, "submit %u: %s", i, urt_last_error());
	}
	while (b.done < 8)
		urt_sleep_ns(1000000);
	for (unsigned i = 0; i < 8; i++) {
		if (b.res[i] != 4096)
			tests_failf(&s->fail, "read %u: %d", i, b.res[i]);
		if (buf[i][0] != i + 1 || buf[i][4095] != i + 1)
			tests_failf(&s->fail, "read %u: wrong data %u", i, buf[i][0]);
		urt_buf_put(buf[i]);
	}
}

Test(health, burst_is_one_round)
{
	struct ht s = { 0 };
	struct urt_dev_health h;

	s.dev = ht_dev(3, 2, 10ull * 1000000000ull);
	ht_run(&s, body_burst);
	cr_expect_eq(s.ret[0], 0);
	h = ht_health(s.dev);
	cr_expect_eq(h.timeouts, 8);
	cr_expect_eq(h.rounds, 1, "eight commands issued together and stalled together are one round: %llu",
		     (unsigned long long)h.rounds);
	cr_expect_eq(h.retries, 8);
	cr_expect_eq(h.resets, 0, "one stall does not reset the controller");
	cr_expect_eq(h.state, URT_DEV_DEGRADED);
	urt_dev_close(s.dev);
}

/* ---- N rounds reset a hung controller, which serves the parked retry ------- */

static void body_hang(void *arg)
{
	struct ht *s = arg;

	s->ret[0] = ht_write(s, 4096, 0x33);
	urt_sim_inject(s->dev, URT_SIM_FAULT_HANG, 0, 0, URT_SIM_FOREVER);
	s->ret[1] = ht_write(s, 4096, 0x44);	/* Stalls until the reset; then lands. */
	s->ret[2] = ht_read(s, 4096, 0x44);
}

Test(health, hang_cured_by_reset)
{
	struct ht s = { 0 };
	struct urt_dev_health h;
	struct urt_sim_stats ss;

	s.dev = ht_dev(3, 2, 10ull * 1000000000ull);
	ht_run(&s, body_hang);
	cr_expect_eq(s.ret[0], 0);
	cr_expect_eq(s.ret[1], 0, "the write is reissued after the reset: %d", s.ret[1]);
	cr_expect_eq(s.ret[2], 0, "and its data is there: %d", s.ret[2]);
	urt_sim_stats(s.dev, &ss);
	cr_expect_eq(ss.resets, 1, "one controller reset: %llu", (unsigned long long)ss.resets);
	cr_expect_eq(ss.timeouts, 3, "N = 3 timeouts before it: %llu", (unsigned long long)ss.timeouts);
	h = ht_health(s.dev);
	cr_expect_eq(h.resets, 1);
	cr_expect_eq(h.reset_failures, 0);
	cr_expect_eq(h.rounds, 3);
	cr_expect_eq(h.state, URT_DEV_DEGRADED, "state %s", urt_dev_state_name(h.state));
	urt_dev_close(s.dev);
}

/* ---- failed resets: offline, -ENODEV at once -------------------------------- */

static void body_offline(void *arg)
{
	struct ht *s = arg;

	s->ret[0] = ht_write(s, 0, 0x11);
	urt_sim_inject(s->dev, URT_SIM_FAULT_TIMEOUT, 0, 0, URT_SIM_FOREVER);
	if (s->ret[6])
		urt_sim_inject(s->dev, URT_SIM_FAULT_RESET_FAIL, 0, 0, URT_SIM_FOREVER);
	s->ret[1] = ht_read(s, 0, 0x11);
	urt_sim_stats(s->dev, &s->before);
	s->ret[2] = ht_read(s, 0, 0x11);	/* Offline: at once, nothing sent. */
	s->ret[3] = ht_write(s, 0, 0x22);
	s->ret[4] = urt_flush(s->dev);
}

static void run_offline(bool resets_fail)
{
	struct ht s = { 0 };
	struct urt_dev_health h;
	struct urt_sim_stats ss;
	const char *path;

	s.dev = ht_dev(2, 2, 10ull * 1000000000ull);
	s.ret[6] = resets_fail;
	ht_run(&s, body_offline);
	path = "sim:16777216";	/* The path urt_sim_open gives a 16 MiB device. */
	cr_expect_eq(s.ret[0], 0);
	cr_expect_eq(s.ret[1], -ENODEV, "the op pending when the device went offline: %d", s.ret[1]);
	cr_expect_eq(s.ret[2], -ENODEV);
	cr_expect_lt(s.ns, CMD_TIMEOUT_NS, "an op on an offline device fails at once (%llu ns)",
		     (unsigned long long)s.ns);
	cr_expect(strstr(s.msg, "offline") && strstr(s.msg, path), "the message names the device: %s", s.msg);
	cr_expect_eq(s.ret[3], -ENODEV);
	cr_expect_eq(s.ret[4], -ENODEV);
	urt_sim_stats(s.dev, &ss);
	cr_expect_eq(ss.reads, s.before.reads, "no read reached the offline device");
	cr_expect_eq(ss.resets, 2, "M = 2 resets: %llu", (unsigned long long)ss.resets);
	h = ht_health(s.dev);
	cr_expect_eq(h.state, URT_DEV_OFFLINE, "state %s", urt_dev_state_name(h.state));
	cr_expect_eq(h.resets, 2);
	cr_expect_eq(h.reset_failures, 2);
	cr_expect_eq(h.last_reset_err, resets_fail ? -EIO : 0);
	cr_expect_eq(urt_dev_error(s.dev), -ENODEV, "offline is sticky");
	urt_dev_close(s.dev);
}

Test(health, failed_resets_go_offline) { run_offline(true); }
Test(health, resets_that_do_not_cure_go_offline) { run_offline(false); }

/* ---- a device that is gone: OFFLINE at once, nothing to reset --------------- */

static void body_gone(void *arg)
{
	struct ht *s = arg;

	s->ret[0] = ht_write(s, 0, 0x33);
	urt_sim_stats(s->dev, &s->before);
	urt_sim_inject(s->dev, URT_SIM_FAULT_GONE, 0, 0, URT_SIM_FOREVER);
	s->ret[1] = ht_read(s, 0, 0x33);	/* Reaches the device: ENODEV. */
	s->ret[2] = ht_read(s, 0, 0x33);	/* Offline: refused at submit. */
	s->ret[3] = ht_write(s, 4096, 0x44);
	s->ret[4] = urt_flush(s->dev);
}

Test(health, gone_goes_offline_at_once)
{
	struct ht s = { 0 };
	struct urt_dev_health h;
	struct urt_sim_stats ss;

	s.dev = ht_dev(3, 2, 10ull * 1000000000ull);
	ht_run(&s, body_gone);
	cr_expect_eq(s.ret[0], 0);
	cr_expect_eq(s.ret[1], -ENODEV, "the command that found the device gone: %d", s.ret[1]);
	cr_expect_eq(s.ret[2], -ENODEV);
	cr_expect_lt(s.ns, CMD_TIMEOUT_NS, "an op on a gone device fails at once (%llu ns)",
		     (unsigned long long)s.ns);
	cr_expect(strstr(s.msg, "sim:16777216") && strstr(s.msg, "offline") && strstr(s.msg, "gone"),
		  "the message names the device and says it is gone: %s", s.msg);
	cr_expect_eq(s.ret[3], -ENODEV);
	cr_expect_eq(s.ret[4], -ENODEV);
	urt_sim_stats(s.dev, &ss);
	cr_expect_eq(ss.resets, 0, "nothing to reset: %llu resets", (unsigned long long)ss.resets);
	cr_expect_eq(ss.faults, s.before.faults + 1, "one command reached the gone device, the rest were "
		     "refused at submit: %llu", (unsigned long long)(ss.faults - s.before.faults));
	h = ht_health(s.dev);
	cr_expect_eq(h.state, URT_DEV_OFFLINE, "state %s", urt_dev_state_name(h.state));
	cr_expect(h.gone);
	cr_expect_eq(h.resets, 0);
	cr_expect_eq(urt_dev_error(s.dev), -ENODEV, "offline is sticky");
	urt_dev_close(s.dev);
}

struct gone_wait {
	int res;
	bool done;
};

static void gone_cb(struct urt_io *io, int res, void *arg)
{
	struct gone_wait *w = arg;

	(void)io;
	w->res = res;
	w->done = true;
}

/* A stalled read makes the recovery reset (N = 1); the controller is gone by then. */
static void body_gone_in_reset(void *arg)
{
	struct ht *s = arg;
	uint8_t *buf = urt_buf_get(4096);
	struct gone_wait w = { 0 };
	struct urt_io io;

	s->ret[0] = ht_write(s, 0, 0x55);
	urt_sim_inject(s->dev, URT_SIM_FAULT_HANG, 0, 4096, URT_SIM_FOREVER);
	urt_io_prep_read(&io, s->dev, buf, 4096, 0);
	s->ret[1] = urt_io_submit(&io, gone_cb, &w);
	/* The read is stalled in the device now; then the driver removes the controller. */
	urt_sim_inject(s->dev, URT_SIM_FAULT_GONE, 0, 0, URT_SIM_FOREVER);
	while (s->ret[1] == 0 && !w.done)
		urt_sleep_ns(1000000);
	s->ret[2] = w.res;
	urt_buf_put(buf);
}

Test(health, reset_that_finds_the_controller_gone_goes_offline)
{
	struct urt_sim_opts so;
	struct urt_dev_health_opts ho;
	struct ht s = { 0 };
	struct urt_dev_health h;
	struct urt_sim_stats ss;

	urt_sim_opts_default(&so);
	so.size_bytes = 16u << 20;
	so.cmd_timeout_ns = CMD_TIMEOUT_NS;
	s.dev = tests_sim_open(&so);
	urt_dev_health_opts_default(&ho);
	ho.timeouts_max = 1;	/* N = 1: the first stall resets. */
	ho.resets_max = 3;	/* M = 3: offline after one reset only because the controller is gone. */
	ho.window_ns = 10ull * 1000000000ull;
	cr_assert_eq(urt_dev_health_set(s.dev, &ho), 0);
	ht_run(&s, body_gone_in_reset);
	cr_expect_eq(s.ret[0], 0);
	cr_expect_eq(s.ret[1], 0, "submit: %d", s.ret[1]);
	cr_expect_eq(s.ret[2], -ENODEV, "the stalled read, parked behind the reset: %d", s.ret[2]);
	urt_sim_stats(s.dev, &ss);
	cr_expect_eq(ss.resets, 1, "one reset, not M = 3: %llu", (unsigned long long)ss.resets);
	h = ht_health(s.dev);
	cr_expect_eq(h.state, URT_DEV_OFFLINE, "state %s", urt_dev_state_name(h.state));
	cr_expect(h.gone);
	cr_expect_eq(h.resets, 1);
	cr_expect_eq(h.reset_failures, 1);
	cr_expect_eq(h.last_reset_err, -ENODEV);
	cr_expect_eq(urt_dev_error(s.dev), -ENODEV);
	urt_dev_close(s.dev);
}

/* ---- no policy: an op gives up after op_timeouts_max ------------------------ */

static void body_no_policy(void *arg)
{
	struct ht *s = arg;

	urt_sim_inject(s->dev, URT_SIM_FAULT_TIMEOUT, 0, 0, URT_SIM_FOREVER);
	s->ret[0] = ht_read(s, 0, 0);
}

Test(health, no_policy_bounded_retries)
{
	struct ht s = { 0 };
	struct urt_dev_health_opts ho;
	struct urt_dev_health h;
	struct urt_sim_stats ss;

	s.dev = ht_dev(0, 2, 10ull * 1000000000ull);
	urt_dev_health_opts_default(&ho);
	ho.timeouts_max = 0;
	ho.op_timeouts_max = 2;
	cr_assert_eq(urt_dev_health_set(s.dev, &ho), 0);
	ht_run(&s, body_no_policy);
	cr_expect_eq(s.ret[0], -ETIMEDOUT, "%d", s.ret[0]);
	urt_sim_stats(s.dev, &ss);
	cr_expect_eq(ss.timeouts, 3, "one try and op_timeouts_max = 2 retries: %llu", (unsigned long long)ss.timeouts);
	h = ht_health(s.dev);
	cr_expect_eq(h.resets, 0);
	cr_expect_eq(h.state, URT_DEV_DEGRADED);
	urt_dev_close(s.dev);
}

/* ---- op_timeouts_max = 0: a timed-out flush is a failed flush (sticky) ------ */

Test(health, flush_timeout_sticky_without_reissue)
{
	struct ht s = { 0 };
	struct urt_dev_health_opts ho;

	s.dev = ht_dev(3, 2, 10ull * 1000000000ull);
	urt_dev_health_opts_default(&ho);
	ho.op_timeouts_max = 0;
	cr_assert_eq(urt_dev_health_set(s.dev, &ho), 0);
	ht_run(&s, body_flush_timeout);
	cr_expect_eq(s.ret[0], 0);
	cr_expect_eq(s.ret[1], -ETIMEDOUT, "not reissued: %d", s.ret[1]);
	cr_expect_eq(urt_dev_error(s.dev), -ETIMEDOUT, "the device is sticky, as after any failed flush");
	urt_dev_close(s.dev);
}
