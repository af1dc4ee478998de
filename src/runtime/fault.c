/*
 * Fault injection.
 *
 * Each core draws from its own xorshift64* generator, seeded with
 * opts.fault.seed xor a constant times the core index, so a failing run
 * reproduces with the same seed, op sequence and core.  A fault hits an op
 * with probability rate_ppm / 10^6 when its opcode is in op_mask; its kind
 * is drawn from the enabled kinds that apply at that point:
 *   at submission  STALL (the op is replaced by one that never completes)
 *   at completion  EIO, EAGAIN, SHORT, DELAY
 * count_max bounds the faults of a core; 0 means no bound.
 */
#include "runtime/core.h"

static uint64_t rng_next(struct urt_core *c)
{
	uint64_t x = c->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	c->rng = x;
	return x * 0x2545f4914f6cdd1dull;
}

static uint32_t fault_draw(struct urt_core *c, unsigned op, uint32_t allowed)
{
	const struct urt_fault_opts *f = &c->rt->opts.fault;
	uint32_t kinds = f->kinds & allowed;
	uint32_t pick[8];
	unsigned n = 0;

	if (!f->rate_ppm || !kinds)
		return 0;
	if (f->op_mask && !(f->op_mask & (1u << op)))
		return 0;
	if (f->count_max && c->faults_left == 0)
		return 0;
	if (rng_next(c) % 1000000u >= f->rate_ppm)
		return 0;
	for (uint32_t k = 1; k <= URT_FAULT_DELAY; k <<= 1)
		if (kinds & k)
			pick[n++] = k;
	if (f->count_max)
		c->faults_left--;
	c->stats.faults++;
	return pick[rng_next(c) % n];
}

uint32_t fault_pick(struct urt_core *c, unsigned op)
{
	return fault_draw(c, op, URT_FAULT_EIO | URT_FAULT_EAGAIN | URT_FAULT_SHORT | URT_FAULT_DELAY);
}

uint32_t fault_pick_submit(struct urt_core *c, unsigned op)
{
	return fault_draw(c, op, URT_FAULT_STALL);
}
