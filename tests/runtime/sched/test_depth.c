/*
 * Depth limits: depth_max bounds the commands in flight on a device, and
 * class_depth_max the commands of one class.  64 BACKGROUND and 64 NORMAL
 * writes (every other page, so nothing merges) all submitted at once; the
 * sim device's command hook counts, at each command it accepts, the
 * commands of each class that have not yet called back.  A unit comes
 * back before the callback of the op holding it (req_deliver,
 * bare_complete) and the next command leaves only after that callback ran
 * (at the loop's dispatch step, or from the callback itself), so that count
 * is exactly what is in flight.  Each bound must hold and be reached: with
 * depth_max 4 and BACKGROUND at 2, the device sees 4 commands at a time,
 * never more than 2 of them BACKGROUND; without the class bound BACKGROUND
 * takes all 4 (so the first check can fail).
 */
#include <criterion/criterion.h>

#include "urt/sim.h"
#include "../fixture.h"
#include "../../sim_open.h"


#define PG 4096u
#define PER_CLASS 64u
#define NORMAL_BASE 1024u	/* NORMAL writes go to pages NORMAL_BASE + 2i, BACKGROUND ones to 2i. */

struct depth {
	struct urt_dev *dev;
	uint8_t *buf;
	struct urt_io io[2 * PER_CLASS];
	unsigned started[2], done[2];	/* By class: [0] BACKGROUND, [1] NORMAL. */
	unsigned max_bg, max_all;	/* Most in flight seen by the device. */
	int err;
	struct urt_waitq wq;
};

static unsigned class_of(uint64_t off)
{
	return off >= (uint64_t)NORMAL_BASE * PG;
}

static bool depth_hook(void *arg, const struct urt_sim_cmd *cmd)
{
	struct depth *d = arg;
	unsigned bg, all;

	d->started[class_of(cmd->off)]++;
	bg = d->started[0] - d->done[0];
	all = bg + d->started[1] - d->done[1];
	if (bg > d->max_bg)
		d->max_bg = bg;
	if (all > d->max_all)
		d->max_all = all;
	return false;
}

static void depth_done(struct urt_io *io, int res, void *arg)
{
	struct depth *d = arg;

	if (res != (int)PG && !d->err)
		d->err = res < 0 ? res : -EIO;
	d->done[class_of(io->off)]++;
	urt_waitq_wake_all(&d->wq);
}

static void depth_body(void *arg)
{
	struct depth *d = arg;

	memset(&d->wq, 0, sizeof(d->wq));
	for (unsigned i = 0; i < PER_CLASS; i++) {
		struct urt_io *bg = &d->io[2 * i], *nm = &d->io[2 * i + 1];

		urt_io_prep_write(bg, d->dev, d->buf, PG, (uint64_t)(2 * i) * PG);
		bg->prio = URT_PRIO_BACKGROUND;
		cr_assert_eq(urt_io_submit(bg, depth_done, d), 0);
		urt_io_prep_write(nm, d->dev, d->buf, PG, (uint64_t)(NORMAL_BASE + 2 * i) * PG);
		cr_assert_eq(urt_io_submit(nm, depth_done, d), 0);
	}
	while (d->done[0] + d->done[1] < 2 * PER_CLASS)
		urt_waitq_wait(&d->wq);
}

static void depth_run(uint32_t bg_depth, struct depth *d)
{
	struct urt_sim_opts so;
	struct urt_sched_opts sc;
	struct urt_rt *rt;

	rt = fx_start_one_core();
	urt_sim_opts_default(&so);
	so.size_bytes = 16u << 20;
	so.write_latency_ns = 100000;	/* Commands overlap: the scheduler alone bounds them. */
	d->dev = tests_sim_open(&so);
	urt_sched_opts_default(&sc);
	sc.depth_max = 4;
	sc.class_depth_max[URT_PRIO_BACKGROUND] = bg_depth;
	sc.merge = false;
	cr_assert_eq(urt_dev_sched_set(d->dev, &sc), 0);
	cr_assert_eq(urt_sim_set_hook(d->dev, depth_hook, d), 0);
	d->buf = aligned_alloc(PG, PG);
	memset(d->buf, 0x3c, PG);
	fx_run(rt, 0, depth_body, d);
	urt_rt_stop(rt);
	urt_dev_close(d->dev);
	free(d->buf);
	cr_assert_eq(d->err, 0, "a write failed: %d", d->err);
	cr_assert_eq(d->started[0] + d->started[1], 2 * PER_CLASS, "the device saw %u commands",
		     d->started[0] + d->started[1]);
}

Test(sched_depth, class_bound_and_device_bound_hold_and_are_reached)
{
	struct depth d = { 0 };

	depth_run(2, &d);
	cr_assert_eq(d.max_all, 4, "at most %u commands in flight (depth_max 4)", d.max_all);
	cr_assert_eq(d.max_bg, 2, "at most %u BACKGROUND commands in flight (its bound 2)", d.max_bg);
}

Test(sched_depth, without_a_class_bound_background_takes_the_device)
{
	struct depth d = { 0 };

	depth_run(0, &d);
	cr_assert_eq(d.max_all, 4, "at most %u commands in flight (depth_max 4)", d.max_all);
	cr_assert_eq(d.max_bg, 4, "at most %u BACKGROUND commands in flight (no class bound)", d.max_bg);
}
