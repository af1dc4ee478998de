/*
 * Per-core memory for runtime objects (request pools, fibers, queues).
 *
 * Each core allocates from its own jemalloc arena, so cores never contend
 * on an allocator lock and their objects do not share pages.  None of this
 * is on the I/O path: pools are filled at setup and recycled.  Sanitizer
 * builds use the libc allocator instead, so ASan/TSan see every object.
 *
 * The layers above the runtime (engine, kv, urkv) do not see a core; they
 * allocate their per-core objects with mem_core_*, which use the arena the
 * calling reactor thread was bound to (mem_core_bind, done by the runtime
 * at core setup and undone at teardown).  Off a reactor thread, or in a
 * sanitized build, mem_core_* is plain calloc/realloc/free.  A bound thread
 * also has its own explicit jemalloc thread cache (tcache.create), so
 * mem_core_* on it takes no arena lock in the common case.  Every mem_core_*
 * pointer must be freed with mem_core_free, on any thread, before the core's
 * arena is destroyed (urt_rt_stop, after every core unbound and flushed its
 * cache): the kv store and urkv connections are closed before the runtime
 * stops.
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

/* Bind the calling thread's mem_core_* allocations to arena with a thread cache of its own (-1: unbind, flush). */
void mem_core_bind(int arena);
/* The arena of the calling thread (-1 when unbound or sanitized). */
int mem_core_arena(void);
/* Zeroed memory from the calling thread's arena. */
void *mem_core_alloc(size_t bytes);
/* Uninitialized memory from the calling thread's arena (for buffers). */
void *mem_core_malloc(size_t bytes);
/* Resize p (from mem_core_*; NULL allocates) in the calling thread's arena. */
void *mem_core_realloc(void *p, size_t bytes);
/* Free p from mem_core_* (any thread; NULL is a no-op). */
void mem_core_free(void *p);
/* The jemalloc arena holding p (a jemalloc pointer), or -1 (sanitized). */
int mem_arena_of(const void *p);

#endif /* URT_RUNTIME_MEM_H */
