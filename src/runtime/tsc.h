/*
 * The CPU's time-stamp counter for the loop's clock (now.c): whether it is
 * invariant (constant rate, runs in every C-state) and a read of it.  Only
 * x86-64 has one here; elsewhere the clock uses clock_gettime.
 */
#ifndef URT_RUNTIME_TSC_H
#define URT_RUNTIME_TSC_H

#include <stdbool.h>
#include <stdint.h>

#if defined(__x86_64__)
#include <cpuid.h>

static inline uint64_t tsc_read(void)
{
	return __builtin_ia32_rdtsc();
}

/* CPUID 0x80000007 EDX bit 8: the TSC is invariant. */
static inline bool tsc_invariant(void)
{
	unsigned a, b, c, d;

	if (!__get_cpuid(0x80000000, &a, &b, &c, &d) || a < 0x80000007)
		return false;
	__get_cpuid(0x80000007, &a, &b, &c, &d);
	return d & (1u << 8);
}
#else
static inline uint64_t tsc_read(void)
{
	return 0;
}

static inline bool tsc_invariant(void)
{
	return false;	/* No TSC: the loop's clock reads clock_gettime. */
}
#endif

#endif /* URT_RUNTIME_TSC_H */
