/*
 * Log-linear histogram.  Bucket index of v, with S = URT_HIST_SUB_BITS and
 * SUB = 2^S:
 *
 *   g = max(msb(v), S) - S          (msb = index of the highest set bit)
 *   b = g * SUB + (v >> g)
 *
 * For g = 0 (v < 2 * SUB) this is b = v: the exact region.  For g >= 1,
 * v >> g lies in [SUB, 2 * SUB), so group g fills buckets [(g + 1) * SUB,
 * (g + 2) * SUB) with width 2^g, and the largest index, for v = UINT64_MAX
 * (g = 63 - S), is (65 - S) * SUB - 1 = URT_HIST_BUCKETS - 1.  Taking msb of
 * v | SUB yields the max() without a branch, and v | SUB is never 0.
 */
#include "urt/hist.h"

#include <string.h>

#include "base/hist.h"

#define SUB_BITS URT_HIST_SUB_BITS
#define SUB      ((uint64_t)1 << SUB_BITS)

_Static_assert(URT_HIST_BUCKETS == (65 - SUB_BITS) * SUB,
	       "the largest value, UINT64_MAX, must land in the last bucket");

/* Lowest value of bucket b, and log2 of its width. */
static uint64_t hist_bucket_low(unsigned b, unsigned *width_log2)
{
	unsigned q = b >> SUB_BITS;
	unsigned g = q == 0 ? 0 : q - 1;

	*width_log2 = g;
	if (g == 0)
		return b;
	return (SUB | (b & (SUB - 1))) << g;
}

void urt_hist_init(struct urt_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

/* The body is hist_record_n() in core.h, which the completion path inlines. */
void urt_hist_add(struct urt_hist *h, uint64_t v)
{
	hist_record_n(h, v, 1);
}

void urt_hist_merge(struct urt_hist *dst, const struct urt_hist *src)
{
	for (unsigned i = 0; i < URT_HIST_BUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
	dst->count += src->count;
	dst->sum += src->sum;
	dst->min = src->min < dst->min ? src->min : dst->min;
	dst->max = src->max > dst->max ? src->max : dst->max;
}

uint64_t urt_hist_percentile(const struct urt_hist *h, double p)
{
	uint64_t rank, seen = 0;
	double want;

	if (h->count == 0)
		return 0;
	if (!(p > 0.0))
		p = 0.0;
	if (p > 100.0)
		p = 100.0;

	/*
	 * Nearest rank: the smallest rank whose share of count reaches p.  The
	 * first and last ranks are known exactly; the comparison in double
	 * also keeps the conversion below in range.
	 */
	want = p / 100.0 * (double)h->count;
	if (want >= (double)h->count)
		return h->max;
	if (want <= 1.0)
		return h->min;
	/* ceil() by hand, which keeps liburt free of libm. */
	rank = (uint64_t)want;
	rank += (double)rank < want;

	for (unsigned b = 0; b < URT_HIST_BUCKETS; b++) {
		unsigned width_log2;
		uint64_t low, mid;

		seen += h->buckets[b];
		if (seen < rank)
			continue;
		low = hist_bucket_low(b, &width_log2);
		mid = width_log2 == 0 ? low : low + ((uint64_t)1 << (width_log2 - 1));
		if (mid < h->min)
			return h->min;
		if (mid > h->max)
			return h->max;
		return mid;
	}
	/* Unreachable while count equals the sum of the buckets. */
	return h->max;
}

double urt_hist_mean(const struct urt_hist *h)
{
	if (h->count == 0)
		return 0.0;
	return (double)h->sum / (double)h->count;
}
