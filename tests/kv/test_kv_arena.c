/*
 * Per-core allocation (base/mem.h): the objects of a shard -- its state,
 * reader contexts, page store, frame table, frame index and WAL page lists -- live
 * in the jemalloc arena of the core that owns the shard, and the two cores'
 * arenas differ.  jemalloc's "arenas.lookup" (mem_arena_of) names the arena
 * of each pointer.  Sanitized builds use libc malloc: the suite is skipped.
 */
#include <stdint.h>

#include "base/mem.h"
#include "base/sanitize.h"
#include "engine/ps_impl.h"
#include "kv/kv_impl.h"
#include "kv_fixture.h"

#define DEV_BYTES (256ull << 20)

struct probe {
	struct kv_shard *s;	/* Shard to look at, on its core. */
	int core_arena;		/* The arena of the core running the probe. */
	int where[8];		/* mem_arena_of of each object below. */
	struct kvx_fail f;
};

static void probe_fn(void *arg)
{
	struct probe *p = arg;
	struct kv_shard *s = p->s;
	/* The pool finds frames through a direct index, or a hash for a very large store. */
	const void *lookup = s->ps->index ? (const void *)s->ps->index : (const void *)s->ps->hash;
	const void *objs[8] = { s, s->readers, s->ps, s->ps->frames, lookup, s->ps->batch[0].pages,
				s->ps->batch[1].pages, NULL };
	void *fresh = mem_core_alloc(64);

	p->core_arena = mem_core_arena();
	objs[7] = fresh;
	for (int i = 0; i < 8; i++)
		p->where[i] = mem_arena_of(objs[i]);
	mem_core_free(fresh);
}

Test(kv_arena, shard_objects_live_in_the_owning_cores_arena)
{
	struct urt_kv_opts o;
	struct urt_dev *dev;
	struct urt_rt *rt;
	struct urt_kv *kv;
	struct probe p[2];
	int ret;

	if (URT_SANITIZED)
		cr_skip_test("sanitized build: base/mem.c uses libc malloc, which has no arenas");
	dev = kvx_sim(DEV_BYTES, 7);
	kvx_opts(&o, dev);
	o.shards = 2;
	rt = kvx_start(2, &o);
	ret = urt_kv_open(rt, &o, &kv);
	cr_assert_eq(ret, 0, "urt_kv_open: %d (%s) %s", ret, urt_strerror(ret), urt_last_error());
	cr_assert_eq(kv->nshards, 2);
	for (unsigned i = 0; i < 2; i++) {
		memset(&p[i], 0, sizeof(p[i]));
		p[i].s = kv->shards[i];
		kvx_run(rt, p[i].s->core, probe_fn, &p[i]);
		cr_assert_geq(p[i].core_arena, 0, "core %u has no arena", p[i].s->core);
		for (int j = 0; j < 8; j++)
			cr_expect_eq(p[i].where[j], p[i].core_arena,
				     "shard %u object %d is in arena %d, its core's arena is %d", i, j,
				     p[i].where[j], p[i].core_arena);
	}
	cr_assert_neq(p[0].s->core, p[1].s->core, "the two shards share a core");
	cr_assert_neq(p[0].core_arena, p[1].core_arena, "two cores share arena %d", p[0].core_arena);
	/* The main thread is bound to no core arena: its objects come from jemalloc's own. */
	cr_assert_eq(mem_core_arena(), -1);
	cr_assert_eq(urt_kv_close(kv), 0);
	urt_rt_stop(rt);
	urt_dev_close(dev);
}

struct cross {
	void *objs[256];	/* Allocated on core 0, freed on core 1. */
	int arena0;		/* Core 0's arena. */
	int bad;		/* Objects outside core 0's arena. */
};

static void cross_alloc(void *arg)
{
	struct cross *x = arg;

	x->arena0 = mem_core_arena();
	for (int i = 0; i < 256; i++) {
		x->objs[i] = mem_core_malloc(96);
		x->bad += mem_arena_of(x->objs[i]) != x->arena0;
	}
}

static void cross_free(void *arg)
{
	struct cross *x = arg;

	/* Into core 1's thread cache: objects of core 0's arena wait there until its unbind. */
	for (int i = 0; i < 256; i++)
		mem_core_free(x->objs[i]);
	/* Reused from the cache: still jemalloc memory that a stop must not lose track of. */
	for (int i = 0; i < 256; i++)
		x->objs[i] = mem_core_malloc(96);
	for (int i = 0; i < 256; i++)
		mem_core_free(x->objs[i]);
}

/*
 * A core's cache may hold another core's objects, and objects may outlive
 * their runtime: arenas are pooled, never destroyed, so stopping (twice,
 * the second runtime reusing the first one's arenas) neither crashes nor
 * corrupts the allocator.
 */
Test(kv_arena, cross_core_frees_survive_the_stop)
{
	struct urt_kv_opts o;
	struct urt_dev *dev;

	if (URT_SANITIZED)
		cr_skip_test("sanitized build: base/mem.c uses libc malloc, which has no arenas");
	dev = kvx_sim(DEV_BYTES, 7);
	kvx_opts(&o, dev);
	for (int round = 0; round < 2; round++) {
		struct urt_rt *rt = kvx_start(2, &o);
		struct cross x = { .bad = 0 };

		kvx_run(rt, 0, cross_alloc, &x);
		kvx_run(rt, 1, cross_free, &x);
		cr_expect_geq(x.arena0, 0);
		cr_expect_eq(x.bad, 0, "%d of 256 objects outside core 0's arena %d", x.bad, x.arena0);
		urt_rt_stop(rt);
	}
	/* The allocator still works after the arenas are gone. */
	void *p = malloc(96);
	cr_assert_not_null(p);
	free(p);
	urt_dev_close(dev);
}
