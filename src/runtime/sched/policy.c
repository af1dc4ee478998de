/*
 * Ordering policies of the device scheduler: which queued op of a class
 * goes next, given where the head is.  Pure functions over an array kept
 * sorted by (offset, arrival), so that tests can compare them with a
 * brute-force reference (tests/runtime/sched/test_policy.c).
 *
 * The head is the end offset of the last command sent (queue.c).  With
 * equal offsets the earlier arrival wins: the sort key is (off, seq).
 *
 *   FIFO   the earliest arrival (queue.c takes it from its arrival list;
 *          here, for completeness and the tests, the smallest seq).
 *   SSTF   the op nearest the head, |off - head|; a tie between one above
 *          and one below goes to the one above (off >= head).
 *   SCAN   sweeping up: the lowest off >= head; when none is left, turn:
 *          sweeping down: the highest off < head; when none, turn again.
 *   CSCAN  the lowest off >= head; when none, wrap to the lowest off.
 */
#include <string.h>

#include "runtime/core.h"

/* Index of the first entry with off >= `off` (n when none). */
size_t sched_sorted_lower(const struct sched_ent *v, size_t n, uint64_t off)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The first entry of the run of equal offsets that holds index i. */
static size_t run_start(const struct sched_ent *v, size_t i)
{
	while (i > 0 && v[i - 1].off == v[i].off)
		i--;
	return i;
}

/* Insert e after every entry with off <= e.off (its seq is the largest yet). */
void sched_sorted_insert(struct sched_ent *v, size_t *n, struct sched_ent e)
{
	size_t i = sched_sorted_lower(v, *n, e.off + 1);

	if (e.off == UINT64_MAX)
		i = *n;
	memmove(&v[i + 1], &v[i], (*n - i) * sizeof(*v));
	v[i] = e;
	(*n)++;
}

void sched_sorted_remove(struct sched_ent *v, size_t *n, const struct urt_req *req, uint64_t off)
{
	size_t i = sched_sorted_lower(v, *n, off);

	while (i < *n && v[i].req != req)
		i++;
	URT_ASSERT(i < *n && "a queued op is in its class's sorted array");
	memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof(*v));
	(*n)--;
}

size_t sched_policy_pick(enum urt_sched_policy policy, const struct sched_ent *v, size_t n, uint64_t head,
			 int8_t *dir)
{
	size_t up, down, best = 0;

	URT_ASSERT(n > 0);
	up = sched_sorted_lower(v, n, head);
	switch (policy) {
	case URT_SCHED_SSTF:
		if (up == n)
			return run_start(v, n - 1);
		if (up == 0)
			return up;
		down = run_start(v, up - 1);
		/* A tie goes up. */
		return head - v[down].off < v[up].off - head ? down : up;
	case URT_SCHED_SCAN:
		if (*dir >= 0) {
			if (up < n)
				return up;
			*dir = -1;
		}
		if (up > 0)
			return run_start(v, up - 1);
		*dir = 1;
		return up;
	case URT_SCHED_CSCAN:
		return up < n ? up : 0;
	default:
		for (size_t i = 1; i < n; i++)
			if (v[i].seq < v[best].seq)
				best = i;
		return best;
	}
}
