/*
 * Per-core jemalloc arenas; see mem.h.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/sanitize.h"

#if URT_SANITIZED
#define mem_use_jemalloc 0
#else
#define mem_use_jemalloc 1
#endif

#include <jemalloc/jemalloc.h>

int mem_arena_create(void)
{
	unsigned ind;
	size_t sz = sizeof(ind);

	if (!mem_use_jemalloc)
		return -1;
	if (mallctl("arenas.create", &ind, &sz, NULL, 0))
		return -ENOMEM;
	return (int)ind;
}

void mem_arena_destroy(int arena)
{
	char name[64];

	if (arena < 0 || !mem_use_jemalloc)
		return;
	snprintf(name, sizeof(name), "arena.%d.destroy", arena);
	mallctl(name, NULL, NULL, NULL, 0);
}

void *mem_alloc(int arena, size_t bytes)
{
	if (arena < 0 || !mem_use_jemalloc)
		return calloc(1, bytes);
	/* The thread cache is bypassed so that frees from other threads stay correct. */
	return mallocx(bytes, MALLOCX_ARENA((unsigned)arena) | MALLOCX_TCACHE_NONE | MALLOCX_ZERO);
}

void *mem_alloc_aligned(int arena, size_t bytes, size_t align)
{
	void *p;

	if (arena < 0 || !mem_use_jemalloc) {
		bytes = (bytes + align - 1) / align * align;
		p = aligned_alloc(align, bytes);
		if (p)
			memset(p, 0, bytes);
		return p;
	}
	return mallocx(bytes, MALLOCX_ARENA((unsigned)arena) | MALLOCX_TCACHE_NONE | MALLOCX_ZERO |
				      MALLOCX_ALIGN(align));
}

void mem_free(int arena, void *p)
{
	if (!p)
		return;
	if (arena < 0 || !mem_use_jemalloc) {
		free(p);
		return;
	}
	dallocx(p, MALLOCX_TCACHE_NONE);
}

/*
 * The calling thread's per-core allocation: its core's arena and an
 * explicit thread cache (tcache.create) used only by this thread.
 *
 * Why a cache of our own: without one, every mem_core_* call takes the
 * arena's bin lock (MALLOCX_TCACHE_NONE), which made urkv's allocator share
 * rise under connection churn (docs/kv.md).  The thread's implicit cache
 * cannot be used with an explicit arena: it is tied to the thread's own
 * arena.  An explicit cache is used only on its thread (bound here); a
 * free on any other thread goes straight to the object's arena.  A cached
 * object may have been allocated by another core (freed here), so caches
 * are destroyed (flushed back to their arenas) on every core before any
 * arena is destroyed: urt_rt_stop destroys arenas after joining the cores.
 *
 * States of a thread: UNBOUND (mem_core_cur < 0: plain libc calls) and
 * BOUND (arena and, when jemalloc gave one, tcache); mem_core_bind does
 * both transitions.
 */
static _Thread_local int mem_core_cur = -1;
static _Thread_local int mem_core_flags_cur = MALLOCX_TCACHE_NONE;	/* MALLOCX_ flags of this thread. */
static _Thread_local unsigned mem_core_tc;	/* The thread's explicit tcache ... */
static _Thread_local bool mem_core_tc_on;	/* ... when tcache.create gave one. */

void mem_core_bind(int arena)
{
	size_t sz = sizeof(mem_core_tc);

	if (mem_core_tc_on) {
		/* Flushes every cached object back to its own arena. */
		mallctl("tcache.destroy", NULL, NULL, &mem_core_tc, sizeof(mem_core_tc));
		mem_core_tc_on = false;
	}
	mem_core_cur = mem_use_jemalloc ? arena : -1;
	mem_core_flags_cur = MALLOCX_TCACHE_NONE;
	if (mem_core_cur < 0)
		return;
	mem_core_tc_on = mallctl("tcache.create", &mem_core_tc, &sz, NULL, 0) == 0;
	mem_core_flags_cur = (int)MALLOCX_ARENA((unsigned)mem_core_cur) |
			     (mem_core_tc_on ? (int)MALLOCX_TCACHE(mem_core_tc) : MALLOCX_TCACHE_NONE);
}

int mem_core_arena(void)
{
	return mem_core_cur;
}

void *mem_core_alloc(size_t bytes)
{
	if (!bytes)
		bytes = 1;
	if (mem_core_cur < 0 || !mem_use_jemalloc)
		return calloc(1, bytes);
	return mallocx(bytes, mem_core_flags_cur | MALLOCX_ZERO);
}

void *mem_core_malloc(size_t bytes)
{
	if (!bytes)
		bytes = 1;
	if (mem_core_cur < 0 || !mem_use_jemalloc)
		return malloc(bytes);
	return mallocx(bytes, mem_core_flags_cur);
}

void *mem_core_realloc(void *p, size_t bytes)
{
	if (!bytes)
		bytes = 1;
	if (!p)
		return mem_core_malloc(bytes);
	if (mem_core_cur < 0 || !mem_use_jemalloc)
		return realloc(p, bytes);
	/* rallocx keeps p when it fails, as realloc does. */
	return rallocx(p, bytes, mem_core_flags_cur);
}

void mem_core_free(void *p)
{
	if (!p)
		return;
	/*
	 * mallocx/calloc pointers are both jemalloc's in unsanitized builds.
	 * On a bound thread the object goes to its cache (and from there to
	 * its own arena); elsewhere straight to its arena.
	 */
	if (!mem_use_jemalloc) {
		free(p);
		return;
	}
	dallocx(p, mem_core_tc_on ? MALLOCX_TCACHE(mem_core_tc) : MALLOCX_TCACHE_NONE);
}

int mem_arena_of(const void *p)
{
	unsigned ind;
	size_t sz = sizeof(ind);

	if (!mem_use_jemalloc || !p)
		return -1;
	if (mallctl("arenas.lookup", &ind, &sz, (void *)&p, sizeof(p)))
		return -1;
	return (int)ind;
}
