/*
 * The workload of one worker: which op comes next and at what offset, and
 * the data signature that makes a read verifiable.
 *
 * Offsets: random workloads draw a block index uniformly from [0, nblocks)
 * with a per-worker xorshift generator seeded from --seed and the worker's
 * index, so a run is reproducible; offsets are always multiples of --bs.
 * Sequential workloads give each worker its own stretch of the target,
 * starting at worker * nblocks / nworkers and wrapping at the end.
 *
 * Signature: the 8-byte word at byte offset a of the target holds
 * ub_pattern_word(a), a function of a alone.  A created file is filled with
 * it, and writes under --verify write it, so a read at any offset can check
 * every word: a block that was never written, written to the wrong place,
 * or torn fails the check.
 */
#ifndef URBENCH_JOB_H
#define URBENCH_JOB_H

#include <stdbool.h>
#include <stdint.h>

#include "urbench/opts.h"

struct ub_gen {
	uint64_t rng;		/* xorshift64* state, never 0. */
	uint64_t nblocks;	/* Blocks of bs in the target. */
	uint64_t seq_next;	/* Sequential: next block index. */
	uint32_t bs;		/* Block size. */
	enum ub_rw rw;		/* Workload. */
	unsigned rwmix_read;	/* randrw: percent of reads. */
};

/*
 * Set g up for worker `worker` of `nworkers` on a target of span_bytes.
 * span_bytes must be at least o->bs.
 */
void ub_gen_init(struct ub_gen *g, const struct ub_opts *o, uint64_t span_bytes, unsigned worker,
		 unsigned nworkers);

/* The next op: sets *off and returns true for a write, false for a read. */
static inline bool ub_gen_next(struct ub_gen *g, uint64_t *off)
{
	uint64_t x, blk;
	bool write;

	/* xorshift64* (Vigna): fast, and good enough for uniform offsets. */
	x = g->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	g->rng = x;
	x *= 0x2545F4914F6CDD1Dull;
	switch (g->rw) {
	case UB_RW_READ:
	case UB_RW_WRITE:
		blk = g->seq_next++;
		if (g->seq_next == g->nblocks)
			g->seq_next = 0;
		write = g->rw == UB_RW_WRITE;
		break;
	case UB_RW_RANDRW:
		/* The low bits pick the op, the high bits the block (independent enough). */
		write = (x & 0xffff) % 100 >= g->rwmix_read;
		blk = (uint64_t)(((unsigned __int128)x * g->nblocks) >> 64);
		break;
	default:
		write = g->rw == UB_RW_RANDWRITE;
		blk = (uint64_t)(((unsigned __int128)x * g->nblocks) >> 64);
		break;
	}
	*off = blk * g->bs;
	return write;
}

/* The signature word stored at byte offset a (a multiple of 8). */
static inline uint64_t ub_pattern_word(uint64_t a)
{
	return ((a >> 3) + 1) * 0x9E3779B97F4A7C15ull ^ 0x7572626e6368ull;
}

/* Fill buf (len a multiple of 8) with the signature of [off, off + len). */
void ub_pattern_fill(void *buf, uint32_t len, uint64_t off);

/*
 * Check buf against the signature of [off, off + len).  Returns -1 when it
 * matches, else the byte index in buf of the first wrong word.
 */
int64_t ub_pattern_check(const void *buf, uint32_t len, uint64_t off);

#endif /* URBENCH_JOB_H */
