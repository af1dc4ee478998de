/*
 * Cross-core posts: delivered on the right core, once each, in FIFO order
 * per source, from outside threads and from other cores; a full queue says
 * -EAGAIN instead of blocking.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../fixture.h"

#define N_OUTSIDE 20000

struct post_counts {
	_Atomic uint64_t ran[64];
	_Atomic uint64_t wrong_core;
	_Atomic uint64_t out_of_order;
	uint64_t next_seq[64];	/* Per core: sequence expected next (touched only by that core). */
};

struct post_msg_t {
	struct post_counts *pc;
	unsigned core;
	uint64_t seq;
};

static void count_fn(void *arg)
{
	struct post_msg_t *m = arg;

	if (urt_core_id() != m->core)
		atomic_fetch_add(&m->pc->wrong_core, 1);
	if (m->pc->next_seq[m->core] != m->seq)
		atomic_fetch_add(&m->pc->out_of_order, 1);
	m->pc->next_seq[m->core] = m->seq + 1;
	atomic_fetch_add(&m->pc->ran[m->core], 1);
}

Test(post, from_outside_thread)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct post_counts *pc = calloc(1, sizeof(*pc));
	unsigned n;
	struct post_msg_t *msgs;

	urt_rt_opts_default(&o);
	o.post_queue_max = 256;
	rt = fx_start(&o);
	n = urt_rt_ncores(rt);
	msgs = calloc((size_t)n * N_OUTSIDE, sizeof(*msgs));
	for (uint64_t i = 0; i < N_OUTSIDE; i++) {
		for (unsigned c = 0; c < n; c++) {
			struct post_msg_t *m = &msgs[i * n + c];
			int ret;

			m->pc = pc;
			m->core = c;
			m->seq = i;
			while ((ret = urt_core_post(rt, c, count_fn, m)) == -EAGAIN)
				;
			cr_assert_eq(ret, 0);
		}
	}
	urt_rt_stop(rt);	/* Runs everything already accepted. */
	for (unsigned c = 0; c < n; c++)
		cr_expect_eq(atomic_load(&pc->ran[c]), N_OUTSIDE, "core %u ran %llu", c,
			     (unsigned long long)atomic_load(&pc->ran[c]));
	cr_expect_eq(atomic_load(&pc->wrong_core), 0);
	cr_expect_eq(atomic_load(&pc->out_of_order), 0);
	free(msgs);
	free(pc);
}

/* Core-to-core ping-pong: each hop is a post from one reactor to another (MSG_RING wakeup). */
struct pingpong {
	struct urt_rt *rt;
	unsigned hops_left;
	unsigned hops_done;
	unsigned wrong;
	unsigned last_core;
	sem_t done;
};

static void hop(void *arg)
{
	struct pingpong *pp = arg;
	unsigned self = urt_core_id();
	unsigned n = urt_rt_ncores(pp->rt);

	if (self == pp->last_core && n > 1)
		pp->wrong++;
	pp->last_core = self;
	pp->hops_done++;
	if (--pp->hops_left == 0) {
		sem_post(&pp->done);
		return;
	}
	if (urt_core_post(pp->rt, (self + 1) % n, hop, pp))
		pp->wrong++;
}

/*
 * write(2) calls of the whole process so far (/proc/self/io syscw, summed
 * over its threads): an eventfd wakeup is one write, a MSG_RING wakeup
 * none.  -1 when the kernel keeps no such count.
 */
static long long process_writes(void)
{
	FILE *f = fopen("/proc/self/io", "r");
	char line[128];
	long long n = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "syscw: %lld", &n) == 1)
			break;
	fclose(f);
	return n;
}

/* 5000 hops between the cores of a runtime started with o; *writes gets the write(2) calls they made, or -1. */
static void pingpong_run(struct urt_rt_opts *o, struct urt_stats *st, long long *writes)
{
	struct pingpong pp = { .hops_left = 5000, .last_core = ~0u };
	long long w0;

	pp.rt = fx_start(o);
	if (urt_rt_ncores(pp.rt) < 2) {
		urt_rt_stop(pp.rt);
		cr_skip_test("needs two CPUs");
	}
	sem_init(&pp.done, 0, 0);
	w0 = process_writes();
	cr_assert_eq(urt_core_post(pp.rt, 0, hop, &pp), 0);
	sem_wait(&pp.done);
	*writes = w0 < 0 ? -1 : process_writes() - w0;
	cr_assert_eq(urt_rt_stats_total(pp.rt, st), 0);
	urt_rt_stop(pp.rt);
	cr_expect_eq(pp.hops_done, 5000);
	cr_expect_eq(pp.wrong, 0);
	cr_expect_geq(st->posts_run, 5000);
}

/* Without the pre-sleep spin every hop finds the other core asleep or about to sleep. */
Test(post, core_to_core_pingpong)
{
	struct urt_rt_opts o;
	struct urt_stats st;
	struct urt_kernel_features kf;
	long long writes;

	urt_kernel_probe(&kf);
	if (!kf.msg_ring)
		cr_skip_test("the kernel has no IORING_OP_MSG_RING");
	if (process_writes() < 0)
		cr_skip_test("no /proc/self/io syscw: the wakeups' way cannot be seen");
	urt_rt_opts_default(&o);
	o.post_spin_max_ns = 0;
	pingpong_run(&o, &st, &writes);
	cr_expect_gt(st.wakeups_sent, 0, "core-to-core posts are woken with MSG_RING");
	cr_expect_eq(st.post_spin_hits + st.post_spin_misses, 0, "post_spin_max_ns = 0 still spun");
	/*
	 * The wakeups counted above come as MSG_RING, not as writes to the
	 * other core's eventfd (the fallback for posts from outside threads,
	 * which would count the same): the hops make almost no write(2).  The
	 * first post, from this thread, writes once.
	 */
	cr_log_info("%llu wakeups sent, %lld write(2) calls during the hops", (unsigned long long)st.wakeups_sent,
		    writes);
	cr_assert_geq(writes, 0, "/proc/self/io could not be read after the hops");
	cr_expect_lt(writes, 16, "%lld write(2) calls for %llu core-to-core wakeups: eventfd, not MSG_RING", writes,
		     (unsigned long long)st.wakeups_sent);
}

/*
 * With the spin (the default), a core that just posted watches for the
 * answer before sleeping: hops are caught by spinning, and a post to a core
 * that is spinning (awake) sends no wakeup.  A wakeup is sent only to a
 * core that announced a sleep, so there are never more wakeups than
 * announced sleeps plus the aborted announcements (at most one per spin
 * miss and per loop that found its doorbell rung).
 */
Test(post, core_to_core_pingpong_spin)
{
	struct urt_rt_opts o;
	struct urt_stats st;

	if (getenv("URT_WAIT") && strcmp(getenv("URT_WAIT"), "poll") == 0)
		cr_skip_test("the pre-sleep spin is off in poll-wait mode (URT_WAIT=poll)");
	long long writes;

	urt_rt_opts_default(&o);
	pingpong_run(&o, &st, &writes);
	cr_expect_gt(st.post_spin_hits, 0, "no hop was caught by the pre-sleep spin (%llu misses)",
		     (unsigned long long)st.post_spin_misses);
	cr_expect_gt(st.wakeups_skipped, 0, "every post woke its core, although it was spinning");
	cr_expect_lt(st.wakeups_sent, 5000, "every hop sent a wakeup (%llu), although cores spun",
		     (unsigned long long)st.wakeups_sent);
}

struct full_run {
	int res[8];
	int ran;
};

static void noop_fn(void *arg)
{
	((struct full_run *)arg)->ran++;
}

static void fill_body(void *p)
{
	struct full_run *r = p;

	/* Posting to our own core: nothing drains while this fiber runs. */
	for (int i = 0; i < 8; i++)
		r->res[i] = urt_core_post(urt_rt_self(), urt_core_id(), noop_fn, r);
}

Test(post, full_queue_is_eagain)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct full_run r = { 0 };

	urt_rt_opts_default(&o);
	o.post_queue_max = 4;
	rt = fx_start(&o);
	fx_run(rt, 0, fill_body, &r);
	cr_expect_eq(urt_core_post(rt, 999, noop_fn, &r), -EINVAL);
	urt_rt_stop(rt);
	for (int i = 0; i < 4; i++)
		cr_expect_eq(r.res[i], 0);
	for (int i = 4; i < 8; i++)
		cr_expect_eq(r.res[i], -EAGAIN);
	cr_expect_eq(r.ran, 4);
}

/* urt_io_cancel from a core that does not own the op is refused, not raced. */
struct xcancel {
	struct urt_rt *rt;
	struct urt_io io;
	_Atomic int xres;	/* urt_io_cancel on core 1; 1 = not run yet. */
	int local_res;		/* urt_io_cancel on the owning core. */
	int cb_res;
	int calls;
	int post_res;
};

static void xcancel_cb(struct urt_io *io, int res, void *arg)
{
	struct xcancel *x = arg;

	(void)io;
	x->cb_res = res;
	x->calls++;
}

static void xcancel_remote(void *arg)
{
	struct xcancel *x = arg;

	atomic_store(&x->xres, urt_io_cancel(&x->io));
}

static void xcancel_body(void *arg)
{
	struct xcancel *x = arg;

	urt_io_prep_timeout(&x->io, 10000000000ull);	/* 10 s: only a cancel ends it early. */
	if (urt_io_submit(&x->io, xcancel_cb, x) != 0)
		return;
	x->post_res = urt_core_post(x->rt, 1, xcancel_remote, x);
	while (x->post_res == 0 && atomic_load(&x->xres) == 1)
		urt_sleep_ns(1000000);
	x->local_res = urt_io_cancel(&x->io);
	while (x->calls == 0)
		urt_sleep_ns(1000000);
}

Test(post, cancel_from_other_core_refused)
{
	struct urt_rt_opts o;
	struct urt_rt *rt;
	struct xcancel x = { .xres = 1, .cb_res = 1, .local_res = 1 };

	urt_rt_opts_default(&o);
	rt = fx_start(&o);
	if (urt_rt_ncores(rt) < 2) {
		urt_rt_stop(rt);
		cr_skip_test("needs two cores");
	}
	x.rt = rt;
	fx_run(rt, 0, xcancel_body, &x);
	urt_rt_stop(rt);
	cr_expect_eq(x.post_res, 0);
	cr_expect_eq(atomic_load(&x.xres), -EXDEV, "cancel from core 1: %d", atomic_load(&x.xres));
	cr_expect_eq(x.local_res, 0);
	cr_expect_eq(x.calls, 1);
	cr_expect_eq(x.cb_res, -ECANCELED, "callback got %d", x.cb_res);
}
