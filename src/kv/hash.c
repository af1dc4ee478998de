/*
 * The store's key hash.  It decides which shard holds a key, so it is part
 * of the on-disk format: never change it (tests/kv/test_kv.c pins values).
 */
#include <stdint.h>
#include <string.h>

#include "kv/kv_impl.h"

#define KV_HASH_MUL 0x9e3779b97f4a7c15ull	/* 2^64 / golden ratio: spreads bits. */

/* The 64-bit finaliser of MurmurHash3: every input bit flips each output bit with p ~ 1/2. */
static uint64_t fmix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static uint64_t rotl64(uint64_t x, unsigned r)
{
	return (x << r) | (x >> (64 - r));
}

uint64_t kv_hash64(const void *data, size_t len, uint64_t seed)
{
	const uint8_t *p = data;
	uint64_t h = seed ^ (len * KV_HASH_MUL);
	uint64_t w;

	while (len >= 8) {
		memcpy(&w, p, 8);	/* Little-endian hosts only (asserted by the tree's pages). */
		h = rotl64(h ^ fmix64(w), 27) * KV_HASH_MUL;
		p += 8;
		len -= 8;
	}
	w = 0;
	memcpy(&w, p, len);
	h = rotl64(h ^ fmix64(w ^ ((uint64_t)len << 56)), 27) * KV_HASH_MUL;
	return fmix64(h);
}
