/*
 * Per-core memory for runtime objects (request pools, fibers, queues).
 *
 * Each core allocates from its own jemalloc arena, so cores never contend
 * on an allocator lock and their objects do not share pages.  None of this
 * is on the I/O path: pools are filled at setup and recycled.  Sanitizer
 * builds use the libc allocator instead, so ASan/TSan see every object.
 */
#ifndef URT_RUNTIME_MEM_H
#define URT_RUNTIME_MEM_H

#include <stddef.h>

/* Create the calling core's arena; returns its index or -errno. */
int mem_arena_create(void);
/* Destroy an arena whose every allocation has been freed. */
void mem_arena_destroy(int arena);
/* Zeroed memory from arena (or from libc when arena < 0). */
void *mem_alloc(int arena, size_t bytes);
/* Zeroed memory aligned to align (a power of two). */
void *mem_alloc_aligned(int arena, size_t bytes, size_t align);
void mem_free(int arena, void *p);

#endif /* URT_RUNTIME_MEM_H */
