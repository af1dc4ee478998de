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
