/*
 * Priority classes: under a flood of URGENT writes, a BACKGROUND write goes
 * out within its share and a NORMAL one within its expiry; without the
 * expiry the NORMAL one waits for the whole flood (so the bound is real).
 * The order is what the sim device saw, through its command hook.
 */
#include <criterion/criterion.h>

#include "urt/sim.h"
#include "../fixture.h"
#include "../../sim_open.h"


#define PG 4096u
#define FLOOD 200u
#define OUTSTANDING 16u
#define NORMAL_PAGE 3000u
#define BG_PAGE 3001u

struct flood {
	struct urt_dev *dev;
	uint8_t *buf;
	struct urt_io io[OUTSTANDING + 2];
	unsigned submitted, done;
	int err;
	uint64_t normal_cmd, bg_cmd;	/* Device command index of each (from the hook). */
	struct urt_waitq wq;
};

static bool flood_hook(void *arg, const struct urt_sim_cmd *cmd)
{
	struct flood *f = arg;

	if (cmd->off == (uint64_t)NORMAL_PAGE * PG)
		f->normal_cmd = cmd->index;
	if (cmd->off == (uint64_t)BG_PAGE * PG)
		f->bg_cmd = cmd->index;
	return false;
}

static void flood_done(struct urt_io *io, int res, void *arg);

static void flood_one(struct flood *f, struct urt_io *io)
{
	int ret;

	urt_io_prep_write(io, f->dev, f->buf, PG, (uint64_t)(f->submitted % 1000) * PG);
	io->prio = URT_PRIO_URGENT;
	f->submitted++;
	ret = urt_io_submit(io, flood_done, f);
	if (ret)
		f->err = ret;
}

static void flood_done(struct urt_io *io, int res, void *arg)
{
	struct flood *f = arg;

	if (res != (int)PG)
		f->err = res;
	f->done++;
	if (io >= &f->io[0] && io < &f->io[OUTSTANDING] && f->submitted < FLOOD)
		flood_one(f, io);
	urt_waitq_wake_all(&f->wq);
}

static void run_flood(void *arg)
{
	struct flood *f = arg;
	struct urt_io *normal = &f->io[OUTSTANDING], *bg = &f->io[OUTSTANDING + 1];

	memset(&f->wq, 0, sizeof(f->wq));
	for (unsigned i = 0; i < OUTSTANDING; i++)
		flood_one(f, &f->io[i]);
	urt_io_prep_write(normal, f->dev, f->buf, PG, (uint64_t)NORMAL_PAGE * PG);
	cr_assert_eq(urt_io_submit(normal, flood_done, f), 0);
	urt_io_prep_write(bg, f->dev, f->buf, PG, (uint64_t)BG_PAGE * PG);
	bg->prio = URT_PRIO_BACKGROUND;
	cr_assert_eq(urt_io_submit(bg, flood_done, f), 0);
	while (f->done < FLOOD + 2)
		urt_waitq_wait(&f->wq);
}

static void flood_run(uint64_t normal_expire_ns, struct flood *f)
{
	struct urt_sim_opts so;
	struct urt_sched_opts sc;
	struct urt_rt *rt;

	rt = fx_start_one_core();
	urt_sim_opts_default(&so);
	so.size_bytes = 16u << 20;
	so.write_latency_ns = 50000;
	f->dev = tests_sim_open(&so);
	urt_sched_opts_default(&sc);
	sc.depth_max = 1;
	sc.merge = false;
	sc.background_share = 8;
	sc.expire_ns[URT_PRIO_NORMAL] = normal_expire_ns;
	sc.expire_ns[URT_PRIO_URGENT] = 0;
	cr_assert_eq(urt_dev_sched_set(f->dev, &sc), 0);
	cr_assert_eq(urt_sim_set_hook(f->dev, flood_hook, f), 0);
	f->buf = aligned_alloc(PG, PG);
	fx_run(rt, 0, run_flood, f);
	urt_rt_stop(rt);
	urt_dev_close(f->dev);
	free(f->buf);
	cr_assert_eq(f->err, 0, "an op failed: %d", f->err);
}

Test(sched_prio, background_share_and_expiry_bound_a_flood)
{
	struct flood f = { 0 };

	/* 2 ms of expiry at 50 us a command: about 40 commands. */
	flood_run(2000000, &f);
	cr_assert_gt(f.bg_cmd, 0);
	cr_assert_leq(f.bg_cmd, 1 + 8 + 1, "background went out as command %llu", (unsigned long long)f.bg_cmd);
	cr_assert_gt(f.normal_cmd, 0);
	cr_assert_lt(f.normal_cmd, FLOOD / 2, "normal went out as command %llu of %u",
		     (unsigned long long)f.normal_cmd, FLOOD + 2);
}

Test(sched_prio, without_expiry_normal_waits_for_the_flood)
{
	struct flood f = { 0 };

	flood_run(0, &f);
	/* Urgent first, always: NORMAL only when the flood has drained. */
	cr_assert_gt(f.normal_cmd, FLOOD - OUTSTANDING, "normal went out as command %llu",
		     (unsigned long long)f.normal_cmd);
	cr_assert_leq(f.bg_cmd, 1 + 8 + 1);
}
