/*
 * Internal side of the latency histogram (include/urt/hist.h): the inline
 * recorder the reactor uses on every completion.  hist.c has the bucket
 * layout and the public calls.
 */
#ifndef URT_BASE_HIST_H
#define URT_BASE_HIST_H

#include <stdint.h>

#include "base/compiler.h"
#include "urt/hist.h"

/*
 * n values v into h: urt_hist_add n times.  The bucket layout is explained
 * in hist.c, which defines urt_hist_add with this function.
 */
static inline void hist_record_n(struct urt_hist *h, uint64_t v, uint64_t n)
{
	const uint64_t sub = (uint64_t)1 << URT_HIST_SUB_BITS;
	unsigned g = (unsigned)(63 - __builtin_clzll(v | sub)) - URT_HIST_SUB_BITS;

	h->buckets[((uint64_t)g << URT_HIST_SUB_BITS) + (v >> g)] += n;
	h->count += n;
	h->sum += v * n;
	/*
	 * Branches, not selects: a new minimum or maximum is rare once values
	 * have been seen, and an untaken branch leaves min and max unwritten.
	 */
	if (urt_unlikely(v < h->min))
		h->min = v;
	if (urt_unlikely(v > h->max))
		h->max = v;
}

#endif /* URT_BASE_HIST_H */
