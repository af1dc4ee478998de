/**
 * @file
 * Log-linear latency histogram (the HdrHistogram layout).
 *
 * Values are uint64_t, usually nanoseconds.  With S = URT_HIST_SUB_BITS:
 *  - values below 2^(S+1) = 64 each get their own bucket, so they are exact;
 *  - each range [2^m, 2^(m+1)) with m > S is split into 2^S = 32 linear
 *    buckets of width 2^(m-S).
 * Every uint64_t value has a bucket; there is no overflow bucket.
 *
 * Error bound: a bucket's width is at most 1/32 of its lower bound, and
 * urt_hist_percentile() returns the middle of the bucket that holds the
 * exact percentile (clamped to [min, max]), so for exact value x the result
 * r satisfies |r - x| <= x / 64, a relative error of at most 1.5625%.
 * Counts, min, max and sum are exact; sum wraps modulo 2^64, which at
 * nanoseconds takes 584 years of accumulated latency.
 *
 * The struct is fixed-size (15 KiB) and never allocates, so it can live
 * inside per-core statistics; merge per-core copies with urt_hist_merge().
 * It is not thread-safe: one writer per histogram.
 */
#ifndef URT_HIST_H
#define URT_HIST_H

#include <stdint.h>

#include "urt/common.h"

URT_BEGIN_DECLS

/** log2 of the number of linear buckets per power of two. */
#define URT_HIST_SUB_BITS 5
/** Two exact groups below 2^(S+1), then one group per bit position S+1..63. */
#define URT_HIST_BUCKETS ((65 - URT_HIST_SUB_BITS) << URT_HIST_SUB_BITS)

/** A log-linear latency histogram; fixed size, no allocation (see above). */
struct urt_hist {
	uint64_t count;                     /**< Number of values added. */
	uint64_t sum;                       /**< Sum of the values, modulo 2^64. */
	uint64_t min;                       /**< Smallest value; UINT64_MAX while empty. */
	uint64_t max;                       /**< Largest value; 0 while empty. */
	uint64_t buckets[URT_HIST_BUCKETS]; /**< Count per bucket, see above. */
};

/** Empties h. */
URT_API void urt_hist_init(struct urt_hist *h);

/** Records one value: O(1), a count-leading-zeros and no data-dependent branch. */
URT_API void urt_hist_add(struct urt_hist *h, uint64_t v);

/** Adds every value recorded in src to dst, as if each had been added to dst. */
URT_API void urt_hist_merge(struct urt_hist *dst, const struct urt_hist *src);

/**
 * Returns the p-th percentile, p in [0, 100] (clamped; NaN counts as 0), by
 * the nearest-rank rule: the value of rank ceil(p / 100 * count), at least
 * 1, in sorted order, within the error bound above.  p = 0 gives the exact
 * min, p = 100 the exact max, and an empty histogram gives 0.
 */
URT_API uint64_t urt_hist_percentile(const struct urt_hist *h, double p);

/** Returns sum / count (exact up to double rounding), or 0 when empty. */
URT_API double urt_hist_mean(const struct urt_hist *h);

URT_END_DECLS

#endif /* URT_HIST_H */
