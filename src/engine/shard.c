/*
 * Thread per core: helpers to split a device into per-core shards and to
 * run work on the core that owns a shard.
 *
 * Design notes.
 *
 * A shard (struct urt_ps) is single-threaded: every call runs on its core,
 * so it needs no locks.  A request for a shard on another core is shipped
 * there: urt_ps_run_on spawns a fiber on the owner (urt_fiber_spawn_on,
 * which posts through the bounded cross-core queue) and parks the caller on
 * a wait queue of its own core.  When fn returns, the owner posts a
 * completion back to the caller's core, which wakes the caller.  The
 * `done` flag is written and read on the caller's core only; fn's results
 * are published to it by the post queue's release/acquire ordering.
 */
#include <errno.h>

#include "engine/ps_impl.h"
#include "urt/rt.h"

#define SHARD_ALIGN (1ull << 20)	/* Regions start on 1 MiB boundaries (any block size). */

void urt_ps_shard_region(uint64_t device_bytes, uint32_t shard_count, uint32_t shard_id,
			 uint64_t *offset, uint64_t *bytes)
{
	uint64_t each = device_bytes / (shard_count ? shard_count : 1) / SHARD_ALIGN * SHARD_ALIGN;

	*offset = each * shard_id;
	*bytes = each;
}

struct run_call {
	struct urt_rt *rt;		/* Runtime of both cores. */
	unsigned origin;		/* Core of the waiting caller. */
	void (*fn)(void *arg);		/* Work to run on the owner. */
	void *arg;			/* Its argument. */
	bool done;			/* Set on the origin core once fn returned. */
	struct urt_waitq wq;		/* The caller waits here. */
};

/* Runs on the origin core. */
static void run_done(void *p)
{
	struct run_call *c = p;

	c->done = true;
	urt_waitq_wake_all(&c->wq);
}

/* Runs in a fiber on the owner core. */
static void run_remote(void *p)
{
	struct run_call *c = p;

	c->fn(c->arg);
	/* The queue back may be full for a moment: retry, it drains. */
	while (urt_core_post(c->rt, c->origin, run_done, c) == -EAGAIN)
		urt_fiber_yield();
}

int urt_ps_run_on(struct urt_rt *rt, unsigned core, void (*fn)(void *arg), void *arg)
{
	struct run_call c = { .rt = rt, .origin = urt_core_id(), .fn = fn, .arg = arg };
	int ret;

	PS_ASSERT(urt_in_fiber());
	if (core == c.origin) {
		fn(arg);
		return 0;
	}
	while ((ret = urt_fiber_spawn_on(rt, core, run_remote, &c)) == -EAGAIN)
		urt_fiber_yield();
	if (ret)
		return ret;
	while (!c.done)
		urt_waitq_wait(&c.wq);
	return 0;
}
