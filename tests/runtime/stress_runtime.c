/*
 * A plain (non-Criterion) stress program for the runtime, so that it can run
 * under ThreadSanitizer, where Criterion 2.4.1 cannot start.  It exercises
 * every cross-thread path: 2 outside threads posting 20,000 functions each,
 * a 20,000-hop ping-pong between cores (MSG_RING wakeups), a fiber per core
 * writing and reading a registered O_DIRECT file, stats collection and stop.
 * Exit 0 only when every post ran exactly once and every op succeeded.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "urt/buf.h"
#include "urt/dev.h"
#include "urt/fiber.h"
#include "urt/io.h"
#include "urt/rt.h"

static struct urt_rt *rt;
static struct urt_dev *dev;
static _Atomic int hops, fibers_done, posts_run;
static sem_t done;

static void hop(void *arg)
{
	long left = (long)arg;

	atomic_fetch_add(&hops, 1);
	if (left == 0) {
		sem_post(&done);
		return;
	}
	/* The queue between two cores holds one hop at a time here, so it is never full. */
	if (urt_core_post(rt, (urt_core_id() + 1) % urt_rt_ncores(rt), hop, (void *)(left - 1)))
		abort();
}

static void io_fiber(void *arg)
{
	(void)arg;
	char *b = urt_buf_get(8192);
	for (int i = 0; i < 200; i++) {
		memset(b, i, 8192);
		if (urt_write(dev, b, 8192, (uint64_t)(urt_core_id() * 1048576 + (i % 64) * 8192)) != 8192)
			abort();
		/* Read into other bytes, so that only a read that brought the data back passes. */
		memset(b, ~i, 8192);
		if (urt_read(dev, b, 8192, (uint64_t)(urt_core_id() * 1048576 + (i % 64) * 8192)) != 8192)
			abort();
		for (int k = 0; k < 8192; k++)
			if (b[k] != (char)i)
				abort();
	}
	if (urt_flush(dev))
		abort();
	urt_buf_put(b);
	atomic_fetch_add(&fibers_done, 1);
	sem_post(&done);
}

static void count(void *arg)
{
	(void)arg;
	atomic_fetch_add(&posts_run, 1);
}

static void *poster(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20000; i++)
		while (urt_core_post(rt, (unsigned)i % urt_rt_ncores(rt), count, NULL) == -EAGAIN)
			;
	return NULL;
}

int main(void)
{
	struct urt_dev_opts d;
	struct urt_stats st;
	pthread_t th[2];
	unsigned ncores;
	int ret;

	sem_init(&done, 0, 0);
	if (urt_rt_start(NULL, &rt))
		return 1;
	urt_dev_opts_default(&d); d.create = true; d.size_bytes = 4 << 20;
	{
		const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
		char path[256];

		snprintf(path, sizeof(path), "%s/urt-stress-%d.img", tmp, (int)getpid());
		if (urt_dev_open(path, &d, &dev))
			return 1;
		unlink(path);
	}
	if (urt_dev_register(rt, dev))
		return 1;
	pthread_create(&th[0], NULL, poster, NULL);
	pthread_create(&th[1], NULL, poster, NULL);
	/*
	 * The queue from outside threads is shared with the two posters, so it
	 * may be full: -EAGAIN is the runtime saying so, and we retry.
	 */
	while ((ret = urt_core_post(rt, 0, hop, (void *)20000L)) == -EAGAIN)
		sched_yield();
	if (ret)
		return 1;
	for (unsigned c = 0; c < urt_rt_ncores(rt); c++) {
		while ((ret = urt_fiber_spawn_on(rt, c, io_fiber, NULL)) == -EAGAIN)
			sched_yield();
		if (ret)
			return 1;
	}
	for (unsigned c = 0; c <= urt_rt_ncores(rt); c++)
		sem_wait(&done);
	pthread_join(th[0], NULL);
	pthread_join(th[1], NULL);
	urt_rt_stats_total(rt, &st);
	ncores = urt_rt_ncores(rt);
	urt_dev_close(dev);
	urt_rt_stop(rt);
	printf("stress_runtime: hops %d fibers %d posts %d ops completed %llu\n", atomic_load(&hops), atomic_load(&fibers_done),
	       atomic_load(&posts_run), (unsigned long long)st.completed);
	return atomic_load(&posts_run) == 40000 && atomic_load(&hops) == 20001 &&
	       atomic_load(&fibers_done) == (int)ncores && st.completed == 401ull * ncores && st.failed == 0 ? 0 : 1;
}
