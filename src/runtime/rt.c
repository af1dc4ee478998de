/*
 * src/runtime: the reactor.  This folder holds rt.c (this file: lifecycle
 * and the loop), ring.c and ring.h, req.c, io.c, now.c, probe.c,
 * blocked.c, net.c, buf.c, memlock.c, fault.c and core.h (the structs);
 * fiber/ (fibers and the context switch), xcore/ (cross-core posts,
 * running work on other cores), dev/ (the device registry and the file,
 * psync and sim backends) and sched/ (the device I/O scheduler).  It may
 * include src/base and include/urt; nothing above it (engine, kv,
 * passthru: the backend list that names passthru is src/backends.c).
 *
 * Runtime lifecycle and the reactor loop.
 *
 * Design notes
 * ------------
 * One reactor thread per selected CPU, pinned, each owning its rings.  The
 * I/O path takes no locks: a core touches only its own state; other cores
 * reach it through bounded SPSC queues (msg.c).
 *
 * One loop iteration:
 *   1. drain posted functions          (msg_drain)
 *   2. run runnable fibers             (fiber_run_ready)
 *   3. retry ops waiting for SQ space  (req_backlog_flush), then send
 *      what the device schedulers let go (sched_dispatch_all, sched/)
 *   4. submit everything queued in 1-3 and, if nothing is runnable, wait
 *      (ring_wait: one io_uring_enter per ring with work, usually one)
 *   5. reap CQEs into a local batch, then run completions (ring_reap)
 * Callbacks and fibers only queue SQEs; the kernel sees them at step 4, so
 * everything submitted in one iteration goes in one syscall.
 *
 * States of a core:  RUNNING --rt->stopping--> STOPPING --quiescent--> EXIT
 *   STOPPING: posts were refused by urt_rt_stop before it raised the flag;
 *   the core runs what was already posted, cancels all in-flight ops,
 *   releases held faults, and loops until no request, CQE or runnable
 *   fiber is left.  Fibers blocked on wait queues are then destroyed.
 *
 * Invariants
 *   I1. A core never sleeps in the kernel while a fiber is runnable, a post
 *       is pending (doorbell set) or a request waits for SQ space.
 *   I2. A core never sleeps with nothing in flight on its main ring: the
 *       read of the wake eventfd is always armed while RUNNING.
 */
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/error.h"
#include "base/mem.h"
#include "runtime/core.h"
#include "runtime/memlock.h"
#include "runtime/probe.h"
#include "runtime/wait_poll.h"

__thread struct urt_core *urt__self __attribute__((tls_model("initial-exec")));
URT_API void urt_rt_opts_default(struct urt_rt_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->pin = true;
	o->mode = URT_POLL_INTERRUPT;
	o->sq_entries = 256;
	o->sq_thread_idle_ms = 50;
	o->sq_thread_cpu = -1;
	o->req_max = 1024;
	o->post_queue_max = 1024;
	o->buf_region_bytes = 8u << 20;
	o->buf_hugepages = true;
	o->files_max = 64;
	o->retry_max = 3;
	o->retry_backoff_ns = 1000000;
	o->hybrid_spin_max_ns = 100000;
	o->post_spin_max_ns = 20000;
	o->fiber_stack_bytes = 256u << 10;
	o->fiber_max = 4096;
}

static int opts_check(const struct urt_rt_opts *o)
{
	if (o->sq_entries == 0 || (o->sq_entries & (o->sq_entries - 1)) || o->sq_entries > 32768) {
		urt_set_error("sq_entries must be a power of two in 1..32768, not %u", o->sq_entries);
		return -EINVAL;
	}
	if (o->req_max == 0 || o->req_max > 65536) {
		urt_set_error("req_max must be in 1..65536, not %u", o->req_max);
		return -EINVAL;
	}
	if (o->post_queue_max == 0 || o->post_queue_max > (1u << 20)) {
		urt_set_error("post_queue_max must be in 1..1048576, not %u", o->post_queue_max);
		return -EINVAL;
	}
	if (o->post_spin_max_ns > 10000000) {
		urt_set_error("post_spin_max_ns must be at most 10 ms, not %llu ns",
			      (unsigned long long)o->post_spin_max_ns);
		return -EINVAL;
	}
	/* The region is registered as one iovec, and the kernel caps an iovec at 1 GiB. */
	if (o->buf_region_bytes > (1ull << 30) || o->buf_region_bytes < (64u << 10)) {
		urt_set_error("buf_region_bytes must be in 64 KiB..1 GiB, not %zu", o->buf_region_bytes);
		return -EINVAL;
	}
	if (o->mode > URT_POLL_HYBRID) {
		urt_set_error("unknown poll mode %d", (int)o->mode);
		return -EINVAL;
	}
	if (o->fiber_stack_bytes < 16384) {
		urt_set_error("fiber_stack_bytes must be at least 16 KiB");
		return -EINVAL;
	}
	if (o->files_max == 0 || o->files_max > 32768) {
		urt_set_error("files_max must be in 1..32768");
		return -EINVAL;
	}
	return 0;
}

static bool core_quiescent(const struct urt_core *c)
{
	for (int k = 0; k < RING_KINDS; k++)
		if (c->rings[k].inflight || c->rings[k].queued)
			return false;
	return c->ops_live == 0 && !fiber_has_ready(c) && !atomic_load(&c->doorbell);
}

static void core_begin_stop(struct urt_core *c)
{
	/* Run what was accepted before the flag went up, with I/O still allowed. */
	msg_drain(c);
	fiber_run_ready(c);
	c->stopping = true;
	req_held_release(c, true);
	req_cancel_all(c);
}

static void core_loop(struct urt_core *c)
{
	struct urt_rt *rt = c->rt;

	for (;;) {
		if (atomic_load_explicit(&c->doorbell, memory_order_relaxed))
			msg_drain(c);
		if (fiber_has_ready(c))
			fiber_run_ready(c);
		if (!STAILQ_EMPTY(&c->backlog))
			req_backlog_flush(c);
		if (!TAILQ_EMPTY(&c->sched_busy))
			sched_dispatch_all(c);
		if (c->held)
			req_held_release(c, false);
		if (!c->stopping && atomic_load_explicit(&rt->stopping, memory_order_acquire)) {
			core_begin_stop(c);
			continue;
		}
		/*
		 * One cancel-all at the start of the stop suffices: nothing is
		 * submitted or resubmitted afterwards (urt_io_submit says
		 * -ESHUTDOWN, req_result delivers instead of retrying).
		 */
		if (c->stopping && core_quiescent(c))
			break;
		ring_wait(c);
		now_tick(&c->clock);
		c->reap_ns = core_now(c);
		ring_reap_main(c);
		if (urt_unlikely(c->rings_extra))
			for (int k = RING_POLL; k < RING_KINDS; k++)
				if (c->rings[k].ready)
					ring_reap(c, k);
	}
}

static void core_teardown(struct urt_core *c)
{
	fiber_exit_all(c);
	net_exit(c);
	for (int k = RING_KINDS - 1; k >= 0; k--)
		ring_teardown(c, k);
	buf_region_exit(c);
	req_pool_exit(c);
	if (c->stall_efd >= 0)
		close(c->stall_efd);
	c->stall_efd = -1;
	/* Unbind (flushes this thread's cache); rt_free gives the arena back for reuse. */
	mem_core_bind(-1);
}

static int core_setup(struct urt_core *c)
{
	struct urt_rt *rt = c->rt;
	int ret;

	c->rng = rt->opts.fault.seed ^ (0x9e3779b97f4a7c15ull * (c->index + 1));
	if (!c->rng)
		c->rng = 1;
	c->faults_left = rt->opts.fault.count_max;
	c->faults_on = rt->opts.fault.rate_ppm != 0 && rt->opts.fault.kinds != 0;
	c->io_checked = c->faults_on || rt->opts.mode == URT_POLL_IOPOLL;
	c->lat_ewma_on = rt->opts.mode == URT_POLL_HYBRID;
	if (c->lat_ewma_on)
		c->lat_run_v = LAT_RUN_NONE;	/* Every latency reaches the average (req.h). */
	c->wait_poll = wait_poll_wanted();
	now_init(&c->clock);
	urt_hist_init(&c->stats.lat);
	/* Runtime objects of this core come from its own arena (mem.h); -1 means libc. */
	c->arena = mem_arena_create();
	mem_core_bind(c->arena);	/* engine, kv and urkv objects made on this core (mem_core_*). */
	c->spin_budget_ns = 10000;
	c->stall_efd = eventfd(0, EFD_CLOEXEC);
	if (c->stall_efd < 0)
		return -errno;
	ret = req_pool_init(c);
	if (ret)
		return ret;
	ret = buf_region_init(c);
	if (ret)
		return ret;
	ret = ring_setup(c, RING_MAIN);
	if (ret)
		return ret;
	if (rt->opts.mode == URT_POLL_IOPOLL || rt->opts.mode == URT_POLL_HYBRID) {
		ret = ring_setup(c, RING_POLL);
		/* HYBRID falls back to user-space spinning alone; IOPOLL cannot. */
		if (ret && rt->opts.mode == URT_POLL_IOPOLL)
			return ret;
	}
	ring_arm_efd(c, RING_MAIN);
	return 0;
}

static void *core_main(void *arg)
{
	struct urt_core *c = arg;
	struct urt_rt *rt = c->rt;
	char name[16];
	int ret;

	urt__self = c;
	snprintf(name, sizeof(name), "urt-core%u", c->index);
	pthread_setname_np(pthread_self(), name);
	if (rt->opts.pin) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(c->cpu, &set);
		ret = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
		if (ret) {
			urt_set_error("cannot pin core %u to CPU %d: %s", c->index, c->cpu, strerror(ret));
			c->start_err = -ret;
			goto out_signal;
		}
	}
	ret = core_setup(c);
	if (ret) {
		c->start_err = ret;
		goto out_signal;
	}
	sem_post(&rt->started);
	core_loop(c);
	core_teardown(c);
	urt__self = NULL;
	return NULL;

out_signal:
	/* The message is thread-local: copy it where the starter reads it after the join. */
	snprintf(c->start_msg, sizeof(c->start_msg), "%s", urt_last_error());
	core_teardown(c);
	urt__self = NULL;
	sem_post(&rt->started);
	return NULL;
}

static int cpus_pick(const struct urt_rt_opts *o, int **out, unsigned *n)
{
	cpu_set_t set;
	int *cpus;
	unsigned k = 0;

	if (o->cpus && o->ncpus) {
		cpus = calloc(o->ncpus, sizeof(*cpus));
		if (!cpus)
			return -ENOMEM;
		memcpy(cpus, o->cpus, o->ncpus * sizeof(*cpus));
		*out = cpus;
		*n = o->ncpus;
		return 0;
	}
	if (sched_getaffinity(0, sizeof(set), &set))
		return -errno;
	cpus = calloc(CPU_SETSIZE, sizeof(*cpus));
	if (!cpus)
		return -ENOMEM;
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &set))
			cpus[k++] = i;
	*out = cpus;
	*n = k;
	return 0;
}

static void rt_free(struct urt_rt *rt)
{
	/* cores is NULL when the start failed before allocating it. */
	for (unsigned i = 0; rt->cores && i < rt->ncores; i++) {
		msg_exit(&rt->cores[i]);
		pthread_mutex_destroy(&rt->cores[i].ext_lock);
		/* Every core thread has been joined (or never started); the arena is pooled, not destroyed (mem.c). */
		mem_arena_release(rt->cores[i].arena);
		rt->cores[i].arena = -1;
	}
	if (rt->sq_wq_fd >= 0)
		close(rt->sq_wq_fd);
	sem_destroy(&rt->started);
	pthread_mutex_destroy(&rt->dev_lock);
	free(rt->devs);
	free(rt->cores);
	free(rt);
}

URT_API int urt_rt_start(const struct urt_rt_opts *opts, struct urt_rt **out)
{
	struct urt_rt_opts def;
	struct urt_rt *rt;
	unsigned started = 0;
	int *cpus = NULL;
	int ret;

	urt_clear_error();
	if (!opts) {
		urt_rt_opts_default(&def);
		opts = &def;
	}
	ret = opts_check(opts);
	if (ret)
		return ret;
	/* Blocked io_uring (sysctl, seccomp) is said once, with its cause, before any thread starts. */
	ret = probe_uring_usable();
	if (ret) {
		uring_blocked_set_error(ret);
		return ret;
	}
	/* Probes without an answer yet (an earlier ENOMEM) try again now, before the memlock count includes them. */
	probe_refresh();
	rt = calloc(1, sizeof(*rt));
	if (!rt)
		return -ENOMEM;
	rt->opts = *opts;
	rt->opts.cpus = NULL;
	rt->sq_wq_fd = -1;
	pthread_mutex_init(&rt->dev_lock, NULL);
	sem_init(&rt->started, 0, 0);
	ret = cpus_pick(opts, &cpus, &rt->ncores);
	if (ret)
		goto err_free;
	if (rt->ncores == 0) {
		urt_set_error("no CPU selected");
		ret = -EINVAL;
		goto err_free;
	}
	/* Every ring of every core, and the buffer region on each unless it may go unregistered. */
	ret = memlock_check(opts, rt->ncores, memlock_start_kinds(opts), !opts->buf_allow_unregistered);
	if (ret)
		goto err_free;
	rt->devs = calloc(opts->files_max, sizeof(*rt->devs));
	rt->cores = calloc(rt->ncores, sizeof(*rt->cores));
	if (!rt->devs || !rt->cores) {
		ret = -ENOMEM;
		goto err_free;
	}
	for (unsigned i = 0; i < rt->ncores; i++)
		rt->cores[i].arena = -1;	/* rt_free releases only arenas a core created. */
	for (unsigned i = 0; i < rt->ncores; i++) {
		struct urt_core *c = &rt->cores[i];

		c->rt = rt;
		c->index = i;
		c->cpu = cpus[i];
		c->stall_efd = -1;
		c->wake_efd = -1;
		c->arena = -1;
		STAILQ_INIT(&c->backlog);
		TAILQ_INIT(&c->sched_busy);
		STAILQ_INIT(&c->run_q);
		STAILQ_INIT(&c->urgent_q);
		pthread_mutex_init(&c->ext_lock, NULL);
		atomic_init(&c->accepting, true);
		ret = msg_init(c);
		if (ret)
			goto err_free;
	}
	/*
	 * Start the cores one by one: with a shared SQPOLL thread the first
	 * core's ring is the one the others attach to.
	 */
	for (unsigned i = 0; i < rt->ncores; i++) {
		struct urt_core *c = &rt->cores[i];

		ret = -pthread_create(&c->thread, NULL, core_main, c);
		if (ret) {
			urt_set_error("pthread_create: %s", strerror(-ret));
			goto err_stop;
		}
		started++;
		sem_wait(&rt->started);
		if (c->start_err) {
			ret = c->start_err;
			pthread_join(c->thread, NULL);
			started--;
			urt_set_error("%s", c->start_msg);
			goto err_stop;
		}
	}
	free(cpus);
	*out = rt;
	return 0;

err_stop:
	{
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", urt_last_error());
		atomic_store(&rt->stopping, true);
		for (unsigned i = 0; i < started; i++) {
			uint64_t one = 1;

			if (write(rt->cores[i].wake_efd, &one, sizeof(one)) < 0)
				abort();
		}
		for (unsigned i = 0; i < started; i++)
			pthread_join(rt->cores[i].thread, NULL);
		urt_set_error("%s", msg);
	}
err_free:
	free(cpus);
	rt_free(rt);
	return ret;
}

URT_API int urt_rt_stop(struct urt_rt *rt)
{
	struct urt_core *self = core_self();

	if (self && self->rt == rt)
		abort();	/* A reactor cannot join itself: a programmer error. */
	/*
	 * First close every queue: once a core's posters count is zero with
	 * accepting cleared, no post can slip in behind its final drain.
	 */
	for (unsigned i = 0; i < rt->ncores; i++) {
		struct urt_core *c = &rt->cores[i];

		atomic_store(&c->accepting, false);
		while (atomic_load(&c->posters))
			sched_yield();
	}
	atomic_store_explicit(&rt->stopping, true, memory_order_release);
	for (unsigned i = 0; i < rt->ncores; i++) {
		uint64_t one = 1;

		if (write(rt->cores[i].wake_efd, &one, sizeof(one)) < 0)
			abort();
	}
	for (unsigned i = 0; i < rt->ncores; i++)
		pthread_join(rt->cores[i].thread, NULL);
	dev_registry_drop(rt);
	rt_free(rt);
	return 0;
}

URT_API unsigned urt_rt_ncores(const struct urt_rt *rt)
{
	return rt->ncores;
}

URT_API int urt_rt_core_cpu(const struct urt_rt *rt, unsigned core)
{
	if (core >= rt->ncores)
		return -EINVAL;
	return rt->cores[core].cpu;
}

URT_API unsigned urt_core_id(void)
{
	struct urt_core *c = core_self();

	return c ? c->index : URT_CORE_NONE;
}

URT_API struct urt_rt *urt_rt_self(void)
{
	struct urt_core *c = core_self();

	return c ? c->rt : NULL;
}

struct stats_req {
	struct urt_stats *out;
	sem_t done;
};

/*
 * Core c's statistics, read on c's thread: the histogram is exact once the
 * pending run of equal latencies (lat_record) is in it.
 */
static void stats_read(struct urt_core *c, struct urt_stats *out)
{
	lat_flush(c);
	*out = c->stats;
}

static void stats_copy(void *arg)
{
	struct stats_req *sr = arg;

	stats_read(core_self(), sr->out);
	sem_post(&sr->done);
}

URT_API int urt_rt_stats(struct urt_rt *rt, unsigned core, struct urt_stats *out)
{
	struct urt_core *self = core_self();
	struct stats_req sr = { .out = out };
	int ret;

	if (core >= rt->ncores)
		return -EINVAL;
	if (self && self->rt == rt) {
		if (self->index != core)
			return -EDEADLK;
		stats_read(self, out);
		return 0;
	}
	sem_init(&sr.done, 0, 0);
	while ((ret = urt_core_post(rt, core, stats_copy, &sr)) == -EAGAIN)
		sched_yield();
	if (ret == 0)
		sem_wait(&sr.done);
	sem_destroy(&sr.done);
	return ret;
}

URT_API int urt_rt_stats_total(struct urt_rt *rt, struct urt_stats *out)
{
	struct urt_stats *one = malloc(sizeof(*one));
	int ret = 0;

	if (!one)
		return -ENOMEM;
	memset(out, 0, sizeof(*out));
	urt_hist_init(&out->lat);
	for (unsigned i = 0; i < rt->ncores; i++) {
		ret = urt_rt_stats(rt, i, one);
		if (ret)
			break;
		out->submitted += one->submitted;
		out->completed += one->completed;
		out->retried += one->retried;
		out->timed_out += one->timed_out;
		out->failed += one->failed;
		out->enters += one->enters;
		out->waits_inline += one->waits_inline;
		out->waits_general += one->waits_general;
		out->sqes_submitted += one->sqes_submitted;
		out->cqes_reaped += one->cqes_reaped;
		out->faults += one->faults;
		out->posts_sent += one->posts_sent;
		out->posts_run += one->posts_run;
		out->wakeups_sent += one->wakeups_sent;
		out->spin_hits += one->spin_hits;
		out->spin_misses += one->spin_misses;
		out->spin_skipped += one->spin_skipped;
		out->post_spin_hits += one->post_spin_hits;
		out->post_spin_misses += one->post_spin_misses;
		out->sleeps += one->sleeps;
		out->wakeups_skipped += one->wakeups_skipped;
		out->sqes_fixed_file += one->sqes_fixed_file;
		out->sqes_plain_fd += one->sqes_plain_fd;
		out->fixed_file_misses += one->fixed_file_misses;
		out->sqes_fixed_buf += one->sqes_fixed_buf;
		out->io_yields += one->io_yields;
		out->urgent_polls += one->urgent_polls;
		out->fibers_spawned += one->fibers_spawned;
		out->ring_flags = one->ring_flags;
		out->poll_ring_flags = one->poll_ring_flags;
		out->bufs_registered = one->bufs_registered;
		urt_hist_merge(&out->lat, &one->lat);
	}
	free(one);
	return ret;
}
