/*
 * Per-core jemalloc arenas; see mem.h.
 */
#include <errno.h>
#include <pthread.h>
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

/*
 * Arenas given back by a stopped runtime, for the next one to reuse.  They
 * are never destroyed: a reactor thread allocates everything from its
 * core's arena (mem_core_bind), so objects of any code it ran may outlive
 * the runtime.  The pool bounds the arenas a process makes to the most
 * cores it ever ran at once.
 */
static pthread_mutex_t mem_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned mem_pool[MEM_ARENA_POOL_MAX];
static unsigned mem_pool_n;

int mem_arena_create(void)
{
	unsigned ind;
	size_t sz = sizeof(ind);
	bool reused = false;

	if (!mem_use_jemalloc)
		return -1;
	pthread_mutex_lock(&mem_pool_lock);
	if (mem_pool_n) {
		ind = mem_pool[--mem_pool_n];
		reused = true;
	}
	pthread_mutex_unlock(&mem_pool_lock);
	if (!reused && mallctl("arenas.create", &ind, &sz, NULL, 0))
		return -ENOMEM;
	return (int)ind;
}

void mem_arena_release(int arena)
{
	if (arena < 0 || !mem_use_jemalloc)
		return;
	pthread_mutex_lock(&mem_pool_lock);
	if (mem_pool_n < MEM_ARENA_POOL_MAX)
		mem_pool[mem_pool_n++] = (unsigned)arena;
	pthread_mutex_unlock(&mem_pool_lock);
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
 * The calling thread's per-core allocation.  Binding sets jemalloc's
 * "thread.arena" to the core's arena, so every malloc of the thread, and
 * its implicit thread cache, use that arena: mem_core_* are the plain
 * calls, on jemalloc's fast path.  (An explicit arena with an explicit
 * tcache, mallocx(MALLOCX_ARENA | MALLOCX_TCACHE), was tried first: it
 * leaves jemalloc's malloc fast path, and urkv's allocator share under
 * connection churn rose from 1.9-2.1% to 2.3-2.5%; docs/kv.md.)
 *
 * States of a thread: UNBOUND (mem_core_cur < 0) and BOUND (the thread's
 * arena is the core's); mem_core_bind does both transitions.  Unbinding
 * flushes the thread's cache; the arena stays (mem_arena_release).
 */
static _Thread_local int mem_core_cur = -1;

void mem_core_bind(int arena)
{
	unsigned ind = (unsigned)arena;

	if (!mem_use_jemalloc) {
		mem_core_cur = -1;
		return;
	}
	if (arena < 0) {
		if (mem_core_cur >= 0)
			mallctl("thread.tcache.flush", NULL, NULL, NULL, 0);
		mem_core_cur = -1;
		return;
	}
	mem_core_cur = mallctl("thread.arena", NULL, NULL, &ind, sizeof(ind)) == 0 ? arena : -1;
}

int mem_core_arena(void)
{
	return mem_core_cur;
}

void *mem_core_alloc(size_t bytes)
{
	return calloc(1, bytes ? bytes : 1);
}

void *mem_core_malloc(size_t bytes)
{
	return malloc(bytes ? bytes : 1);
}

void *mem_core_realloc(void *p, size_t bytes)
{
	return realloc(p, bytes ? bytes : 1);
}

void mem_core_free(void *p)
{
	free(p);
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
