/*
 * Interrupt Coalescing (NVMe Feature 08h): urt_nvme_coalesce_get/_set and
 * the device option urt_dev_opts.nvme_coalesce.
 *
 *   nvme_coalesce_host  runs anywhere: bad paths and the option on a device
 *                       that is not NVMe give a clear error.
 *   nvme_coalesce       inside the NVMe test guest: the feature reads back
 *                       what was set (or, if the controller refuses, the
 *                       refusal is an errno with the NVMe status named and
 *                       nothing changed); opening a device with the option
 *                       sets it; and the interrupts the guest counts for the
 *                       controller's queues over the same 512 reads, with
 *                       coalescing off and at its maximum, are logged, which
 *                       shows whether the emulated controller honours it
 *                       (docs/passthru.md records what it did).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../nvme-vm/guest_env.h"
#include "../runtime/fixture.h"
#include "urt/error.h"
#include "urt/nvme.h"

Test(nvme_coalesce_host, bad_paths_and_wrong_device)
{
	struct urt_nvme_coalesce c = { .threshold = 3, .time_100us = 1 };
	struct urt_dev_opts o;
	struct urt_dev *dev = NULL;
	int ret;

	ret = urt_nvme_coalesce_get("/dev/urt-no-such-nvme9", &c);
	cr_assert_eq(ret, -ENOENT);
	cr_assert(strstr(urt_last_error(), "/dev/urt-no-such-nvme9"), "%s", urt_last_error());
	/* Not an NVMe device: the admin ioctl is refused (ENOTTY), and the message says which feature. */
	ret = urt_nvme_coalesce_set("/dev/null", &c);
	cr_assert_lt(ret, 0);
	cr_assert(strstr(urt_last_error(), "Interrupt Coalescing (Feature 08h)"), "%s", urt_last_error());
	urt_dev_opts_default(&o);
	o.nvme_coalesce = &c;
	ret = urt_dev_open("/dev/null", &o, &dev);
	cr_assert_eq(ret, -EINVAL, "the option on the file backend: %d", ret);
	cr_assert(strstr(urt_last_error(), "NVMe generic devices"), "%s", urt_last_error());
	cr_assert_null(dev);
}

/* --- Guest ------------------------------------------------------------------------ */

/* Interrupts delivered so far for the queues of controller name ("nvme0q1", ...). */
static uint64_t nvme_interrupts(const char *ctrl)
{
	FILE *f = fopen("/proc/interrupts", "re");
	char line[1024], tag[40];
	uint64_t sum = 0;

	cr_assert_not_null(f);
	snprintf(tag, sizeof(tag), " %sq", ctrl);
	while (fgets(line, sizeof(line), f)) {
		char *p = strchr(line, ':');

		/* Only I/O queues: q0 is the admin queue. */
		if (!p || !strstr(line, tag) || strstr(line, "q0\n"))
			continue;
		p++;
		for (;;) {
			char *end;
			unsigned long long v = strtoull(p, &end, 10);

			if (end == p)
				break;
			sum += v;
			p = end;
		}
	}
	fclose(f);
	return sum;
}

struct reads {
	struct urt_dev *dev;
	unsigned done;
	int err;
};

static void read_done(struct urt_io *io, int res, void *arg)
{
	struct reads *r = arg;

	(void)io;
	if (res != 4096 && !r->err)
		r->err = res < 0 ? res : -EIO;
	r->done++;
}

/* 16 rounds of 32 concurrent 4 KiB reads. */
static void reads_body(void *arg)
{
	struct reads *r = arg;
	struct urt_io io[32];
	void *buf[32];

	for (unsigned i = 0; i < 32; i++)
		buf[i] = urt_buf_get(4096);
	for (unsigned round = 0; round < 16 && !r->err; round++) {
		unsigned want = r->done + 32;

		for (unsigned i = 0; i < 32; i++) {
			urt_io_prep_read(&io[i], r->dev, buf[i], 4096, (uint64_t)(round * 32 + i) * 4096);
			if (urt_io_submit(&io[i], read_done, r)) {
				r->err = -EIO;
				want--;
			}
		}
		while (r->done < want)
			urt_sleep_ns(100000);
	}
	for (unsigned i = 0; i < 32; i++)
		urt_buf_put(buf[i]);
}

/* Interrupts per read for 512 reads on dev. */
static double interrupts_per_read(struct urt_dev *dev, const char *ctrl)
{
	static const int cpu0[] = { 0 };
	struct reads r = { .dev = dev };
	struct urt_rt_opts o;
	struct urt_rt *rt;
	uint64_t before;

	urt_rt_opts_default(&o);
	o.cpus = cpu0;
	o.ncpus = 1;
	rt = fx_start(&o);
	before = nvme_interrupts(ctrl);
	fx_run(rt, 0, reads_body, &r);
	urt_rt_stop(rt);
	cr_assert_eq(r.err, 0, "reads: %s", urt_strerror(r.err));
	cr_assert_eq(r.done, 512);
	return (double)(nvme_interrupts(ctrl) - before) / 512.0;
}

Test(nvme_coalesce, set_get_and_the_device_option)
{
	const char *ctrl = env_or_skip("URT_NVME_CTRL");
	const char *ng = env_or_skip("URT_NVME_NS512");
	struct urt_nvme_coalesce orig, want = { .threshold = 31, .time_100us = 255 }, got, off = { 0, 0 };
	struct urt_dev_opts o;
	struct urt_dev *dev;
	double per_read_off, per_read_on;
	int ret;

	ret = urt_nvme_coalesce_get(ctrl, &orig);
	cr_assert_eq(ret, 0, "get: %s", urt_last_error());
	cr_log_info("%s: Feature 08h at boot: threshold %u, time %u x 100 us", ctrl, orig.threshold, orig.time_100us);

	ret = urt_nvme_coalesce_set(ctrl, &want);
	if (ret) {
		char why[256];

		/* The controller refused: an errno, the status named, and nothing changed. */
		snprintf(why, sizeof(why), "%s", urt_last_error());
		cr_assert(strstr(why, "the controller answered"), "%d: %s", ret, why);
		cr_log_info("%s refuses Set Features 08h: %s (%s)", ctrl, urt_strerror(ret), why);
		cr_assert_eq(urt_nvme_coalesce_get(ctrl, &got), 0);
		cr_assert(got.threshold == orig.threshold && got.time_100us == orig.time_100us);
		/* The ng device carries the same controller-wide admin command. */
		cr_assert_eq(urt_nvme_coalesce_get(ng, &got), 0, "%s", urt_last_error());
		cr_assert(got.threshold == orig.threshold && got.time_100us == orig.time_100us);
		/* The device option fails the open the same way, with nothing left open. */
		urt_dev_opts_default(&o);
		o.nvme_coalesce = &want;
		dev = NULL;
		cr_assert_eq(urt_dev_open(ng, &o, &dev), ret, "%s", urt_last_error());
		cr_assert(strstr(urt_last_error(), "Interrupt Coalescing (Feature 08h)"), "%s", urt_last_error());
		cr_assert_null(dev);
		return;
	}
	cr_assert_eq(urt_nvme_coalesce_get(ctrl, &got), 0, "%s", urt_last_error());
	cr_assert_eq(got.threshold, 31, "Get Features reads back the threshold set");
	cr_assert_eq(got.time_100us, 255, "Get Features reads back the time set");
	/* Through an ng device and the device option: the same controller-wide feature. */
	ret = urt_nvme_coalesce_get(ng, &got);
	cr_assert_eq(ret, 0, "%s", urt_last_error());
	cr_assert_eq(got.threshold, 31);

	/* What the emulated controller does with it: interrupts per read, off and at the maximum. */
	urt_dev_opts_default(&o);
	o.nvme_coalesce = &off;
	cr_assert_eq(urt_dev_open(ng, &o, &dev), 0, "%s", urt_last_error());
	cr_assert_eq(urt_nvme_coalesce_get(ctrl, &got), 0);
	cr_assert(got.threshold == 0 && got.time_100us == 0, "opening with nvme_coalesce {0, 0} sets it");
	per_read_off = interrupts_per_read(dev, ctrl + 5);
	urt_dev_close(dev);
	o.nvme_coalesce = &want;
	cr_assert_eq(urt_dev_open(ng, &o, &dev), 0, "%s", urt_last_error());
	cr_assert_eq(urt_nvme_coalesce_get(ctrl, &got), 0);
	cr_assert(got.threshold == 31 && got.time_100us == 255, "opening with nvme_coalesce {31, 255} sets it");
	per_read_on = interrupts_per_read(dev, ctrl + 5);
	urt_dev_close(dev);
	cr_log_info("interrupts per 4 KiB read at QD32: %.3f with coalescing off, %.3f with threshold 32 / "
		    "25.5 ms (ratio %.2f)", per_read_off, per_read_on, per_read_off > 0 ? per_read_on / per_read_off : 0);
	cr_assert_gt(per_read_off, 0, "the interrupt count of %s's queues did not move", ctrl);

	cr_assert_eq(urt_nvme_coalesce_set(ctrl, &orig), 0, "restoring: %s", urt_last_error());
}
