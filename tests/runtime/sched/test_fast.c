/*
 * The scheduler's fast path (queue.c, sched_fast): an op that finds its
 * FIFO queue empty and depth to spare leaves at submit time (stats.fast);
 * an op that finds ops waiting queues behind them and keeps FIFO order; a
 * mergeable op takes the fast path only after a run of non-contiguous
 * submissions, so a sequential run still merges.  Runs on the sim device,
 * whose command hook gives the order the device saw.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "urt/sim.h"
#include "../fixture.h"
#include "../../sim_open.h"


#define PG 4096u
#define NIO 32u

struct ft {
	struct urt_dev *dev;
	uint8_t *buf;
	struct urt_io io[NIO];
	unsigned done;
	int err;
	uint64_t cmd_of_page[64];	/* Device command index of the write to each page (hook). */
	struct urt_waitq wq;
};

static bool ft_hook(void *arg, const struct urt_sim_cmd *cmd)
{
	struct ft *t = arg;

	if (cmd->off / PG < 64)
		t->cmd_of_page[cmd->off / PG] = cmd->index;
	return false;
}

static void ft_done(struct urt_io *io, int res, void *arg);

static void ft_write(struct ft *t, unsigned i, uint64_t page)
{
	int ret;

	urt_io_prep_write(&t->io[i], t->dev, t->buf, PG, page * PG);
	ret = urt_io_submit(&t->io[i], ft_done, t);
	if (ret)
		t->err = ret;
}

static void ft_done(struct urt_io *io, int res, void *arg)
{
	struct ft *t = arg;

	if (res != (int)PG)
		t->err = res ? res : -1;
	t->done++;
	(void)io;
	urt_waitq_wake_all(&t->wq);
}

static void ft_wait(struct ft *t, unsigned n)
{
	while (t->done < n)
		urt_waitq_wait(&t->wq);
}

static struct urt_rt *ft_start(struct ft *t, unsigned depth, bool merge)
{
	struct urt_sim_opts so;
	struct urt_sched_opts sc;
	struct urt_rt *rt;

	memset(t, 0, sizeof(*t));
	rt = fx_start_one_core();
	urt_sim_opts_default(&so);
	so.size_bytes = 16u << 20;
	so.write_latency_ns = 50000;
	t->dev = tests_sim_open(&so);
	urt_sched_opts_default(&sc);
	sc.policy = URT_SCHED_FIFO;
	sc.depth_max = depth;
	sc.merge = merge;
	cr_assert_eq(urt_dev_sched_set(t->dev, &sc), 0);
	cr_assert_eq(urt_sim_set_hook(t->dev, ft_hook, t), 0);
	t->buf = aligned_alloc(PG, PG);
	memset(t->buf, 0x5a, PG);
	return rt;
}

static void ft_stop(struct urt_rt *rt, struct ft *t, struct urt_sched_stats *st)
{
	urt_rt_stop(rt);
	cr_assert_eq(urt_dev_sched_stats(t->dev, st), 0);
	urt_dev_close(t->dev);
	free(t->buf);
	cr_assert_eq(t->err, 0, "an op failed: %d", t->err);
}

/* One op at a time: the queue is always empty, every op leaves at once. */
static void run_one_at_a_time(void *arg)
{
	struct ft *t = arg;

	memset(&t->wq, 0, sizeof(t->wq));
	for (unsigned i = 0; i < 8; i++) {
		ft_write(t, i, 3u * i);
		ft_wait(t, i + 1);
	}
}

Test(sched_fast, taken_when_the_queue_is_empty)
{
	struct ft t;
	struct urt_sched_stats st;
	struct urt_rt *rt = ft_start(&t, 4, false);

	fx_run(rt, 0, run_one_at_a_time, &t);
	ft_stop(rt, &t, &st);
	cr_assert_eq(st.fast, 8, "fast %llu", (unsigned long long)st.fast);
	cr_assert_eq(st.queued, 8);
	cr_assert_eq(st.dispatched, 8);
	cr_assert_eq(st.commands, 8);
}

/*
 * Six writes in one iteration at depth 2: two leave at once, four wait.
 * After the first completion a seventh is submitted while they wait, with
 * depth to spare: it must queue behind them, not overtake them.
 */
static void run_contended(void *arg)
{
	struct ft *t = arg;

	memset(&t->wq, 0, sizeof(t->wq));
	for (unsigned i = 0; i < 6; i++)
		ft_write(t, i, 2u * i);
	/* Woken by the first completion: its depth unit is back, four ops still wait. */
	ft_wait(t, 1);
	ft_write(t, 6, 12);
	ft_wait(t, 7);
}

Test(sched_fast, not_taken_when_ops_wait)
{
	struct ft t;
	struct urt_sched_stats st;
	struct urt_rt *rt = ft_start(&t, 2, false);

	fx_run(rt, 0, run_contended, &t);
	ft_stop(rt, &t, &st);
	cr_assert_eq(st.fast, 2, "fast %llu", (unsigned long long)st.fast);
	cr_assert_eq(st.queued, 7);
	cr_assert_eq(st.dispatched, 7);
	for (unsigned i = 0; i < 6; i++) {
		cr_assert_gt(t.cmd_of_page[2 * i], 0, "write %u never reached the device", i);
		cr_assert_lt(t.cmd_of_page[2 * i], t.cmd_of_page[12], "the late write overtook write %u", i);
	}
}

/*
 * Merging on: a sequential run on a fresh queue merges; after 20 random
 * writes the credit allows the fast path; a sequential run then loses only
 * its first op to it and the rest still merge.
 */
static void run_credit(void *arg)
{
	struct ft *t = arg;
	unsigned n = 0;

	memset(&t->wq, 0, sizeof(t->wq));
	for (unsigned i = 0; i < 4; i++)
		ft_write(t, n++, i);
	ft_wait(t, n);
	for (unsigned i = 0; i < 20; i++) {
		ft_write(t, n++, 10u + 2u * i);
		ft_wait(t, n);
	}
	for (unsigned i = 0; i < 4; i++)
		ft_write(t, n++, 56u + i);
	ft_wait(t, n);
}

Test(sched_fast, sequential_runs_still_merge)
{
	struct ft t;
	struct urt_sched_stats st;
	struct urt_rt *rt = ft_start(&t, 32, true);

	fx_run(rt, 0, run_credit, &t);
	ft_stop(rt, &t, &st);
	/* Random writes 16..20 (credit reached), then the first of the last run. */
	cr_assert_eq(st.fast, 5 + 1, "fast %llu", (unsigned long long)st.fast);
	cr_assert_eq(st.merged, 4 + 3, "merged %llu", (unsigned long long)st.merged);
	cr_assert_eq(st.commands, 1 + 20 + 1 + 1, "commands %llu", (unsigned long long)st.commands);
}
