/*
 * src/base: support code every folder of src/ may use: assert.h (this
 * file), error.h, clock.h, compiler.h, fifo.h, hist.h, crc32c.h, mem.h,
 * sanitize.h, and the error strings (strerror.c) and version.  It includes
 * nothing of src/ outside itself, only include/urt/ and system headers.
 *
 * The one assertion family of urt (docs/STYLE: "always-on assertions for
 * invariants").
 *
 *   URT_ASSERT(cond)        always compiled in, release builds included.
 *                           For programmer errors at API boundaries and
 *                           cheap invariants: a wrong on-disk image or a
 *                           lost completion is worse than a crash.
 *   URT_DEBUG_ASSERT(cond)  compiled in only without NDEBUG (Debug and
 *                           sanitizer builds).  For expensive invariant
 *                           checks and for tests on the per-op hot path,
 *                           where one branch per op is measurable.
 *
 * A failure prints file, line, function and the condition, then aborts.
 * Operating errors (a bad path, a full disk, a missing kernel feature) are
 * never asserted: they are returned as -errno or URT_E_*.
 */
#ifndef URT_BASE_ASSERT_H
#define URT_BASE_ASSERT_H

__attribute__((noreturn, cold)) void urt_assert_fail(const char *expr, const char *file, int line,
						     const char *func);

#define URT_ASSERT(cond)                                                        \
	do {                                                                    \
		if (__builtin_expect(!(cond), 0))                               \
			urt_assert_fail(#cond, __FILE__, __LINE__, __func__);   \
	} while (0)

#ifdef NDEBUG
/* Type-checked but never evaluated: the condition may have a cost. */
#define URT_DEBUG_ASSERT(cond)                                                  \
	do {                                                                    \
		if (0)                                                          \
			(void)(cond);                                           \
	} while (0)
#else
#define URT_DEBUG_ASSERT(cond) URT_ASSERT(cond)
#endif

#endif /* URT_BASE_ASSERT_H */
