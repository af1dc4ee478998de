/*
 * Per-core jemalloc arenas; see mem.h.
 */
#include <errno.h>
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

static _Thread_local int mem_core_cur = -1;

void mem_core_bind(int arena)
{
	mem_core_cur = mem_use_jemalloc ? arena : -1;
}

int mem_core_arena(void)
{
	return mem_core_cur;
}

void *mem_core_alloc(size_t bytes)
{
	return mem_alloc(mem_core_cur, bytes ? bytes : 1);
}

void *mem_core_malloc(size_t bytes)
{
	if (!bytes)
		bytes = 1;
	if (mem_core_cur < 0 || !mem_use_jemalloc)
		return malloc(bytes);
	return mallocx(bytes, MALLOCX_ARENA((unsigned)mem_core_cur) | MALLOCX_TCACHE_NONE);
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
	return rallocx(p, bytes, MALLOCX_ARENA((unsigned)mem_core_cur) | MALLOCX_TCACHE_NONE);
}

void mem_core_free(void *p)
{
	if (!p)
		return;
	/*
	 * Without the thread cache, so that a free from another thread (or
	 * after the thread was unbound) goes straight back to p's arena.
	 * mallocx/calloc pointers are both jemalloc's in unsanitized builds.
	 */
	if (!mem_use_jemalloc) {
		free(p);
		return;
	}
	dallocx(p, MALLOCX_TCACHE_NONE);
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
