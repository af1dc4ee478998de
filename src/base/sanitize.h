/*
 * Which sanitizer this translation unit is built with.  The build defines
 * URT_ASAN / URT_TSAN (CMake URT_SANITIZE); this header turns that into
 * constants so that .c files need no #ifdef.
 */
#ifndef URT_RUNTIME_SANITIZE_H
#define URT_RUNTIME_SANITIZE_H

#if defined(URT_ASAN) || defined(URT_TSAN)
#define URT_SANITIZED 1
#else
#define URT_SANITIZED 0
#endif

#include <stdatomic.h>

/*
 * A full memory barrier, for ordering our accesses against the kernel's
 * (shared ring words), which no sanitizer can see.  TSan refuses
 * atomic_thread_fence (-Werror=tsan); under it a sequentially consistent
 * read-modify-write of the thread's own word stands in, a locked
 * instruction and so a full barrier on x86.
 */
static inline void urt_full_barrier(void)
{
#ifdef URT_TSAN
	static _Thread_local atomic_uint word;

	atomic_fetch_add_explicit(&word, 0, memory_order_seq_cst);
#else
	atomic_thread_fence(memory_order_seq_cst);
#endif
}

#endif /* URT_RUNTIME_SANITIZE_H */
