/*
 * The scheduler's ordering policies (src/runtime/sched/policy.c) against a
 * brute-force reference, on random queues: each step picks one op, the
 * head moves to its end, new ops arrive, and the whole service order must
 * match the reference's, op for op.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "runtime/core.h"

#define QMAX 256

struct ref_op {
	uint64_t off;
	uint64_t len;
	uint64_t seq;
};

/* Reference: a plain scan over the unsorted set, written from the definitions. */
static size_t ref_pick(enum urt_sched_policy p, const struct ref_op *v, size_t n, uint64_t head, int8_t *dir)
{
	size_t best = SIZE_MAX;

	for (size_t i = 0; i < n; i++) {
		bool better = false;

		if (best == SIZE_MAX) {
			better = p == URT_SCHED_FIFO || p == URT_SCHED_SSTF;
			if (p == URT_SCHED_SCAN)
				better = *dir >= 0 ? v[i].off >= head : v[i].off < head;
			if (p == URT_SCHED_CSCAN)
				better = v[i].off >= head;
			if (better)
				best = i;
			continue;
		}
		switch (p) {
		case URT_SCHED_FIFO:
			better = v[i].seq < v[best].seq;
			break;
		case URT_SCHED_SSTF: {
			uint64_t di = v[i].off > head ? v[i].off - head : head - v[i].off;
			uint64_t db = v[best].off > head ? v[best].off - head : head - v[best].off;
			bool ui = v[i].off >= head, ub = v[best].off >= head;

			/* Nearest; a tie goes up; then the earlier arrival. */
			better = di < db || (di == db && ui && !ub) || (di == db && ui == ub && v[i].seq < v[best].seq);
			break;
		}
		case URT_SCHED_SCAN:
			if (*dir >= 0)
				better = v[i].off >= head &&
					 (v[i].off < v[best].off || (v[i].off == v[best].off && v[i].seq < v[best].seq));
			else
				better = v[i].off < head &&
					 (v[i].off > v[best].off || (v[i].off == v[best].off && v[i].seq < v[best].seq));
			break;
		case URT_SCHED_CSCAN:
			better = v[i].off >= head &&
				 (v[i].off < v[best].off || (v[i].off == v[best].off && v[i].seq < v[best].seq));
			break;
		default:
			break;
		}
		if (better)
			best = i;
	}
	if (best != SIZE_MAX)
		return best;
	/* Nothing on this side: SCAN turns, CSCAN wraps to the lowest. */
	if (p == URT_SCHED_SCAN) {
		*dir = (int8_t)(*dir >= 0 ? -1 : 1);
		return ref_pick(p, v, n, head, dir);
	}
	URT_ASSERT(p == URT_SCHED_CSCAN);
	return ref_pick(p, v, n, 0, dir);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void run_policy(enum urt_sched_policy p, uint64_t seed, uint64_t span_blocks)
{
	static struct sched_ent sorted[QMAX];
	static struct ref_op ref[QMAX];
	size_t n_sorted = 0, n_ref = 0;
	uint64_t s = seed, seq = 0, head_a = 0, head_b = 0;
	int8_t dir_a = 1, dir_b = 1;
	unsigned steps = 2000;

	for (unsigned step = 0; step < steps; step++) {
		/* 0 to 3 arrivals per step, up to QMAX queued; offsets collide often. */
		unsigned arrive = (unsigned)(rnd(&s) % 4);

		if (n_ref == 0 && arrive == 0)
			arrive = 1;
		for (unsigned a = 0; a < arrive && n_ref < QMAX; a++) {
			uint64_t off = rnd(&s) % span_blocks * 4096, len = (1 + rnd(&s) % 4) * 4096;

			seq++;
			ref[n_ref++] = (struct ref_op){ off, len, seq };
			/* The sorted array keeps the index into ref as its "request". */
			sched_sorted_insert(sorted, &n_sorted,
					    (struct sched_ent){ off, seq, (struct urt_req *)(uintptr_t)(seq * 64) });
		}
		cr_assert_eq(n_sorted, n_ref);
		for (size_t i = 1; i < n_sorted; i++)
			cr_assert(sorted[i - 1].off < sorted[i].off ||
				  (sorted[i - 1].off == sorted[i].off && sorted[i - 1].seq < sorted[i].seq),
				  "sorted by (off, seq) at %zu", i);
		{
			size_t ia = sched_policy_pick(p, sorted, n_sorted, head_a, &dir_a);
			size_t ib = ref_pick(p, ref, n_ref, head_b, &dir_b);
			struct sched_ent got = sorted[ia];

			cr_assert_eq(got.seq, ref[ib].seq, "%s seed %llu step %u: picked seq %llu (off %llu), reference "
				     "seq %llu (off %llu), head %llu", urt_sched_policy_name(p),
				     (unsigned long long)seed, step, (unsigned long long)got.seq,
				     (unsigned long long)got.off, (unsigned long long)ref[ib].seq,
				     (unsigned long long)ref[ib].off, (unsigned long long)head_a);
			cr_assert_eq(dir_a, dir_b);
			head_a = got.off + ref[ib].len;
			head_b = head_a;
			sched_sorted_remove(sorted, &n_sorted, got.req, got.off);
			ref[ib] = ref[--n_ref];
		}
	}
}

Test(sched_policy, fifo)
{
	for (uint64_t seed = 1; seed <= 4; seed++)
		run_policy(URT_SCHED_FIFO, seed, 64);
}

Test(sched_policy, sstf)
{
	for (uint64_t seed = 1; seed <= 4; seed++) {
		run_policy(URT_SCHED_SSTF, seed, 64);
		run_policy(URT_SCHED_SSTF, seed, 1u << 20);
	}
}

Test(sched_policy, scan)
{
	for (uint64_t seed = 1; seed <= 4; seed++) {
		run_policy(URT_SCHED_SCAN, seed, 64);
		run_policy(URT_SCHED_SCAN, seed, 1u << 20);
	}
}

Test(sched_policy, cscan)
{
	for (uint64_t seed = 1; seed <= 4; seed++) {
		run_policy(URT_SCHED_CSCAN, seed, 64);
		run_policy(URT_SCHED_CSCAN, seed, 1u << 20);
	}
}

Test(sched_policy, parse_names)
{
	enum urt_sched_policy p;

	cr_assert_eq(urt_sched_policy_parse("cscan", &p), 0);
	cr_assert_eq(p, URT_SCHED_CSCAN);
	cr_assert_eq(urt_sched_policy_parse("elevator", &p), -EINVAL);
	cr_assert_str_eq(urt_sched_policy_name(URT_SCHED_SSTF), "sstf");
}

Test(sched_policy, ioprio_of_each_class)
{
	/* IOPRIO_PRIO_VALUE(class, level): RT = 1, BE = 2, IDLE = 3, class in bits 13-15. */
	cr_assert_eq(sched_ioprio_of(URT_PRIO_URGENT, true), (1u << 13) | 4);
	cr_assert_eq(sched_ioprio_of(URT_PRIO_URGENT, false), 2u << 13);
	cr_assert_eq(sched_ioprio_of(URT_PRIO_NORMAL, true), (2u << 13) | 4);
	cr_assert_eq(sched_ioprio_of(URT_PRIO_BACKGROUND, true), 3u << 13);
}
