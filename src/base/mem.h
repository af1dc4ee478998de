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
 * sanitized build, mem_core_* is plain calloc/realloc/free.  Binding sets
 * the thread's jemalloc arena ("thread.arena"), so on a reactor thread
 * mem_core_* are the plain calls too, on jemalloc's fast path with the
 * thread's own cache, and land in the core's arena.  A pointer may be freed
 * on any thread.  Arenas are never destroyed, only pooled for reuse by the
 * next runtime (mem_arena_release), so objects may outlive the runtime.
 */
#ifndef URT_RUNTIME_MEM_H
#define URT_RUNTIME_MEM_H

#include <stddef.h>

/* Create the calling core's arena; returns its index or -errno. */
int mem_arena_create(void);
/* Most arenas kept for reuse after their runtime stopped (mem_arena_release). */
#define MEM_ARENA_POOL_MAX 256
/* Give an arena back for the next mem_arena_create (never destroyed: its objects may outlive the runtime). */
void mem_arena_release(int arena);
/* Zeroed memory from arena (or from libc when arena < 0). */
void *mem_alloc(int arena, size_t bytes);
/* Zeroed memory aligned to align (a power of two). */
void *mem_alloc_aligned(int arena, size_t bytes, size_t align);
void mem_free(int arena, void *p);

/* Make arena the calling thread's jemalloc arena, for all its allocations (-1: unbind, flush its cache). */
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
