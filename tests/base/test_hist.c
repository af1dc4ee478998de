/*
 * Log-linear histogram (include/urt/hist.h, src/base/hist.c).
 *
 * Every percentile is compared with the exact nearest-rank percentile of the
 * same data, sorted, and must lie within the documented bound:
 * |result - exact| <= exact / 64.
 */
#include <criterion/criterion.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "urt/hist.h"

static const double percentiles[] = { 0,  0.001, 0.1, 1,  5,    10,    25,     33.3, 50,
				      66.6, 75, 90,  95, 99, 99.9, 99.99, 99.999, 100 };

/* A fixed-seed xorshift64* generator, so failures reproduce. */
static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted[0..n), the definition in hist.h. */
static uint64_t exact_percentile(const uint64_t *sorted, size_t n, double p)
{
	double want = p / 100.0 * (double)n;
	size_t rank;

	if (want >= (double)n)
		rank = n;
	else if (want <= 1.0)
		rank = 1;
	else {
		rank = (size_t)want;
		if ((double)rank < want)
			rank++;
	}
	return sorted[rank - 1];
}

static void assert_within_bound(uint64_t got, uint64_t exact, double p)
{
	uint64_t diff = got > exact ? got - exact : exact - got;

	cr_assert((unsigned __int128)diff * 64 <= exact,
		  "p%g: got %" PRIu64 ", exact %" PRIu64 ", off by %" PRIu64, p, got, exact, diff);
}

/* Fills a histogram with v[0..n), then checks every percentile against the sorted copy. */
static void check_against_sorted(uint64_t *v, size_t n)
{
	static struct urt_hist h;

	urt_hist_init(&h);
	for (size_t i = 0; i < n; i++)
		urt_hist_add(&h, v[i]);
	qsort(v, n, sizeof(*v), cmp_u64);
	cr_assert_eq(h.count, n);
	cr_assert_eq(h.min, v[0]);
	cr_assert_eq(h.max, v[n - 1]);
	for (size_t i = 0; i < sizeof(percentiles) / sizeof(percentiles[0]); i++) {
		double p = percentiles[i];

		assert_within_bound(urt_hist_percentile(&h, p), exact_percentile(v, n, p), p);
	}
	cr_assert_eq(urt_hist_percentile(&h, 0), v[0]);
	cr_assert_eq(urt_hist_percentile(&h, 100), v[n - 1]);
}

Test(hist, struct_is_fixed_size)
{
	cr_assert_eq(sizeof(struct urt_hist), 4 * sizeof(uint64_t) + URT_HIST_BUCKETS * sizeof(uint64_t));
	cr_assert_eq(URT_HIST_BUCKETS, 1920);
}

Test(hist, empty_histogram)
{
	struct urt_hist h;

	memset(&h, 0xff, sizeof(h));
	urt_hist_init(&h);
	cr_assert_eq(h.count, 0);
	cr_assert_eq(h.sum, 0);
	cr_assert_eq(h.min, UINT64_MAX);
	cr_assert_eq(h.max, 0);
	for (size_t i = 0; i < URT_HIST_BUCKETS; i++)
		cr_assert_eq(h.buckets[i], 0);
	cr_assert_eq(urt_hist_percentile(&h, 0), 0);
	cr_assert_eq(urt_hist_percentile(&h, 50), 0);
	cr_assert_eq(urt_hist_percentile(&h, 100), 0);
	cr_assert_eq(urt_hist_mean(&h), 0.0);
}

Test(hist, uniform_1_to_100000)
{
	static uint64_t v[100000];
	static struct urt_hist h;

	for (size_t i = 0; i < 100000; i++)
		v[i] = i + 1;
	check_against_sorted(v, 100000);

	urt_hist_init(&h);
	for (uint64_t i = 1; i <= 100000; i++)
		urt_hist_add(&h, i);
	cr_assert_eq(h.sum, 5000050000ull);
	cr_assert_eq(urt_hist_mean(&h), 50000.5);
	cr_assert_eq(urt_hist_percentile(&h, 0), 1);
	cr_assert_eq(urt_hist_percentile(&h, 100), 100000);
	/* Small ranks are exact: values below 64 have their own buckets. */
	cr_assert_eq(urt_hist_percentile(&h, 0.05), 50);
}

Test(hist, constant_is_exact)
{
	struct urt_hist h;

	urt_hist_init(&h);
	for (int i = 0; i < 1000; i++)
		urt_hist_add(&h, 123456789);
	for (size_t i = 0; i < sizeof(percentiles) / sizeof(percentiles[0]); i++)
		cr_assert_eq(urt_hist_percentile(&h, percentiles[i]), 123456789, "p%g",
			     percentiles[i]);
	cr_assert_eq(urt_hist_mean(&h), 123456789.0);
	cr_assert_eq(h.sum, 123456789000ull);
}

Test(hist, two_point_distributions)
{
	static uint64_t v[1000];
	struct urt_hist h;

	/* 30% fast at 10 ns, 70% slow at 1 s. */
	urt_hist_init(&h);
	for (size_t i = 0; i < 1000; i++) {
		v[i] = i < 300 ? 10 : 1000000000;
		urt_hist_add(&h, v[i]);
	}
	cr_assert_eq(urt_hist_percentile(&h, 10), 10);
	cr_assert_eq(urt_hist_percentile(&h, 30), 10);
	/* Rank 301 is the first slow one. */
	assert_within_bound(urt_hist_percentile(&h, 30.1), 1000000000, 30.1);
	assert_within_bound(urt_hist_percentile(&h, 99), 1000000000, 99);
	cr_assert_eq(urt_hist_mean(&h), (300.0 * 10 + 700.0 * 1e9) / 1000);
	check_against_sorted(v, 1000);

	/* Even split of two close values in different buckets: p50 is the lower. */
	urt_hist_init(&h);
	for (int i = 0; i < 50; i++) {
		urt_hist_add(&h, 1000);
		urt_hist_add(&h, 5000);
	}
	assert_within_bound(urt_hist_percentile(&h, 50), 1000, 50);
	assert_within_bound(urt_hist_percentile(&h, 50.5), 5000, 50.5);
	cr_assert_eq(urt_hist_mean(&h), 3000.0);
}

/*
 * Values on either side of every bucket edge.  Each sits between 0 and
 * UINT64_MAX, so its median comes from its own bucket rather than from the
 * exact min or max.
 */
static void check_median_of_three(uint64_t x)
{
	struct urt_hist h;
	uint64_t got;

	urt_hist_init(&h);
	urt_hist_add(&h, 0);
	urt_hist_add(&h, x);
	urt_hist_add(&h, UINT64_MAX);
	got = urt_hist_percentile(&h, 50);
	assert_within_bound(got, x, 50);
	if (x < 64)
		cr_assert_eq(got, x, "small value %" PRIu64 " not exact", x);
}

Test(hist, values_near_bucket_boundaries)
{
	for (unsigned k = 0; k < 64; k++) {
		uint64_t pow = (uint64_t)1 << k;

		check_median_of_three(pow);
		check_median_of_three(pow - 1);
		check_median_of_three(pow + 1);
		/* Sub-bucket edges inside [2^k, 2^(k+1)) for k > 5: width 2^(k-5). */
		if (k > 5) {
			for (uint64_t j = 0; j < 32; j++) {
				uint64_t edge = pow + (j << (k - 5));

				check_median_of_three(edge);
				check_median_of_three(edge - 1);
				check_median_of_three(edge + 1);
			}
		}
	}
	check_median_of_three(UINT64_MAX - 1);
}

Test(hist, huge_values)
{
	static uint64_t v[50000];
	uint64_t sum = 0;
	struct urt_hist h;

	/* Log-uniform over [1, UINT64_MAX / 2]: a random bit length, then random bits. */
	urt_hist_init(&h);
	for (size_t i = 0; i < 50000; i++) {
		unsigned bits = 1 + (unsigned)(rng() % 63);
		uint64_t x = rng() >> (64 - bits);

		v[i] = x == 0 ? 1 : x;
		if (i % 1000 == 0)
			v[i] = UINT64_MAX / 2;
		sum += v[i];
		urt_hist_add(&h, v[i]);
	}
	cr_assert_eq(h.sum, sum, "sum is kept modulo 2^64");
	cr_assert_eq(urt_hist_percentile(&h, 100), UINT64_MAX / 2);
	check_against_sorted(v, 50000);

	/* The largest values also fit, in the last bucket. */
	urt_hist_init(&h);
	urt_hist_add(&h, UINT64_MAX);
	urt_hist_add(&h, UINT64_MAX - 1);
	cr_assert_eq(h.buckets[URT_HIST_BUCKETS - 1], 2);
	cr_assert_eq(urt_hist_percentile(&h, 50), UINT64_MAX - 1);
	cr_assert_eq(urt_hist_percentile(&h, 100), UINT64_MAX);
}

Test(hist, random_latencies_against_sorted)
{
	static uint64_t v[200000];

	/* A latency-like mix: a 20-80 us body and a heavy tail to 100 ms. */
	for (size_t i = 0; i < 200000; i++) {
		uint64_t r = rng();

		v[i] = r % 100 < 97 ? 20000 + r % 60000 : 100000 + (r >> 8) % 100000000;
	}
	check_against_sorted(v, 200000);
}

Test(hist, percentile_argument_is_clamped)
{
	struct urt_hist h;

	urt_hist_init(&h);
	for (uint64_t i = 100; i < 1100; i++)
		urt_hist_add(&h, i);
	cr_assert_eq(urt_hist_percentile(&h, -5), 100);
	cr_assert_eq(urt_hist_percentile(&h, 250), 1099);
	cr_assert_eq(urt_hist_percentile(&h, __builtin_nan("")), 100);
}

Test(hist, merge_equals_adding_everything)
{
	static struct urt_hist parts[3], merged, all;
	static uint64_t v[30000];

	urt_hist_init(&merged);
	urt_hist_init(&all);
	for (int i = 0; i < 3; i++)
		urt_hist_init(&parts[i]);
	for (size_t i = 0; i < 30000; i++) {
		/* Each part sees a different range, so min and max come from different parts. */
		uint64_t x = (rng() % 1000000) * (i % 3 + 1) + i % 3;

		v[i] = x;
		urt_hist_add(&parts[i % 3], x);
		urt_hist_add(&all, x);
	}
	/* Merging into an empty histogram, then merging an empty one, changes nothing extra. */
	for (int i = 0; i < 3; i++)
		urt_hist_merge(&merged, &parts[i]);
	urt_hist_init(&parts[0]);
	urt_hist_merge(&merged, &parts[0]);

	cr_assert_eq(memcmp(&merged, &all, sizeof(all)), 0);
	cr_assert_eq(merged.count, 30000);
	for (size_t i = 0; i < sizeof(percentiles) / sizeof(percentiles[0]); i++)
		cr_assert_eq(urt_hist_percentile(&merged, percentiles[i]),
			     urt_hist_percentile(&all, percentiles[i]));
	check_against_sorted(v, 30000);
}

Test(hist, min_max_mean_exact)
{
	static uint64_t v[10000];
	struct urt_hist h;
	uint64_t sum = 0, lo = UINT64_MAX, hi = 0;

	urt_hist_init(&h);
	for (size_t i = 0; i < 10000; i++) {
		v[i] = 1000 + rng() % 10000000;
		sum += v[i];
		lo = v[i] < lo ? v[i] : lo;
		hi = v[i] > hi ? v[i] : hi;
		urt_hist_add(&h, v[i]);
	}
	cr_assert_eq(h.min, lo);
	cr_assert_eq(h.max, hi);
	cr_assert_eq(h.sum, sum);
	cr_assert_eq(urt_hist_mean(&h), (double)sum / 10000.0);
	cr_assert_eq(urt_hist_percentile(&h, 0), lo);
	cr_assert_eq(urt_hist_percentile(&h, 100), hi);
}
