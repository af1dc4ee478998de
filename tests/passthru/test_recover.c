/*
 * Recovery from command timeouts on a real Linux NVMe driver, in the NVMe
 * test guest (tests/nvme-vm/run-vm.sh), on the SLOW namespace: QEMU
 * throttles it to 16 KiB/s with a leaky bucket, so a 96 KiB write makes
 * the next command wait 6 s.  A stall "that does not end" is a 96 KiB
 * write behind another: each reissue of it refills the bucket.
 *
 * What the kernel does with a passthrough command whose timeout_ms expires
 * (drivers/nvme/host/pci.c, nvme_timeout): it sends an Abort and re-arms
 * the timer; QEMU's Abort does not abort anything, so at the second expiry
 * the driver resets the controller, which cancels every command in flight
 * (-EINTR to io_uring, -ETIMEDOUT from urt's backend).  QEMU 7.2 drains
 * the namespace's I/O when the controller is disabled, throttle included,
 * so the guest stands still during a reset until the stalled command has
 * gone through (the stall length bounds it).  The kernel log
 * shows both ("timeout, aborting", "timeout, reset controller"), and every
 * controller (re)initialisation logs its queue counts ("default/read/poll
 * queues"), and NVME_IOCTL_RESET logs "resetting controller", which is
 * how the tests tell the driver's resets from urt's.
 *
 *   rec/reset_ioctl  urt's own reset (nvme_reset_wait: NVME_IOCTL_RESET and
 *                    the wait for sysfs "live") resets the controller once.
 *   rec/cascade      deadline -> the driver's abort and reset; a stall that
 *                    ends: timeouts, rounds, urt's reset, the read and write
 *                    reissued and their data verified, DEGRADED; a stall
 *                    that does not end: M resets, OFFLINE, -ENODEV at once
 *                    with the device named.
 *   removal/controller_removed_under_io
 *                    the driver removes the controller while commands are
 *                    in flight (PCI remove through sysfs: the driver's own
 *                    path after a reset of its own failed, "Removing after
 *                    probe failure", and a pulled drive's): the device goes
 *                    OFFLINE as gone, without a reset, later ops fail at
 *                    once naming it; after a PCI rescan brings the
 *                    controller back, every write that was acknowledged
 *                    reads back.  It runs last (suites run in name order):
 *                    the controller it brings back may have new names.
 *
 * Run it in a boot of its own: the resets disturb every later test.
 */
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/klog.h>
#include <time.h>
#include <unistd.h>

#include "../nvme-vm/guest_env.h"
#include "base/sysfs.h"
#include "../runtime/fixture.h"
#include "passthru/passthru.h"
#include "urt/dev.h"
#include "urt/error.h"

#define SEED_R 0x72656164u	/* Pattern of the data the stalled read reads. */
#define SEED_W 0x77726974u	/* Pattern of the stalled write. */
#define KLOG_ABORT "timeout, aborting"
#define KLOG_RESET "timeout, reset controller"
#define KLOG_INIT "default/read/poll queues"
#define KLOG_IOCTL "resetting controller"	/* NVME_IOCTL_RESET: urt asked for a reset. */
#define STALL_BYTES (96u * 1024)		/* Fills the bucket for 6 s at 16 KiB/s. */

/* --- The guest's kernel log ------------------------------------------------ */

/* How many times needle occurs in the kernel log. */
static unsigned klog_count(const char *needle)
{
	int len = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	char *buf, *p;
	unsigned n = 0;

	cr_assert_gt(len, 0, "klogctl: %s", strerror(errno));
	buf = malloc((size_t)len + 1);
	len = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, len);
	cr_assert_geq(len, 0, "klogctl: %s", strerror(errno));
	buf[len] = '\0';
	for (p = buf; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	free(buf);
	return n;
}

/* The controller's name ("nvme0") from URT_NVME_CTRL. */
static const char *ctrl_name(void)
{
	const char *c = env_or_skip("URT_NVME_CTRL");
	const char *slash = strrchr(c, '/');

	return slash ? slash + 1 : c;
}

static void ctrl_state(char *buf, size_t len)
{
	char path[96];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/nvme/%s/state", ctrl_name());
	f = fopen(path, "re");
	cr_assert(f, "%s: %s", path, strerror(errno));
	cr_assert(fgets(buf, (int)len, f));
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
}

Test(rec, reset_ioctl)
{
	const char *ng = env_or_skip("URT_NVME_NSSLOW");
	unsigned before = klog_count(KLOG_INIT);
	char state[32];
	int ret;

	ret = nvme_reset_wait(ctrl_name(), ng, 20000);
	cr_assert_eq(ret, 0, "nvme_reset_wait: %d (%s)", ret, urt_last_error());
	ctrl_state(state, sizeof(state));
	cr_assert_str_eq(state, "live");
	cr_assert_eq(klog_count(KLOG_INIT), before + 1, "the controller was initialised once more by the reset");
}

/* --- The cascade ------------------------------------------------------------- */

struct cascade {
	const char *ng;
	uint32_t lbs;
	struct tests_fail fail;
	/* Phase 0: a deadline goes to the driver. */
	int dl_res;			/* The read with a 1 s deadline. */
	uint64_t dl_ns;			/* Its submit to -ETIMEDOUT. */
	unsigned dl_aborts;		/* "timeout, aborting" lines it caused. */
	uint64_t dl_abort_ns;		/* Submit to the first of them. */
	struct urt_dev_health dl_h;	/* That device's health once the command came back. */
	/* Phase A: a stall that ends. */
	int a_read, a_write, a_verify;	/* Results; a_verify: the write read back. */
	uint64_t a_ns;
	struct urt_dev_health a_h;
	unsigned a_aborts, a_kresets, a_inits, a_ioctls;
	/* Phase B: a stall that does not end. */
	int b_stalled, b_again, b_write;
	uint64_t b_ns, b_again_ns;
	char b_msg[512];
	struct urt_dev_health b_h;
	int b_sticky;
	unsigned b_inits, b_ioctls;
};

struct op_wait {
	int res;
	bool done;
};

static void op_cb(struct urt_io *io, int res, void *arg)
{
	struct op_wait *w = arg;

	(void)io;
	w->res = res;
	w->done = true;
}

/* Opens the SLOW namespace: a command timeout, a deadline policy and a recovery policy. */
static struct urt_dev *open_slow(struct cascade *s, uint32_t timeout_ms, bool deadline_abort, uint32_t n)
{
	struct urt_dev_health_opts ho;
	struct urt_dev_opts o;
	struct urt_dev *dev = NULL;
	int ret;

	urt_dev_health_opts_default(&ho);
	ho.timeouts_max = n;		/* N */
	ho.resets_max = 2;		/* M */
	ho.window_ns = 120ull * 1000000000ull;
	ho.reset_wait_ms = 20000;
	urt_dev_opts_default(&o);
	o.nvme_timeout_ms = timeout_ms;
	o.deadline_abort = deadline_abort;
	o.health = &ho;
	ret = urt_dev_open(s->ng, &o, &dev);
	if (ret)
		tests_failf(&s->fail, "urt_dev_open(%s): %d (%s)", s->ng, ret, urt_last_error());
	return dev;
}

/* Writes len bytes of pattern seed at off through a handle without a timeout (fills the bucket). */
static int prime(struct cascade *s, uint64_t off, uint32_t len, uint64_t seed)
{
	struct urt_dev *dev = open_slow(s, 0, false, 2);
	uint8_t *buf = urt_buf_get(len);
	ssize_t n;

	if (!dev)
		return -ENODEV;
	for (uint32_t i = 0; i < len; i++)
		buf[i] = fx_pattern(seed, off + i);
	n = urt_write(dev, buf, len, off);
	urt_buf_put(buf);
	urt_dev_close(dev);
	return n == (ssize_t)len ? 0 : (int)n;
}

static int check(const uint8_t *p, uint32_t len, uint64_t seed, uint64_t off)
{
	for (uint32_t i = 0; i < len; i++)
		if (p[i] != fx_pattern(seed, off + i))
			return -EILSEQ;
	return 0;
}

/* Sleeps until the throttle's bucket has drained what the last phase put in it. */
static void drain(double seconds)
{
	urt_sleep_ns((uint64_t)(seconds * 1e9));
}

/* Phase 0: a 1 s deadline with deadline_abort reaches the driver as timeout_ms. */
static void phase_deadline(struct cascade *s)
{
	struct urt_dev *dev = open_slow(s, 0, true, 2);
	uint8_t *buf = urt_buf_get(4096);
	struct op_wait w = { 0 };
	unsigned aborts0 = klog_count(KLOG_ABORT);
	struct urt_io io;
	uint64_t t0;

	if (!dev)
		return;
	if (prime(s, 0, STALL_BYTES, SEED_R))
		tests_failf(&s->fail, "phase 0: the priming write failed");
	urt_io_prep_read(&io, dev, buf, 4096, 0);
	io.timeout_ns = 1000000000ull;
	t0 = urt_clock_ns();
	if (urt_io_submit(&io, op_cb, &w)) {
		tests_failf(&s->fail, "phase 0: submit: %s", urt_last_error());
		return;
	}
	while (!w.done)
		urt_sleep_ns(5000000);
	s->dl_res = w.res;
	s->dl_ns = urt_clock_ns() - t0;
	/* The driver's abort, about when the deadline passed (not after its own io_timeout). */
	while (klog_count(KLOG_ABORT) == aborts0 && urt_clock_ns() - t0 < 10000000000ull)
		urt_sleep_ns(20000000);
	s->dl_abort_ns = urt_clock_ns() - t0;
	s->dl_aborts = klog_count(KLOG_ABORT) - aborts0;
	/* The command comes back (the driver's reset cancels it): a timeout for the health. */
	do {
		urt_sleep_ns(20000000);
		urt_dev_health(dev, &s->dl_h);
	} while (s->dl_h.timeouts == 0 && urt_clock_ns() - t0 < 12000000000ull);
	urt_buf_put(buf);
	urt_dev_close(dev);
}

/*
 * Phase A: a stall that ends.  After a 96 KiB write the namespace makes a
 * read and a write wait 6 s; their 1 s timeout expires, the driver aborts
 * (QEMU ignores the Abort) and at the second expiry (2-4 s: blk-mq rounds
 * its timer to whole seconds) resets the controller, which cancels the
 * command whose timer fired (QEMU may complete the other one during the
 * reset's drain).  With N = 1 that round makes urt ask for a reset too
 * (it joins the driver's when one is under way); the cancelled command is
 * reissued and succeeds, and both commands' data is checked.
 */
static void phase_recovers(struct cascade *s)
{
	struct urt_dev *dev = open_slow(s, 1000, false, 1);
	uint8_t *rbuf = urt_buf_get(4096), *wbuf = urt_buf_get(4096);
	struct op_wait wr = { 0 }, ww = { 0 };
	unsigned aborts0 = klog_count(KLOG_ABORT), kresets0 = klog_count(KLOG_RESET);
	unsigned inits0 = klog_count(KLOG_INIT), ioctls0 = klog_count(KLOG_IOCTL);
	struct urt_io ior, iow;
	uint64_t t0;

	if (!dev)
		return;
	for (uint32_t i = 0; i < 4096; i++)
		wbuf[i] = fx_pattern(SEED_W, (1u << 20) + i);
	if (prime(s, 0, STALL_BYTES, SEED_R))
		tests_failf(&s->fail, "phase A: the priming write failed");
	t0 = urt_clock_ns();
	urt_io_prep_read(&ior, dev, rbuf, 4096, 4096);
	urt_io_prep_write(&iow, dev, wbuf, 4096, 1u << 20);
	if (urt_io_submit(&ior, op_cb, &wr) || urt_io_submit(&iow, op_cb, &ww)) {
		tests_failf(&s->fail, "phase A: submit: %s", urt_last_error());
		return;
	}
	while ((!wr.done || !ww.done) && urt_clock_ns() - t0 < 60000000000ull)
		urt_sleep_ns(5000000);
	s->a_ns = urt_clock_ns() - t0;
	s->a_read = wr.done ? wr.res : 1;
	s->a_write = ww.done ? ww.res : 1;
	if (s->a_read == 4096)
		s->a_read = check(rbuf, 4096, SEED_R, 4096);
	urt_dev_health(dev, &s->a_h);
	s->a_aborts = klog_count(KLOG_ABORT) - aborts0;
	s->a_kresets = klog_count(KLOG_RESET) - kresets0;
	s->a_inits = klog_count(KLOG_INIT) - inits0;
	s->a_ioctls = klog_count(KLOG_IOCTL) - ioctls0;
	/* The reissued write landed: read it back (the bucket is low again by now). */
	memset(rbuf, 0, 4096);
	s->a_verify = (int)urt_read(dev, rbuf, 4096, 1u << 20);
	if (s->a_verify == 4096)
		s->a_verify = check(rbuf, 4096, SEED_W, 1u << 20);
	urt_buf_put(rbuf);
	urt_buf_put(wbuf);
	urt_dev_close(dev);
}

/*
 * Phase B: a stall that does not end.  A 96 KiB write behind a 96 KiB
 * write waits 6 s, and every reissue of it fills the bucket again, so each
 * attempt is cancelled by the driver's reset.  N = 2 rounds make urt reset;
 * the attempt after each reset times out again (the reset did not cure
 * it), and after M = 2 such resets the device goes offline.
 */
static void phase_offline(struct cascade *s)
{
	struct urt_dev *dev = open_slow(s, 1000, false, 2);
	uint8_t *buf = urt_buf_get(STALL_BYTES);
	unsigned inits0 = klog_count(KLOG_INIT), ioctls0 = klog_count(KLOG_IOCTL);
	uint64_t t0;

	if (!dev)
		return;
	memset(buf, 0x5b, STALL_BYTES);
	if (prime(s, 2u << 20, STALL_BYTES, SEED_R))
		tests_failf(&s->fail, "phase B: the priming write failed");
	t0 = urt_clock_ns();
	s->b_stalled = (int)urt_write(dev, buf, STALL_BYTES, 3u << 20);
	s->b_ns = urt_clock_ns() - t0;
	snprintf(s->b_msg, sizeof(s->b_msg), "%s", urt_last_error());
	t0 = urt_clock_ns();
	s->b_again = (int)urt_read(dev, buf, 4096, 0);
	s->b_again_ns = urt_clock_ns() - t0;
	s->b_write = (int)urt_write(dev, buf, 4096, 0);
	urt_dev_health(dev, &s->b_h);
	s->b_sticky = urt_dev_error(dev);
	s->b_inits = klog_count(KLOG_INIT) - inits0;
	s->b_ioctls = klog_count(KLOG_IOCTL) - ioctls0;
	urt_buf_put(buf);
	urt_dev_close(dev);
}

static void cascade_body(void *arg)
{
	struct cascade *s = arg;

	phase_deadline(s);
	drain(2.0);	/* What phase 0 left in the bucket (its read, about 4 KiB). */
	phase_recovers(s);
	drain(2.0);	/* Phase A's reissued read and write and the read-back: 12 KiB. */
	phase_offline(s);
}

Test(rec, cascade)
{
	static const int cpu0[] = { 0 };
	struct cascade s = { 0 };
	struct urt_rt_opts o;
	struct urt_rt *rt;
	uint32_t nsid;
	const char *blk;

	guest_ns_env("SLOW", &s.ng, &blk, &s.lbs, &nsid);
	urt_rt_opts_default(&o);
	o.cpus = cpu0;
	o.ncpus = 1;
	o.buf_region_bytes = 4u << 20;
	rt = fx_start(&o);
	fx_run(rt, 0, cascade_body, &s);
	urt_rt_stop(rt);
	cr_assert_eq(s.fail.failed, 0, "%s", s.fail.msg);

	cr_log_info("phase 0: deadline -> %d after %.2f s; driver abort after %.2f s (%u); health timeouts %llu",
		    s.dl_res, s.dl_ns / 1e9, s.dl_abort_ns / 1e9, s.dl_aborts, (unsigned long long)s.dl_h.timeouts);
	cr_expect_eq(s.dl_res, -ETIMEDOUT, "%d", s.dl_res);
	cr_expect(s.dl_ns >= 900000000ull && s.dl_ns < 2500000000ull, "-ETIMEDOUT after %.2f s", s.dl_ns / 1e9);
	cr_expect_geq(s.dl_aborts, 1, "the driver aborted the command: the deadline reached it as timeout_ms");
	cr_expect_lt(s.dl_abort_ns, 5000000000ull, "the abort came %.2f s after submission, not after the "
		     "driver's io_timeout", s.dl_abort_ns / 1e9);
	cr_expect_geq(s.dl_h.timeouts, 1, "the aborted command came back as a timeout");

	cr_log_info("phase A: read %d, write %d, verify %d after %.2f s; %s, timeouts %llu, rounds %llu, "
		    "retries %llu, resets %llu, failed %llu; kernel: %u aborts, %u resets, %u inits, %u reset ioctls",
		    s.a_read, s.a_write, s.a_verify, s.a_ns / 1e9, urt_dev_state_name(s.a_h.state),
		    (unsigned long long)s.a_h.timeouts, (unsigned long long)s.a_h.rounds,
		    (unsigned long long)s.a_h.retries, (unsigned long long)s.a_h.resets,
		    (unsigned long long)s.a_h.reset_failures, s.a_aborts, s.a_kresets, s.a_inits, s.a_ioctls);
	cr_expect_eq(s.a_read, 0, "the stalled read was reissued and read the right data: %d", s.a_read);
	cr_expect_eq(s.a_write, 4096, "the stalled write was reissued: %d", s.a_write);
	cr_expect_eq(s.a_verify, 0, "and its data is on the namespace: %d", s.a_verify);
	/*
	 * The command whose timer made the driver reset comes back -EINTR; QEMU
	 * completes the other during the reset's drain, so it may succeed.
	 */
	cr_expect_geq(s.a_h.timeouts, 1, "a command timed out");
	cr_expect_eq(s.a_h.rounds, 1, "N = 1 round");
	cr_expect_geq(s.a_h.retries, 1, "and was reissued");
	cr_expect_eq(s.a_h.resets, 1, "urt asked for one reset");
	cr_expect_eq(s.a_ioctls + s.a_kresets >= 1, 1, "a reset happened (urt's ioctl, or the driver's that "
		     "urt joined)");
	cr_expect_eq(s.a_h.reset_failures, 0);
	cr_expect_eq(s.a_h.state, URT_DEV_DEGRADED, "%s", urt_dev_state_name(s.a_h.state));
	cr_expect_geq(s.a_aborts, 1, "the driver aborted a command");
	cr_expect_geq(s.a_kresets, 1, "the driver reset the controller");
	cr_expect_geq(s.a_inits, 1, "the controller came back");

	cr_log_info("phase B: write %d after %.2f s (%s); read %d after %.3f s; write %d; %s, timeouts %llu, "
		    "rounds %llu, resets %llu, failed %llu (last %d); %u inits, %u reset ioctls", s.b_stalled,
		    s.b_ns / 1e9, s.b_msg,
		    s.b_again, s.b_again_ns / 1e9, s.b_write, urt_dev_state_name(s.b_h.state),
		    (unsigned long long)s.b_h.timeouts, (unsigned long long)s.b_h.rounds,
		    (unsigned long long)s.b_h.resets, (unsigned long long)s.b_h.reset_failures,
		    s.b_h.last_reset_err, s.b_inits, s.b_ioctls);
	cr_expect_eq(s.b_stalled, -ENODEV, "%d", s.b_stalled);
	cr_expect(strstr(s.b_msg, s.ng) && strstr(s.b_msg, "offline"), "the message names the device: %s",
		  s.b_msg);
	cr_expect_eq(s.b_again, -ENODEV);
	cr_expect_lt(s.b_again_ns, 100000000ull, "an op on an offline device fails at once (%.3f s)",
		     s.b_again_ns / 1e9);
	cr_expect_eq(s.b_write, -ENODEV);
	cr_expect_eq(s.b_h.state, URT_DEV_OFFLINE, "%s", urt_dev_state_name(s.b_h.state));
	cr_expect_eq(s.b_h.reset_failures, 2, "M = 2");
	cr_expect_eq(s.b_h.resets, 2);
	cr_expect_geq(s.b_h.rounds, 4, "N = 2 rounds, then one per failed reset");
	cr_expect_eq(s.b_sticky, -ENODEV);
	cr_expect_geq(s.b_inits, 2, "the controller was reset (and came back) at least twice");
}

/* --- The controller removed under I/O --------------------------------------- */

struct removal {
	const char *ng;
	char bdf[64];			/* The controller's PCI address, e.g. 0000:00:04.0. */
	struct tests_fail fail;
	int w_res[2];			/* The two writes in flight when the controller went. */
	int after, after_write;		/* The first read and write after the removal. */
	const char *blk;		/* The same namespace's block device, opened before the removal. */
	int blk_write, blk_after;	/* A write, then a read, through it after the removal. */
	char blk_msg[512];
	struct urt_dev_health blk_h;	/* Its health then. */
	uint64_t after_ns;		/* How long that read took. */
	char after_msg[512];
	struct urt_dev_health h;	/* Once all that is done. */
	int sticky;
	uint64_t remove_ns;		/* How long the sysfs remove took (the driver's teardown). */
	int remove_err;
	atomic_bool removed;		/* remove_main is done: remove_ns and remove_err are set. */
};

/* The PCI address of the controller behind URT_NVME_CTRL (/sys/class/nvme/nvmeX/device). */
static void ctrl_bdf(char *buf, size_t len)
{
	char path[96], target[256];
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/class/nvme/%s/device", ctrl_name());
	n = readlink(path, target, sizeof(target) - 1);
	cr_assert_gt(n, 0, "readlink %s: %s", path, strerror(errno));
	target[n] = '\0';
	snprintf(buf, len, "%s", basename(target));
}

/* Writes s into a sysfs file; 0 or -errno. */
static int sysfs_put(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* Off the reactor: the remove blocks while the driver tears the controller down. */
static void *remove_main(void *arg)
{
	struct removal *s = arg;
	char path[128];
	uint64_t t0 = urt_clock_ns();

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/remove", s->bdf);
	s->remove_err = sysfs_put(path, "1");
	s->remove_ns = urt_clock_ns() - t0;
	atomic_store(&s->removed, true);	/* Releases remove_err and remove_ns to the fiber. */
	return NULL;
}

#define RM_OFF_A (4u << 20)	/* The two writes in flight: 4 KiB at 4 MiB and at 5 MiB. */
#define RM_OFF_B (5u << 20)
#define RM_SEED 0x72656d76u
#define RM_WAIT_NS 60000000000ull	/* The longest the fiber waits for the writes or the removal. */

/* Waits (bounded) until every op of w[0, n) has answered: none may outlive the fiber's frame. */
static void wait_ops(struct op_wait *w, unsigned n)
{
	uint64_t t0 = urt_clock_ns();

	for (unsigned i = 0; i < n; i++)
		while (!w[i].done && urt_clock_ns() - t0 < RM_WAIT_NS)
			urt_sleep_ns(10000000);
}

static void removal_body(void *arg)
{
	struct removal *s = arg;
	struct urt_dev_health_opts ho;
	struct urt_dev_opts o;
	struct urt_dev *dev = NULL, *bdev = NULL;
	uint8_t *wa = urt_buf_get(4096), *wb = urt_buf_get(4096), *rbuf = urt_buf_get(4096);
	struct op_wait w[2] = { { 0 }, { 0 } };
	struct urt_io io[2];
	unsigned submitted = 0;
	pthread_t t;
	uint64_t t0;
	int ret;

	urt_dev_health_opts_default(&ho);
	urt_dev_opts_default(&o);
	o.health = &ho;
	ret = urt_dev_open(s->ng, &o, &dev);
	if (ret) {
		tests_failf(&s->fail, "urt_dev_open(%s): %d (%s)", s->ng, ret, urt_last_error());
		goto out;
	}
	for (uint32_t i = 0; i < 4096; i++) {
		wa[i] = fx_pattern(RM_SEED, RM_OFF_A + i);
		wb[i] = fx_pattern(RM_SEED, RM_OFF_B + i);
	}
	/* A full bucket, so the two writes wait in QEMU's throttle (about 6 s) while the controller goes. */
	if (prime(&(struct cascade){ .ng = s->ng }, 0, STALL_BYTES, SEED_R))
		tests_failf(&s->fail, "the priming write failed");
	/* The block path of the same namespace (O_DIRECT), to see what the removal does to it. */
	ret = urt_dev_open(s->blk, &o, &bdev);
	if (ret) {
		tests_failf(&s->fail, "urt_dev_open(%s): %d (%s)", s->blk, ret, urt_last_error());
		goto out;
	}
	urt_io_prep_write(&io[0], dev, wa, 4096, RM_OFF_A);
	urt_io_prep_write(&io[1], dev, wb, 4096, RM_OFF_B);
	for (; submitted < 2; submitted++) {
		if (urt_io_submit(&io[submitted], op_cb, &w[submitted])) {
			tests_failf(&s->fail, "submit: %s", urt_last_error());
			goto out;
		}
	}
	urt_sleep_ns(500000000ull);
	if (pthread_create(&t, NULL, remove_main, s)) {
		tests_failf(&s->fail, "pthread_create failed");
		goto out;
	}
	wait_ops(w, 2);
	s->w_res[0] = w[0].done ? w[0].res : 1;
	s->w_res[1] = w[1].done ? w[1].res : 1;
	/* The sysfs write returns once the driver has let go of the controller. */
	t0 = urt_clock_ns();
	while (!atomic_load(&s->removed) && urt_clock_ns() - t0 < RM_WAIT_NS)
		urt_sleep_ns(10000000);
	pthread_join(t, NULL);
	t0 = urt_clock_ns();
	s->after = (int)urt_read(dev, rbuf, 4096, 0);
	s->after_ns = urt_clock_ns() - t0;
	snprintf(s->after_msg, sizeof(s->after_msg), "%s", urt_last_error());
	s->after_write = (int)urt_write(dev, wa, 4096, RM_OFF_A);
	urt_dev_health(dev, &s->h);
	s->sticky = urt_dev_error(dev);
	/* The block device: a write first (the kernel answers ENOSPC past a dead disk's end), then a read. */
	s->blk_write = (int)urt_write(bdev, wa, 4096, RM_OFF_A);
	snprintf(s->blk_msg, sizeof(s->blk_msg), "%s", urt_last_error());
	urt_dev_health(bdev, &s->blk_h);
	s->blk_after = (int)urt_read(bdev, rbuf, 4096, 0);
out:
	wait_ops(w, submitted);
	if (dev)
		urt_dev_close(dev);
	if (bdev)
		urt_dev_close(bdev);
	urt_buf_put(wa);
	urt_buf_put(wb);
	urt_buf_put(rbuf);
}

/*
 * After the rescan the driver names the namespaces again in the order it
 * finds them, so the nsid's generic device may have another name:
 * /dev/ngXnY of the /sys/block/nvmeXnY whose nsid is nsid; 0 or -ENOENT.
 */
static int ng_of_nsid(uint32_t nsid, char *ng, size_t len)
{
	DIR *d = opendir("/sys/block");
	struct dirent *e;
	int ret = -ENOENT;

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		char path[300], line[32];

		/* Hidden per-path disks of multipath heads (nvmeXcYnZ) have no node. */
		if (strncmp(e->d_name, "nvme", 4) || strchr(e->d_name + 4, 'c'))
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/nsid", e->d_name);
		if (urt_sysfs_line(path, line, sizeof(line)) || strtoul(line, NULL, 10) != nsid)
			continue;
		snprintf(ng, len, "/dev/ng%s", e->d_name + 4);
		ret = access(ng, F_OK) ? -ENOENT : 0;
		break;
	}
	closedir(d);
	return ret;
}

/* After the rescan: read back what was acknowledged at off on the namespace ng. */
static int reread(const char *ng, uint64_t off, int *verified)
{
	struct urt_dev *dev = NULL;
	uint8_t *buf;
	ssize_t n;
	int ret = urt_dev_open(ng, NULL, &dev);

	if (ret)
		return ret;
	buf = urt_buf_get(4096);
	n = urt_read(dev, buf, 4096, off);
	*verified = n == 4096 ? check(buf, 4096, RM_SEED, off) : (int)n;
	urt_buf_put(buf);
	urt_dev_close(dev);
	return 0;
}

struct reread_arg {
	const char *ng;
	int ret[2], verified[2];
};

static void reread_body(void *arg)
{
	struct reread_arg *a = arg;

	a->ret[0] = reread(a->ng, RM_OFF_A, &a->verified[0]);
	a->ret[1] = reread(a->ng, RM_OFF_B, &a->verified[1]);
}

Test(removal, controller_removed_under_io)
{
	static const int cpu0[] = { 0 };
	struct removal s = { 0 };
	struct reread_arg ra = { 0 };
	struct urt_rt_opts o;
	struct urt_rt *rt;
	char state[32], path[96], ng_after[64] = "";
	uint32_t nsid, lbs;
	const char *blk;
	uint64_t t0;
	int ret;

	guest_ns_env("SLOW", &s.ng, &blk, &lbs, &nsid);
	s.blk = blk;
	ctrl_bdf(s.bdf, sizeof(s.bdf));
	urt_rt_opts_default(&o);
	o.cpus = cpu0;
	o.ncpus = 1;
	o.buf_region_bytes = 4u << 20;
	rt = fx_start(&o);
	fx_run(rt, 0, removal_body, &s);
	urt_rt_stop(rt);
	cr_log_info("removal of %s: %d after %.2f s; writes in flight %d, %d; then read %d after %.3f s (%s), "
		    "write %d; %s, gone %d, timeouts %llu, resets %llu, failed %llu (last %d)", s.bdf,
		    s.remove_err, s.remove_ns / 1e9, s.w_res[0], s.w_res[1], s.after, s.after_ns / 1e9,
		    s.after_msg, s.after_write, urt_dev_state_name(s.h.state), s.h.gone,
		    (unsigned long long)s.h.timeouts, (unsigned long long)s.h.resets,
		    (unsigned long long)s.h.reset_failures, s.h.last_reset_err);

	/* Bring the controller back for the data check (and for anything after this test). */
	cr_assert_eq(sysfs_put("/sys/bus/pci/rescan", "1"), 0, "PCI rescan: %s", strerror(errno));
	snprintf(path, sizeof(path), "/sys/class/nvme/%s/state", ctrl_name());
	t0 = urt_clock_ns();
	do {
		usleep(50000);
		ret = urt_sysfs_line(path, state, sizeof(state));
		if (ret == 0 && strcmp(state, "live") == 0)
			ret = ng_of_nsid(nsid, ng_after, sizeof(ng_after));
	} while ((ret || strcmp(state, "live")) && urt_clock_ns() - t0 < 30000000000ull);
	cr_log_info("after the rescan: %s %s; nsid %u is %s (was %s)", path, ret ? "not ready" : state, nsid,
		    ng_after[0] ? ng_after : "absent", s.ng);

	cr_assert_eq(s.fail.failed, 0, "%s", s.fail.msg);
	cr_expect_eq(s.remove_err, 0, "the PCI remove: %d", s.remove_err);
	for (int i = 0; i < 2; i++)
		cr_expect(s.w_res[i] == 4096 || s.w_res[i] == -ENODEV,
			  "write %d in flight: either done before the controller went, or -ENODEV: %d", i,
			  s.w_res[i]);
	cr_expect_eq(s.after, -ENODEV, "a read after the removal: %d", s.after);
	cr_expect_lt(s.after_ns, 1000000000ull, "fails at once (%.3f s)", s.after_ns / 1e9);
	cr_expect(strstr(s.after_msg, s.ng) && strstr(s.after_msg, "gone"), "names the device and says it "
		  "is gone: %s", s.after_msg);
	cr_expect_eq(s.after_write, -ENODEV);
	cr_expect_eq(s.h.state, URT_DEV_OFFLINE, "%s", urt_dev_state_name(s.h.state));
	cr_expect(s.h.gone, "offline because the controller is gone, not after failed resets");
	cr_expect_eq(s.h.resets, 0, "nothing to reset: %llu resets", (unsigned long long)s.h.resets);
	cr_expect_eq(s.sticky, -ENODEV);
	cr_log_info("the block device %s after the removal: write %d (%s), then read %d; %s, gone %d", s.blk,
		    s.blk_write, s.blk_msg, s.blk_after, urt_dev_state_name(s.blk_h.state), s.blk_h.gone);
	/*
	 * The kernel gives a dead disk capacity 0: a write past it is ENOSPC, a
	 * read an end of file; neither is an error that says the disk is gone.
	 */
	cr_expect_eq(s.blk_write, -ENODEV, "a write through the removed namespace's block device: %d",
		     s.blk_write);
	cr_expect(strstr(s.blk_msg, s.blk) && strstr(s.blk_msg, "gone"), "names it and says it is gone: %s",
		  s.blk_msg);
	cr_expect_eq(s.blk_h.state, URT_DEV_OFFLINE, "%s", urt_dev_state_name(s.blk_h.state));
	cr_expect(s.blk_h.gone);
	cr_expect_eq(s.blk_after, -ENODEV, "%d", s.blk_after);

	/* Every acknowledged write is on the namespace once the controller is back. */
	cr_assert_eq(ret, 0, "the controller and nsid %u came back after the rescan", nsid);
	cr_assert_str_eq(state, "live");
	ra.ng = ng_after;
	rt = fx_start(&o);
	fx_run(rt, 0, reread_body, &ra);
	urt_rt_stop(rt);
	for (int i = 0; i < 2; i++) {
		if (s.w_res[i] != 4096)
			continue;
		cr_expect_eq(ra.ret[i], 0, "reopen %s: %d", s.ng, ra.ret[i]);
		cr_expect_eq(ra.verified[i], 0, "acknowledged write %d reads back: %d", i, ra.verified[i]);
	}
}
