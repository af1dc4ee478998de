/*
 * The figures urbench prints: latency percentiles from urt_hist as the tool
 * summarises them, per-core aggregation, derived rates, and the offset
 * generator and data signature the engines rely on.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "urbench/job.h"
#include "urbench/result.h"

/* |got - want| within the histogram's documented 1/64 relative bound. */
static void assert_close(uint64_t got, uint64_t want, const char *what)
{
	double tol = (double)want / 64 + 1;

	cr_assert(fabs((double)got - (double)want) <= tol, "%s: got %llu, want %llu +- %.0f", what,
		  (unsigned long long)got, (unsigned long long)want, tol);
}

Test(urbench_hist, summary_of_a_uniform_spread)
{
	struct urt_hist h;
	struct ub_lat l;

	urt_hist_init(&h);
	/* 1..1000 us, one each: the nearest-rank percentiles are exact multiples. */
	for (uint64_t i = 1; i <= 1000; i++)
		urt_hist_add(&h, i * 1000);
	ub_lat_summary(&h, &l);
	cr_assert_eq(l.min, 1000);
	cr_assert_eq(l.max, 1000000);
	assert_close(l.p50, 500000, "p50");
	assert_close(l.p90, 900000, "p90");
	assert_close(l.p99, 990000, "p99");
	assert_close(l.p999, 999000, "p99.9");
	cr_assert_float_eq(l.mean, 500500.0, 1e-6);
}

Test(urbench_hist, summary_of_a_long_tail)
{
	struct urt_hist h;
	struct ub_lat l;

	urt_hist_init(&h);
	/* 980 fast ops at 20 us, 15 at 1 ms, 5 at 50 ms. */
	for (int i = 0; i < 980; i++)
		urt_hist_add(&h, 20000);
	for (int i = 0; i < 15; i++)
		urt_hist_add(&h, 1000000);
	for (int i = 0; i < 5; i++)
		urt_hist_add(&h, 50000000);
	ub_lat_summary(&h, &l);
	assert_close(l.p50, 20000, "p50");
	assert_close(l.p90, 20000, "p90");
	assert_close(l.p99, 1000000, "p99");	/* Rank 990: inside the 1 ms group. */
	assert_close(l.p999, 50000000, "p99.9");	/* Rank 999: the tail. */
	cr_assert_eq(l.max, 50000000);
}

Test(urbench_hist, empty_summary_is_zero)
{
	struct urt_hist h;
	struct ub_lat l;

	urt_hist_init(&h);
	ub_lat_summary(&h, &l);
	cr_assert_eq(l.min, 0);
	cr_assert_eq(l.p50, 0);
	cr_assert_eq(l.p99, 0);
	cr_assert_eq(l.max, 0);
	cr_assert_float_eq(l.mean, 0.0, 1e-12);
}

Test(urbench_hist, totals_merge_cores)
{
	static struct ub_result r;
	struct ub_lat l;

	memset(&r, 0, sizeof(r));
	r.ncores = 2;
	urt_hist_init(&r.core[0].hist);
	urt_hist_init(&r.core[1].hist);
	r.core[0] = (struct ub_core_result){ .cpu = 0, .ops = 1000, .reads = 1000, .bytes = 1000 * 4096, .secs = 2.0,
					     .enters = 100, .sqes = 1000 };
	r.core[1] = (struct ub_core_result){ .cpu = 1, .ops = 3000, .reads = 2000, .writes = 1000,
					     .bytes = 3000 * 4096, .secs = 2.5, .enters = 300, .sqes = 3000 };
	urt_hist_init(&r.core[0].hist);
	urt_hist_init(&r.core[1].hist);
	for (int i = 0; i < 1000; i++)
		urt_hist_add(&r.core[0].hist, 10000);
	for (int i = 0; i < 3000; i++)
		urt_hist_add(&r.core[1].hist, 30000);
	ub_result_sum(&r);
	cr_assert_eq(r.total.ops, 4000);
	cr_assert_eq(r.total.reads, 3000);
	cr_assert_eq(r.total.writes, 1000);
	cr_assert_eq(r.total.bytes, 4000ull * 4096);
	cr_assert_eq(r.total.enters, 400);
	cr_assert_float_eq(r.total.secs, 2.5, 1e-12);
	cr_assert_eq(r.total.hist.count, 4000);
	ub_lat_summary(&r.total.hist, &l);
	assert_close(l.p50, 30000, "merged p50");
	cr_assert_eq(l.min, 10000);
	cr_assert_float_eq(ub_core_iops(&r.core[0]), 500.0, 1e-9);
	cr_assert_float_eq(ub_core_iops(&r.total), 1600.0, 1e-9);
	cr_assert_float_eq(ub_core_mibs(&r.core[0]), 1000.0 * 4096 / 2.0 / 1048576.0, 1e-9);
	cr_assert_float_eq(ub_core_syscalls_per_io(&r.total), 0.1, 1e-12);
	cr_assert_float_eq(ub_core_batch(&r.total), 10.0, 1e-12);
	r.cpu_user_s = 0.01;
	r.cpu_sys_s = 0.03;
	cr_assert_float_eq(ub_result_cpu_us_per_io(&r), 10.0, 1e-9);
}

Test(urbench_hist, derived_figures_never_divide_by_zero)
{
	struct ub_core_result c;

	memset(&c, 0, sizeof(c));
	cr_assert_float_eq(ub_core_iops(&c), 0.0, 1e-12);
	cr_assert_float_eq(ub_core_mibs(&c), 0.0, 1e-12);
	cr_assert_float_eq(ub_core_syscalls_per_io(&c), 0.0, 1e-12);
	cr_assert_float_eq(ub_core_batch(&c), 0.0, 1e-12);
}

Test(urbench_hist, steal_percentage)
{
	struct ub_cpu_times a = { .steal = 100, .total = 1000 }, b = { .steal = 150, .total = 1200 };

	cr_assert_float_eq(ub_steal_pct(&a, &b), 25.0, 1e-9);
	cr_assert_float_eq(ub_steal_pct(&a, &a), 0.0, 1e-12);
	cr_assert_eq(ub_cpu_times_read(&a), 0);
	cr_assert_gt(a.total, 0);
}

Test(urbench_job, signature_detects_any_wrong_word)
{
	static uint64_t buf[512];

	ub_pattern_fill(buf, sizeof(buf), 8192);
	cr_assert_eq(ub_pattern_check(buf, sizeof(buf), 8192), -1);
	/* The same data read back at another offset (a misdirected read) fails at once. */
	cr_assert_eq(ub_pattern_check(buf, sizeof(buf), 4096), 0);
	buf[300] ^= 1;
	cr_assert_eq(ub_pattern_check(buf, sizeof(buf), 8192), 300 * 8);
	/* Zeroes (a block never written) fail too. */
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(ub_pattern_check(buf, sizeof(buf), 0), 0);
}

Test(urbench_job, random_offsets_aligned_in_range_and_seeded)
{
	struct ub_opts o;
	struct ub_gen a, b, c;
	uint64_t off_a, off_b, off_c, span = 1000 * 4096;
	unsigned differ = 0;
	static bool seen[1000];

	ub_opts_default(&o);
	o.bs = 4096;
	ub_gen_init(&a, &o, span, 0, 1);
	ub_gen_init(&b, &o, span, 0, 1);
	o.seed = 2;
	ub_gen_init(&c, &o, span, 0, 1);
	for (int i = 0; i < 20000; i++) {
		cr_assert_not(ub_gen_next(&a, &off_a));
		ub_gen_next(&b, &off_b);
		ub_gen_next(&c, &off_c);
		cr_assert_eq(off_a % 4096, 0);
		cr_assert_lt(off_a, span);
		cr_assert_eq(off_a, off_b, "same seed, same sequence");
		differ += off_a != off_c;
		seen[off_a / 4096] = true;
	}
	cr_assert_gt(differ, 19000, "another seed gives another sequence");
	for (int i = 0; i < 1000; i++)
		cr_assert(seen[i], "block %d never drawn in 20 draws per block", i);
}

Test(urbench_job, sequential_workers_split_and_wrap)
{
	struct ub_opts o;
	struct ub_gen g0, g1;
	uint64_t off;

	ub_opts_default(&o);
	o.rw = UB_RW_WRITE;
	o.bs = 4096;
	ub_gen_init(&g0, &o, 8 * 4096, 0, 2);
	ub_gen_init(&g1, &o, 8 * 4096, 1, 2);
	for (uint64_t i = 0; i < 4; i++) {
		cr_assert(ub_gen_next(&g0, &off));
		cr_assert_eq(off, i * 4096);
		cr_assert(ub_gen_next(&g1, &off));
		cr_assert_eq(off, (4 + i) * 4096);
	}
	/* Worker 1 wraps from the last block to the first. */
	ub_gen_next(&g1, &off);
	cr_assert_eq(off, 0);
}

Test(urbench_job, rwmix_fraction)
{
	struct ub_opts o;
	struct ub_gen g;
	uint64_t off;
	unsigned writes = 0;

	ub_opts_default(&o);
	o.rw = UB_RW_RANDRW;
	o.rwmix_read = 70;
	ub_gen_init(&g, &o, 1 << 20, 0, 1);
	for (int i = 0; i < 100000; i++)
		writes += ub_gen_next(&g, &off);
	cr_assert(writes > 29000 && writes < 31000, "%u writes of 100000 at 70%% reads", writes);
}
