/*
 * SQPOLL threads, seen from outside the runtime: the kernel's SQ threads
 * are threads of this process named "iou-sqp-<pid>" (/proc/self/task/
 * <tid>/comm).  A shared SQ thread (sq_thread_shared, IORING_SETUP_ATTACH_WQ)
 * must be ONE thread for every core's ring, and a pinned one (SQ_AFF) must
 * be allowed on exactly its CPU (sched_getaffinity on its tid).  Without
 * sharing there is one thread per core, which also shows the count works.
 */
#include <dirent.h>
#include <sched.h>

#include "fixture.h"

#define SQP_MAX 16

/*
 * The tids of the runtime's SQ threads (at most SQP_MAX); returns how many.
 * The kernel names an SQ thread after the thread that created its ring,
 * and only once it first runs.  The feature probe's SQPOLL ring is made on
 * this test's own thread (tid = pid): its SQ thread, exiting on its own
 * time, may still be unnamed when the test counts zero and show up as
 * "iou-sqp-<pid>" a moment later (seen as a third thread in 1 run of 40).
 * The runtime makes its rings on its core threads, so that name is not
 * one of the runtime's and is skipped.
 */
static unsigned sqp_threads(pid_t *tids)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	unsigned n = 0;
	char probe_name[32];

	snprintf(probe_name, sizeof(probe_name), "iou-sqp-%d\n", (int)getpid());

	cr_assert_not_null(d);
	while ((e = readdir(d))) {
		char path[300], comm[32] = "";
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;	/* The thread exited meanwhile. */
		if (fgets(comm, sizeof(comm), f) && strncmp(comm, "iou-sqp", 7) == 0 &&
		    strcmp(comm, probe_name) != 0 && n < SQP_MAX)
			tids[n++] = (pid_t)atoi(e->d_name);
		fclose(f);
	}
	closedir(d);
	return n;
}

/* Wait up to 2 s for the count of SQ threads to become want (the kernel ends them asynchronously). */
static unsigned sqp_wait_count(unsigned want, pid_t *tids)
{
	unsigned n = 0;

	for (int i = 0; i < 200; i++) {
		n = sqp_threads(tids);
		if (n == want)
			break;
		usleep(10000);
	}
	return n;
}

/* The single CPU thread tid may run on, waiting up to 2 s for it to pin itself; -1 if not one CPU. */
static int thread_cpu(pid_t tid)
{
	cpu_set_t set;

	for (int i = 0; i < 200; i++) {
		CPU_ZERO(&set);
		cr_assert_eq(sched_getaffinity(tid, sizeof(set), &set), 0, "sched_getaffinity(%d): %s", tid,
			     strerror(errno));
		if (CPU_COUNT(&set) == 1)
			break;
		usleep(10000);
	}
	if (CPU_COUNT(&set) != 1)
		return -1;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set))
			return c;
	return -1;
}

static void nop_body(void *p)
{
	int *bad = p;
	struct urt_io io;

	for (int i = 0; i < 100; i++) {
		urt_io_prep_nop(&io);
		*bad += urt_io_wait(&io) != 0;
	}
}

/* Two cores (on CPUs 0 and 1, or both on 0 with one CPU), SQPOLL, sq_thread_cpu as given. */
static struct urt_rt *sqpoll_start(bool shared, int sq_cpu, int *cpus)
{
	struct urt_kernel_features kf;
	struct urt_rt_opts o;
	pid_t tids[SQP_MAX];
	long online = sysconf(_SC_NPROCESSORS_ONLN);

	urt_kernel_probe(&kf);
	if (!kf.sqpoll)
		cr_skip_test("the kernel refuses IORING_SETUP_SQPOLL");
	/* The probe's own SQPOLL ring is gone before the runtime's threads are counted. */
	cr_assert_eq(sqp_wait_count(0, tids), 0, "SQ threads left over from before the runtime");
	cpus[0] = 0;
	cpus[1] = online > 1 ? 1 : 0;
	urt_rt_opts_default(&o);
	o.mode = URT_POLL_SQPOLL;
	o.cpus = cpus;
	o.ncpus = 2;
	o.sq_thread_shared = shared;
	o.sq_thread_cpu = sq_cpu;
	o.buf_region_bytes = 64u << 10;
	return fx_start(&o);
}

/* Both rings work through the SQ thread(s). */
static void both_cores_submit(struct urt_rt *rt)
{
	for (unsigned core = 0; core < 2; core++) {
		int bad = 0;

		fx_run(rt, core, nop_body, &bad);
		cr_expect_eq(bad, 0, "core %u: NOPs failed under SQPOLL", core);
	}
}

Test(sqpoll, shared_thread_is_one_thread_pinned_where_asked)
{
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	int cpus[2], want_cpu = (int)(online - 1);
	pid_t tids[SQP_MAX];
	struct urt_rt *rt = sqpoll_start(true, want_cpu, cpus);
	struct urt_stats st;
	unsigned n;

	both_cores_submit(rt);
	/*
	 * Waits for the count to settle: when the test binary's tests run
	 * side by side, a second SQ thread (created by core 1's thread) was
	 * seen in 1 run of 8 and had gone 100 ms later.  Two threads that
	 * stay (no sharing) still fail here after 2 s.
	 */
	n = sqp_wait_count(1, tids);
	cr_expect_eq(n, 1, "%u SQ threads for 2 rings with sq_thread_shared (ATTACH_WQ)", n);
	if (n == 1)
		cr_expect_eq(thread_cpu(tids[0]), want_cpu, "the shared SQ thread is not pinned to CPU %d", want_cpu);
	/* Every core's ring really is an SQPOLL ring. */
	for (unsigned core = 0; core < 2; core++) {
		cr_assert_eq(urt_rt_stats(rt, core, &st), 0);
		cr_expect(st.ring_flags & (1u << 1) /* IORING_SETUP_SQPOLL */, "core %u's ring is not SQPOLL", core);
	}
	urt_rt_stop(rt);
	cr_expect_eq(sqp_wait_count(0, tids), 0, "the SQ thread outlived the runtime");
}

Test(sqpoll, unshared_threads_are_one_per_ring_next_to_their_reactor)
{
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	int cpus[2], seen[2] = { -1, -1 }, want[2];
	pid_t tids[SQP_MAX];
	struct urt_rt *rt = sqpoll_start(false, -1, cpus);
	unsigned n;

	both_cores_submit(rt);
	n = sqp_threads(tids);
	cr_expect_eq(n, 2, "%u SQ threads for 2 unshared rings", n);
	/* sq_thread_cpu -1: each core's SQ thread sits on the CPU after its reactor's. */
	for (unsigned i = 0; i < 2; i++)
		want[i] = (int)((cpus[i] + 1) % online);
	for (unsigned i = 0; i < n && i < 2; i++)
		seen[i] = thread_cpu(tids[i]);
	cr_expect((seen[0] == want[0] && seen[1] == want[1]) || (seen[0] == want[1] && seen[1] == want[0]),
		  "SQ threads on CPUs %d and %d, wanted %d and %d", seen[0], seen[1], want[0], want[1]);
	urt_rt_stop(rt);
}

/*
 * An SQPOLL ring never waits on the loop's inline path (ring.h ring_wait),
 * which would skip the SQ thread's wakeup: every wait of both cores goes
 * to ring_wait_general (urt_stats.waits_general; test_wait_path.c has the
 * interrupt mode's side).
 */
Test(sqpoll, waits_take_the_general_path)
{
	int cpus[2];
	struct urt_rt *rt = sqpoll_start(false, -1, cpus);
	struct urt_stats st;

	both_cores_submit(rt);
	for (unsigned core = 0; core < 2; core++) {
		cr_assert_eq(urt_rt_stats(rt, core, &st), 0);
		cr_expect_geq(st.waits_general, 100, "core %u: %llu general waits for 100 NOPs", core,
			      (unsigned long long)st.waits_general);
		cr_expect_eq(st.waits_inline, 0, "core %u: %llu waits took the inline path under SQPOLL", core,
			     (unsigned long long)st.waits_inline);
	}
	urt_rt_stop(rt);
}
