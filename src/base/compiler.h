/*
 * Compiler helpers shared by every folder: branch hints, container_of and
 * the cache-line size used to keep shared counters apart.
 */
#ifndef URT_BASE_COMPILER_H
#define URT_BASE_COMPILER_H

/* x86-64 and the Arm cores urt runs on have 64-byte cache lines. */
#define URT_CACHELINE 64

#define urt_container_of(ptr, type, member) \
	((type *)((char *)(ptr) - __builtin_offsetof(type, member)))

#define urt_likely(x)	__builtin_expect(!!(x), 1)
#define urt_unlikely(x)	__builtin_expect(!!(x), 0)

#endif /* URT_BASE_COMPILER_H */
