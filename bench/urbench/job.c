/*
 * Workload generators and the data signature (see job.h).
 */
#include "urbench/job.h"

void ub_gen_init(struct ub_gen *g, const struct ub_opts *o, uint64_t span_bytes, unsigned worker,
		 unsigned nworkers)
{
	/* splitmix64 of (seed, worker): distinct, non-zero streams per worker. */
	uint64_t z = o->seed + 0x9E3779B97F4A7C15ull * (worker + 1);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	z ^= z >> 31;
	g->rng = z ? z : 1;
	g->bs = o->bs;
	g->nblocks = span_bytes / o->bs;
	if (g->nblocks == 0)
		g->nblocks = 1;
	g->seq_next = nworkers ? (uint64_t)(((unsigned __int128)g->nblocks * worker) / nworkers) : 0;
	g->rw = o->rw;
	g->rwmix_read = o->rwmix_read;
}

void ub_pattern_fill(void *buf, uint32_t len, uint64_t off)
{
	uint64_t *w = buf;

	for (uint32_t i = 0; i < len / 8; i++)
		w[i] = ub_pattern_word(off + (uint64_t)i * 8);
}

int64_t ub_pattern_check(const void *buf, uint32_t len, uint64_t off)
{
	const uint64_t *w = buf;

	for (uint32_t i = 0; i < len / 8; i++)
		if (w[i] != ub_pattern_word(off + (uint64_t)i * 8))
			return (int64_t)i * 8;
	return -1;
}
