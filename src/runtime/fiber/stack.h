/*
 * Guarded fiber stacks.
 *
 * A stack is one anonymous mapping: URT_STACK_GUARD_PAGES pages of PROT_NONE
 * at the low end, then the usable part.  Stacks grow down on every supported
 * architecture, so running off the end touches the guard and raises SIGSEGV
 * instead of silently overwriting the neighbouring mapping.
 */
#ifndef URT_RUNTIME_STACK_H
#define URT_RUNTIME_STACK_H

#include <stddef.h>

/*
 * Four guard pages (16 KiB with 4 KiB pages) catch a frame that skips up to
 * that many bytes past the end of the stack; a single page would let one
 * function with a 5 KiB local array jump over it.  Larger frames need
 * -fstack-clash-protection.  The guard costs address space only.
 */
#define URT_STACK_GUARD_PAGES 4

struct urt_stack {
	void *base;     /* Lowest usable byte; the stack top is base + size. */
	size_t size;    /* Usable bytes, a multiple of the page size. */
	void *map;      /* Start of the mapping, which begins with the guard. */
	size_t map_len; /* Guard plus usable bytes. */
};

/*
 * Maps a stack of at least size usable bytes (rounded up to whole pages) with
 * the guard below it.  Returns 0, -EINVAL for size 0, -ENOMEM when size is too
 * large to round or map, or the -errno of mmap or mprotect.  On failure *st is
 * zeroed, so urt_stack_free() on it is a harmless no-op.
 */
int urt_stack_alloc(struct urt_stack *st, size_t size);

/* Unmaps the stack and zeroes *st; a zeroed stack is left alone. */
void urt_stack_free(struct urt_stack *st);

/*
 * Sanitizer hook, kept here so that no .c file needs an #ifdef.  A fiber that
 * is abandoned mid-call leaves ASan's redzone poison on its stack; clearing it
 * before the range is reused or unmapped prevents false reports in whatever
 * memory lands there next.  It is a no-op without ASan.
 */
#if defined(URT_ASAN)
#include <sanitizer/asan_interface.h>
static inline void urt_stack_unpoison(const struct urt_stack *st)
{
	__asan_unpoison_memory_region(st->base, st->size);
}
#else
static inline void urt_stack_unpoison(const struct urt_stack *st)
{
	(void)st;
}
#endif

#endif /* URT_RUNTIME_STACK_H */
